"""`make bench`: ingest, build and feedback timed side by side with DuckDB's own load.

Every step runs as its own process under `/usr/bin/time` (wall time and peak RSS), several
times; we report medians and ratios measured in the same run on the same files, never a
single absolute time. Results: bench/results.json and a markdown table (also in bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ITRACK = str(BIN / "itrack")
SCALES = {"small": [10_000], "full": [10_000, 100_000, 1_000_000]}
KINDS = ("candidates", "processes", "stages")

# DuckDB alone: the same three files into typed tables, no validation (the floor).
FLOOR = textwrap.dedent("""
    import duckdb, sys
    folder, fmt = sys.argv[1], sys.argv[2]
    con = duckdb.connect(sys.argv[3])
    cols = {
      'candidates': "{'id':'VARCHAR','full_name':'VARCHAR','feeder_source':'VARCHAR',"
                    "'current_company':'VARCHAR','linkedin_url':'VARCHAR',"
                    "'created_at':'TIMESTAMPTZ','updated_at':'TIMESTAMPTZ'}",
      'processes': "{'id':'UUID','candidate_id':'VARCHAR','company_name':'VARCHAR',"
                   "'role_title':'VARCHAR','status':'VARCHAR','feeder_source':'VARCHAR',"
                   "'recruiter_name':'VARCHAR','final_outcome':'VARCHAR','offer_details':'JSON',"
                   "'created_at':'TIMESTAMPTZ','updated_at':'TIMESTAMPTZ'}",
      'stages': "{'id':'UUID','interview_process_id':'UUID','stage_name':'VARCHAR',"
                "'stage_order':'INTEGER','scheduled_date':'TIMESTAMPTZ',"
                "'completed_date':'TIMESTAMPTZ','outcome':'VARCHAR','overall_rating':'INTEGER',"
                "'technical_rating':'INTEGER','culture_fit_rating':'INTEGER',"
                "'communication_rating':'INTEGER','feedback_notes':'VARCHAR',"
                "'interviewer_names':'VARCHAR[]','next_steps':'VARCHAR',"
                "'created_at':'TIMESTAMPTZ','updated_at':'TIMESTAMPTZ'}",
    }
    for kind, c in cols.items():
        if fmt == 'jsonl':
            src = f"read_json('{folder}/{kind}.jsonl', format='newline_delimited', columns={c})"
        elif fmt == 'csv':
            src = f"read_csv('{folder}/{kind}.csv', header=true)"
        else:
            src = f"read_parquet('{folder}/{kind}.parquet')"
        con.execute(f"create table {kind} as select * from {src}")
    con.close()
""")


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run a command under /usr/bin/time: wall seconds and peak RSS (MB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", out.name, *cmd],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )
        if proc.returncode not in (0, 1):
            raise SystemExit(f"bench step failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
        wall, rss_kb = out.read().split()[-2:]
    return {"seconds": float(wall), "rss_mb": int(rss_kb) / 1024}


def median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "rss_mb": max(r["rss_mb"] for r in runs),
        "runs": len(runs),
    }


def generate(folder: Path, stages: int, fmt: str) -> None:
    if (folder / f"stages.{fmt if fmt != 'jsonl' else 'jsonl'}").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            ITRACK,
            "generate",
            "--out",
            str(folder),
            "--processes",
            str(max(stages // 4, 1)),
            "--seed",
            "7",
            "--format",
            fmt,
        ],
        check=True,
        capture_output=True,
    )


def bench_scale(stages: int, work: Path, repeats: int) -> dict[str, object]:
    data = work / f"data-{stages}"
    for fmt in ("jsonl", "csv", "parquet"):
        generate(data / fmt, stages, fmt)
    result: dict[str, object] = {"stage_records": stages}
    for fmt in ("jsonl", "csv", "parquet"):
        floor, ours = [], []
        for i in range(repeats):
            db = work / f"run-{stages}-{fmt}-{i}"
            shutil.rmtree(db, ignore_errors=True)
            db.mkdir()
            floor.append(
                timed([sys.executable, "-c", FLOOR, str(data / fmt), fmt, str(db / "floor.duckdb")])
            )
            ours.append(timed([ITRACK, "ingest", str(data / fmt), "--db", str(db / "w.duckdb")]))
        result[f"ingest_{fmt}"] = {
            "duckdb_floor": median(floor),
            "itrack": median(ours),
            "ratio": median(ours)["seconds"] / median(floor)["seconds"],
        }
    db = work / f"run-{stages}-jsonl-0" / "w.duckdb"
    result["reingest_same_files"] = median(
        [timed([ITRACK, "ingest", str(data / "jsonl"), "--db", str(db)]) for _ in range(repeats)]
    )
    result["build"] = median(
        [
            timed(
                [ITRACK, "build", str(data / "jsonl"), "--db", str(db), "--no-backup", "--no-html"]
            )
            for _ in range(1)
        ]
    )
    delta = work / f"delta-{stages}"
    if not delta.exists():
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from itrack.generate import "
                "generate_delta; generate_delta(Path(sys.argv[1]), Path(sys.argv[2]))",
                str(data / "jsonl"),
                str(delta),
            ],
            check=True,
        )
    result["ingest_delta_1pct"] = timed([ITRACK, "ingest", str(delta), "--db", str(db)])
    result["build_after_delta"] = timed(
        [ITRACK, "build", str(delta), "--db", str(db), "--no-backup", "--no-html"]
    )
    result["feedback"] = median(
        [
            timed(
                [
                    ITRACK,
                    "feedback",
                    "--db",
                    str(db),
                    "--full",
                    "--feeders",
                    str(work / "feeders.json"),
                    "--placements",
                    str(work / "placements.json"),
                ]
            )
            for _ in range(repeats)
        ]
    )
    first = result["ingest_jsonl"]["itrack"]["seconds"]  # type: ignore[index]
    result["reingest_share_of_first"] = result["reingest_same_files"]["seconds"] / first
    result["delta_build_share_of_full"] = (
        result["build_after_delta"]["seconds"] / result["build"]["seconds"]
    )
    return result


def machine() -> str:
    cpus = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    return f"{platform.machine()}, {cpus} cores, {mem:.0f} GiB RAM, Python {python}"


def table(results: dict[str, dict]) -> str:
    rows = [
        "| stage records | step | itrack s | DuckDB floor s | ratio | peak RSS MB |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for scale, r in results.items():
        for fmt in ("jsonl", "csv", "parquet"):
            x = r[f"ingest_{fmt}"]
            rows.append(
                f"| {scale} | ingest {fmt} | {x['itrack']['seconds']:.2f} | "
                f"{x['duckdb_floor']['seconds']:.2f} | {x['ratio']:.1f}x | "
                f"{x['itrack']['rss_mb']:.0f} |"
            )
        for step in (
            "reingest_same_files",
            "ingest_delta_1pct",
            "build",
            "build_after_delta",
            "feedback",
        ):
            x = r[step]
            rows.append(
                f"| {scale} | {step.replace('_', ' ')} | {x['seconds']:.2f} | | | "
                f"{x['rss_mb']:.0f} |"
            )
        rows.append(
            f"| {scale} | re-ingest / first ingest | | | {r['reingest_share_of_first']:.0%} | |"
        )
        rows.append(
            f"| {scale} | build after delta / full build | | | "
            f"{r['delta_build_share_of_full']:.0%} | |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "data")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    for stages in SCALES[args.scale]:
        repeats = args.repeats if stages < 1_000_000 else max(1, args.repeats - 1)
        print(f"bench: {stages} stage records ...", flush=True)
        results[str(stages)] = bench_scale(stages, args.work, repeats)
    report = {"machine": machine(), "scale": args.scale, "results": results}
    (ROOT / "bench" / "results.json").write_text(json.dumps(report, indent=2))
    md = table(results)
    print(f"\nmachine: {report['machine']}\n\n{md}")
    readme = ROOT / "bench" / "README.md"
    text = readme.read_text() if readme.exists() else ""
    marker = "<!-- results -->"
    if marker in text:
        text = (
            text.split(marker)[0] + marker + f"\n\nMachine: {report['machine']} "
            f"(scale `{args.scale}`, medians of {args.repeats} runs)\n\n{md}\n"
        )
        readme.write_text(text)


if __name__ == "__main__":
    main()

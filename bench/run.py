"""`make bench`: one table, measured side by side in one run, default commands as users run them.

For each scale (the shipped sample, 100k and 1M stage records from `itrack generate --seed 7`,
about 2.1 stage records per process):

- **ingest** of the JSONL, CSV and Parquet files (`itrack ingest FOLDER`, full contract,
  quarantine, audit) into an empty store, against DuckDB alone loading the same files into typed
  tables (`read_json` with the contract's columns, `read_csv`, `read_parquet`): the floor.
  Floor and ingest alternate, each its own process, medians of the repeats;
- **first run**: `itrack build FOLDER` on an empty location (ingest, dbt, feedback, report),
  with no plan shared from another location (`ITRACK_PLAN_CACHE` unset: dbt runs);
- **nightly build, full**: `itrack build FOLDER` as the nightly job runs it (backup, ingest
  finds nothing new, dbt build of every mart, feedback, publish, HTML report), the warehouse
  removed first so dbt builds everything, after one untimed such build (the location's first
  backup: every later night has the previous night's);
- **nightly build after a 1% delta** (new and changed records): `itrack build DELTA`;
- **no-op rerun**: the same command again, nothing new;
- peak RSS of every step (`/usr/bin/time`), and the machine's load while it ran (the machine
  may be shared: read the ratios, measured side by side, more than the seconds).

Results: bench/results.json, the table printed, and bench/README.md regenerated from this run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ITRACK = str(BIN / "itrack")
SAMPLE = ROOT / "data" / "sample"
# stage records -> processes for `itrack generate` (about 2.13 stage records per process)
PROCESSES = {"100k": 50_000, "1M": 500_000}
SCALES = {
    "small": ["sample"],
    "medium": ["sample", "100k"],
    "full": ["sample", "100k", "1M"],
    # 1M alone; every run keeps the last results (bench/results.json) of the scales it does
    # not measure (each scale keeps its own run time and load in the table)
    "1M": ["1M"],
}
FORMATS = ("jsonl", "csv", "parquet")

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
            src = (f"read_json('{folder}/{kind}.jsonl', format='newline_delimited', "
                   f"columns={c}, ignore_errors=true)")
        elif fmt == 'csv':
            src = f"read_csv('{folder}/{kind}.csv', header=true, ignore_errors=true)"
        else:
            src = f"read_parquet('{folder}/{kind}.parquet')"
        con.execute(f"create table {kind} as select * from {src}")
    con.close()
""")

TARGETS_TEXT = {
    "ingest_jsonl": "ingest JSONL within 2.5x of the floor at 1M (stretch 2x)",
    "ingest_csv": "ingest CSV within 3x of DuckDB's read_csv at 1M",
    "ingest_parquet": "ingest Parquet within 2x of read_parquet at 1M",
    "ingest_rss": "ingest peak RSS under 1.2 GB at 1M",
    "build_sample": "nightly build under 3 s on the shipped sample",
    "build_1m": "nightly build under 12 s at 1M",
    "build_rss": "nightly build peak RSS under 1.5 GB at 1M",
    "delta": "build after a 1% delta under 40% of a full build at 1M",
    "noop": "no-op rerun under 5% of the full nightly build at 1M",
}


def timed(cmd: list[str]) -> dict[str, float]:
    """Run a command under /usr/bin/time: wall seconds, CPU seconds (user + system: what a
    shared machine's load inflates least) and peak RSS (MB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%e %U %S %M", "-o", out.name, *cmd],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"bench step failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
            )
        wall, user, system, rss_kb = out.read().split()[-4:]
    return {
        "seconds": float(wall),
        "cpu_seconds": round(float(user) + float(system), 2),
        "rss_mb": round(int(rss_kb) / 1024),
    }


def med(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "seconds": round(statistics.median(r["seconds"] for r in runs), 2),
        "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 2),
        "rss_mb": max(r["rss_mb"] for r in runs),
        "runs": len(runs),
    }


def cpu(x: dict) -> str:
    """CPU seconds of a measured step (absent from results of older runs)."""
    return f"{x['cpu_seconds']:.2f}" if "cpu_seconds" in x else ""


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def generate(folder: Path, processes: int, fmt: str) -> None:
    if folder.exists() and any(folder.iterdir()):
        return
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            ITRACK,
            "generate",
            "--out",
            str(folder),
            "--processes",
            str(processes),
            "--seed",
            "7",
            "--format",
            fmt,
        ],
        check=True,
        capture_output=True,
    )


def inputs(scale: str, work: Path) -> dict[str, Path]:
    """Per format the folder to ingest; the sample's CSV and Parquet are generated at its size."""
    processes = PROCESSES.get(scale, 300)
    folders = {}
    for fmt in FORMATS:
        if scale == "sample" and fmt == "jsonl":
            folders[fmt] = SAMPLE
            continue
        folders[fmt] = work / f"data-{scale}" / fmt
        generate(folders[fmt], processes, fmt)
    return folders


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def bench_scale(scale: str, work: Path, repeats: int) -> dict[str, object]:
    folders = inputs(scale, work)
    lines = subprocess.run(
        ["wc", "-l", str(folders["jsonl"] / "stages.jsonl")], capture_output=True, text=True
    ).stdout.split()[0]
    result: dict[str, object] = {"stage_records": int(lines), "load_before": load()}
    for fmt in FORMATS:
        floor, ours = [], []
        for i in range(repeats):
            run = fresh(work / f"run-{scale}-{fmt}-{i}")
            floor.append(
                timed(
                    [sys.executable, "-c", FLOOR, str(folders[fmt]), fmt, str(run / "floor.duckdb")]
                )
            )
            ours.append(timed([ITRACK, "ingest", str(folders[fmt]), "--db", str(run / "w.duckdb")]))
            shutil.rmtree(run, ignore_errors=True)
        result[f"ingest_{fmt}"] = {
            "itrack": med(ours),
            "floor": med(floor),
            "ratio": round(med(ours)["seconds"] / med(floor)["seconds"], 2),
        }
    place = fresh(work / f"build-{scale}")
    db = str(place / "warehouse.duckdb")
    result["first_run"] = med([timed([ITRACK, "build", str(folders["jsonl"]), "--db", db])])
    full = []
    for repeat in range(repeats + 1):
        # a full rebuild as the nightly job would do it with nothing to reuse: no published
        # warehouse (dbt's partial-parse state in .build/dbt is kept, as every night)
        for stale in [*place.glob("warehouse.duckdb*"), *place.glob(".build/*.fingerprint")]:
            stale.unlink()
        run = timed([ITRACK, "build", str(folders["jsonl"]), "--db", db])
        # the first one is not timed: it takes the location's first backup, which every later
        # night has (a backup copies the tables the newest backup holds unchanged)
        if repeat:
            full.append(run)
    result["build_full"] = med(full)
    delta = work / f"delta-{scale}"
    if not delta.exists():
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from itrack.generate import generate_delta;"
                " generate_delta(Path(sys.argv[1]), Path(sys.argv[2]))",
                str(folders["jsonl"]),
                str(delta),
            ],
            check=True,
        )
    # the delta can be applied once per state: each repeat starts from a copy of the state
    # after the full builds (a single run on a loaded machine says little)
    saved = work / f"saved-{scale}"
    if repeats > 1:
        shutil.rmtree(saved, ignore_errors=True)
        shutil.copytree(place, saved, symlinks=True)
    deltas = []
    for i in range(repeats):
        if i:
            shutil.rmtree(place)
            shutil.copytree(saved, place, symlinks=True)
        deltas.append(timed([ITRACK, "build", str(delta), "--db", db]))
    shutil.rmtree(saved, ignore_errors=True)
    result["build_delta"] = med(deltas)
    # the first rerun after a build that changed the raw store backs it up (the newest backup
    # predates that build's ingest); the next ones find nothing to do at all: both are shown,
    # the target is judged on the second kind (3 runs at every scale: they are cheap)
    noops = [timed([ITRACK, "build", str(delta), "--db", db]) for _ in range(max(repeats, 3) + 1)]
    result["build_noop_first"] = med(noops[:1])
    result["build_noop"] = med(noops[1:])
    full_s = result["build_full"]["seconds"]  # type: ignore[index]
    result["delta_share"] = round(result["build_delta"]["seconds"] / full_s, 3)  # type: ignore[index]
    result["noop_share"] = round(result["build_noop"]["seconds"] / full_s, 3)  # type: ignore[index]
    result["noop_first_share"] = round(result["build_noop_first"]["seconds"] / full_s, 3)  # type: ignore[index]
    result["load_after"] = load()
    shutil.rmtree(place, ignore_errors=True)
    return result


def verdicts(results: dict[str, dict]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target of issue #17, None if not measured."""
    out: list[tuple[str, str, bool | None]] = []
    big = results.get("1M")
    sample = results.get("sample")

    # judged on the measured seconds, never on a rounded ratio or share (0.0497 is met, and
    # shows as 4.97%; a ratio of 2.004 is missed)
    def share(step: str) -> float:
        return big[step]["seconds"] / big["build_full"]["seconds"]

    if big:
        for fmt, limit in (("jsonl", 2.5), ("csv", 3.0), ("parquet", 2.0)):
            ingest = big[f"ingest_{fmt}"]
            ratio = ingest["itrack"]["seconds"] / ingest["floor"]["seconds"]
            out.append((TARGETS_TEXT[f"ingest_{fmt}"], f"{ratio:.2f}x", ratio <= limit))
        rss = max(big[f"ingest_{fmt}"]["itrack"]["rss_mb"] for fmt in FORMATS)
        out.append((TARGETS_TEXT["ingest_rss"], f"{rss} MB", rss < 1200))
    if sample:
        seconds = sample["build_full"]["seconds"]
        out.append((TARGETS_TEXT["build_sample"], f"{seconds:.1f} s", seconds < 3))
    if big:
        seconds, rss = big["build_full"]["seconds"], big["build_full"]["rss_mb"]
        out.append((TARGETS_TEXT["build_1m"], f"{seconds:.1f} s", seconds < 12))
        out.append((TARGETS_TEXT["build_rss"], f"{rss} MB", rss < 1500))
        delta, noop = share("build_delta"), share("build_noop")
        out.append((TARGETS_TEXT["delta"], f"{delta:.0%}", delta < 0.4))
        out.append((TARGETS_TEXT["noop"], f"{noop:.2%}", noop < 0.05))
    return out


def table(results: dict[str, dict]) -> str:
    rows = [
        "| scale (stage records) | step | itrack s | itrack CPU s | floor s | ratio | peak RSS MB "
        "| runs |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scale, r in results.items():
        name = f"{scale} ({r['stage_records']:,})"
        for fmt in FORMATS:
            x = r[f"ingest_{fmt}"]
            rows.append(
                f"| {name} | ingest {fmt} | {x['itrack']['seconds']:.2f} | {cpu(x['itrack'])} | "
                f"{x['floor']['seconds']:.2f} | {x['ratio']:.1f}x | {x['itrack']['rss_mb']} | "
                f"{x['itrack']['runs']} |"
            )
        for step, label, share in (
            ("first_run", "first run: `itrack build FOLDER` on an empty location", None),
            ("build_full", "nightly build, full (backup, dbt, feedback, report)", None),
            ("build_delta", "nightly build after a 1% delta", "delta_share"),
            (
                "build_noop_first",
                "first no-op rerun after a changing build (backs up the raw store)",
                "noop_first_share",
            ),
            ("build_noop", "no-op rerun (nothing new, nothing to back up)", "noop_share"),
        ):
            if step not in r:  # results of older runs
                continue
            if step == "build_noop" and "build_noop_first" not in r:  # the code before 21:00
                label = "no-op rerun (nothing new; that code backed up and copied the raw store)"
            x = r[step]
            ratio = f"{r[share]:.0%} of full" if share else ""
            rows.append(
                f"| {name} | {label} | {x['seconds']:.2f} | {cpu(x)} | | {ratio} | {x['rss_mb']} | "
                f"{x['runs']} |"
            )
    return "\n".join(rows)


def machine() -> str:
    cpus = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    engines = ", ".join(f"{name} {version(name)}" for name in ("duckdb", "dbt-core", "dbt-duckdb"))
    return (
        f"{platform.machine()}, {cpus} cores, {mem:.0f} GiB RAM, Python "
        f"{platform.python_version()}, {platform.platform(terse=True)}; {engines}; code "
        f"`{code()}`"
    )


def code() -> str:
    """The commit measured, `+changes` when the measured code (the packages, the dbt project,
    this script) differs from it in the working tree."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown"
    measured = ["itrack", "ingest", "feedback", "dbt_project", "bench/run.py"]
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", *measured], capture_output=True)
    return head.stdout.strip() + ("+changes" if dirty.returncode else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=list(SCALES), default="full")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "data")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: judge the targets and rewrite the table and bench/README.md's "
        "block from bench/results.json",
    )
    args = parser.parse_args()
    if args.report_only:
        report = json.loads((ROOT / "bench" / "results.json").read_text())
        report["targets"] = [
            {"target": t, "measured": m, "met": ok} for t, m, ok in verdicts(report["results"])
        ]
        publish(report)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    # no dbt plans shared from other locations, should the environment name a folder for them
    # (ITRACK_PLAN_CACHE): a first run at each scale runs dbt, as on a new machine
    os.environ.pop("ITRACK_PLAN_CACHE", None)
    # every command timed loads the project's cached bytecode, as an installed package does
    # (with PYTHONDONTWRITEBYTECODE set nothing else writes it, and a module edited since its
    # last compile would be compiled again by every timed run: 0.05 s of a no-op)
    packages = [str(ROOT / name) for name in ("itrack", "ingest", "feedback")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
    started = dt.datetime.now(dt.UTC)
    results = {}
    last = ROOT / "bench" / "results.json"
    if last.exists():  # the scales this run does not measure keep the last run's results
        previous = json.loads(last.read_text())["results"]
        results = {k: v for k, v in previous.items() if k not in SCALES[args.scale]}
    for scale in SCALES[args.scale]:
        repeats = args.repeats if scale != "1M" else 1
        print(f"bench: {scale} ... (load {load()})", flush=True)
        begun = dt.datetime.now(dt.UTC)
        results[scale] = bench_scale(scale, args.work, repeats)
        results[scale]["ran"] = (
            f"{begun:%Y-%m-%d %H:%M} to {dt.datetime.now(dt.UTC):%H:%M} UTC, "
            f"--scale {args.scale}, {repeats} run(s) per step"
        )
        print(f"bench: {scale} done (load {load()})", flush=True)
    results = {k: results[k] for k in SCALES["full"] if k in results}
    report = {
        "machine": machine(),
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "finished": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "scale": args.scale,
        "results": results,
        "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in verdicts(results)],
    }
    publish(report)


def publish(report: dict) -> None:
    """bench/results.json, the table printed, and bench/README.md's block between its markers."""
    (ROOT / "bench" / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    md = results_markdown(report)
    print("\n" + md)
    readme = ROOT / "bench" / "README.md"
    text = readme.read_text() if readme.exists() else ""
    begin, end = "<!-- results: begin -->", "<!-- results: end -->"
    if begin in text and end in text:
        text = text.split(begin)[0] + begin + "\n" + md + "\n" + end + text.split(end)[1]
        readme.write_text(text)


def results_markdown(report: dict) -> str:
    loads = "; ".join(
        f"{scale}: {r['load_before']} before, {r['load_after']} after"
        + (f" (ran {r['ran']})" if "ran" in r else "")
        for scale, r in report["results"].items()
    )
    lines = [
        f"Run {report['started']} to {report['finished']} (`make bench SCALE={report['scale']}`)"
        f" on {report['machine']}.",
        f"Load average (1 min/5 min) at each scale: {loads}.",
        "",
        "| target (issue #17) | measured | |",
        "|---|---:|---|",
    ]
    for t in report["targets"]:
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {verdict} |")
    lines += ["", table(report["results"])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

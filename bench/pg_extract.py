"""`make bench`, PostgreSQL part: the nightly extract against DuckDB reading the same rows.

Records from `itrack generate --seed 7` with enough processes for about N stage rows (the
generator gives about 2.13 stages per process; the actual count is reported) are loaded into a
throw-away PostgreSQL database migrated with supabase/migrations (bulk COPY, triggers off:
set-up, not measured). Then, side by side, each step its own process
under /usr/bin/time, medians of several runs:

- **extract**: `itrack ingest postgresql://...` into an empty raw store: COPY of every table,
  contract checks, quarantine, upsert, status history, watermarks, audit;
- **ingest parquet**: `itrack ingest <folder of the same rows as Parquet>` into an empty raw
  store: the same pipeline reading files;
- **transfer only**: what the extract adds before the ingest, for the stage table: COPY to
  local CSV and DuckDB turning it into Parquet, against DuckDB reading the stage Parquet file
  into a table (`create table as select * from read_parquet`).

Target (issue #15): extracting 1M stage rows costs no more than 3x DuckDB reading the same rows
from Parquet. Results: bench/pg_results.json and the table printed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from pathlib import Path

import duckdb
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import ITRACK, load, machine, med, timed  # noqa: E402
from bench.run import generate as generate_format  # noqa: E402
from tests import pg  # noqa: E402  (the same server discovery as the tests)

SCALES = {"small": [10_000], "medium": [100_000], "full": [1_000_000]}
ORG = "0a000000-0000-4000-8000-00000000000a"
TABLES = {
    "candidates": "candidates",
    "processes": "interview_processes",
    "stages": "interview_stages",
}
COPY_JSONL = "(format csv, delimiter E'\\x02', quote E'\\x01')"

TRANSFER_PG = textwrap.dedent("""
    import sys, psycopg
    from pathlib import Path
    from ingest.extract import _column_types, _copy_out, _csv_select, _to_parquet
    folder = Path(sys.argv[2])
    with psycopg.connect(sys.argv[1]) as conn:
        conn.execute("set timezone = 'UTC'")
        columns = _column_types(conn, "stages")
        select = _csv_select("stages", columns)
        _copy_out(conn, f"copy ({select}) to stdout (format csv)", [], folder / "stages.csv")
    _to_parquet(folder, "stages", columns)
""")
TRANSFER_DUCKDB = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[2])
    con.execute(f"create table stages as select * from read_parquet('{sys.argv[1]}')")
""")


STAGES_PER_PROCESS = 2.13  # what `itrack generate --seed 7` yields on average


def generate(folder: Path, stages: int) -> None:
    """Parquet files with about `stages` stage records (bench.run's generator)."""
    generate_format(folder, max(round(stages / STAGES_PER_PROCESS), 1), "parquet")


def load_postgres(dsn: str, folder: Path) -> dict[str, int]:
    """Bulk-load the Parquet files into the migrated database (COPY, triggers off). Every
    column a record lacks is null after jsonb_populate_record (no default applies), so the
    change stamp `_changed_at` (not null, normally set by a trigger) is given explicitly."""
    counts = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")  # no triggers, no FK checks
        conn.execute("create temp table landing (raw jsonb)")
        for kind, table in TABLES.items():
            conn.execute("truncate landing")
            jsonl = folder.parent / f"pg-load-{kind}.jsonl"
            duckdb.sql(
                f"copy (select * from read_parquet('{folder / kind}.parquet')) to '{jsonl}'"
                " (format json)"
            )
            with (
                conn.cursor().copy(f"copy landing (raw) from stdin {COPY_JSONL}") as copy,
                jsonl.open("rb") as handle,
            ):
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
            jsonl.unlink()
            conn.execute(
                f"insert into public.{table} select (jsonb_populate_record(null::public.{table},"
                " raw || jsonb_build_object('organization_id', %s::text, 'updated_at',"
                " coalesce(raw->'updated_at', raw->'created_at'), '_changed_at', now())"
                " || case when jsonb_typeof(raw->'interviewer_names') = 'null'"
                " then '{\"interviewer_names\": []}'::jsonb else '{}'::jsonb end)).*"
                " from landing",
                [ORG],
            )
            counts[table] = conn.execute(f"select count(*) from public.{table}").fetchone()[0]
        conn.execute(
            "insert into interview_status_history (organization_id, interview_process_id,"
            " from_status, to_status, changed_at) select organization_id, id, null, 'in_progress',"
            " created_at from interview_processes union all select organization_id, id,"
            " 'in_progress', status, updated_at from interview_processes"
            " where status <> 'in_progress'"
        )
        conn.execute("analyze")
    return counts


def bench_scale(stages: int, work: Path, repeats: int, admin: str) -> dict[str, object]:
    data = work / f"pg-data-{stages}" / "parquet"
    generate(data, stages)
    with pg.database(admin) as dsn:
        loaded = load_postgres(dsn, data)
        extract, files, transfer_pg, transfer_duckdb = [], [], [], []
        for i in range(repeats):
            run = work / f"pg-run-{stages}-{i}"
            shutil.rmtree(run, ignore_errors=True)
            run.mkdir(parents=True)
            extract.append(timed([ITRACK, "ingest", dsn, "--db", str(run / "pg.duckdb")]))
            files.append(timed([ITRACK, "ingest", str(data), "--db", str(run / "files.duckdb")]))
            transfer_pg.append(timed([sys.executable, "-c", TRANSFER_PG, dsn, str(run)]))
            transfer_duckdb.append(
                timed(
                    [
                        sys.executable,
                        "-c",
                        TRANSFER_DUCKDB,
                        str(data / "stages.parquet"),
                        str(run / "floor.duckdb"),
                    ]
                )
            )
        same = duckdb.connect(str(work / f"pg-run-{stages}-0" / "pg.raw.duckdb"), read_only=True)
        extracted = same.execute("select count(*) from interview_stages").fetchone()[0]
        same.close()
    result: dict[str, object] = {
        "stage_records": stages,
        "rows_in_postgres": loaded,
        "stages_extracted": extracted,
        "extract": med(extract),
        "ingest_parquet": med(files),
        "transfer_copy_stages": med(transfer_pg),
        "transfer_duckdb_read_parquet": med(transfer_duckdb),
    }
    result["extract_vs_ingest_parquet"] = (
        result["extract"]["seconds"] / result["ingest_parquet"]["seconds"]  # type: ignore[index]
    )
    result["copy_vs_read_parquet"] = (
        result["transfer_copy_stages"]["seconds"]  # type: ignore[index]
        / result["transfer_duckdb_read_parquet"]["seconds"]  # type: ignore[index]
    )
    return result


def table(results: dict[str, dict]) -> str:
    rows = [
        "| stage records | step | seconds | peak RSS MB | ratio |",
        "|---:|---|---:|---:|---:|",
    ]
    for scale, r in results.items():
        for step, ratio in (
            ("extract", f"{r['extract_vs_ingest_parquet']:.2f}x ingest parquet"),
            ("ingest_parquet", ""),
            ("transfer_copy_stages", f"{r['copy_vs_read_parquet']:.2f}x DuckDB read_parquet"),
            ("transfer_duckdb_read_parquet", ""),
        ):
            x = r[step]
            rows.append(
                f"| {scale} | {step.replace('_', ' ')} | {x['seconds']:.2f} | "
                f"{x['rss_mb']:.0f} | {ratio} |"
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
    with pg.server() as admin:
        for stages in SCALES[args.scale]:
            repeats = args.repeats if stages < 1_000_000 else max(1, args.repeats - 1)
            before = load()
            print(f"bench (PostgreSQL extract): {stages} stage records (load {before})", flush=True)
            results[str(stages)] = bench_scale(stages, args.work, repeats, admin)
            results[str(stages)].update(load_before=before, load_after=load())
    report = {"machine": machine(), "scale": args.scale, "results": results}
    (ROOT / "bench" / "pg_results.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n" + table(results))
    for stages, r in results.items():
        print(
            f"{stages}: load average (1 min/5 min) {r['load_before']} before,"
            f" {r['load_after']} after"
        )


if __name__ == "__main__":
    main()

"""`make bench`'s PostgreSQL part sets up its database with a bulk load of its own (COPY, the
triggers off: bench/pg_extract.py), outside the store's code paths; a schema change can break
it without any other test noticing (the change stamps' `_changed_at not null` did, and `make
bench` stopped). Here it loads a small generated set into a migrated database, and the extract
it measures reads every record back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

from bench.pg_extract import TABLES, generate, load_postgres
from ingest.store.duckdb.store import raw_store_path

ITRACK = str(Path(sys.executable).parent / "itrack")


def parquet_rows(folder: Path) -> dict[str, int]:
    con = duckdb.connect()
    return {
        table: con.execute(
            f"select count(*) from read_parquet('{folder / kind}.parquet')"
        ).fetchone()[0]
        for kind, table in TABLES.items()
    }


def test_the_bench_loads_every_generated_record_and_the_extract_reads_them_all(tmp_path, pg_fresh):
    data = tmp_path / "parquet"
    generate(data, 200)
    expected = parquet_rows(data)
    assert expected["interview_stages"] > 150  # about 2.13 stages per process

    assert load_postgres(pg_fresh, data) == expected

    db = tmp_path / "warehouse.duckdb"
    extract = subprocess.run(
        [ITRACK, "ingest", pg_fresh, "--db", str(db)], capture_output=True, text=True, timeout=300
    )
    assert extract.returncode == 0, extract.stderr
    assert "Traceback" not in extract.stderr
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    try:
        extracted = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in expected}
        (quarantined,) = con.execute("select count(*) from quarantine").fetchone()
    finally:
        con.close()
    assert extracted == expected
    assert quarantined == 0

"""Backups: a verified snapshot of the raw store, and recovery from a corrupted database."""

from __future__ import annotations

import json

import duckdb
import pytest
from typer.testing import CliRunner

from ingest.errors import UserError
from ingest.load import ingest_paths
from ingest.store.duckdb.backup import MANIFEST, backup, restore
from ingest.store.duckdb.store import raw_store_path
from itrack.cli.main import app
from itrack.generate import generate
from itrack.pipeline import run_build
from tests.conftest import assert_exit


def marts(db) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: sorted(map(repr, con.execute(f"select * exclude ({ex}) from {t}").fetchall()))
            for t, ex in (
                ("mart_feeder_conversion", "pipeline_depth"),
                ("mart_conversion_funnel", "funnel_row_id"),
                ("fct_interview_processes", "offer_details"),
            )
        }
    finally:
        con.close()


def test_manifest_counts_checksums_and_retention(tmp_path):
    generate(tmp_path / "in", 60, seed=4)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    snapshots = [backup(db, tmp_path / "bk", keep=2) for _ in range(3)]
    kept = sorted(p.name for p in (tmp_path / "bk").iterdir())
    assert kept == sorted(p.name for p in snapshots[1:])
    manifest = json.loads((snapshots[-1] / MANIFEST).read_text())
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    assert (
        manifest["row_counts"]["interview_stages"]
        == con.execute("select count(*) from interview_stages").fetchone()[0]
    )
    con.close()
    assert all(len(digest) == 64 for digest in manifest["files"].values())
    tampered = snapshots[-1] / "interview_stages.parquet"
    tampered.write_bytes(tampered.read_bytes()[:-10])
    with pytest.raises(UserError, match="does not match the manifest"):
        restore(snapshots[-1], tmp_path / "other.duckdb")


def test_corrupt_database_restored_and_rebuilt_gives_the_same_outputs(tmp_path):
    generate(tmp_path / "in", 300, seed=6)
    db = tmp_path / "warehouse.duckdb"
    quiet = {"write_html": False, "note": lambda _m: None}
    run_build([tmp_path / "in"], db=db, take_backup=False, **quiet)
    before, feeders = marts(db), json.loads((tmp_path / "feeders.json").read_text())
    snapshot = backup(db, tmp_path / "bk")
    raw = raw_store_path(db)
    data = bytearray(raw.read_bytes())
    data[4096:8192] = b"\xde\xad" * 2048  # corrupt the file's header blocks
    raw.write_bytes(bytes(data))
    broken = CliRunner().invoke(app, ["ingest", str(tmp_path / "in"), "--db", str(db)])
    assert_exit(broken, 2)
    restored = CliRunner().invoke(
        app, ["restore", str(tmp_path / "bk"), "--db", str(db), "--overwrite"]
    )
    assert restored.exit_code == 0, restored.output
    assert str(snapshot) in restored.output
    db.unlink()  # rebuild the warehouse from the restored raw store alone
    run_build([tmp_path / "in"], db=db, take_backup=False, **quiet)
    assert marts(db) == before
    after = json.loads((tmp_path / "feeders.json").read_text())
    assert {
        k: {m: v for m, v in e["metrics"].items() if m != "updated_at"}
        for k, e in after["feeders"].items()
    } == {
        k: {m: v for m, v in e["metrics"].items() if m != "updated_at"}
        for k, e in feeders["feeders"].items()
    }

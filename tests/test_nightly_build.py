"""What the nightly build runs and skips: models and data tests but no dbt unit tests (those run
in `make test`, tests/test_dbt_marts.py), and nothing at all on a rerun with nothing new (no
dbt, no publish, no rewritten feedback file or report), while any new record rebuilds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.errors import StoreBusyError
from itrack.generate import generate
from itrack.pipeline import build_lock, run_build
from tests.conftest import read

QUIET = {"take_backup": False, "note": lambda _m: None}


@pytest.fixture
def digest_scans(monkeypatch) -> list[str]:
    """Per call of the raw store's table digests, the tables scanned ("all": every table)."""
    import ingest.store.duckdb.backup as backup_module

    scans: list[str] = []
    table_digests = backup_module.table_digests

    def counted(con, tables=None):
        scans.append("all" if tables is None else ",".join(tables))
        return table_digests(con, tables)

    monkeypatch.setattr(backup_module, "table_digests", counted)
    return scans


def _stamps(paths) -> list[int]:
    return [p.stat().st_mtime_ns for p in paths]


def test_nightly_build_skips_unit_tests_and_a_noop_rerun_skips_everything(tmp_path):
    generate(tmp_path / "day1", 120, seed=4)
    db = tmp_path / "warehouse.duckdb"
    first = run_build([tmp_path / "day1"], db=db, **QUIET)
    nodes = first.dbt_nodes
    assert [n for n in nodes if n.startswith("unit_test.")] == []
    assert any(n.startswith("test.") for n in nodes)  # data tests do run
    assert any(n.startswith("model.") for n in nodes)
    assert "dbt build" in [s.name for s in first.steps]

    outputs = [db, tmp_path / "report.html", tmp_path / "feeders.json"]
    before = _stamps(outputs)
    again = run_build([tmp_path / "day1"], db=db, **QUIET)
    assert [(s.name, s.result) for s in again.steps if s.name != "ingest"] == [
        ("dbt build", "skipped: nothing changed since the last build")
    ]
    assert _stamps(outputs) == before  # nothing published, nothing rewritten

    generate(tmp_path / "day2", 130, seed=4)  # the same 120 processes and 10 new ones
    third = run_build([tmp_path / "day2"], db=db, **QUIET)
    assert third.ingest.total("inserted") > 0
    # incremental (same project): the seeds are in the warehouse already, models and every
    # data test run (those of the seeds too); the first build loaded the seeds
    assert sorted(n.split(".")[0] for n in third.dbt_nodes if not n.startswith("model.")) == [
        "test"
    ] * len([n for n in nodes if n.startswith("test.")])
    assert len([n for n in nodes if n.startswith("seed.")]) == 4
    assert [s.name for s in third.steps if s.name != "ingest"] == [
        "dbt build",
        "feedback",
        "publish",
        "report",
    ]
    assert _stamps(outputs[:1]) != before[:1]


# Runs `itrack` and reports, after its output, its exit code and which of DuckDB and the
# contract's models it imported.
_IMPORTS_PROBE = """
import sys
from itrack.cli.main import app
try:
    app()
except SystemExit as done:
    print("exit", done.code, "duckdb" in sys.modules, "ingest.contract" in sys.modules)
"""


def test_a_noop_rerun_imports_neither_duckdb_nor_the_contracts_models(tmp_path, shared_plans):
    """A no-op rerun decides from what the last check read of the raw store, noted with the
    file's stamp: it opens no store, and starts without importing DuckDB or the contract's
    models (a third of its time). Any write to the store, or a new input file, and it reads."""
    generate(tmp_path / "day1", 20, seed=6)
    db = tmp_path / "warehouse.duckdb"
    run_build([tmp_path / "day1"], db=db, **QUIET, plan_cache=shared_plans)
    run_build([tmp_path / "day1"], db=db, **QUIET)  # its check reads the raw store and notes it

    def rerun(*paths: Path) -> list[str]:
        args = [sys.executable, "-c", _IMPORTS_PROBE, "build", *map(str, paths)]
        done = subprocess.run(
            [*args, "--db", str(db), "--no-backup"], capture_output=True, text=True
        )
        assert done.stderr == ""
        return done.stdout.splitlines()

    out = rerun(tmp_path / "day1")
    assert [line.split(" ", 1)[1] for line in out[:2]] == [
        "ingest: skipped: every file is loaded already (same path, size and mtime) (0.0 s)",
        "dbt build: skipped: nothing changed since the last build (0.0 s)",
    ]
    assert out[-1] == "exit 0 False False"
    generate(tmp_path / "day2", 25, seed=6)  # five new processes: this one ingests and builds
    out = rerun(tmp_path / "day2")
    assert "dbt build: skipped" not in "\n".join(out)
    assert out[-1] == "exit 0 True True"


def test_the_input_kinds_are_listed_in_load_order():
    from ingest.contract import LOAD_ORDER
    from ingest.inputs import KINDS

    assert KINDS == LOAD_ORDER == ("candidates", "processes", "stages")


def test_a_noop_rerun_makes_no_backup_and_a_changed_raw_store_does(
    tmp_path, digest_scans, shared_plans
):
    """A backup before each build that can change the raw store: a rerun with nothing new
    backs up only a raw store that differs from the newest backup, and then nothing else. The
    raw store is scanned only when its file was written since the last scan."""
    import duckdb

    from ingest.store.duckdb.backup import latest, restore, table_digests

    scans = digest_scans
    generate(tmp_path / "day1", 40, seed=5)
    db = tmp_path / "warehouse.duckdb"
    raw = tmp_path / "warehouse.raw.duckdb"
    backups = tmp_path / "backups"
    quiet = {"write_html": False, "note": lambda _m: None}
    first = run_build([tmp_path / "day1"], db=db, **quiet, plan_cache=shared_plans)
    assert "backup" not in [s.name for s in first.steps]  # no raw store yet: nothing to back up
    assert not backups.exists()

    # the first build's ingest and feedback log wrote the raw store after any backup: the
    # rerun backs it up, and ingests, copies and rebuilds nothing
    second = run_build([tmp_path / "day1"], db=db, **quiet)
    taken = sorted(backups.iterdir())
    assert [(s.name, s.result) for s in second.steps] == [
        ("backup", str(taken[0])),
        ("ingest", "skipped: every file is loaded already (same path, size and mtime)"),
        ("dbt build", "skipped: nothing changed since the last build"),
    ]
    assert len(taken) == 1 and second.ingest is None

    stamp = raw.stat().st_mtime_ns
    scans.clear()
    third = run_build([tmp_path / "day1"], db=db, **quiet)
    assert scans == []  # the file is as the second build's scan found it
    assert [(s.name, s.result) for s in third.steps] == [
        ("backup", "skipped: the newest backup holds the raw store as it is"),
        ("ingest", "skipped: every file is loaded already (same path, size and mtime)"),
        ("dbt build", "skipped: nothing changed since the last build"),
    ]
    assert sorted(backups.iterdir()) == taken and raw.stat().st_mtime_ns == stamp
    # and the backup it did not take would have been the newest one: restored, it holds the
    # raw store exactly, table by table
    restore(latest(backups, db)[0], tmp_path / "restored" / "warehouse.duckdb")
    live = duckdb.connect(str(raw), read_only=True)
    back = duckdb.connect(str(tmp_path / "restored" / "warehouse.raw.duckdb"), read_only=True)
    try:
        assert table_digests(back) == table_digests(live)
        assert table_digests(live)["candidates"][0] > 0
    finally:
        live.close()
        back.close()

    # a change to the raw store (here by hand) is backed up before the build that reads it
    con = duckdb.connect(str(raw))
    con.execute(
        "update candidates set full_name = 'Changed By Hand' "
        "where id = (select min(id) from candidates)"
    )
    con.close()
    scans.clear()
    fourth = run_build([tmp_path / "day1"], db=db, **quiet)
    # written since: scanned (before deciding, by the backup, and the snapshot's source
    # tables for the next build's fingerprint)
    sources = ["candidates", "interview_processes", "interview_stages", "interview_status_history"]
    assert scans == ["all", "all", *sources]
    assert len(sorted(backups.iterdir())) == 2
    assert [(s.name, s.result if s.name == "ingest" else "") for s in fourth.steps] == [
        ("backup", ""),
        # every file loaded, no orphan waiting: no empty ingest run is recorded
        ("ingest", "skipped: every file is loaded already (same path, size and mtime)"),
        ("dbt build", ""),
        ("feedback", ""),
        ("publish", ""),
    ]
    assert fourth.backup in set(backups.iterdir()) - set(taken)
    assert fourth.ingest is None
    with duckdb.connect(str(db), read_only=True) as published:
        assert published.execute(
            "select count(*) from stg_itrack__candidates where full_name = 'Changed By Hand'"
        ).fetchone() == (1,)


def _seeds_and_free_blocks(db) -> tuple[dict[str, list[tuple]], int]:
    """The published warehouse's seed tables (schema, name -> sorted rows) and free blocks."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        seeds = {
            f"{schema}.{table}": sorted(con.execute(f'from "{schema}"."{table}"').fetchall())
            for schema, table in con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where schema_name <> 'main' order by all"
            ).fetchall()
        }
        free = con.execute("select free_blocks from pragma_database_size()").fetchone()[0]
        return seeds, free
    finally:
        con.close()


def test_a_build_on_a_published_warehouse_builds_a_new_file_with_its_seeds(tmp_path, monkeypatch):
    """A build with the project unchanged loads no seeds: its build file starts with the
    published warehouse's seed tables and nothing else (no copy of the whole file, whose
    replaced tables would stay behind as free blocks in the next published file). Its ingest
    inserted rows, so the raw store is not scanned a second time to find out whether it
    changed: one fingerprint, the one kept for the next build."""
    import itrack.pipeline as pipeline

    generate(tmp_path / "day1", 120, seed=4)
    db = tmp_path / "warehouse.duckdb"
    quiet = {**QUIET, "write_html": False}
    first = run_build([tmp_path / "day1"], db=db, **quiet)
    assert len([n for n in first.dbt_nodes if n.startswith("seed.")]) == 4
    seeds, _ = _seeds_and_free_blocks(db)
    assert sorted(seeds) == [
        "main_reference.canonical_stage_types",
        "main_reference.feedback_stop_words",
        "main_reference.interview_statuses",
        "main_reference.stage_types",
    ]
    assert seeds["main_reference.canonical_stage_types"] == [
        ("onsite", 3),
        ("phone_screen", 1),
        ("technical", 2),
    ]

    scans = []  # of the raw store or its snapshot, for the fingerprint

    def counted(*args, **kwargs):
        scans.append(args)
        return raw_digests(*args, **kwargs)

    raw_digests = pipeline._raw_digests
    monkeypatch.setattr(pipeline, "_raw_digests", counted)
    generate(tmp_path / "day2", 130, seed=4)  # the same 120 processes and 10 new ones
    second = run_build([tmp_path / "day2"], db=db, **quiet)
    assert second.ingest is not None and second.ingest.total("inserted") > 0
    assert [n for n in second.dbt_nodes if n.startswith("seed.")] == []
    assert len(scans) == 1
    after, free_blocks = _seeds_and_free_blocks(db)
    assert after == seeds
    # a copy of the first file would leave every rebuilt table's old blocks free (about as
    # many as it used); only the feedback-runs table, rebuilt after dbt, frees one
    assert free_blocks <= 1


def test_a_noop_rerun_reads_the_remembered_sources_not_the_yaml(tmp_path, shared_plans):
    """The dbt sources' table names come from the last build's note while the sources file
    keeps its size and mtime: a no-op rerun (a fresh process, as cron runs it) imports no YAML
    parser. A note for another stamp is not used, and is replaced."""
    import json
    import subprocess
    import sys

    from itrack.pipeline import _source_tables

    generate(tmp_path / "day1", 40, seed=4)
    db = tmp_path / "warehouse.duckdb"
    run_build([tmp_path / "day1"], db=db, **QUIET, plan_cache=shared_plans)
    note = tmp_path / ".build" / "warehouse.duckdb.sources"
    remembered = json.loads(note.read_text())
    tables = [
        "candidates",
        "feedback_runs",
        "interview_processes",
        "interview_stages",
        "interview_status_history",
    ]
    assert remembered["value"] == tables
    rerun = (
        "import sys; from pathlib import Path; from itrack.pipeline import run_build; "
        f"r = run_build([Path({str(tmp_path / 'day1')!r})], db=Path({str(db)!r}), "
        "take_backup=False, note=lambda m: None); "
        "print([s.result for s in r.steps if s.name == 'dbt build'], 'yaml' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", rerun], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout == "['skipped: nothing changed since the last build'] False\n"

    # the note is what is read while the stamp matches ...
    note.write_text(json.dumps({"stamp": remembered["stamp"], "value": ["x"]}))
    assert _source_tables(db) == ["x"]
    # ... and a note of another stamp is parsed again from the file and replaced
    note.write_text(json.dumps({"stamp": [0, 0], "value": ["x"]}))
    assert _source_tables(db) == tables
    assert json.loads(note.read_text()) == remembered


def test_a_build_of_loaded_files_records_no_empty_ingest_run(tmp_path, digest_scans, shared_plans):
    """The published warehouse gone (a rebuild from scratch), every file loaded already and no
    orphan waiting: the ingest is skipped, as on a no-op rerun, instead of recording a run that
    reads nothing; the warehouse is built again from the raw store, the same rows, and the raw
    store's sources are scanned once (for the next build's fingerprint)."""
    scans = digest_scans
    generate(tmp_path / "day1", 40, seed=4)
    db = tmp_path / "warehouse.duckdb"
    raw = tmp_path / "warehouse.raw.duckdb"
    quiet = {**QUIET, "write_html": False}
    run_build([tmp_path / "day1"], db=db, **quiet, plan_cache=shared_plans)
    [(processes,)] = read(db, "select count(*) from fct_interview_processes")
    assert processes == 40
    [(runs,)] = read(raw, "select count(*) from ingest_runs")
    for stale in [db, *tmp_path.glob(".build/*.fingerprint")]:
        stale.unlink()

    scans.clear()
    again = run_build([tmp_path / "day1"], db=db, **quiet)
    sources = ["candidates", "interview_processes", "interview_stages", "interview_status_history"]
    assert scans == sources  # once: for the next build's fingerprint
    assert [(s.name, s.result if s.name == "ingest" else "") for s in again.steps] == [
        ("ingest", "skipped: every file is loaded already (same path, size and mtime)"),
        ("dbt build", ""),
        ("feedback", ""),
        ("publish", ""),
    ]
    assert again.ingest is None
    assert read(raw, "select count(*) from ingest_runs") == [(runs,)]
    assert read(db, "select count(*) from fct_interview_processes") == [(processes,)]


def test_an_orphan_waiting_for_its_process_is_retried_by_a_build_of_loaded_files(
    tmp_path, shared_plans
):
    """A stage whose process was not loaded waits in quarantine; once its process is in the raw
    store (here written there directly, as the interview service writes), a build of the same,
    already loaded files runs the ingest again: it retries the orphan, which loads."""
    import json

    generate(tmp_path / "day1", 40, seed=4)
    processes_file = tmp_path / "day1" / "processes.jsonl"
    lines = processes_file.read_text().splitlines(keepends=True)
    held_back = json.loads(lines[-1])["id"]  # its stages become orphans
    processes_file.write_text("".join(lines[:-1]))
    stages = [
        json.loads(line)
        for line in (tmp_path / "day1" / "stages.jsonl").read_text().splitlines()
        if json.loads(line)["interview_process_id"] == held_back
    ]
    assert stages  # the generated process has stages
    db = tmp_path / "warehouse.duckdb"
    raw = tmp_path / "warehouse.raw.duckdb"
    quiet = {**QUIET, "write_html": False}
    run_build([tmp_path / "day1"], db=db, **quiet, plan_cache=shared_plans)
    waiting = "select count(*) from quarantine where retryable and resolved_run_id is null"
    assert read(raw, waiting) == [(len(stages),)]

    import duckdb

    with duckdb.connect(str(raw)) as con:  # the process arrives without a file
        con.execute(
            "insert into interview_processes select ?::uuid as id, * exclude (id) "
            "from interview_processes limit 1",
            [held_back],
        )
    again = run_build([tmp_path / "day1"], db=db, **quiet)
    # the orphans load as retries: they count for no file (each file was read before)
    assert again.ingest is not None and again.ingest.total("inserted") == 0
    assert (again.ingest.retried, again.ingest.retry_resolved) == (len(stages), len(stages))
    assert read(raw, waiting) == [(0,)]
    assert read(
        raw, "select count(*) from interview_stages where interview_process_id = ?", [held_back]
    ) == [(len(stages),)]

    third = run_build([tmp_path / "day1"], db=db, **quiet)  # nothing waits any more
    assert [(s.name, s.result) for s in third.steps if s.name == "ingest"] == [
        ("ingest", "skipped: every file is loaded already (same path, size and mtime)")
    ]


def test_every_spelling_of_one_location_is_one_location(tmp_path, shared_plans):
    """A rerun through a symlinked folder or a `..` spelling of the same warehouse finds what
    the last build noted (its fingerprint was keyed by the path's spelling: each rebuilt and
    republished), and a build through one spelling holds the lock of every other."""
    generate(tmp_path / "day1", 20, seed=6)
    real = tmp_path / "w"
    db = real / "warehouse.duckdb"
    run_build([tmp_path / "day1"], db=db, **QUIET, plan_cache=shared_plans)
    (tmp_path / "link").symlink_to("w")
    names = ["warehouse.duckdb", "report.html", "feeders.json", "candidate_placements.json"]
    before = _stamps(real / name for name in names)
    for spelling in (
        tmp_path / "link" / "warehouse.duckdb",
        real / ".." / "w" / "warehouse.duckdb",
        tmp_path / "link" / ".." / "link" / "warehouse.duckdb",
    ):
        again = run_build(None, db=spelling, **QUIET)
        assert [(s.name, s.result) for s in again.steps] == [
            ("dbt build", "skipped: nothing changed since the last build")
        ]
        assert again.warehouse == db
    assert _stamps(real / name for name in names) == before  # nothing published or rewritten
    with build_lock(db), pytest.raises(StoreBusyError) as busy:
        run_build(None, db=tmp_path / "link" / "warehouse.duckdb", **QUIET)
    assert str(busy.value) == (
        f"build is busy (held by PID {os.getpid()}): {real}/.build/warehouse.build; "
        "retry later or pass --wait SECONDS"
    )

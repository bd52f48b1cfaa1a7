"""Hostile names through every filter: they are parameters, never SQL, never a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ingest.load import ingest_paths
from itrack.cli.main import app
from itrack.settings import get_settings
from tests.conftest import assert_exit, query, read
from tests.factories import candidate, process, stage, write_jsonl

HOSTILE = [
    "'); drop table interview_processes; --",
    '=HYPERLINK("http://x","y")',
    "Robert'); DELETE FROM candidates;--",
    "%' or '1'='1",
    "名前\u202e",
    'a\\b"c',
]
runner = CliRunner()
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


@pytest.fixture
def loaded(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    write_jsonl(folder / "processes.jsonl", [process()])
    write_jsonl(folder / "stages.jsonl", [stage()])
    ingest_paths([folder], db=db)
    return db


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_filters_are_just_values(loaded, name):
    db = str(loaded)
    for args, code in (
        (["interview", "list", "--company", name], 0),  # no such company: an empty list
        (["interview", "list", "--candidate", name], 0),
        (["interview", "history", name], 1),  # candidate not found
        (["rejects", "--run", name], 1),  # no such run
        (["interview", "list", "--status", name], 1),  # not a status
        (["interview", "show", name], 1),  # not an id: not found
    ):
        result = runner.invoke(app, [*args, "--db", db])
        assert result.exit_code == code, (args, result.output)
        assert isinstance(result.exception, SystemExit) or result.exception is None, args
    assert query(loaded, "select count(*) from interview_processes") == [(1,)]
    assert query(loaded, "select count(*) from candidates") == [(1,)]


# (folder, file name) of a warehouse location, and the characters it is refused for: dbt-duckdb
# cuts the path at `#` and `?`, DuckDB at `?` and `\`, dbt renders `{{`, `{%`, `{#` as Jinja, and
# the file name is a catalog name that `;`, `'` and `"` break (itrack/settings.py)
MISREAD = [
    ("p#x", "warehouse.duckdb", "`#`"),
    ("p-q?x=1", "warehouse.duckdb", "`?`"),
    ("a\\b", "warehouse.duckdb", "`\\`"),
    ("a{{b", "warehouse.duckdb", "`{{`"),
    ("a{%b{#c", "warehouse.duckdb", "`#` `{#` `{%`"),
    ("ok", "w;h.duckdb", "`;`"),
    ("ok", "w'h.duckdb", "`'`"),
    ("ok", 'w"h#.duckdb', '`"` `#`'),
]
# every command that takes --db, each of which would write (or serve) there
WRITERS = [
    ["build", str(SAMPLE)],
    ["ingest", str(SAMPLE)],
    ["interview", "create", "--candidate", "c-1", "--company", "Acme", "--role", "SWE"],
    ["serve", "--no-auth"],
]


@pytest.mark.parametrize(("folder", "name", "shown"), MISREAD)
def test_a_location_dbt_or_duckdb_would_misread_is_refused_before_anything_is_written(
    tmp_path, folder, name, shown
):
    db = tmp_path / folder / name
    for args in WRITERS:
        result = runner.invoke(app, [*args, "--db", str(db)])
        assert_exit(result, 2)
        assert result.output == (
            f"error: --db: {db} holds {shown}, which dbt and DuckDB misread in a warehouse "
            "location; choose another folder or file name\n"
        ), args
    assert list(tmp_path.iterdir()) == []  # no folder, raw store, lock or backup


def test_itrack_db_and_a_working_folder_that_would_be_misread_are_refused(tmp_path, monkeypatch):
    get_settings.cache_clear()
    monkeypatch.setenv("ITRACK_DB", str(tmp_path / "a#b" / "warehouse.duckdb"))
    result = runner.invoke(app, ["ingest", str(SAMPLE)])
    assert_exit(result, 2)
    assert result.output.startswith(f"error: ITRACK_DB: {tmp_path}/a#b/warehouse.duckdb holds `#`")
    monkeypatch.delenv("ITRACK_DB")
    get_settings.cache_clear()
    (tmp_path / "c?d").mkdir()
    monkeypatch.chdir(tmp_path / "c?d")  # the default data/warehouse.duckdb is made absolute
    result = runner.invoke(app, ["interview", "list"])
    assert_exit(result, 2)
    assert result.output.startswith(
        f"error: the default warehouse: {tmp_path}/c?d/data/warehouse.duckdb holds `?`"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["c?d"]
    get_settings.cache_clear()


P1 = "11111111-0000-4000-8000-000000000001"
S1 = "51515151-0000-4000-8000-000000000001"
# Every command that takes --db, with the arguments that take it as far as the warehouse
# location (the test below checks this list against the commands themselves).
DB_COMMANDS = {
    "ingest": [str(SAMPLE)],
    "rejects": [],
    "build": [],
    "backup": [],
    "restore": [],  # its backup folder: added by the test
    "export": ["--anonymize", "--out", "{tmp}/out"],
    "docs": [],
    "sql": ["-c", "select 1"],
    "serve": ["--no-auth"],
    "interview create": ["--candidate", "c-1", "--company", "Acme", "--role", "SWE"],
    "interview add-stage": [P1, "--name", "phone_screen", "--order", "1"],
    "interview outcome": [S1, "passed"],
    "interview amend": [S1, "passed", "--reason", "typo"],
    "interview reopen": [P1, "--reason", "typo"],
    "interview audit": [P1],
    "interview complete": [P1, "withdrawn"],
    "interview show": [P1],
    "interview list": [],
    "interview history": ["c-1"],
    "feedback report": ["referral"],
    "report funnel": [],
    "report company": ["Acme"],
    "report stage": ["onsite"],
    "report feeder": ["referral"],
    "report html": [],
    "db upgrade": [],
    "db status": [],
}


def _commands_taking_db(command: Any = None, prefix: str = "") -> set[str]:
    command = command or typer.main.get_command(app)
    if hasattr(command, "commands"):
        return {
            name
            for key, sub in command.commands.items()
            for name in _commands_taking_db(sub, f"{prefix} {key}".strip())
        }
    return {prefix} if any("--db" in p.opts for p in command.params) else set()


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_every_command_refuses_a_folder_a_raw_store_or_a_store_file_as_its_warehouse(tmp_path):
    """Found by an exploratory run: `--db data/` and `--db data/warehouse.raw.duckdb` were taken
    as warehouses (writers made `data.raw.duckdb`, `warehouse.raw.raw.duckdb` beside them).
    Each such location is refused by every command, one line naming it and why, exit 2, on
    real files (a raw store, its lock, a backup), and nothing is written or touched."""
    assert set(DB_COMMANDS) == _commands_taking_db()
    data = tmp_path / "data"
    for args in (["db", "upgrade", "--create"], ["backup"]):
        assert_exit(runner.invoke(app, [*args, "--db", str(data / "warehouse.duckdb")]), 0)
    (backup,) = (data / "backups").iterdir()
    raw = data / "warehouse.raw.duckdb"
    for side in (data / "warehouse.duckdb.wal", data / "warehouse.raw.duckdb.restoring"):
        side.write_bytes(b"")
    refused = {
        data: f"is a folder, not a warehouse file; give a file such as {data}/warehouse.duckdb",
        backup: f"is a backup folder, not a warehouse; restore it with `itrack restore {backup}`",
        raw: f"is a raw store, not a warehouse; give its warehouse ({data}/warehouse.duckdb)",
        data / "warehouse.raw.duckdb.lock": "is a lock file, not a warehouse; "
        "give the warehouse file",
        data / "warehouse.duckdb.wal": "is a DuckDB write-ahead log, not a warehouse; "
        "give the warehouse file",
        data / "warehouse.raw.duckdb.restoring": "is the staging file of a restore, "
        "not a warehouse; give the warehouse file",
    }
    before = _tree(tmp_path)
    for name, args in DB_COMMANDS.items():
        args = [a.format(tmp=tmp_path) for a in args] + ([str(backup)] if name == "restore" else [])
        for db, why in refused.items():
            result = runner.invoke(app, [*name.split(), *args, "--db", str(db)])
            assert_exit(result, 2)
            assert result.output == f"error: --db: {db} {why}\n", (name, db)
    assert _tree(tmp_path) == before


def test_itrack_db_naming_a_folder_or_a_raw_store_is_refused(tmp_path, monkeypatch):
    for db, why in (
        (
            tmp_path,
            f"is a folder, not a warehouse file; give a file such as {tmp_path}/warehouse.duckdb",
        ),
        (
            tmp_path / "w.raw.duckdb",
            f"is a raw store, not a warehouse; give its warehouse ({tmp_path}/w.duckdb)",
        ),
    ):
        monkeypatch.setenv("ITRACK_DB", str(db))
        get_settings.cache_clear()
        result = runner.invoke(app, ["ingest", str(SAMPLE)])
        assert_exit(result, 2)
        assert result.output == f"error: ITRACK_DB: {db} {why}\n"
    get_settings.cache_clear()
    assert list(tmp_path.iterdir()) == []


def test_spaces_percent_quotes_and_letters_in_a_folder_build(tmp_path):
    """What dbt and DuckDB read right is not refused: a real dbt run (no shared plan: a replay
    would not pass the paths through dbt) builds and publishes there."""
    db = tmp_path / "a %20'é\"; b" / "w h.x.duckdb"
    result = runner.invoke(app, ["build", str(SAMPLE), "--db", str(db), "--no-backup"])
    assert_exit(result, 0)
    assert read(db, "select count(*) > 0 from mart_feeder_conversion") == [(True,)]
    assert (db.parent / "feeders.json").exists()

"""Hostile names through every filter: they are parameters, never SQL, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def test_spaces_percent_quotes_and_letters_in_a_folder_build(tmp_path):
    """What dbt and DuckDB read right is not refused: a real dbt run (no shared plan: a replay
    would not pass the paths through dbt) builds and publishes there."""
    db = tmp_path / "a %20'é\"; b" / "w h.x.duckdb"
    result = runner.invoke(app, ["build", str(SAMPLE), "--db", str(db), "--no-backup"])
    assert_exit(result, 0)
    assert read(db, "select count(*) > 0 from mart_feeder_conversion") == [(True,)]
    assert (db.parent / "feeders.json").exists()

"""Hostile names through every filter: they are parameters, never SQL, never a crash."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ingest.load import ingest_paths
from itrack.cli.main import app
from tests.conftest import query
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

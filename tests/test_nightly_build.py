"""What the nightly build runs and skips: models and data tests but no dbt unit tests (those run
in `make test`, tests/test_dbt_marts.py), and nothing at all on a rerun with nothing new (no
dbt, no publish, no rewritten feedback file or report), while any new record rebuilds."""

from __future__ import annotations

from itrack.generate import generate
from itrack.pipeline import run_build

QUIET = {"take_backup": False, "note": lambda _m: None}


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

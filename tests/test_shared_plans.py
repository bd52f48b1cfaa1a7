"""dbt plans shared between warehouse locations (`ITRACK_PLAN_CACHE`, itrack/dbt_plan.py): the
first build of a location replays the plan a build of the same project recorded elsewhere,
and builds what that build built; a plan of another key (project, versions, catalog) is not
taken; a damaged or unwritable folder only means dbt runs; the folder keeps the newest plans."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.store.duckdb.store import raw_store_path
from itrack import dbt_plan
from itrack.cli.main import app
from itrack.pipeline import project_state, run_build
from itrack.settings import get_settings
from tests.conftest import assert_exit
from tests.dbt_helpers import catalog

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
QUIET = {"take_backup": False, "write_html": False, "note": lambda _m: None}
SEEDS = ["canonical_stage_types", "feedback_stop_words", "interview_statuses", "stage_types"]
RAN = "ok: ran dbt (4 seeds, 20 models, 23 data tests)"
REPLAYED = "ok: replayed dbt's compiled plan (20 models, 23 data tests)"
# the two models computed from the build time (macro as_of()): the rest is the same on any day
TIMED = {"main.fct_process_status_history", "main.mart_data_quality"}
# what a build carries over from the ingest run that loaded a row, not computed by the models
RUN_COLUMNS = frozenset({"run_id", "loaded_at", "recorded_at"})


@pytest.fixture
def plan_cache(monkeypatch, tmp_path) -> Path:
    """`ITRACK_PLAN_CACHE` for the commands of the test (the settings read again, before and
    after)."""
    cache = tmp_path / "plans"
    monkeypatch.setenv("ITRACK_PLAN_CACHE", str(cache))
    get_settings.cache_clear()
    yield cache
    get_settings.cache_clear()


def build(db: Path) -> str:
    """`itrack build data/sample --db DB --no-backup --no-html`: its dbt step line."""
    result = CliRunner().invoke(
        app, ["build", str(SAMPLE), "--db", str(db), "--no-backup", "--no-html"]
    )
    assert_exit(result, 0)
    [line] = [x for x in result.stdout.splitlines() if x.startswith("dbt build ")]
    return line.split(None, 3)[3]


def test_a_new_location_replays_the_plan_a_build_elsewhere_recorded(plan_cache, tmp_path):
    first, second = tmp_path / "a" / "warehouse.duckdb", tmp_path / "b" / "warehouse.duckdb"
    assert build(first) == RAN
    key = dbt_plan.plan_key(project_state(), "warehouse")
    assert sorted(p.name for p in plan_cache.iterdir()) == [
        f"{key}.plan.json",
        f"{key}.seeds.duckdb",
    ]
    assert build(second) == REPLAYED
    # the second location holds the first one's plan and seeds, and builds the same warehouse
    recorded, adopted = raw_store_path(first), raw_store_path(second)
    plan_bytes = dbt_plan.plan_path(adopted).read_bytes()
    assert plan_bytes == dbt_plan.plan_path(recorded).read_bytes()
    seeds = catalog(dbt_plan.seeds_path(adopted))
    assert seeds == catalog(dbt_plan.seeds_path(recorded))
    assert sorted(seeds) == ["constraints", *(f"main_reference.{t}" for t in SEEDS)]
    by_dbt, by_replay = catalog(first, RUN_COLUMNS), catalog(second, RUN_COLUMNS)
    assert len(by_dbt) == 25  # 20 models, 4 seed tables and the constraints
    own = TIMED | {"main.stg_itrack__feedback_runs"}  # and each location's feedback log
    assert {n: r for n, r in by_replay.items() if n not in own} == {
        n: r for n, r in by_dbt.items() if n not in own
    }
    # a damaged shared seed file: the next new location runs dbt, which shares the plan again
    shared_seeds = plan_cache / f"{key}.seeds.duckdb"
    shared_seeds.write_bytes(b"not a database")
    assert build(tmp_path / "c" / "warehouse.duckdb") == RAN
    assert catalog(shared_seeds) == seeds
    assert build(tmp_path / "d" / "warehouse.duckdb") == REPLAYED


def test_a_damaged_shared_plan_is_not_taken(tmp_path):
    cache, location = tmp_path / "plans", raw_store_path(tmp_path / "warehouse.duckdb")
    cache.mkdir()
    (cache / "k.plan.json").write_text("{", encoding="utf-8")
    (cache / "k.seeds.duckdb").write_bytes(b"")
    assert dbt_plan.adopt(cache, "k", location)  # both files are there: copied ...
    assert dbt_plan.load(location, "k") is None  # ... but not a plan: dbt runs
    assert not dbt_plan.adopt(cache, "other", location)


def test_a_folder_this_user_may_only_read_is_still_used(tmp_path, monkeypatch):
    location = raw_store_path(tmp_path / "warehouse.duckdb")
    cache = tmp_path / "plans"
    cache.mkdir()
    (cache / "k.plan.json").write_text('{"key": "k", "nodes": []}', encoding="utf-8")
    (cache / "k.seeds.duckdb").write_bytes(b"seeds")

    def refused(path, *args, **kwargs):  # what a read-only folder answers (the tests run as root)
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(dbt_plan.os, "utime", refused)
    assert dbt_plan.adopt(cache, "k", location)
    assert dbt_plan.load(location, "k") == dbt_plan.Plan("k", [])
    assert dbt_plan.seeds_path(location).read_bytes() == b"seeds"


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path):
    not_a_folder = tmp_path / "plans"
    not_a_folder.write_text("a file where the folder should be")
    db = tmp_path / "a" / "warehouse.duckdb"
    notes: list[str] = []
    result = run_build([SAMPLE], db=db, plan_cache=not_a_folder, **{**QUIET, "note": notes.append})
    assert [s.result for s in result.steps if s.name == "dbt build"] == [RAN]
    assert f"dbt plan not shared: cannot write {not_a_folder} (File exists)" in notes
    assert dbt_plan.plan_path(raw_store_path(db)).exists()  # the location's own plan
    assert not_a_folder.read_text() == "a file where the folder should be"


def test_the_cache_keeps_the_newest_plans(tmp_path):
    location = raw_store_path(tmp_path / "warehouse.duckdb")
    dbt_plan.plan_path(location).parent.mkdir(parents=True)
    dbt_plan.plan_path(location).write_text('{"key": "x", "nodes": []}', encoding="utf-8")
    dbt_plan.seeds_path(location).write_bytes(b"seeds")
    cache = tmp_path / "plans"
    for n in range(dbt_plan.SHARED_PLANS_KEPT + 2):
        dbt_plan.share(location, f"k{n}", cache)
        os.utime(cache / f"k{n}.plan.json", (1_000_000 + n, 1_000_000 + n))  # k0 oldest
    kept = [f"k{n}" for n in range(2, dbt_plan.SHARED_PLANS_KEPT + 2)]
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [f"{k}.plan.json" for k in kept] + [f"{k}.seeds.duckdb" for k in kept]
    )
    assert dbt_plan.adopt(cache, "k2", location)  # a plan taken counts as used: kept longest
    dbt_plan.share(location, "k99", cache)
    assert (cache / "k2.plan.json").exists() and not (cache / "k3.plan.json").exists()

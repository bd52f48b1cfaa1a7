"""The marts and feeders.json against a plain-Python reference (tests/reference_model.py) on
messy generated data.

Hypothesis draws the messiness real exports have: every stage-name spelling (canonical names
included, `_`/`-`, odd case and Unicode spaces), retakes, no-shows, cancellations, pending
stages, offers without stages, on-hold loops, timestamps near midnight, ties, company/feeder/
interviewer name variants, histories of several runs (a process arriving decided, changes at
the same instant or dated backwards, created_at corrected past the decision or in the future).

A dbt invocation costs seconds whatever the data size, so the examples do not run dbt: the
project is compiled once per module (`CompiledProject`, tests/dbt_helpers.py) and each example
runs the compiled SQL of every model, in DAG order, on its own warehouse file. Three kinds:
- raw-store rows drawn directly (`raw_states`): one compiled build per example, the many;
- JSONL exports through `ingest` (`exports`: zone offsets, several runs with updates, stale
  copies and feeder changes), then the compiled build and a whole feedback run: a few;
- one example built by a real `dbt build` (seeds, models, data tests) as well, every model
  compared with the compiled build's: the shortcut cannot drift from what dbt runs.
`make test` runs a bounded number of each (settings FAST); `make test-all` (marker `slow`) many
more (SLOW).

Floats are compared exactly (==, no tolerance). The choice: bit-identical doubles, not a
rounding. Every float in the marts is defined so that its double does not depend on the order
the engine adds rows in: a ratio is one division of two counts; an elapsed day figure, a mean or
a median of them is exact integer microseconds divided once; a standard deviation is the square
root of one division of exact integer sums; `avg_rating_vs_stage_type` adds per-type terms in a
documented fixed order; the Wilson bounds and the smoothed rate are one documented formula of
those. IEEE division and square root are correctly rounded in Python and in the engine, so the
reference (tests/reference_model.py), computing the same documented definitions from the raw
rows, gets the same doubles; feeders.json rounds those with the same `round(x, 6)` on both sides.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from feedback.feeders import dumps, metrics_from_marts
from ingest.load import ingest_paths
from ingest.store.duckdb.store import raw_store_path
from itrack.dbt_runner import PROJECT_DIR
from tests.dbt_helpers import CompiledProject, compile_project, run_feedback_into
from tests.reference_model import Params, Reference

AS_OF = dt.datetime(2026, 1, 1, 12, 0)
VARS = {"as_of": AS_OF.strftime("%Y-%m-%d %H:%M:%S"), "preferred_feeder_min_processes": 2}
BASE = dt.datetime(2025, 3, 1, 23, 0)  # near midnight: day boundaries are crossed often

# each name also composed and decomposed (NFC, NFD): one key
COMPANIES = [
    "Stripe",
    "stripe",
    "Stripe ",
    "  STRIPE",
    "Acme\u00a0Corp",
    "Acme Corp",
    "acme  corp",
    "Caf\u00e9",
    "CAFE\u0301",
]
FEEDERS = [
    None,
    "referral",
    "Referral",
    "referral ",
    "LinkedIn",
    "linkedin",
    "ex-google",
    "Jos\u00e9",
    "jose\u0301",
]
STAGE_NAMES = [
    "Phone Screen",
    "phone_screen",
    "Phone-Screen",
    "PHONE  SCREEN",
    "Phone\u00a0Screen ",
    "technical",
    "Technical_Interview",
    "Coding",
    "Final-Round",
    "onsite",
    "Onsite\u3000Interview",
    "Take-home",
    "take home",
    "Take_Home",
]
INTERVIEWERS = ["Dana", "dana", "Dana ", "Lee", "LEE", "Zo\u00eb", "zoe\u0308"]
NOTES = [
    None,
    "Strong Node.js skills; weak SQL.",
    "Scored 2.5 on algorithms. Good communication.",
    "poor culture fit",
    "Great system design.\nClear answers",
    "Weak SQL; weak SQL.",
    "Failed phone_screen.",
]
OUTCOMES_TEXT = [
    None,
    "Failed technical interview",
    "failed  Technical interview.",
    " . ; ",
    "Weak Node.js",
    # reasons naming a stage as auto-close writes them, and composed / decomposed
    "Failed phone_screen",
    "Failed Phone Screen",
    "failed phone-screen; Poor re\u0301sume\u0301",
    "Poor r\u00e9sum\u00e9",
    "-",
]
OFFER = {"base_salary": 100000, "currency": "EUR"}


def _ts(value: dt.datetime, offset_hours: int) -> str:
    """The instant `value` (naive UTC) written with a zone offset."""
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    return value.replace(tzinfo=dt.UTC).astimezone(zone).isoformat()


# ---- drawing a messy history of exports ------------------------------------------------------

STATUS_PATHS = [  # a process's statuses over successive exports (each reachable from the last)
    ["in_progress"],
    ["in_progress", "on_hold", "in_progress"],
    ["in_progress", "offer_extended"],
    ["offer_extended", "offer_accepted"],
    ["in_progress", "offer_extended", "offer_declined"],
    ["in_progress", "rejected_by_company"],
    ["rejected_by_company"],
    ["on_hold", "candidate_withdrew"],
    ["offer_extended", "candidate_withdrew"],
    ["offer_accepted"],
]


def draw_stages(draw: Any, n: int, pid: str, start: dt.datetime) -> list[dict[str, Any]]:
    """Process `n`'s stages after `start` (naive UTC): none to four, with retakes, no-shows,
    cancellations, pending ones, every name spelling, notes, ratings and interviewer lists."""
    stages = []
    clock = start
    for order in range(1, draw(st.integers(0, 4)) + 1):
        scheduled = clock + dt.timedelta(hours=draw(st.integers(0, 40)))
        outcome = draw(st.sampled_from(["passed", "failed", "pending", "cancelled", "no_show"]))
        completed = (
            scheduled + dt.timedelta(minutes=draw(st.integers(0, 4000)))
            if outcome in ("passed", "failed") or draw(st.booleans())
            else None
        )
        stages.append(
            {
                "id": str(uuid.UUID(int=(n + 1) * 1000 + order, version=4)),
                "interview_process_id": pid,
                "stage_name": draw(st.sampled_from(STAGE_NAMES)),
                "stage_order": order,
                "scheduled_date": scheduled,
                "completed_date": completed,
                "outcome": outcome,
                **{
                    f"{r}_rating": draw(st.one_of(st.none(), st.integers(1, 5)))
                    for r in ("overall", "technical", "culture_fit", "communication")
                },
                "feedback_notes": draw(st.sampled_from(NOTES)),
                "interviewer_names": draw(st.lists(st.sampled_from(INTERVIEWERS), max_size=3)),
            }
        )
        clock = completed or scheduled
    return stages


@st.composite
def exports(draw: Any, max_processes: int = 8, max_batches: int = 3) -> list[dict[str, list]]:
    """Batches of records (candidates, processes, stages), as successive nightly exports."""
    n_batches = draw(st.integers(1, max_batches))
    batches: list[dict[str, list]] = [
        {"candidates": [], "processes": [], "stages": []} for _ in range(n_batches)
    ]
    n_candidates = draw(st.integers(1, 4))
    for c in range(n_candidates):
        record = {
            "id": f"c{c}",
            "full_name": f"Candidate {c}",
            "feeder_source": draw(st.sampled_from(FEEDERS)),
            "created_at": _ts(BASE - dt.timedelta(days=30), 0),
        }
        batches[0]["candidates"].append(record)
        if n_batches > 1 and draw(st.booleans()):  # the candidate's feeder changes later
            later = dict(record, feeder_source=draw(st.sampled_from(FEEDERS)))
            later["updated_at"] = _ts(BASE - dt.timedelta(days=1), 0)
            batches[draw(st.integers(1, n_batches - 1))]["candidates"].append(later)
    for n in range(draw(st.integers(1, max_processes))):
        pid = str(uuid.UUID(int=n + 1, version=4))
        created = BASE + dt.timedelta(minutes=draw(st.integers(0, 60 * 24 * 20)))
        path = draw(st.sampled_from(STATUS_PATHS))
        first = draw(st.integers(0, n_batches - 1))
        process = {
            "id": pid,
            "candidate_id": f"c{draw(st.integers(0, n_candidates - 1))}",
            "company_name": draw(st.sampled_from(COMPANIES)),
            "role_title": "Engineer",
            "feeder_source": draw(st.sampled_from(FEEDERS)),
            "final_outcome": draw(st.sampled_from(OUTCOMES_TEXT)),
            "created_at": _ts(created, draw(st.sampled_from([0, 2, -5]))),
        }
        stamp = created + dt.timedelta(hours=draw(st.integers(0, 30)))  # 0: ties at creation
        versions = []
        for status in path:
            version = dict(process, status=status, updated_at=_ts(stamp, 0))
            if status in ("offer_extended", "offer_accepted", "offer_declined") or (
                status == "candidate_withdrew" and draw(st.booleans())
            ):
                if draw(st.integers(0, 4)) > 0:  # offers without details happen too
                    version["offer_details"] = OFFER
            versions.append(version)
            stamp += dt.timedelta(hours=draw(st.integers(1, 60)), minutes=draw(st.integers(0, 59)))
        # successive versions go to successive batches (from `first` on); the rest of the
        # path collapses into the last batch's snapshot
        for i, version in enumerate(versions):
            batch = min(first + i, n_batches - 1)
            batches[batch]["processes"].append(version)
        last = versions[-1]
        if first + len(versions) - 1 < n_batches - 1 and draw(st.booleans()):
            # a stale copy (older updated_at) in a later export, and maybe a feeder change
            batches[n_batches - 1]["processes"].append(versions[0])
        if n_batches > 1 and draw(st.booleans()):
            moved = dict(last, feeder_source=draw(st.sampled_from(FEEDERS)))
            moved["updated_at"] = _ts(stamp + dt.timedelta(hours=1), 0)
            if draw(st.integers(0, 5)) == 0:  # created_at corrected after the decision
                moved["created_at"] = _ts(stamp + dt.timedelta(hours=1), 0)
            batches[n_batches - 1]["processes"].append(moved)
            stamp += dt.timedelta(hours=1)
        for stage in draw_stages(draw, n, pid, created):
            record = {k: v for k, v in stage.items() if v is not None}
            record["scheduled_date"] = _ts(stage["scheduled_date"], draw(st.sampled_from([0, 1])))
            if stage["completed_date"] is not None:
                record["completed_date"] = _ts(stage["completed_date"], 0)
            record["created_at"] = _ts(created, 0)
            batches[min(first + draw(st.integers(0, 1)), n_batches - 1)]["stages"].append(record)
    return batches


RAW_COLUMNS = {  # the raw store's columns, in SCHEMA order, for direct inserts
    "candidates": "id full_name feeder_source current_company linkedin_url created_at updated_at"
    " _run_id _loaded_at",
    "interview_processes": "id candidate_id company_name role_title status feeder_source"
    " recruiter_name final_outcome offer_details created_at updated_at _run_id _loaded_at",
    "interview_stages": "id interview_process_id stage_name stage_order scheduled_date"
    " completed_date outcome overall_rating technical_rating culture_fit_rating"
    " communication_rating feedback_notes interviewer_names next_steps created_at updated_at"
    " _run_id _loaded_at",
    "interview_status_history": "interview_process_id from_status to_status changed_at run_id"
    " source recorded_at",
}


@st.composite
def raw_states(draw: Any, max_processes: int = 12) -> dict[str, list[dict]]:
    """Raw-store rows as ingest and the service API leave them after several runs, drawn
    directly (no ingest: an example costs one compiled build): the same messy names, stages and
    offers as `exports`, and a status history with what runs produce: a process arriving decided
    (`null -> in_progress` and `in_progress -> X`, maybe at the same instant), ties, changes
    recorded by later runs, a change dated before the previous one, `created_at` corrected
    forward past the decision or later than the build time."""
    runs = [(f"r{i}", AS_OF - dt.timedelta(days=10 - i)) for i in range(3)]
    state: dict[str, list[dict]] = {name: [] for name in RAW_COLUMNS}
    n_candidates = draw(st.integers(1, 4))
    for c in range(n_candidates):
        run, loaded = draw(st.sampled_from(runs))
        created = BASE - dt.timedelta(days=30)
        state["candidates"].append(
            {
                "id": f"c{c}",
                "full_name": f"Candidate {c}",
                "feeder_source": draw(st.sampled_from(FEEDERS)),
                "created_at": created,
                "updated_at": created,
                "_run_id": run,
                "_loaded_at": loaded,
            }
        )
    for n in range(draw(st.integers(1, max_processes))):
        pid = str(uuid.UUID(int=n + 1, version=4))
        created = BASE + dt.timedelta(minutes=draw(st.integers(0, 60 * 24 * 20)))
        path = draw(st.sampled_from(STATUS_PATHS))
        run, loaded = draw(st.sampled_from(runs))
        history = [(None, "in_progress", created)]
        stamp = created
        for status in path:
            if status == history[-1][1]:
                continue
            step = draw(st.integers(-2, 60))  # 0: a tie; below 0: dated before the previous
            stamp += dt.timedelta(hours=step, minutes=draw(st.integers(0, 59)) if step else 0)
            history.append((history[-1][1], status, stamp))
        for previous, status, changed in history:
            recorder, recorded = draw(st.sampled_from(runs))
            state["interview_status_history"].append(
                {
                    "interview_process_id": pid,
                    "from_status": previous,
                    "to_status": status,
                    "changed_at": changed,
                    "run_id": recorder,
                    "source": draw(st.sampled_from(["ingest", "api"])),
                    "recorded_at": recorded,
                }
            )
        fix = draw(st.integers(0, 9))
        if fix == 0:  # created_at corrected forward, past the decision
            created = max(stamp, created) + dt.timedelta(hours=1)
        elif fix == 1:  # later than the build time
            created = AS_OF + dt.timedelta(hours=draw(st.integers(1, 48)))
        status = path[-1]
        offer = status in ("offer_extended", "offer_accepted", "offer_declined") or (
            status == "candidate_withdrew" and draw(st.booleans())
        )
        state["interview_processes"].append(
            {
                "id": pid,
                "candidate_id": f"c{draw(st.integers(0, n_candidates - 1))}",
                "company_name": draw(st.sampled_from(COMPANIES)),
                "role_title": "Engineer",
                "status": status,
                "feeder_source": draw(st.sampled_from(FEEDERS)),
                "final_outcome": draw(st.sampled_from(OUTCOMES_TEXT)),
                "offer_details": json.dumps(OFFER) if offer and draw(st.integers(0, 4)) else None,
                "created_at": created,
                "updated_at": max(stamp, created),
                "_run_id": run,
                "_loaded_at": loaded,
            }
        )
        for stage in draw_stages(draw, n, pid, created):
            state["interview_stages"].append(
                stage
                | {
                    "next_steps": None,
                    "created_at": created,
                    "updated_at": created,
                    "_run_id": run,
                    "_loaded_at": loaded,
                }
            )
    return state


def insert_raw_state(con: duckdb.DuckDBPyConnection, state: dict[str, list[dict]]) -> None:
    """`state`'s rows into the raw tables of `con`'s catalog `raw_store`."""
    for table, columns in RAW_COLUMNS.items():
        names = columns.split()
        if state[table]:
            con.executemany(
                f"insert into raw_store.main.{table} ({', '.join(names)}) values "
                f"({', '.join('?' for _ in names)})",
                [[r.get(c) for c in names] for r in state[table]],
            )


def write_batch(folder: Path, batch: dict[str, list]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, records in batch.items():
        if records:
            lines = (json.dumps(r, ensure_ascii=False) for r in records)
            (folder / f"{kind}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


# ---- reading the raw store and the marts -----------------------------------------------------


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def reference_of(db: Path) -> Reference:
    with duckdb.connect(str(raw_store_path(db)), read_only=True) as raw:
        return reference_from(raw, "main")


def reference_from(con: duckdb.DuckDBPyConnection, raw: str) -> Reference:
    """The reference of the raw tables in schema `raw` of `con` (e.g. raw_store.main)."""
    return Reference(
        candidates=rows(con, f"select * from {raw}.candidates"),
        processes=rows(con, f"select * from {raw}.interview_processes"),
        stages=rows(con, f"select * from {raw}.interview_stages"),
        history=rows(con, f"select * from {raw}.interview_status_history"),
        params=Params.from_project(PROJECT_DIR, AS_OF, preferred_min=2),
    )


def same(actual: Any, expected: Any, where: Any) -> None:
    """Equal, floats to the bit: no tolerance (see `check_reference`)."""
    assert actual == expected, (where, actual, expected)


JSON_COLUMNS = {
    "top_rejection_reasons",
    "preferred_feeders",
    "rejection_reasons",
    "top_terms_passed",
    "top_terms_failed",
    "examples",
}


def compare(table: list[dict], expected: dict, key: Any) -> None:
    actual = {key(r): r for r in table}
    assert set(actual) == set(expected)
    for k, row in expected.items():
        for column, value in row.items():
            got = actual[k][column]
            if column in JSON_COLUMNS:
                got = json.loads(got)
            same(got, value, (k, column))


def assert_marts_equal_reference(db: Path, ref: Reference) -> None:
    with duckdb.connect(str(db), read_only=True) as con:
        marts_equal_reference(con, ref)


def marts_equal_reference(db: duckdb.DuckDBPyConnection, ref: Reference) -> None:
    facts = {
        pid: {
            c: d[c]
            for c in d
            if c
            not in (
                "id",
                "company_spelling",
                "feeder_spelling",
                "final_outcome",
                "us_to_decision",
                "us_to_hire",
            )
        }
        for pid, d in ref.p.items()
    }

    def by(*columns: str) -> Any:
        """A row's key, as the reference keys it: one value, or a tuple (ids as text)."""

        def key(r: dict) -> Any:
            values = tuple(str(r[c]) if c.endswith("_id") else r[c] for c in columns)
            return values if len(values) > 1 else values[0]

        return key

    marts = [  # (the mart's rows, the reference's rows, the mart's key)
        ("select * from fct_interview_processes", facts, by("interview_process_id")),
        (
            "select * from fct_process_status_history",
            ref.status_history(),
            by("interview_process_id", "status_sequence"),
        ),
        ("select * from mart_conversion_funnel", ref.funnel(), by("grain", "group_key")),
        ("select * from mart_feeder_conversion", ref.feeders(), by("feeder_source")),
        ("select * from mart_company_insights", ref.companies(), by("company_name")),
        ("select * from mart_stage_performance", ref.stage_performance(), by("grain", "group_key")),
        ("select * from mart_interviewer_calibration", ref.interviewers(), by("interviewer_name")),
        (
            "select check_name, affected, examples from mart_data_quality",
            ref.data_quality(),
            by("check_name"),
        ),
    ]
    for sql, expected, key in marts:
        compare(rows(db, sql), expected, key)


def feedback(db: Path, out: Path, full: bool, now: str) -> dict[str, Any]:
    run_feedback_into(db, out, now=now, full=full)
    return json.loads((out / "feeders.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: Any) -> CompiledProject:
    """The dbt project compiled once for the module (seeds loaded, SQL in DAG order)."""
    return compile_project(tmp_path_factory.mktemp("compiled"), VARS)


def scenario(
    tmp: Path, batches: list[dict[str, list]], project: CompiledProject, each: Any = None
) -> Path:
    """Ingest each batch as a nightly run; build (the compiled SQL) after each when `each` is
    given (then call it), else once at the end."""
    db = tmp / "warehouse.duckdb"
    for i, batch in enumerate(batches):
        ingest_paths([write_batch(tmp / f"batch{i}", batch)], db=db)
        if each is not None:
            project.build(db, raw_store_path(db))
            each(db, i)
    if each is None:
        project.build(db, raw_store_path(db))
    return db


FAST = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # make test: the same examples every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SLOW = settings(FAST, max_examples=300, derandomize=False)


def check_reference(db: Path, out: Path) -> None:
    """The marts and feeders.json (a whole feedback run writing it into `out`) equal the
    reference."""
    ref = reference_of(db)
    with duckdb.connect(str(db), read_only=True) as con:
        marts_equal_reference(con, ref)
    entries = feedback(db, out, full=True, now="t")["feeders"]
    metrics = {
        name: {k: v for k, v in e["metrics"].items() if k != "updated_at"}
        for name, e in entries.items()
    }
    assert metrics == ref.feeder_metrics()


def check_raw_state(project: CompiledProject, state: dict[str, list[dict]]) -> None:
    """The cheap examples: raw store and warehouse in memory; the feeders' metrics from the
    code the feedback run writes them with (metrics_from_marts, serialized by feeders.json's
    `dumps`)."""
    with project.in_memory() as con:
        insert_raw_state(con, state)
        project.run_models(con)
        ref = reference_from(con, "raw_store.main")
        marts_equal_reference(con, ref)
        written = json.loads(dumps({"feeders": metrics_from_marts(con)}))
    assert written["feeders"] == ref.feeder_metrics()


@FAST
@given(state=raw_states())
def test_marts_and_feeders_json_equal_the_reference(project, state):
    check_raw_state(project, state)


@pytest.mark.slow
@SLOW
@given(state=raw_states(max_processes=24))
def test_marts_and_feeders_json_equal_the_reference_many(project, state):
    check_raw_state(project, state)


def check_exports(tmp: Path, project: CompiledProject, batches: list[dict[str, list]]) -> None:
    """The same through ingest (JSONL exports with zone offsets, updates, stale copies, feeder
    changes, several runs) and a whole feedback run: the raw rows the reference reads are the
    ones ingest wrote."""
    check_reference(scenario(tmp, batches, project), tmp / "out")


@settings(FAST, max_examples=3)
@given(batches=exports(max_processes=12))
def test_marts_after_ingests_equal_the_reference(tmp_path_factory, project, batches):
    check_exports(tmp_path_factory.mktemp("ref"), project, batches)


@pytest.mark.slow
@settings(SLOW, max_examples=40)
@given(batches=exports(max_processes=20))
def test_marts_after_ingests_equal_the_reference_many(tmp_path_factory, project, batches):
    check_exports(tmp_path_factory.mktemp("ref"), project, batches)


def same_tables(dbt_built: Path, ran: Path, names: list[str]) -> None:
    """Every model has the same columns (names and types) and the same rows (a multiset, floats
    to the bit) in both warehouses."""
    con = duckdb.connect(str(dbt_built), read_only=True)  # catalog `warehouse`: its views resolve
    try:
        con.execute(f"attach '{ran}' as ran (read_only)")
        for name in names:
            columns = [
                con.execute(
                    "select column_name, data_type from duckdb_columns() "
                    "where database_name = ? and table_name = ? order by column_index",
                    [db, name],
                ).fetchall()
                for db in ("warehouse", "ran")
            ]
            assert columns[0] == columns[1], name
            assert columns[0], name
            for a, b in (("warehouse", "ran"), ("ran", "warehouse")):
                extra = con.execute(
                    f"select count(*) from (select * from {a}.main.{name} "
                    f"except all select * from {b}.main.{name})"
                ).fetchone()
                assert extra == (0,), (name, a)
    finally:
        con.close()


@settings(FAST, max_examples=1, phases=[Phase.generate])  # no shrinking: dbt runs are slow
@given(batches=exports(max_processes=12))
def test_the_compiled_sql_builds_what_dbt_builds(tmp_path_factory, project, batches):
    """The shortcut the property tests take (CompiledProject.build) against a real `dbt build`
    (seeds, models and data tests) of the same raw store: every model equal, and the dbt-built
    marts equal the reference too."""
    tmp = tmp_path_factory.mktemp("dbt")
    ran = scenario(tmp, batches, project)
    built = project.dbt_build(raw_store_path(ran))
    same_tables(built, ran, [m.name for m in project.models])
    check_reference(built, tmp / "out")


def check_default_equals_full(tmp: Path, batches: list[dict[str, list]], project) -> None:
    def each(db: Path, i: int) -> None:
        default = feedback(db, tmp / "default", full=False, now=f"step{i}")
        full = feedback(db, tmp / "full", full=True, now=f"step{i}")
        assert default == full, i

    scenario(tmp, batches, project, each)


@settings(FAST, max_examples=4)
@given(batches=exports(max_processes=8, max_batches=3))
def test_default_feedback_equals_full_after_any_ingests(tmp_path_factory, project, batches):
    check_default_equals_full(tmp_path_factory.mktemp("feedback"), batches, project)


@pytest.mark.slow
@settings(SLOW, max_examples=100)
@given(batches=exports(max_processes=12, max_batches=4))
def test_default_feedback_equals_full_after_any_ingests_many(tmp_path_factory, project, batches):
    check_default_equals_full(tmp_path_factory.mktemp("feedback"), batches, project)


def test_a_process_moving_to_another_feeder_updates_both_in_a_default_run(
    tmp_path_factory, project
):
    """The old feeder loses the process although none of its rows changed: a default run
    rewrites it as --full does (here it has no process left: the metrics of none)."""
    candidate = {"id": "c0", "full_name": "Ann Lee", "created_at": "2025-01-01T00:00:00Z"}

    def process(n: int, feeder: str, updated: str) -> dict:
        return {
            "id": str(uuid.UUID(int=n, version=4)),
            "candidate_id": "c0",
            "company_name": "Acme",
            "role_title": "Engineer",
            "status": "in_progress",
            "feeder_source": feeder,
            "created_at": "2025-02-01T00:00:00Z",
            "updated_at": updated,
        }

    night1 = {
        "candidates": [candidate],
        "processes": [
            process(1, "referral", "2025-02-01T00:00:00Z"),
            process(2, "linkedin", "2025-02-01T00:00:00Z"),
        ],
        "stages": [],
    }
    night2 = {
        "candidates": [],
        "processes": [process(1, "linkedin", "2025-02-03T00:00:00Z")],
        "stages": [],
    }
    tmp = tmp_path_factory.mktemp("moved")
    written = {}

    def each(db: Path, i: int) -> None:
        written["default"] = feedback(db, tmp / "default", full=False, now=f"step{i}")
        written["full"] = feedback(db, tmp / "full", full=True, now=f"step{i}")
        assert written["default"] == written["full"], i

    scenario(tmp, [night1, night2], project, each)
    feeders = written["default"]["feeders"]
    assert feeders["linkedin"]["metrics"]["candidates_sourced"] == 2
    assert feeders["referral"]["metrics"]["candidates_sourced"] == 0
    assert feeders["referral"]["metrics"]["conversion_rate"] is None

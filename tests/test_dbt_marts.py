"""dbt on a small hand-written raw store: the marts against values computed by hand and the
funnel against a plain Python computation, plus the runner's reporting of failing nodes.

One `dbt build` for the whole module (dbt's start-up and parse cost seconds, not the data).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest

from itrack.dbt_runner import PROJECT_DIR, run_dbt
from tests.dbt_helpers import Process, RawData, Stage, pid, query, write_raw_store

OFFER = {"base_salary": 150000, "currency": "USD"}

# Seven processes covering every funnel case: a full pass, a failed technical, a pending stage,
# a declined offer with no onsite, an unmapped stage name, a retake that passed, a placement
# with no stages and no history (dates fall back to updated_at).
DATA = RawData(
    candidates={"c1": "ex-google", "c2": None, "c3": "referral"},
    processes=[
        Process(
            1,
            "c1",
            "Acme",
            "ex-google",
            "offer_accepted",
            "2025-01-01",
            "2025-01-25",
            stages=[
                Stage(
                    "Phone Screen",
                    "passed",
                    4,
                    "Clear communication.",
                    scheduled="2025-01-02",
                    completed="2025-01-02",
                ),
                Stage(
                    "  Technical   Interview ",
                    "passed",
                    5,
                    "Strong coding; clear.",
                    ["Dana", "Lee"],
                    "2025-01-05",
                    "2025-01-08",
                ),
                Stage("ONSITE", "passed", 4, "Great system design.", ["Lee"]),
            ],
            history=[
                ("in_progress", "2025-01-01"),
                ("offer_extended", "2025-01-20"),
                ("offer_accepted", "2025-01-25"),
            ],
            offer=OFFER,
        ),
        Process(
            2,
            "c1",
            "Beta",
            None,
            "rejected_by_company",
            "2025-01-05",
            "2025-01-15",
            stages=[
                Stage("phone screen", "passed", 3),
                Stage("Coding", "failed", 1, "Weak coding; poor testing.", ["Lee"]),
            ],
            history=[("in_progress", "2025-01-05"), ("rejected_by_company", "2025-01-15")],
            final_outcome="Failed  Technical Interview",
        ),
        Process(
            3,
            "c2",
            "Acme",
            None,
            "in_progress",
            "2025-02-03",
            "2025-02-03",
            stages=[Stage("Recruiter Call", "passed", 4), Stage("Technical", "pending")],
            history=[("in_progress", "2025-02-03")],
        ),
        Process(
            4,
            "c3",
            "Acme",
            "referral",
            "offer_declined",
            "2025-02-10",
            "2025-02-25",
            stages=[Stage("Phone Screen", "passed", 4), Stage("Coding", "passed", 4)],
            history=[
                ("in_progress", "2025-02-10"),
                ("offer_extended", "2025-02-20"),
                ("offer_declined", "2025-02-25"),
            ],
            offer=OFFER,
        ),
        Process(
            5,
            "c3",
            "Beta",
            "referral",
            "candidate_withdrew",
            "2025-02-12",
            "2025-02-14",
            stages=[Stage("Take-home Project", "cancelled")],
            history=[("in_progress", "2025-02-12"), ("candidate_withdrew", "2025-02-14")],
        ),
        Process(
            6,
            "c3",
            "Beta",
            "referral",
            "rejected_by_company",
            "2025-01-03",
            "2025-01-30",
            stages=[
                Stage("Phone Screen", "failed", 2),
                Stage("Phone Screen", "passed", 4),
                Stage("Final Round", "failed", 2, "Poor culture fit."),
            ],
            history=[("in_progress", "2025-01-03"), ("rejected_by_company", "2025-01-30")],
            final_outcome="failed technical interview",
        ),
        Process(7, "c1", "Acme", "ex-google", "offer_accepted", "2025-03-01", "2025-03-11"),
    ],
)


def built(root: Path, data: RawData, args: list[str], **options) -> tuple[Path, Any]:
    """`data` as a raw store in `root` and `dbt <args>` of it: the warehouse and dbt's outcome
    (which must be ok)."""
    raw = write_raw_store(root / "warehouse.raw.duckdb", data)
    db = root / "warehouse.duckdb"
    outcome = run_dbt(args, db, raw, **options)
    assert outcome.ok, outcome.failures
    duckdb.connect(str(db)).close()  # dbt's connection is closed: the file opens read-write
    return db, outcome


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    db, outcome = built(
        tmp_path_factory.mktemp("dbt"),
        DATA,
        ["build"],
        variables={"preferred_feeder_min_processes": 1},
    )
    # the unmapped "Take-home Project" is reported, as a warning only
    assert [w.name for w in outcome.warned] == ["assert_stage_names_mapped"]
    return db


def by(rows: list[dict], key: str) -> dict:
    return {row[key]: row for row in rows}


# ---- plain Python funnel -------------------------------------------------------------------


def stage_type(name: str) -> str:
    with open(PROJECT_DIR / "seeds" / "stage_types.csv", encoding="utf-8") as handle:
        mapping = {r["stage_name_normalized"]: r["stage_type"] for r in csv.DictReader(handle)}
    return mapping.get(re.sub(r"\s+", " ", name.strip().lower()), "other")


def python_funnel(data: RawData) -> dict[tuple[str, str], dict]:
    groups: dict[tuple[str, str], list[Process]] = defaultdict(list)
    for p in data.processes:
        feeder = p.feeder or data.candidates[p.candidate] or "unattributed"
        for key in (
            ("overall", "all"),
            ("feeder_source", feeder),
            ("company_name", p.company),
            ("feeder_company", f"{feeder} @ {p.company}"),
            ("cohort_month", p.created[:7]),
        ):
            groups[key].append(p)
    return {key: funnel_row(members) for key, members in groups.items()}


def funnel_row(members: list[Process]) -> dict:
    row: dict = {"total_started": len(members)}
    for t in ("phone_screen", "technical", "onsite"):
        outcomes = [[s.outcome for s in p.stages if stage_type(s.name) == t] for p in members]
        entered = [o for o in outcomes if o]
        passed = sum("passed" in o for o in entered)
        failed = sum("failed" in o and "passed" not in o for o in entered)
        row |= {
            f"{t}_entered": len(entered),
            f"{t}_passed": passed,
            f"{t}_failed": failed,
            f"{t}_pass_rate": passed / (passed + failed) if passed + failed else None,
        }
    offered = {
        p.n
        for p in members
        if p.offer
        or any(
            s in ("offer_extended", "offer_accepted", "offer_declined")
            for s in [p.status, *(h for h, _ in p.history)]
        )
    }
    cleared = offered | {
        p.n
        for p in members
        if any(s.outcome == "passed" for s in p.stages)
        and not any(s.outcome == "pending" for s in p.stages)
        and not any(
            "failed" in o and "passed" not in o
            for o in (
                [s.outcome for s in p.stages if stage_type(s.name) == t]
                for t in {stage_type(s.name) for s in p.stages}
            )
        )
    }
    accepted = sum(p.status == "offer_accepted" for p in members)
    declined = sum(p.status == "offer_declined" for p in members)
    return row | {
        "offers_extended": len(offered),
        "cleared_interviewing": len(cleared),
        "offer_extended_rate": len(offered & cleared) / len(cleared) if cleared else None,
        "offers_accepted": accepted,
        "offers_declined": declined,
        "offer_accepted_rate": accepted / (accepted + declined) if accepted + declined else None,
        "in_flight": sum(p.status in ("in_progress", "on_hold") for p in members),
    }


def test_funnel_equals_a_plain_python_computation(warehouse):
    expected = python_funnel(DATA)
    actual = {
        (r["grain"], r["group_key"]): r
        for r in query(warehouse, "select * from mart_conversion_funnel")
    }
    assert set(actual) == set(expected)
    for key, row in expected.items():
        for column, value in row.items():
            assert actual[key][column] == pytest.approx(value), (key, column)


def test_funnel_overall_row_by_hand(warehouse):
    [row] = query(warehouse, "select * from mart_conversion_funnel where grain = 'overall'")
    # phone: P1, P2, P3, P4 passed, P6 failed then passed -> 5 passed of 5 entered;
    # technical: P1, P4 passed, P2 failed, P3 pending -> 2 / 3; onsite: P1 passed, P6 failed
    assert (row["phone_screen_entered"], row["phone_screen_passed"]) == (5, 5)
    assert (row["technical_entered"], row["technical_passed"], row["technical_failed"]) == (4, 2, 1)
    assert row["technical_pass_rate"] == pytest.approx(2 / 3)
    assert row["onsite_pass_rate"] == pytest.approx(0.5)
    # offers: P1, P4, P7 (status only); cleared interviewing: P1, P4 and P7 (an offer without
    # stages); not P5 (its only stage was cancelled: nothing passed), not P6 (its onsite
    # failed), not P2 (technical failed), not P3 (pending)
    assert (row["offers_extended"], row["cleared_interviewing"]) == (3, 3)
    assert row["offer_extended_rate"] == pytest.approx(1.0)
    assert row["offer_accepted_rate"] == pytest.approx(2 / 3)  # P1, P7 accepted, P4 declined
    assert row["in_flight"] == 1


# ---- feeder conversion by hand -------------------------------------------------------------


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_feeder_conversion_by_hand(warehouse):
    rows = by(query(warehouse, "select * from mart_feeder_conversion"), "feeder_source")
    assert set(rows) == {"ex-google", "referral", "unattributed"}  # P2 takes c1's feeder
    google, referral, none = rows["ex-google"], rows["referral"], rows["unattributed"]
    assert (google["candidates_sourced"], google["placements"], google["decided_processes"]) == (
        3,
        2,
        3,
    )
    assert google["conversion_rate"] == pytest.approx(2 / 3)
    assert (google["wilson_lower"], google["wilson_upper"]) == pytest.approx(wilson(2, 3))
    assert (google["wilson_lower"], google["wilson_upper"]) == pytest.approx(
        (0.2077, 0.9385), abs=1e-4
    )
    assert (referral["wilson_lower"], referral["wilson_upper"]) == pytest.approx(
        (0, 0.5615), abs=1e-4
    )
    # beta prior centred on the overall rate 2/7 with strength 10
    assert google["smoothed_conversion_rate"] == pytest.approx((2 + 10 * 2 / 7) / 13)
    assert referral["smoothed_conversion_rate"] == pytest.approx(20 / 91)
    assert none["smoothed_conversion_rate"] == pytest.approx(20 / 77)
    assert none["decided_processes"] == 0 and none["decided_conversion_rate"] is None
    # stage pass rates per feeder: P2's "Coding" failed, P1's technical passed
    assert (
        google["phone_screen_pass_rate"],
        google["technical_pass_rate"],
        google["onsite_pass_rate"],
    ) == (1.0, 0.5, 1.0)
    assert (referral["technical_pass_rate"], referral["onsite_pass_rate"]) == (1.0, 0.0)
    assert none["technical_pass_rate"] is None  # P3's technical is pending
    # hire: P1 24 days (history), P7 10 days (updated_at, no history)
    assert google["avg_days_to_hire"] == pytest.approx(17.0)
    # depth of finished processes: P1 1, P2 technical 0.25, P7 1 / P4 offer 0.75, P5 0, P6 0.5
    assert google["pipeline_depth"] == pytest.approx(2.25 / 3)
    assert referral["pipeline_depth"] == pytest.approx(1.25 / 3)
    assert none["pipeline_depth"] is None
    assert json.loads(google["top_rejection_reasons"]) == [
        {"reason": "Failed Technical Interview", "count": 1}
    ]
    assert json.loads(none["top_rejection_reasons"]) == []


# ---- processes, stages, history, companies, interviewers -----------------------------------


def test_fct_interview_processes_by_hand(warehouse):
    rows = by(query(warehouse, "select * from fct_interview_processes"), "interview_process_id")
    assert len(rows) == 7
    p1, p2, p3, p5, p7 = (rows[_uuid(n)] for n in (1, 2, 3, 5, 7))
    assert (p1["furthest_stage_reached"], p1["stages_count"], p1["days_to_decision"]) == (
        "onsite",
        3,
        24,
    )
    assert str(p1["decided_at"]) == str(p1["placed_at"]) == "2025-01-25 00:00:00"
    assert json.loads(p1["offer_details"]) == OFFER
    assert (p2["feeder_source"], p2["furthest_stage_reached"], p2["days_to_decision"]) == (
        "ex-google",
        "technical",
        10,
    )
    assert (p3["feeder_source"], p3["furthest_stage_reached"]) == ("unattributed", "technical")
    assert p3["decided_at"] is None and not p3["is_terminal"]
    assert str(p3["cohort_month"]) == "2025-02-01"
    assert p5["furthest_stage_reached"] == "other"
    assert (p7["furthest_stage_reached"], p7["is_placement"], str(p7["placed_at"])) == (
        "none",
        True,
        "2025-03-11 00:00:00",
    )
    assert rows[_uuid(4)]["reached_offer"] and not rows[_uuid(4)]["is_placement"]


def _uuid(n: int):
    from uuid import UUID

    return UUID(pid(n))


def test_stage_names_are_normalised_onto_the_seed(warehouse):
    types = {
        r["stage_name"]: r["stage_type"]
        for r in query(warehouse, "select stage_name, stage_type from fct_interview_stages")
    }
    assert types == {
        "Phone Screen": "phone_screen",
        "  Technical   Interview ": "technical",
        "ONSITE": "onsite",
        "phone screen": "phone_screen",
        "Coding": "technical",
        "Recruiter Call": "phone_screen",
        "Technical": "technical",
        "Take-home Project": "other",
        "Final Round": "onsite",
    }
    [days] = query(
        warehouse,
        "select days_scheduled_to_completed as d from fct_interview_stages "
        "where stage_name like '%Technical %'",
    )
    assert days["d"] == 3


def test_status_history_intervals(warehouse):
    rows = query(
        warehouse,
        "select status, valid_from, valid_until, is_current, days_in_status "
        f"from fct_process_status_history where interview_process_id = "
        f"'{pid(1)}' order by valid_from",
    )
    assert [(r["status"], r["is_current"]) for r in rows] == [
        ("in_progress", False),
        ("offer_extended", False),
        ("offer_accepted", True),
    ]
    assert [r["days_in_status"] for r in rows[:2]] == [19, 5]


def test_company_insights_by_hand(warehouse):
    rows = by(query(warehouse, "select * from mart_company_insights"), "company_name")
    acme = rows["Acme"]
    assert (acme["total_candidates_sent"], acme["processes"]) == (3, 4)  # c1, c2, c3
    assert acme["offer_rate"] == pytest.approx(3 / 4)  # P1, P4, P7
    assert acme["acceptance_rate"] == pytest.approx(2 / 3)
    assert acme["interview_rate"] == pytest.approx(3 / 4)  # P7 has no stage
    # offer rate 1.0 for ex-google (2 processes) and referral (1), 0 for unattributed
    assert [f["feeder_source"] for f in json.loads(acme["preferred_feeders"])] == [
        "ex-google",
        "referral",
        "unattributed",
    ]
    # P2 and P6 (whitespace and case folded), shown by the smaller of the two spellings seen
    # once each; P2's failed-stage notes are not counted again: the final_outcome gives its reason
    assert json.loads(rows["Beta"]["rejection_reasons"]) == [
        {"reason": "Failed Technical Interview", "count": 2}
    ]


def test_stage_performance_and_feedback_themes(warehouse):
    rows = {
        (r["grain"], r["group_key"]): r
        for r in query(warehouse, "select * from mart_stage_performance")
    }
    technical = rows[("stage_type", "technical")]
    assert (
        technical["stages"],
        technical["passed"],
        technical["failed"],
        technical["pending"],
    ) == (4, 2, 1, 1)
    assert technical["avg_overall_rating"] == pytest.approx((5 + 1 + 4) / 3)
    passed_terms = {t["term"]: t["count"] for t in json.loads(technical["top_terms_passed"])}
    assert passed_terms == {"strong": 1, "coding": 1, "clear": 1}
    failed_terms = [t["term"] for t in json.loads(technical["top_terms_failed"])]
    assert failed_terms == ["coding", "poor", "testing", "weak"]  # ties by term
    assert rows[("stage_name", "Coding")]["stage_type"] == "technical"


def test_interviewer_calibration_by_hand(warehouse):
    rows = by(query(warehouse, "select * from mart_interviewer_calibration"), "interviewer_name")
    lee = rows["Lee"]
    # Lee: technical 5 (type avg 10/3), Coding 1 (type avg 10/3), onsite 4 (type avg 3)
    assert (lee["stages"], lee["decided_stages"], lee["pass_rate"]) == (3, 3, pytest.approx(2 / 3))
    assert lee["avg_rating_vs_stage_type"] == pytest.approx(((5 - 10 / 3) + (1 - 10 / 3) + 1) / 3)
    # stages that took place (passed or failed; P3's pending technical has no completion
    # date, P5's cancelled one never counts): Dana sat in 9, rated with notes: P1's two and
    # P6's final round
    assert rows["Dana"]["adherence"] == pytest.approx(3 / 9)


def test_staging_tables_make_the_warehouse_self_contained(warehouse):
    # read without the raw store attached: the staging models are tables in the warehouse
    [row] = query(warehouse, "select count(*) as n from stg_itrack__interview_stages")
    assert row["n"] == sum(len(p.stages) for p in DATA.processes)


# ---- the runner -----------------------------------------------------------------------------


def test_failing_test_is_named_and_the_file_released(tmp_path):
    bad = RawData(
        candidates={"c1": None},
        processes=[
            Process(
                1,
                "c1",
                "Acme",
                None,
                "in_progress",
                "2025-01-01",
                "2025-01-01",
                stages=[Stage("Phone Screen", "exploded")],
            )
        ],
    )
    raw = write_raw_store(tmp_path / "w.raw.duckdb", bad)
    db = tmp_path / "w.duckdb"
    outcome = run_dbt(
        # the stages' invariants test also checks their processes exist: select both models
        [
            "build",
            "--select",
            "stg_itrack__interview_stages stg_itrack__interview_processes",
            "--indirect-selection",
            "cautious",
        ],
        db,
        raw,
    )
    assert not outcome.ok
    # the model's invariants are one test; its message names the failing check and value
    assert outcome.failures == [
        "stg_itrack__interview_stages_invariants (fail: accepted_values(outcome): 1 row(s), "
        "e.g. 'exploded')"
    ]
    assert [(node.kind, node.status) for node in outcome.failed] == [("test", "fail")]
    duckdb.connect(str(db)).close()  # not held by dbt
    assert not (tmp_path / ".build" / "dbt" / "w.duckdb").exists()  # the stable link is gone


def test_a_feedback_run_logging_one_feeder_twice_fails_the_build(tmp_path):
    """stg_itrack__feedback_runs is one row per feeder per feedback run, but its invariants
    tested no key (the only table model with a key that had none): a run logged twice for a
    feeder (its publish carried out twice) passed unnoticed. The grain's key is tested, as
    every table's; a violation stops the build naming the check."""
    raw = write_raw_store(tmp_path / "w.raw.duckdb", RawData(candidates={"c1": None}, processes=[]))
    con = duckdb.connect(str(raw))
    try:
        con.execute(
            "insert into feedback_runs values ('run-1', 'referral', '{}', '2025-01-01'), "
            "('run-1', 'referral', '{}', '2025-01-01'), ('run-1', 'alpha', '{}', '2025-01-01'), "
            "('run-2', 'referral', '{}', '2025-01-02')"
        )
    finally:
        con.close()
    outcome = run_dbt(
        ["build", "--select", "stg_itrack__feedback_runs"], tmp_path / "w.duckdb", raw
    )
    assert not outcome.ok
    assert outcome.failures == [
        "stg_itrack__feedback_runs_invariants (fail: "
        "unique_combination(feedback_run_id, feeder_source): 1 row(s))"
    ]


def test_every_table_model_tests_the_key_of_its_grain():
    """Each model built as a table (staging, marts, the rejection reasons) names its key in its
    invariants test: `unique` on a column or `unique_combination`. The raw status history has
    none (one raw row per change; int_status_changes_sequenced numbers them and
    fct_process_status_history tests that key); the intermediate views are tested through the
    tables built from them."""
    import yaml

    keyed, keyless = set(), set()
    for path in (PROJECT_DIR / "models").rglob("_*__models.yml"):
        for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
            if model["name"].startswith("int_") and model["name"] != (
                "int_processes_rejection_reasons"
            ):
                continue
            checks = [
                test["invariants"].get("arguments", {})
                for test in model.get("data_tests", [])
                if isinstance(test, dict) and "invariants" in test
            ]
            has_key = any(c.get("unique") or c.get("unique_combination") for c in checks)
            (keyed if has_key else keyless).add(model["name"])
    assert keyless == {"stg_itrack__interview_status_history"}
    assert len(keyed) == 14


def test_every_model_and_column_is_documented(warehouse):
    """Each model's YAML describes the model and exactly the columns it has."""
    import yaml

    documented = {}
    for path in (PROJECT_DIR / "models").rglob("_*__models.yml"):
        for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
            assert model.get("description", "").strip(), model["name"]
            for column in model["columns"]:
                assert column.get("description", "").strip(), (model["name"], column["name"])
            documented[model["name"]] = [c["name"] for c in model["columns"]]
    built = {p.stem for p in (PROJECT_DIR / "models").rglob("*.sql")}
    assert set(documented) == built
    for name, columns in documented.items():
        actual = [
            r["column_name"]
            for r in query(
                warehouse,
                "select column_name from information_schema.columns "
                f"where table_name = '{name}' order by ordinal_position",
            )
        ]
        assert sorted(columns) == sorted(actual), name


# ---- one key per name: spelling, case, separators and Unicode form --------------------------

CAFE_NFC, CAFE_NFD = "Caf\u00e9", "Cafe\u0301"  # one name, composed and decomposed
JOSE_NFC, JOSE_NFD = "Jos\u00e9 Referrals", "Jose\u0301 Referrals"
ZOE_NFC, ZOE_NFD = "Zo\u00eb", "Zoe\u0308"
RESUME_NFC, RESUME_NFD = "Poor r\u00e9sum\u00e9", "Poor re\u0301sume\u0301"
# Four processes rejected at a failed phone screen, the reason spelled as auto-close writes it
# from the stage's name ("Failed <stage name>") and by hand
SPELLED = RawData(
    candidates={"c1": None},
    processes=[
        Process(
            n,
            "c1",
            company,
            feeder,
            "rejected_by_company",
            f"2025-01-0{n}",
            f"2025-01-1{n}",
            stages=[Stage(stage, "failed", 2, None, interviewers)],
            final_outcome=outcome,
        )
        for n, company, feeder, stage, interviewers, outcome in (
            (1, CAFE_NFC, JOSE_NFC, "Phone Screen", [ZOE_NFC], "Failed phone_screen"),
            (2, CAFE_NFD, JOSE_NFD, "phone_screen", [ZOE_NFD], "Failed Phone Screen"),
            (
                3,
                CAFE_NFC,
                JOSE_NFD,
                "Phone-Screen",
                [ZOE_NFD],
                f"failed  phone-screen; {RESUME_NFC}",
            ),
            (
                4,
                CAFE_NFC,
                JOSE_NFD,
                "phone screen",
                [ZOE_NFC, ZOE_NFD],
                f"Failed Phone Screen. {RESUME_NFD}",
            ),
        )
    ],
)


@pytest.fixture(scope="module")
def spelled(tmp_path_factory) -> Path:
    args = [
        "build",
        "--exclude-resource-type",
        "unit_test",
    ]  # the warehouse fixture's build runs them
    return built(tmp_path_factory.mktemp("spelled"), SPELLED, args)[0]


def test_names_in_either_unicode_form_are_one_company_feeder_and_interviewer(spelled):
    """Found by an exploratory run: `Café` composed (NFC) and decomposed (NFD) were two
    companies, two feeders, two interviewers. Every key is NFC: one of each, shown by the most
    frequent spelling (company NFC 3 of 4, feeder NFD 3 of 4, interviewer listings NFD 3 of 5:
    P4 lists Zoë in both forms and sat in its stage once)."""
    [company] = query(spelled, "select company_name, processes from mart_company_insights")
    assert company == {"company_name": CAFE_NFC, "processes": 4}
    [feeder] = query(
        spelled, "select feeder_source, candidates_sourced from mart_feeder_conversion"
    )
    assert feeder == {"feeder_source": JOSE_NFD, "candidates_sourced": 4}
    funnel = query(
        spelled,
        "select grain, group_key, total_started from mart_conversion_funnel "
        "where grain in ('company_name', 'feeder_source', 'feeder_company') order by grain",
    )
    assert funnel == [
        {"grain": "company_name", "group_key": CAFE_NFC, "total_started": 4},
        {"grain": "feeder_company", "group_key": f"{JOSE_NFD} @ {CAFE_NFC}", "total_started": 4},
        {"grain": "feeder_source", "group_key": JOSE_NFD, "total_started": 4},
    ]
    [zoe] = query(spelled, "select interviewer_name, stages from mart_interviewer_calibration")
    assert zoe == {"interviewer_name": ZOE_NFD, "stages": 4}


def test_rejection_reasons_are_grouped_like_names_and_shown_by_their_most_frequent_spelling(
    spelled,
):
    """Found by an exploratory run: `Failed phone_screen` (auto-close on a failed stage writes
    the stage's name) and `Failed Phone Screen` were two reasons, as were `résumé` in NFC and
    NFD. Reasons are keyed as stage names are (case, whitespace, `_`/`-`, Unicode form folded):
    one reason of 4 processes, shown as `Failed Phone Screen` (2 processes spell it so, the
    others once each); the résumé reason's two spellings tie 1-1: the smaller (NFD) is shown."""
    expected = [
        {"reason": "Failed Phone Screen", "count": 4},
        {"reason": RESUME_NFD, "count": 2},
    ]
    [company] = query(spelled, "select rejection_reasons from mart_company_insights")
    assert json.loads(company["rejection_reasons"]) == expected
    [feeder] = query(spelled, "select top_rejection_reasons from mart_feeder_conversion")
    assert json.loads(feeder["top_rejection_reasons"]) == expected

"""The analytics API (`feedback.analytics`) on the hand-computed warehouse of tests/lib_data.py:
exact values from the documented definitions, names in any spelling, unknown names refused with
the closest known ones, JSON/polars shapes, and the docstrings' definitions equal to the dbt
docs."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from feedback import analytics
from feedback.analytics import (
    UnknownNameError,
    get_company_hiring_insights,
    get_conversion_funnel,
    get_stage_performance,
)
from feedback.gen_definitions import definitions_from_yml, render
from ingest.errors import NotFoundError, UserError
from itrack.dbt_runner import PROJECT_DIR, run_dbt
from tests.dbt_helpers import write_raw_store
from tests.lib_data import DATA


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("analytics")
    raw = write_raw_store(root / "warehouse.raw.duckdb", DATA)
    db = root / "warehouse.duckdb"
    outcome = run_dbt(["build", "--vars", "{preferred_feeder_min_processes: 1}"], db, raw)
    assert outcome.ok, outcome.failures
    return db


# ---- funnel -------------------------------------------------------------------------------------


def test_overall_funnel_by_hand(wh):
    funnel = get_conversion_funnel(db=wh)
    # the seed's keys, each with its counts: phone 4 passed of 5 decided (P5 pending);
    # technical P1, P4 passed, P2 failed; onsite P1, P4; cleared interviewing P1, P3, P4 of
    # which P1, P4 got offers; accepted P1, declined P4; in flight P5, P7
    assert funnel.to_dict() == {
        "feeder_source": None,
        "company": None,
        "cohort_month": None,
        "grain": "overall",
        "group_key": "all",
        "total_started": 7,
        "processes_started": 7,  # the same count under the name every mart uses
        "offer_rate": pytest.approx(2 / 7),  # P1, P4 offered of 7 started
        "offer_rate_after_interviews": pytest.approx(2 / 3),  # of the 3 that cleared
        "phone_screen_pass_rate": 0.8,
        "technical_pass_rate": pytest.approx(2 / 3),
        "onsite_pass_rate": 1.0,
        "offer_extended_rate": pytest.approx(2 / 3),
        "offer_accepted_rate": 0.5,
        "phone_screen_entered": 6,
        "phone_screen_passed": 4,
        "phone_screen_failed": 1,
        "technical_entered": 3,
        "technical_passed": 2,
        "technical_failed": 1,
        "onsite_entered": 2,
        "onsite_passed": 2,
        "onsite_failed": 0,
        "offers_extended": 2,
        "cleared_interviewing": 3,
        "offers_accepted": 1,
        "offers_declined": 1,
        "offers_withdrawn": 0,  # P3 withdrew before any offer
        "offers_rescinded": 0,
        "offers_pending": 0,
        "in_flight": 2,
    }
    assert funnel["total_started"] == 7  # the seed's dict-style access


def test_funnel_for_a_feeder_a_company_and_both(wh):
    referral = get_conversion_funnel(feeder_source="referral", db=wh)  # P1, P2, P5
    assert (referral.total_started, referral.phone_screen_passed, referral.phone_screen_failed) == (
        3,
        2,
        0,
    )
    assert (referral.technical_pass_rate, referral.offer_accepted_rate) == (0.5, 1.0)
    beta = get_conversion_funnel(company="Beta", db=wh)  # P4, P5, P6
    assert (beta.total_started, beta.phone_screen_pass_rate, beta.offer_accepted_rate) == (
        3,
        0.5,
        0.0,
    )
    both = get_conversion_funnel("referral", "Acme", db=wh)  # P1, P2
    assert (both.feeder_source, both.company, both.total_started, both.in_flight) == (
        "referral",
        "Acme",
        2,
        0,
    )
    assert (both.technical_passed, both.technical_failed, both.offers_accepted) == (1, 1, 1)


def test_funnel_names_in_any_case_and_spacing(wh):
    funnel = get_conversion_funnel(feeder_source=" Referral ", company="ACME", db=wh)
    assert (funnel.feeder_source, funnel.company, funnel.total_started) == ("referral", "Acme", 2)


def test_cohort_and_every_group_of_a_grain(wh):
    january = get_conversion_funnel(cohort="2025-01", db=wh)  # P1, P2, P3, P4, P6
    assert (january.grain, january.group_key, january.total_started, january.in_flight) == (
        "cohort_month",
        "2025-01",
        5,
        0,
    )
    with pytest.raises(UnknownNameError, match="no such cohort '2025-13'"):
        get_conversion_funnel(cohort="2025-13", db=wh)
    with pytest.raises(UserError, match="a cohort goes alone"):
        get_conversion_funnel("referral", cohort="2025-01", db=wh)
    pairs = analytics.get_conversion_funnels("feeder_company", db=wh)
    assert [(f.group_key, f.total_started) for f in pairs] == [
        ("linkedin @ Beta", 2),
        ("referral @ Acme", 2),
        ("agency @ Gamma", 1),
        ("linkedin @ Acme", 1),
        ("referral @ Beta", 1),
    ]
    feeders = analytics.frame(analytics.get_conversion_funnels(db=wh))
    assert feeders["feeder_source"].to_list() == ["linkedin", "referral", "agency"]
    with pytest.raises(UserError, match="unknown funnel grouping 'team'"):
        analytics.get_conversion_funnels("team", db=wh)


def test_every_stage_type_in_funnel_order(wh):
    stages = analytics.get_stage_performances(db=wh)
    assert [(s.name, s.stages, s.passed, s.failed) for s in stages] == [
        ("phone_screen", 6, 4, 1),
        ("technical", 3, 2, 1),
        ("onsite", 2, 2, 0),
        ("other", 1, 0, 0),
    ]


def test_known_feeder_and_company_that_never_met_give_zeros(wh):
    funnel = get_conversion_funnel("agency", "Acme", db=wh)
    assert funnel.total_started == 0 and funnel.offers_accepted == 0
    assert funnel.phone_screen_pass_rate is None and funnel.offer_accepted_rate is None


# ---- stages -------------------------------------------------------------------------------------


def test_a_stage_type_no_process_reached_gives_zeros(tmp_path, shared_plans):
    """`itrack report stage onsite` (and get_stage_performance) on a warehouse where no process
    reached an onsite said "no such stage 'onsite'; known: ...", as if the canonical type were a
    typo; its counts are zero and its rates unknown, as for a feeder and a company that never
    met. Any spelling the seed maps to it too; an unknown name is still refused."""
    from typer.testing import CliRunner

    from itrack.cli.main import app
    from itrack.pipeline import run_build
    from tests.conftest import assert_exit
    from tests.dbt_helpers import Process, RawData, Stage

    data = RawData(
        {"c1": "referral"},
        [
            Process(
                1, "c1", "Acme", None, "in_progress", "2025-01-02", "2025-01-03",
                [Stage("Phone Screen", "passed", 4, completed="2025-01-02 11:00")],
            )
        ],
    )  # fmt: skip
    db = tmp_path / "warehouse.duckdb"
    write_raw_store(tmp_path / "warehouse.raw.duckdb", data)
    run_build(None, db=db, take_backup=False, write_html=False, note=lambda _m: None,
              plan_cache=shared_plans)  # fmt: skip
    for spelling in ("onsite", "ONSITE", "Final Round"):
        onsite = analytics.get_stage_performance(spelling, db=db)
        assert (onsite.grain, onsite.name, onsite.stage_type) == ("stage_type", "onsite", "onsite")
        assert (onsite.stages, onsite.passed, onsite.failed, onsite.pending) == (0, 0, 0, 0)
        assert (onsite.cancelled, onsite.no_show) == (0, 0)
        assert onsite.pass_rate is None and onsite.fail_rate is None
        assert (
            onsite.avg_overall_rating is None and onsite.median_days_scheduled_to_completed is None
        )
        assert onsite.stage_names == [] and onsite.common_feedback_themes.passed == []
    shown = CliRunner().invoke(
        app, ["report", "stage", "onsite", "--db", str(db), "--format", "json"]
    )
    assert_exit(shown, 0)
    assert json.loads(shown.output)[0]["stages"] == 0
    with pytest.raises(analytics.UnknownNameError) as unknown:
        analytics.get_stage_performance("zzzz", db=db)
    assert str(unknown.value) == (
        "no such stage 'zzzz'; known: Phone Screen, onsite, phone_screen, technical"
    )


def test_stage_type_performance_by_hand(wh):
    stage = get_stage_performance("technical", db=wh)
    # P1 Technical Interview passed (5), P2 Technical Interview failed (2), P4 Coding passed (4)
    assert (stage.stage_type, stage.grain, stage.stages, stage.passed, stage.failed) == (
        "technical",
        "stage_type",
        3,
        2,
        1,
    )
    assert stage.pass_rate == pytest.approx(2 / 3) and stage.fail_rate == pytest.approx(1 / 3)
    assert stage.avg_overall_rating == pytest.approx(11 / 3)
    assert stage.median_days_scheduled_to_completed == 1.5  # 2 days (P1) and 1 day (P2)
    themes = stage.to_dict()["common_feedback_themes"]
    assert themes == {
        "passed": [
            {"term": "coding", "count": 2},
            {"term": "strong", "count": 2},
            {"term": "clear", "count": 1},
            {"term": "design", "count": 1},
        ],
        "failed": [
            {"term": "weak", "count": 2},
            {"term": "coding", "count": 1},
            {"term": "testing", "count": 1},
        ],
    }
    assert [(n.stage_name, n.stages, n.passed, n.failed) for n in stage.stage_names] == [
        ("Technical Interview", 2, 1, 1),
        ("Coding", 1, 1, 0),
    ]


@pytest.mark.parametrize(
    "spelling",
    ["technical", "Technical", "coding", "  CODING ", "Technical Interview", "technical-interview"],
)
def test_any_spelling_of_a_stage_type_gives_the_type(wh, spelling):
    stage = get_stage_performance(spelling, db=wh)
    assert (stage.grain, stage.name, stage.stages) == ("stage_type", "technical", 3)


def test_phone_screen_spellings_and_ratings(wh):
    stage = get_stage_performance("PHONE_SCREEN", db=wh)
    # P1 4, P2 3, P3 4, P4 4 passed; P6 2 failed; P5 pending
    assert (stage.name, stage.stages, stage.passed, stage.failed, stage.pending) == (
        "phone_screen",
        6,
        4,
        1,
        1,
    )
    assert stage.pass_rate == 0.8 and stage.avg_overall_rating == pytest.approx(3.4)


def test_a_name_of_no_canonical_type_gives_its_own_row(wh):
    stage = get_stage_performance("take-home project", db=wh)
    assert (stage.stage_type, stage.grain, stage.name) == (
        "other",
        "stage_name",
        "Take-home Project",
    )
    assert (stage.stages, stage.pending, stage.pass_rate, stage.fail_rate) == (1, 1, None, None)


# ---- companies ----------------------------------------------------------------------------------


def test_company_insights_by_hand(wh):
    acme = get_company_hiring_insights("Acme", db=wh)
    assert acme.to_dict() == {
        "company_name": "Acme",
        "total_candidates_sent": 3,
        "processes_started": 3,
        "processes": 3,  # the older name, kept
        "interview_rate": 1.0,
        "offer_rate": pytest.approx(1 / 3),
        "offer_accepted_rate": 1.0,
        "acceptance_rate": 1.0,  # the older name, kept
        "avg_time_to_decision": "14 days",  # (14 + 10 + 18) / 3
        "avg_days_to_decision": 14.0,
        "median_days_to_decision": 14.0,
        "preferred_feeders": [
            {"feeder_source": "referral", "processes": 2, "offer_rate": 0.5},
            {"feeder_source": "linkedin", "processes": 1, "offer_rate": 0.0},
        ],
        # P2's reason is its final_outcome; its failed stage's notes are not counted again
        # (one definition for the company and feeder marts, issue #12)
        "rejection_reasons": [{"reason": "Failed technical interview", "count": 1}],
    }


def test_company_time_to_decision_text_and_number(wh):
    beta = get_company_hiring_insights("beta", db=wh)
    assert (beta.avg_days_to_decision, beta.avg_time_to_decision) == (11.5, "12 days")  # 20, 3
    assert beta.interview_rate == pytest.approx(2 / 3)  # P5 has only pending stages
    gamma = get_company_hiring_insights("Gamma", db=wh)
    assert (gamma.avg_days_to_decision, gamma.avg_time_to_decision) == (None, None)
    assert gamma.rejection_reasons == [] and gamma.acceptance_rate is None


@pytest.mark.parametrize(
    ("days", "text"), [(1.0, "1 day"), (0.4, "0 days"), (13.5, "14 days"), (14.49, "14 days")]
)
def test_days_text(days, text):
    assert analytics.days_text(days) == text


# ---- unknown names, connections, shapes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message", "closest"),
    [
        (
            lambda db: get_conversion_funnel("refferal", db=db),
            "no such feeder 'refferal'; closest: referral",
            ["referral"],
        ),
        (
            lambda db: get_conversion_funnel(company="Acne", db=db),
            "no such company 'Acne'; closest: Acme",
            ["Acme"],
        ),
        (
            lambda db: get_company_hiring_insights("Betta", db=db),
            "no such company 'Betta'; closest: Beta",
            ["Beta"],
        ),
        (
            lambda db: get_stage_performance("tehcnical", db=db),
            "no such stage 'tehcnical'; closest: technical, Technical Interview",
            ["technical", "Technical Interview"],
        ),
        (
            lambda db: get_company_hiring_insights("zzzzzz", db=db),
            "no such company 'zzzzzz'; known: Acme, Beta, Gamma",
            [],
        ),
    ],
)
def test_unknown_names_name_the_closest(wh, call, message, closest):
    with pytest.raises(UnknownNameError) as caught:
        call(wh)
    assert str(caught.value) == message
    assert caught.value.closest == closest
    assert isinstance(caught.value, NotFoundError)  # exit 1, HTTP 404


def test_a_name_matching_several_known_ones_is_refused_not_resolved_to_the_first():
    """Found by the exploratory analytics run: the marts key names by lower-casing, the
    reports match them Unicode-folded, so `strasse` matched both companies `STRASSE` and
    `Straße` (and `Café` composed and decomposed are two companies): the report took the
    first, silently, and hid the other's figures. Several matches are refused, naming them;
    a name as spelled still finds its own."""
    known = ["STRASSE", "Straße", "Stripe"]
    with pytest.raises(UnknownNameError) as caught:  # exit 1, HTTP 404
        analytics.resolve_name("strasse", known, "company")
    assert str(caught.value) == "company 'strasse' matches 2: STRASSE, Straße; give one as spelled"
    assert caught.value.closest == ["STRASSE", "Straße"]
    assert analytics.resolve_name("Straße", known, "company") == "Straße"
    assert analytics.resolve_name("STRIPE", known, "company") == "Stripe"


def test_any_connection_or_path(wh):
    con = duckdb.connect(str(wh), read_only=True)
    try:
        assert get_conversion_funnel(db=con).total_started == 7
        assert con.execute("select 1").fetchone() == (1,)  # the caller's connection stays open
    finally:
        con.close()
    assert get_conversion_funnel(db=str(wh)).total_started == 7
    attached = duckdb.connect()  # an analyst's session with the warehouse attached
    attached.execute(f"attach '{wh}' as wh (read_only)")
    attached.execute("use wh")
    assert get_company_hiring_insights("Acme", db=attached).processes == 3
    attached.close()


def test_missing_warehouse_and_missing_marts_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no warehouse yet; run `itrack build` first"):
        get_conversion_funnel(db=tmp_path / "none.duckdb")
    with pytest.raises(UserError, match="the warehouse has no marts yet"):
        get_conversion_funnel(db=duckdb.connect())


def test_results_are_json_and_polars(wh):
    insights = get_company_hiring_insights("Acme", db=wh)
    assert json.loads(json.dumps(insights.to_dict())) == insights.to_dict()
    frame = get_conversion_funnel(db=wh).to_polars()
    assert frame.shape == (1, 31) and frame["total_started"].to_list() == [7]
    assert get_stage_performance("coding", db=wh).to_polars()["stages"].to_list() == [3]


# ---- one source for the definitions -------------------------------------------------------------

YML = PROJECT_DIR / "models" / "marts" / "_marts__models.yml"


def test_definitions_copy_equals_the_dbt_yml():
    """Edit the YAML, then `python -m feedback.gen_definitions <that yml>`."""
    packaged = Path(analytics.__file__).with_name("mart_definitions.json")
    assert packaged.read_text(encoding="utf-8") == render(definitions_from_yml(YML))


def test_docstrings_and_fields_state_the_dbt_definitions():
    docs = definitions_from_yml(YML)
    funnel = docs["mart_conversion_funnel"]
    assert funnel["description"] in get_conversion_funnel.__doc__
    assert funnel["columns"]["offer_accepted_rate"] in get_conversion_funnel.__doc__
    field = analytics.ConversionFunnel.model_fields["technical_pass_rate"]
    assert field.description == funnel["columns"]["technical_pass_rate"]
    company = docs["mart_company_insights"]["columns"]
    assert company["interview_rate"] in get_company_hiring_insights.__doc__
    stage = docs["mart_stage_performance"]["columns"]
    assert stage["pass_rate"] in get_stage_performance.__doc__
    from feedback.service import FeederPerformanceReport

    feeder = docs["mart_feeder_conversion"]["columns"]
    fields = FeederPerformanceReport.model_fields
    assert fields["smoothed_conversion_rate"].description == feeder["smoothed_conversion_rate"]
    assert fields["avg_days_to_hire"].description == feeder["avg_days_to_hire"]


# ---- the CLI reports are thin callers ----------------------------------------------------------


def cli_json(*args: str) -> object:
    from typer.testing import CliRunner

    from itrack.cli.main import app

    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0 and result.exception is None, result.output
    return json.loads(result.output)


def test_cli_reports_print_what_the_library_returns(wh):
    [acme] = cli_json("report", "company", "acme", "--db", str(wh))
    assert acme == get_company_hiring_insights("Acme", db=wh).to_dict()
    assert acme["avg_time_to_decision"] == "14 days"
    [stage] = cli_json("report", "stage", "Coding", "--db", str(wh))
    assert (stage["grain"], stage["group_key"], stage["stages"], stage["passed"]) == (
        "stage_type",
        "technical",
        3,
        2,
    )
    assert stage["stage_names"] == ["Technical Interview", "Coding"]
    funnel = cli_json("report", "funnel", "--db", str(wh))
    assert [(r["grain"], r["group_key"], r["processes_started"]) for r in funnel] == [
        ("overall", "all", 7),
        ("feeder_source", "linkedin", 3),
        ("feeder_source", "referral", 3),
        ("feeder_source", "agency", 1),
    ]
    [pair] = cli_json(
        "report", "funnel", "--feeder", "Referral", "--company", "ACME", "--db", str(wh)
    )
    assert (pair["grain"], pair["group_key"], pair["offers_accepted"]) == (
        "feeder_company",
        "referral @ Acme",
        1,
    )


def test_feedback_report_is_the_feedback_service_report(wh):
    from itrack.services import feedback_service

    report = cli_json("feedback", "report", "REFERRAL", "--db", str(wh))
    assert report == feedback_service(wh).get_feeder_performance_report("referral").to_dict()
    assert (report["feeder_source"], report["candidates_sourced"], report["placements"]) == (
        "referral",
        3,
        1,
    )
    assert report["success_rate_by_stage"] == {"phone_screen": 1.0, "technical": 0.5, "onsite": 1.0}

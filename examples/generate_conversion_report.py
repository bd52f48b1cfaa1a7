"""Conversion report through the Python API, after rebuilding the marts from the raw store.

ITRACK_DB=/tmp/demo/warehouse.duckdb python examples/generate_conversion_report.py

Every figure comes from the marts (one definition, in dbt): `feedback.analytics` for the funnel,
companies and stages, `FeedbackService.get_feeder_performance_report` for the feeder metric.
"""

from __future__ import annotations

from feedback.analytics import (
    get_company_hiring_insights,
    get_conversion_funnel,
    get_conversion_funnels,
    get_stage_performances,
)
from itrack.pipeline import run_build
from itrack.services import feedback_service
from itrack.settings import get_settings


def pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def main() -> None:
    db = get_settings().warehouse()
    run_build([], db=db, take_backup=False, write_html=False, note=lambda _m: None)

    overall = get_conversion_funnel(db=db)
    answered = overall.offers_accepted + overall.offers_declined + overall.offers_withdrawn
    print(
        f"funnel: {overall.total_started} started, {overall.in_flight} in flight, "
        f"offers accepted {pct(overall.offer_accepted_rate)} "
        f"({overall.offers_accepted} of {answered} answered)"
    )
    print("feeders (last build):")
    feedback = feedback_service(db)
    for funnel in get_conversion_funnels("feeder_source", db=db):
        report = feedback.get_feeder_performance_report(funnel.feeder_source)
        low, high = report.wilson_interval["lower"], report.wilson_interval["upper"]
        print(
            f"  {report.feeder_source:<20} sourced {report.candidates_sourced:>4}  placements "
            f"{report.placements:>4}  conversion {pct(report.conversion_rate)} "
            f"(95% CI {pct(low)}-{pct(high)})"
        )
    print("companies:")
    for funnel in get_conversion_funnels("company_name", db=db):
        insights = get_company_hiring_insights(funnel.company, db=db)
        print(
            f"  {insights.company_name:<20} sent {insights.total_candidates_sent:>4}  offer rate "
            f"{pct(insights.offer_rate)}  time to decision {insights.avg_time_to_decision or '-'}"
        )
    print("stages:")
    for stage in get_stage_performances(db=db):
        print(
            f"  {stage.name:<20} {stage.stages:>4} stages  pass rate {pct(stage.pass_rate)}  "
            f"avg rating {'-' if stage.avg_overall_rating is None else stage.avg_overall_rating}"
        )


if __name__ == "__main__":
    main()

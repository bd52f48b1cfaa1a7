"""Conversion report through the Python API, after rebuilding the marts from the raw store.

ITRACK_DB=/tmp/demo/warehouse.duckdb python examples/generate_conversion_report.py

The build publishes the marts with the HTML report (report.html beside the warehouse, where
`itrack build` writes it). Every figure comes from the marts (one definition, in dbt):
`feedback.analytics` for the funnel, companies and stages,
`FeedbackService.get_feeder_performance_report` for the feeder metric; each value is shown as
the `itrack report` tables show it (`itrack.cli.report.shown`: rates as percentages, ratings
and days with two decimals). An error (ITRACK_DB naming a folder, no raw store yet) is one
line on stderr and the exit code `itrack` gives it (`itrack.errors.run_script`).
"""

from __future__ import annotations

from feedback.analytics import (
    get_company_hiring_insights,
    get_conversion_funnel,
    get_conversion_funnels,
    get_stage_performances,
)
from itrack.cli.report import shown
from itrack.errors import run_script
from itrack.pipeline import default_report, run_build
from itrack.services import feedback_service
from itrack.settings import get_settings


def main() -> None:
    db = get_settings().warehouse()
    built = run_build([], db=db, take_backup=False, note=lambda _m: None)

    overall = get_conversion_funnel(db=db)
    answered = overall.offers_accepted + overall.offers_declined + overall.offers_withdrawn
    print(
        f"funnel: {overall.total_started} started, {overall.in_flight} in flight, "
        f"offers accepted {shown('offer_accepted_rate', overall.offer_accepted_rate)} "
        f"({overall.offers_accepted} of {answered} answered)"
    )
    print("feeders (last build):")
    feedback = feedback_service(db)
    for funnel in get_conversion_funnels("feeder_source", db=db):
        report = feedback.get_feeder_performance_report(funnel.feeder_source)
        low, high = report.wilson_interval["lower"], report.wilson_interval["upper"]
        print(
            f"  {report.feeder_source:<20} sourced {report.candidates_sourced:>4}  placements "
            f"{report.placements:>4}  conversion {shown('conversion_rate', report.conversion_rate)}"
            f" (95% CI {shown('wilson_lower', low)}-{shown('wilson_upper', high)})"
        )
    print("companies:")
    for funnel in get_conversion_funnels("company_name", db=db):
        insights = get_company_hiring_insights(funnel.company, db=db)
        print(
            f"  {insights.company_name:<20} sent {insights.total_candidates_sent:>4}  offer rate "
            f"{shown('offer_rate', insights.offer_rate)}  time to decision "
            f"{shown('avg_time_to_decision', insights.avg_time_to_decision)}"
        )
    print("stages:")
    for stage in get_stage_performances(db=db):
        print(
            f"  {stage.name:<20} {stage.stages:>4} stages  pass rate "
            f"{shown('pass_rate', stage.pass_rate)}  avg rating "
            f"{shown('avg_overall_rating', stage.avg_overall_rating)}"
        )
    # the build's own report; a rerun with nothing new keeps the one it published before
    print(f"HTML report: {built.report or default_report(db)}")


if __name__ == "__main__":
    run_script(main)

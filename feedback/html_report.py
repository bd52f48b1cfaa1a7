"""The HTML report: one self-contained file of charts an analyst would rather look at than read.

Charts are Altair (Vega-Lite) specs rendered to inline SVG by vl-convert, so the file needs no
network, no JavaScript and no other file to open. Every number comes from the marts.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert

from feedback.atomic import write_atomic
from feedback.marts import open_marts, records
from ingest.contract import utc_now

WIDTH = 560
STEPS = (
    "total_started",
    "phone_screen_entered",
    "technical_entered",
    "onsite_entered",
    "offers_extended",
    "offers_accepted",
)
STEP_LABELS = ("started", "phone screen", "technical", "onsite", "offer", "accepted")


def _data(rows: list[dict[str, Any]]) -> alt.Data:
    return alt.Data(values=json.loads(json.dumps(rows, default=str)))


def funnel_chart(con) -> alt.Chart:
    rows = records(
        con,
        f"select grain, group_key, {', '.join(STEPS)} from "
        "mart_conversion_funnel where grain in ('overall', 'feeder_source')",
    )
    long = [
        {
            "group": "all feeders" if r["grain"] == "overall" else r["group_key"],
            "step": label,
            "order": i,
            "share": r[step] / r["total_started"],
            "processes": r[step],
        }
        for r in rows
        for i, (step, label) in enumerate(zip(STEPS, STEP_LABELS, strict=True))
    ]
    base = alt.Chart(_data(long)).encode(
        x=alt.X("step:N", sort=list(STEP_LABELS), title=None),
        y=alt.Y("share:Q", axis=alt.Axis(format="%"), title="share of processes started"),
        color=alt.Color("group:N", title="feeder"),
    )
    return (
        base.mark_line(point=True)
        + base.mark_text(dy=-8, fontSize=9)
        .encode(text="processes:Q")
        .transform_filter("datum.group == 'all feeders'")
    ).properties(width=WIDTH, height=280, title="Conversion funnel, overall and per feeder")


def feeder_ci_chart(con) -> alt.Chart:
    rows = records(
        con,
        "select feeder_source, conversion_rate, wilson_lower, wilson_upper, "
        "candidates_sourced from mart_feeder_conversion",
    )
    base = alt.Chart(_data(rows)).encode(y=alt.Y("feeder_source:N", sort="-x", title=None))
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("wilson_lower:Q", axis=alt.Axis(format="%"), title="conversion (95% Wilson)"),
        x2="wilson_upper:Q",
    )
    points = base.mark_point(filled=True, size=80).encode(x="conversion_rate:Q")
    return (bars + points).properties(
        width=WIDTH,
        height=30 * max(len(rows), 3),
        title="Feeder conversion rate with confidence interval",
    )


def heatmap_chart(con) -> alt.Chart:
    rows = records(
        con,
        "select feeder_source, company_name, total_started, offers_extended, "
        "offers_extended / total_started as offer_rate "
        "from mart_conversion_funnel where grain = 'feeder_company'",
    )
    return (
        alt.Chart(_data(rows))
        .mark_rect()
        .encode(
            x=alt.X("feeder_source:N", title="feeder"),
            y=alt.Y("company_name:N", title="company"),
            color=alt.Color("offer_rate:Q", title="offer rate", scale=alt.Scale(scheme="viridis")),
        )
        .properties(
            width=WIDTH,
            height=22 * max(len({r["company_name"] for r in rows}), 3),
            title="Offer rate by company and feeder",
        )
    )


def time_to_decision_chart(con) -> alt.Chart:
    rows = records(
        con,
        "select days_to_decision, status from fct_interview_processes "
        "where days_to_decision is not null",
    )
    return (
        alt.Chart(_data(rows))
        .mark_bar()
        .encode(
            x=alt.X("days_to_decision:Q", bin=alt.Bin(maxbins=30), title="days to decision"),
            y=alt.Y("count():Q", title="processes"),
            color=alt.Color("status:N", title="outcome"),
        )
        .properties(width=WIDTH, height=240, title="Time to decision")
    )


def stage_pass_chart(con) -> alt.Chart:
    rows = records(
        con,
        "select group_key as stage_type, pass_rate, stages "
        "from mart_stage_performance where grain = 'stage_type'",
    )
    return (
        alt.Chart(_data(rows))
        .mark_bar()
        .encode(
            x=alt.X(
                "stage_type:N", sort=["phone_screen", "technical", "onsite", "other"], title=None
            ),
            y=alt.Y("pass_rate:Q", axis=alt.Axis(format="%"), title="pass rate"),
            tooltip=["stages:Q"],
        )
        .properties(width=WIDTH, height=220, title="Stage pass rates")
    )


def trend_chart(con) -> alt.Chart:
    rows = records(
        con,
        "select feeder_source, written_at, "
        "(metrics->>'conversion_rate')::double as conversion_rate "
        "from raw.feedback_runs order by written_at",
    )
    return (
        alt.Chart(_data(rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("written_at:T", title="feedback run"),
            y=alt.Y("conversion_rate:Q", axis=alt.Axis(format="%"), title="conversion rate"),
            color=alt.Color("feeder_source:N", title="feeder"),
        )
        .properties(width=WIDTH, height=240, title="Feeder conversion over feedback runs")
    )


CHARTS = (
    (
        "funnel",
        funnel_chart,
        "Share of started processes reaching each step; the numbers on the "
        "overall line are process counts.",
    ),
    (
        "feeder-conversion",
        feeder_ci_chart,
        "Placements per process started, with the 95% Wilson "
        "interval: short bars are well measured, long ones need more data.",
    ),
    (
        "company-feeder-heatmap",
        heatmap_chart,
        "Offers extended per process started, for every company and feeder pair seen.",
    ),
    (
        "time-to-decision",
        time_to_decision_chart,
        "Days from the start of a process to its final status, coloured by that status.",
    ),
    ("stage-pass-rates", stage_pass_chart, "Passed / (passed + failed) per canonical stage."),
    (
        "feeder-trend",
        trend_chart,
        "Each feeder's conversion rate as written by every feedback "
        "run (one point per run that changed it).",
    ),
)


def render(warehouse: Path) -> str:
    """The report as one HTML string (inline SVG, no scripts, no external resources)."""
    figures = []
    with open_marts(warehouse) as con:
        totals = records(
            con,
            "select count(*) as processes, count(*) filter (where "
            "is_placement) as placements, count(distinct company_name) as "
            "companies from fct_interview_processes",
        )[0]
        for chart_id, build, caption in CHARTS:
            svg = vl_convert.vegalite_to_svg(build(con).to_dict())
            figures.append(
                f'<figure id="chart-{chart_id}">{svg}'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    summary = (
        f"{totals['processes']} interview processes, {totals['placements']} placements, "
        f"{totals['companies']} companies"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>interview-tracking report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 760px; color: #222; }}
figure {{ margin: 2.5rem 0; }} figcaption {{ color: #555; font-size: .9rem; }}
header p {{ color: #555; }}
</style></head><body>
<header><h1>Recruiting outcomes</h1>
<p>{html.escape(summary)}. Built {utc_now():%Y-%m-%d %H:%M} UTC from
{html.escape(warehouse.name)}.</p></header>
{"".join(figures)}
</body></html>
"""


def write_report(warehouse: Path, out: Path) -> Path:
    write_atomic(out, render(warehouse).encode("utf-8"), keep_backup=False)
    return out

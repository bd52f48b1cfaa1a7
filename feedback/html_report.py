"""The HTML report: one self-contained file of charts an analyst would rather look at than read.

Charts are Vega-Lite specs, written here as the plain JSON Vega-Lite defines, rendered to inline
SVG by vl-convert, so the file needs no network, no JavaScript and no other file to open. Every
number comes from the marts. (Not built with Altair: importing it and building its spec objects
cost about 0.55 s of every report, most of its time once its charts are cached;
tests/test_html_report.py validates each spec against Vega-Lite's JSON schema instead.)

Drawing is most of the report's cost (vl-convert starts a JavaScript engine, then draws each
chart): with a `cache` folder (the nightly build's), a chart whose spec, data included, is the
same as in the last report is not drawn again: its SVG is read back, keyed by a hash of the
spec and the vl-convert version. So every chart's rows are read in a fixed order: a warehouse
built again returns its tables' rows in any order, and unchanged data must give the same spec.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from feedback.analytics import (
    get_conversion_funnel,
    get_conversion_funnels,
    get_stage_performances,
    name_key,
)
from feedback.atomic import Staged, refuse_to_replace, write_atomic
from feedback.feeders import wilson
from feedback.marts import open_marts, records, require_marts
from ingest.stamps import utc_now

WIDTH = 560
STEPS = (
    "processes_started",
    "phone_screen_entered",
    "technical_entered",
    "onsite_entered",
    "offers_extended",
    "offers_accepted",
)
STEP_LABELS = ("started", "phone screen", "technical", "onsite", "offer", "accepted")
# One colour per feeder in every chart: feeders in name order take the palette in order.
PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#eeca3b",
    "#9d755d",
    "#ff9da6",
    "#bab0ac",
)
ALL_FEEDERS = "all feeders"
ALL_FEEDERS_COLOR = "#222222"
# Outcomes get colours no feeder has, so a colour always means one thing on the page.
STATUS_COLORS = {
    "offer_accepted": "#1b9e77",
    "offer_declined": "#d95f02",
    "rejected_by_company": "#7570b3",
    "candidate_withdrew": "#a6a6a6",
}
SMALL_N = 10  # heatmap cells and bars with fewer processes are marked as unreliable
# The Vega-Lite version the specs are written for, and the view size Vega-Lite's Python
# wrapper (Altair) sets by default: the charts were drawn with it, and look the same
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.4.1.json"
VIEW_SIZE = {"continuousWidth": 300, "continuousHeight": 300}
Spec = dict[str, Any]  # a Vega-Lite spec (JSON)


def feeder_colors(con) -> dict[str, str]:
    """feeder -> colour, the same in every chart (and in the legend of each). Every feeder a
    chart shows: the trend also has feeders of earlier feedback runs that the marts no longer
    know (all their processes moved, or their spelling changed); left out, each took the
    colour of another feeder (Vega's ordinal scale cycles its range), with no legend entry."""
    feeders = sorted(set(_marts_feeders(con)) | {r["feeder_source"] for r in trend_rows(con)})
    return {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(feeders)}


def _marts_feeders(con) -> list[str]:
    return [
        r["feeder_source"] for r in records(con, "select feeder_source from mart_feeder_conversion")
    ]


def trend_rows(con) -> list[dict[str, Any]]:
    """(feeder_source, written_at, conversion_rate) of every feedback run, each feeder named as
    the marts spell it now. feeders.json, and so the run log, keeps the key the file has for a
    feeder when the marts' most frequent spelling of it changes (`Referral` -> `referral`,
    feedback.service.keep_file_keys): the trend drew it as `Referral`, in another colour than
    `referral` in every other chart. A logged name the marts no longer spell is the one marts
    spelling equal to it by name_key (none or several: kept as logged); a run that logged
    both names keeps the row logged under the marts' spelling."""
    current = _marts_feeders(con)
    spellings: dict[str, list[str]] = {}
    for name in current:
        spellings.setdefault(name_key(name), []).append(name)

    def spelled(name: str) -> str:
        same = spellings.get(name_key(name), [])
        return same[0] if name not in current and len(same) == 1 else name

    logged = records(
        con,
        "select feedback_run_id, feeder_source, written_at, "
        "(metrics->>'conversion_rate')::double as conversion_rate "
        "from stg_itrack__feedback_runs order by written_at, feeder_source, feedback_run_id",
    )
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for row in logged:
        run, name = row.pop("feedback_run_id"), row["feeder_source"]
        row["feeder_source"] = spelled(name)
        if (run, row["feeder_source"]) not in kept or name == row["feeder_source"]:
            kept[run, row["feeder_source"]] = row
    return sorted(kept.values(), key=lambda r: (r["written_at"], r["feeder_source"]))


def overall_label(feeders: list[str]) -> str:
    """The label of the funnel's overall line: `all feeders`, or `all feeders (overall)`,
    `all feeders (overall 2)`, ... when a feeder has that name as names are matched (any case,
    spacing or Unicode form): never a feeder's name, so a feeder called "All Feeders" keeps its
    own line, colour and legend entry instead of being drawn into the overall line."""
    taken = {name_key(f) for f in feeders}
    label, n = ALL_FEEDERS, 1
    while name_key(label) in taken:
        label = f"{ALL_FEEDERS} (overall{f' {n}' if n > 1 else ''})"
        n += 1
    return label


def _feeder_scale(colors: dict[str, str], overall: str | None = None) -> Spec:
    domain = [*colors, *([overall] if overall is not None else [])]
    colours = [*colors.values(), *([ALL_FEEDERS_COLOR] if overall is not None else [])]
    return {"domain": domain, "range": colours}


FIELD_TYPES = {"N": "nominal", "Q": "quantitative", "T": "temporal"}


def _field(shorthand: str, **properties: Any) -> Spec:
    """An encoding channel of a field: `"name:Q"` (Vega-Lite's type by its initial) or a bare
    name (x2/y2 take their main channel's type)."""
    name, _, kind = shorthand.partition(":")
    return {"field": name, **({"type": FIELD_TYPES[kind]} if kind else {}), **properties}


def _spec(rows: list[dict[str, Any]], title: str, height: int, **body: Any) -> Spec:
    """A chart of `rows` (the data inline, as JSON: dates become text) and `body` (its mark and
    encoding, or its layers), `WIDTH` wide."""
    data = {"values": json.loads(json.dumps(rows, default=str))}
    return {
        "config": {"view": dict(VIEW_SIZE)},  # a new dict per spec: callers may edit theirs
        "data": data,
        **body,
        "height": height,
        "title": title,
        "width": WIDTH,
        "$schema": VEGA_LITE_SCHEMA,
    }


def funnel_chart(con, colors: dict[str, str]) -> Spec:
    funnels = [get_conversion_funnel(db=con), *get_conversion_funnels("feeder_source", db=con)]
    rows = [f.to_dict() for f in funnels if f.total_started]
    overall = overall_label(list(colors))
    long = [
        {
            "group": overall if r["grain"] == "overall" else r["group_key"],
            "step": label,
            "order": i,
            "share": r[step] / r["processes_started"],
            "processes": r[step],
        }
        for r in rows
        for i, (step, label) in enumerate(zip(STEPS, STEP_LABELS, strict=True))
    ]
    base = {
        "color": _field("group:N", scale=_feeder_scale(colors, overall), title="feeder"),
        "x": _field("step:N", axis={"labelAngle": 0}, sort=list(STEP_LABELS), title=None),
        "y": _field("share:Q", axis={"format": "%"}, title="share of processes started"),
    }
    line = {"mark": {"type": "line", "point": True}, "encoding": base}
    counts = {
        "mark": {"type": "text", "dy": -8, "fontSize": 9},
        "encoding": {**base, "text": _field("processes:Q")},
        "transform": [{"filter": f"datum.group == '{overall}'"}],
    }
    return _spec(long, "Conversion funnel, overall and per feeder", 280, layer=[line, counts])


def feeder_ci_chart(con, colors: dict[str, str]) -> Spec:
    rows = records(
        con,
        "select feeder_source, conversion_rate, wilson_lower, wilson_upper, "
        "candidates_sourced from mart_feeder_conversion order by feeder_source",
    )
    order = [
        r["feeder_source"]
        for r in sorted(rows, key=lambda r: (-(r["conversion_rate"] or 0), r["feeder_source"]))
    ]
    for r in rows:
        r["label"] = f"n={r['candidates_sourced']}"
    base = {
        "color": _field("feeder_source:N", legend=None, scale=_feeder_scale(colors)),
        "y": _field("feeder_source:N", sort=order, title=None),
    }
    interval = _field(
        "wilson_lower:Q",
        axis={"format": "%"},
        title="placements per process started (95% Wilson interval)",
    )
    bars = {
        "mark": {"type": "rule", "strokeWidth": 3},
        "encoding": {**base, "x": interval, "x2": _field("wilson_upper")},
    }
    points = {
        "mark": {"type": "point", "filled": True, "opacity": 1, "size": 90},
        "encoding": {**base, "x": _field("conversion_rate:Q")},
    }
    labels = {
        "mark": {"type": "text", "align": "left", "color": "#555", "dx": 6, "fontSize": 10},
        "encoding": {**base, "text": _field("label:N"), "x": _field("wilson_upper:Q")},
    }
    return _spec(
        rows,
        "Feeder conversion rate with confidence interval, best first",
        30 * max(len(rows), 3),
        layer=[bars, points, labels],
    )


def heatmap_chart(con) -> Spec:
    rows = records(
        con,
        "select feeder_source, company_name, processes_started, offers_extended, offer_rate "
        "from mart_conversion_funnel where grain = 'feeder_company' "
        "order by feeder_source, company_name",
    )
    for r in rows:
        small = r["processes_started"] < SMALL_N
        r["label"] = f"{r['offers_extended']}/{r['processes_started']}" + ("*" if small else "")
        r["reliable"] = "no" if small else "yes"
    base = {
        "x": _field("feeder_source:N", axis={"labelAngle": 0, "labelLimit": 90}, title="feeder"),
        "y": _field("company_name:N", title="company"),
    }
    rate = _field(
        "offer_rate:Q",
        legend={"format": "%"},
        scale={"domain": [0, 1], "scheme": "viridis"},
        title="offer rate",
    )
    reliable = _field(
        "reliable:N", legend=None, scale={"domain": ["yes", "no"], "range": [1.0, 0.45]}
    )
    cells = {
        "mark": {"type": "rect", "stroke": "white"},
        "encoding": {"color": rate, "opacity": reliable, **base},
    }
    dark = {"condition": {"test": "datum.offer_rate > 0.5", "value": "black"}, "value": "white"}
    counts = {
        "mark": {"type": "text", "fontSize": 10},
        "encoding": {"color": dark, "text": _field("label:N"), **base},
    }
    return _spec(
        rows,
        "Offer rate by company and feeder (offers/processes in each cell)",
        22 * max(len({r["company_name"] for r in rows}), 3),
        layer=[cells, counts],
    )


MAX_BINS = 30
# What the charts read: a warehouse file without them (the raw store, an empty file) is refused
# in one line instead of an "unexpected CatalogException"
REPORT_TABLES = (
    "fct_interview_processes",
    "mart_conversion_funnel",
    "mart_feeder_conversion",
    "mart_stage_performance",
    "stg_itrack__feedback_runs",
)


def nice_step(lo: float, hi: float) -> int:
    """The smallest bin width of 1, 2 or 5 x 10^k (whole days) giving at most MAX_BINS bins."""
    magnitude = 1
    while True:
        for base in (1, 2, 5):
            step = base * magnitude
            if math.floor(hi / step) - math.floor(lo / step) + 1 <= MAX_BINS:
                return step
        magnitude *= 10


def decision_bins(con) -> list[dict[str, Any]]:
    """Processes per (days-to-decision bin, outcome), counted in SQL: the report carries at most
    MAX_BINS x outcomes numbers whatever the warehouse size, never one value per process. Bins
    are Vega-Lite's "nice" ones: a width of 1, 2 or 5 times a power of ten, at most MAX_BINS."""
    lo, hi = con.execute(
        "select min(days_to_decision), max(days_to_decision) from fct_interview_processes"
    ).fetchone()
    if lo is None:
        return []
    step = nice_step(lo, hi)
    return records(
        con,
        """select floor(days_to_decision / $step) * $step as bin_start,
                  floor(days_to_decision / $step) * $step + $step as bin_end,
                  status, count(*) as processes
           from fct_interview_processes where days_to_decision is not null
           group by all order by all""",
        {"step": step},
    )


def time_to_decision_chart(con) -> Spec:
    outcomes = {"domain": list(STATUS_COLORS), "range": list(STATUS_COLORS.values())}
    encoding = {
        "color": _field("status:N", scale=outcomes, title="outcome"),
        "x": _field(
            "bin_start:Q",
            axis={"labelAngle": 0, "labelExpr": "datum.value + ' d'"},
            bin="binned",
            title="days from start to decision",
        ),
        "x2": _field("bin_end"),
        "y": _field("processes:Q", axis={"format": "d"}, stack="zero", title="processes"),
    }
    return _spec(
        decision_bins(con), "Time to decision", 240, mark={"type": "bar"}, encoding=encoding
    )


STAGE_ORDER = ["phone_screen", "technical", "onsite", "other"]


def stage_pass_chart(con) -> Spec:
    rows = [
        {"stage_type": s.name, **s.model_dump(include={"pass_rate", "stages", "passed", "failed"})}
        for s in get_stage_performances(db=con)
    ]
    for r in rows:
        decided = (r["passed"] or 0) + (r["failed"] or 0)
        r["lower"], r["upper"] = wilson(r["passed"] or 0, decided)
        r["label"] = f"n={decided}" + ("*" if decided < SMALL_N else "")
    x = _field("stage_type:N", axis={"labelAngle": 0}, sort=STAGE_ORDER, title=None)
    rate = _field(
        "pass_rate:Q",
        axis={"format": "%"},
        scale={"domain": [0, 1]},
        title="pass rate (95% Wilson interval)",
    )
    tooltip = [_field("stages:Q"), _field("passed:Q"), _field("failed:Q")]
    bars = {
        "mark": {"type": "bar", "color": "#4c78a8"},
        "encoding": {"tooltip": tooltip, "x": x, "y": rate},
    }
    whiskers = {
        "mark": {"type": "rule", "color": "#222", "strokeWidth": 2},
        "encoding": {"x": x, "y": _field("lower:Q"), "y2": _field("upper")},
    }
    labels = {
        "mark": {"type": "text", "baseline": "bottom", "dy": -6, "fontSize": 10},
        "encoding": {"text": _field("label:N"), "x": x, "y": _field("upper:Q")},
    }
    return _spec(rows, "Stage pass rates (n = decided stages)", 220, layer=[bars, whiskers, labels])


def trend_chart(con, colors: dict[str, str]) -> Spec:
    rows = trend_rows(con)
    encoding = {
        "color": _field("feeder_source:N", scale=_feeder_scale(colors), title="feeder"),
        "x": _field(
            "written_at:T", axis={"format": "%d %b %Y", "labelAngle": 0}, title="feedback run"
        ),
        "y": _field("conversion_rate:Q", axis={"format": "%"}, title="conversion rate"),
    }
    mark = {"type": "line", "point": {"filled": True, "size": 70}}
    return _spec(rows, "Feeder conversion over feedback runs", 240, mark=mark, encoding=encoding)


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
        "interval, best first: short bars are well measured, long ones need more data "
        "(n = processes started). Each feeder has the same colour in every chart.",
    ),
    (
        "company-feeder-heatmap",
        heatmap_chart,
        f"Offers extended per process started, for every company and feeder pair seen; "
        f"each cell shows offers/processes, and cells with fewer than {SMALL_N} processes are "
        "faded and starred (*): their rate says little.",
    ),
    (
        "time-to-decision",
        time_to_decision_chart,
        "Days from the start of a process to its final status, coloured by that status.",
    ),
    (
        "stage-pass-rates",
        stage_pass_chart,
        "Passed / (passed + failed) per stage type (other: names not mapped in seed stage_types), "
        "with the 95% Wilson interval; "
        f"n is the number of decided stages (* fewer than {SMALL_N}).",
    ),
    (
        "feeder-trend",
        trend_chart,
        "Each feeder's conversion rate as written by every feedback "
        "run (one point per run that changed it).",
    ),
)


FEEDER_CHARTS = ("funnel", "feeder-conversion", "feeder-trend")  # coloured by feeder


def _svg(spec: dict[str, Any], cache: Path | None, used: set[Path]) -> str:
    """The SVG of a Vega-Lite spec: drawn by vl-convert, or read from `cache` when the same spec
    was drawn by the same vl-convert version before."""
    if cache is None:
        import vl_convert

        return vl_convert.vegalite_to_svg(spec)
    import hashlib
    from importlib.metadata import version

    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    key = hashlib.sha256(f"{version('vl-convert-python')}\0{text}".encode()).hexdigest()
    path = cache / f"{key}.svg"
    used.add(path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    import vl_convert

    svg = vl_convert.vegalite_to_svg(spec)
    cache.mkdir(parents=True, exist_ok=True)
    write_atomic(path, svg.encode("utf-8"), keep_backup=False)
    return svg


def chart_specs(con) -> list[tuple[str, Spec, str]]:
    """(id, Vega-Lite spec, caption) of every chart, in the report's order."""
    colors = feeder_colors(con)
    return [
        (chart_id, build(con, colors) if chart_id in FEEDER_CHARTS else build(con), caption)
        for chart_id, build, caption in CHARTS
    ]


def render(warehouse: Path, cache: Path | None = None, shown: str | None = None) -> str:
    """The report as one HTML string (inline SVG, no scripts, no external resources). `cache`:
    a folder of the charts drawn last time (see the module's docstring). `shown`: the file
    name it says it was built from (the build renders its private file before publishing it)."""
    figures = []
    used: set[Path] = set()
    with open_marts(warehouse) as con:
        require_marts(con, warehouse, REPORT_TABLES)
        totals = records(
            con,
            "select count(*) as processes, count(*) filter (where "
            "is_placement) as placements, count(distinct company_name) as "
            "companies from fct_interview_processes",
        )[0]
        for chart_id, spec, caption in chart_specs(con):
            # no JSON-schema validation here (it costs more than drawing): the specs are fixed
            # code, validated by tests/test_html_report.py
            svg = _svg(spec, cache, used)
            figures.append(
                f'<figure id="chart-{chart_id}">{svg}'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    for stale in cache.glob("*.svg") if cache is not None and cache.is_dir() else []:
        if stale not in used:  # only this report's charts are kept
            stale.unlink(missing_ok=True)
    summary = summary_text(totals)
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
{html.escape(shown or warehouse.name)}.</p></header>
{"".join(figures)}
</body></html>
"""


def summary_text(totals: dict[str, int]) -> str:
    """The header's counts, singular for one: a one-process warehouse (a first build) read
    "1 interview processes, 0 placements, 1 companies"."""
    return ", ".join(
        f"{totals[key]} {one if totals[key] == 1 else many}"
        for key, one, many in (
            ("processes", "interview process", "interview processes"),
            ("placements", "placement", "placements"),
            ("companies", "company", "companies"),
        )
    )


def write_report(warehouse: Path, out: Path, cache: Path | None = None) -> Path:
    _refuse_to_replace(out)
    write_atomic(out, render(warehouse, cache).encode("utf-8"), keep_backup=False)
    return out


def stage_report(warehouse: Path, out: Path, cache: Path | None, shown: str) -> Staged:
    """The report of `warehouse` staged for `out` (a synced temp file beside it, renamed by the
    build's publish with the other outputs): rendered from the build file before it is
    published, naming it `shown` (the published warehouse's name)."""
    _refuse_to_replace(out)
    return Staged(out, render(warehouse, cache, shown).encode("utf-8"), keep_backup=False)


def _refuse_to_replace(out: Path) -> None:
    """A report replaces only a report (or an empty file): `--out` naming the warehouse,
    feeders.json or any other file by mistake replaced it with HTML, without a backup."""
    refuse_to_replace(out, _is_html, "an HTML report", "--out")


def _is_html(head: bytes) -> bool:
    return head.lower().startswith((b"<!doctype html", b"<html"))

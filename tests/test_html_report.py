"""The HTML report as an analyst sees it: every chart drawn (headless Chromium screenshots, pixel
counts of the data colours), each feeder the same colour in every chart, the interval chart
sorted by rate, heatmap cells with their counts and small-n marks, stage bars with n and an
interval, axis ticks in their unit."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import jsonschema
import pytest
from PIL import Image

from feedback.html_report import (
    ALL_FEEDERS_COLOR,
    FEEDER_CHARTS,
    PALETTE,
    SMALL_N,
    STATUS_COLORS,
    VEGA_LITE_SCHEMA,
    chart_specs,
    feeder_colors,
    funnel_chart,
    overall_label,
    write_report,
)
from feedback.html_report import CHARTS as REPORT_CHARTS
from feedback.marts import open_marts
from itrack.generate import generate
from itrack.pipeline import run_build
from tests.conftest import CHARTS, read
from tests.factories import write_jsonl


@pytest.fixture(scope="module")
def report(tmp_path_factory, shared_plans: Path) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("html")
    generate(root / "in", 700, seed=11)
    return built_report(root, [root / "in"], shared_plans)


def vega_lite_errors(spec: dict) -> list[str]:
    """What Vega-Lite's JSON schema (the copy of version 6 Altair ships, the major version the
    specs name) finds wrong with `spec`."""
    from altair.vegalite.v6.schema import SCHEMA_URL, load_schema

    assert spec["$schema"] == VEGA_LITE_SCHEMA
    assert SCHEMA_URL.rsplit("/", 1)[1].startswith("v6.") and "/v6." in VEGA_LITE_SCHEMA
    schema = load_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [error.message for error in validator.iter_errors(spec)]


def test_every_chart_is_a_valid_vega_lite_spec(report):
    """The report draws the specs without validating them (slow): checked here, against the
    schema, and a spec with one wrong channel type is refused by the same check."""
    db, _html = report
    with open_marts(db) as con:
        specs = chart_specs(con)
        assert [chart_id for chart_id, _spec, _caption in specs] == list(CHARTS)
        for chart_id, spec, _caption in specs:
            assert vega_lite_errors(spec) == [], chart_id
        spec = funnel_chart(con, feeder_colors(con))
    spec["layer"][0]["encoding"]["x"]["type"] = "nominl"
    assert len(vega_lite_errors(spec)) == 1


def test_the_specs_do_not_depend_on_the_order_of_the_rows(report, tmp_path):
    """A warehouse built again returns its tables' rows in any order (dbt builds them on
    several threads): the charts' specs, and so the chart cache's keys, stay the same."""
    db, _html = report

    def specs(path: Path) -> list[tuple[str, dict, str]]:
        with open_marts(path) as con:
            return chart_specs(con)

    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(db, copy)
    before = specs(copy)
    con = duckdb.connect(str(copy))
    tables = con.execute(
        "select table_name from information_schema.tables "
        "where table_schema = 'main' and table_type = 'BASE TABLE'"
    ).fetchall()
    for (table,) in tables:
        con.execute(f"create or replace table {table} as select * from {table} order by rowid desc")
    con.close()
    assert len(tables) > 10 and specs(copy) == before


mart = read


def figure(html: str, chart: str) -> str:
    found = re.search(rf'<figure id="chart-{chart}">(.*?)</figure>', html, re.S)
    assert found, chart
    return found.group(1)


def expected_colors(db: Path) -> dict[str, str]:
    feeders = [
        r[0] for r in mart(db, "select feeder_source from mart_feeder_conversion order by 1")
    ]
    return {f: PALETTE[i] for i, f in enumerate(feeders)}


def mark_colors(svg: str, key: str) -> dict[str, set[str]]:
    """feeder -> the fill/stroke colours of the marks whose label names it (`key: feeder`)."""
    found: dict[str, set[str]] = {}
    for tag in re.findall(r"<(?:path|line|text) [^>]*aria-label=\"[^\"]*\"[^>]*>", svg):
        label = re.search(r'aria-label="([^"]*)"', tag).group(1)
        name = re.search(rf"(?:^|; ){key}: ([^;]+)", label)
        if not name:
            continue
        for attr in ("fill", "stroke"):
            colour = re.search(rf' {attr}="(#[0-9a-f]{{6}})"', tag)
            if colour:
                found.setdefault(name.group(1), set()).add(colour.group(1))
    return found


def test_each_feeder_has_one_colour_in_every_chart(report):
    db, html = report
    colours = expected_colors(db)
    assert len(colours) == 6
    keys = {"funnel": "feeder", "feeder-conversion": "feeder_source", "feeder-trend": "feeder"}
    assert set(keys) == set(FEEDER_CHARTS)
    for chart, key in keys.items():
        seen = mark_colors(figure(html, chart), key)
        expected = {f: {c} for f, c in colours.items()}
        if chart == "funnel":
            expected["all feeders"] = {ALL_FEEDERS_COLOR}
        assert seen == expected, chart


DAY = {"created_at": "2025-01-01T00:00:00Z"}


def small_process(n: int, **fields: str) -> dict:
    """Process n (1-9) of candidate `c<n>` at company X."""
    return {
        "id": f"00000000-0000-4000-8000-00000000000{n}",
        "candidate_id": f"c{n}",
        "company_name": "X",
        "role_title": "R",
        **DAY,
        **fields,
    }


def built_report(tmp_path: Path, folders: list[Path], plans: Path) -> tuple[Path, str]:
    """The folders ingested and built in turn into one warehouse, then its HTML report."""
    db = tmp_path / "warehouse.duckdb"
    for folder in folders:
        run_build(
            [folder],
            db=db,
            take_backup=False,
            write_html=False,
            note=lambda _m: None,
            plan_cache=plans,
        )
    return db, write_report(db, tmp_path / "report.html").read_text()


def test_a_feeder_only_earlier_feedback_runs_know_keeps_its_own_colour(tmp_path, shared_plans):
    """Found by the exploratory analytics run: the colours were given to the feeders of the
    marts only, so a feeder the trend still shows from earlier feedback runs (its processes
    since moved to another feeder) took another feeder's colour, unlisted in the legend. Every
    feeder a chart shows has its own colour, in name order."""
    first, then = tmp_path / "in", tmp_path / "next"
    first.mkdir()
    then.mkdir()
    write_jsonl(
        first / "candidates.jsonl",
        [
            {"id": "c1", "full_name": "A", "feeder_source": "alpha", **DAY},
            {"id": "c2", "full_name": "B", "feeder_source": "beta", **DAY},
        ],
    )
    write_jsonl(first / "processes.jsonl", [small_process(1), small_process(2)])
    moved = {"id": "c2", "full_name": "B", "feeder_source": "gamma", **DAY}
    write_jsonl(then / "candidates.jsonl", [{**moved, "updated_at": "2025-01-02T00:00:00Z"}])
    _db, html = built_report(tmp_path, [first, then], shared_plans)
    seen = mark_colors(figure(html, "feeder-trend"), "feeder")
    assert seen == {"alpha": {PALETTE[0]}, "beta": {PALETTE[1]}, "gamma": {PALETTE[2]}}


def test_a_feeder_whose_spelling_changed_keeps_its_name_and_colour_in_the_trend(
    tmp_path, shared_plans
):
    """Found by checking the report by hand: feeders.json, and so the feedback runs' log,
    keeps the key it has for a feeder when the marts' most frequent spelling of it changes
    (`Referral` twice, `referral` once; then two more `referral`), so the trend drew the feeder
    as `Referral` in one colour while every other chart drew `referral` in another, two legend
    entries for one feeder. The trend names each logged feeder as the marts spell it now."""
    first, then = tmp_path / "in", tmp_path / "next"
    first.mkdir()
    then.mkdir()
    feeders = {
        1: "Referral",
        2: "Referral",
        3: "referral",
        4: "alpha",
        5: "referral",
        6: "referral",
    }
    write_jsonl(
        first / "candidates.jsonl",
        [{"id": f"c{n}", "full_name": "A", **DAY} for n in feeders],
    )
    for folder, numbers in ((first, (1, 2, 3, 4)), (then, (5, 6))):
        write_jsonl(
            folder / "processes.jsonl",
            [small_process(n, feeder_source=feeders[n]) for n in numbers],
        )
    db, html = built_report(tmp_path, [first, then], shared_plans)
    runs = read(db, "select distinct feeder_source from stg_itrack__feedback_runs order by 1")
    assert runs == [("Referral",), ("alpha",)]  # logged under feeders.json's key, kept
    expected = {"alpha": {PALETTE[0]}, "referral": {PALETTE[1]}}
    assert mark_colors(figure(html, "feeder-trend"), "feeder") == expected
    assert mark_colors(figure(html, "feeder-conversion"), "feeder_source") == expected
    assert mark_colors(figure(html, "funnel"), "feeder") == {
        **expected,
        "all feeders": {ALL_FEEDERS_COLOR},
    }
    with open_marts(db) as con:
        [trend] = [spec for chart, spec, _caption in chart_specs(con) if chart == "feeder-trend"]
    # night 1 logged both feeders, night 2 the one that changed (3 -> 5 processes)
    points = [r["feeder_source"] for r in trend["data"]["values"]]
    assert points == ["alpha", "referral", "referral"]


def test_a_feeder_named_all_feeders_is_not_drawn_into_the_overall_line(tmp_path, shared_plans):
    """Found by an exploratory run: the funnel's overall line is labelled `all feeders`, so a
    feeder of that name (here typed `all  feeders`) shared its label: one line zigzagged
    through both rows in one colour. The overall line takes a label no feeder has (as names
    are matched: any case or spacing): each line keeps its own colour."""
    assert overall_label(["alpha"]) == "all feeders"
    assert overall_label(["All Feeders"]) == "all feeders (overall)"
    assert overall_label(["ALL FEEDERS", "all feeders (Overall)"]) == "all feeders (overall 2)"
    folder = tmp_path / "in"
    folder.mkdir()
    feeders = {1: "all  feeders", 2: "alpha", 3: "alpha"}
    write_jsonl(
        folder / "processes.jsonl",
        [small_process(n, feeder_source=f) for n, f in feeders.items()],
    )
    write_jsonl(
        folder / "candidates.jsonl", [{"id": f"c{n}", "full_name": "A", **DAY} for n in feeders]
    )
    db, html = built_report(tmp_path, [folder], shared_plans)
    assert mark_colors(figure(html, "funnel"), "feeder") == {
        "all feeders": {PALETTE[0]},
        "alpha": {PALETTE[1]},
        "all feeders (overall)": {ALL_FEEDERS_COLOR},
    }
    with open_marts(db) as con:
        spec = funnel_chart(con, feeder_colors(con))
    started = {(r["group"], r["processes"]) for r in spec["data"]["values"] if r["order"] == 0}
    assert started == {("all feeders (overall)", 3), ("all feeders", 1), ("alpha", 2)}


def test_interval_chart_is_sorted_by_rate(report):
    db, html = report
    svg = figure(html, "feeder-conversion")
    points = re.findall(
        r'aria-label="conversion_rate: [^;]*; feeder_source: ([^"]+)" role="graphics-symbol" '
        r'aria-roledescription="point" transform="translate\([^,]+,([0-9.]+)\)',
        svg,
    )
    top_to_bottom = [name for name, _y in sorted(points, key=lambda p: float(p[1]))]
    by_rate = [
        r[0]
        for r in mart(
            db,
            "select feeder_source from mart_feeder_conversion "
            "order by conversion_rate desc, feeder_source",
        )
    ]
    assert top_to_bottom == by_rate
    for name, n in mart(db, "select feeder_source, candidates_sourced from mart_feeder_conversion"):
        assert f">n={n}</text>" in svg, name


def test_heatmap_cells_show_counts_and_mark_small_n(report):
    db, html = report
    svg = figure(html, "company-feeder-heatmap")
    cells = mart(
        db,
        "select offers_extended, processes_started from mart_conversion_funnel "
        "where grain = 'feeder_company'",
    )
    texts = re.findall(r"<text[^>]*>([0-9]+/[0-9]+\*?)</text>", svg)
    expected = sorted(f"{o}/{n}" + ("*" if n < SMALL_N else "") for o, n in cells)
    assert sorted(texts) == expected
    assert any(t.endswith("*") for t in texts) and any(not t.endswith("*") for t in texts)


def test_stage_bars_show_n_and_an_interval(report):
    db, html = report
    svg = figure(html, "stage-pass-rates")
    rows = mart(
        db,
        "select group_key, passed, passed + failed from mart_stage_performance "
        "where grain = 'stage_type'",
    )
    whiskers = dict(
        re.findall(
            r'aria-label="stage_type: ([a-z_]+); lower: [0-9.e-]+; upper: [0-9.e-]+" '
            r'role="graphics-symbol" aria-roledescription="(rule) mark"',
            svg,
        )
    )
    assert sorted(whiskers) == sorted(r[0] for r in rows)  # one interval per bar
    # the unmapped names' bar is among them, and the caption says what it is (it said "per
    # canonical stage" above a bar named other)
    assert "other" in whiskers
    caption = re.search(r'id="chart-stage-pass-rates".*?<figcaption>(.*?)</figcaption>', html, re.S)
    assert caption.group(1).startswith(
        "Passed / (passed + failed) per stage type (other: names not mapped in seed stage_types)"
    )
    for stage, passed, decided in rows:
        assert f">n={decided}{'*' if decided < SMALL_N else ''}</text>" in svg
        low, high = map(
            float,
            re.search(
                rf"stage_type: {stage}; lower: ([0-9.e-]+); upper: ([0-9.e-]+)", svg
            ).groups(),
        )
        # 95% Wilson score interval, written out independently of the report's code, with
        # the z of mart_feeder_conversion and feeders.json: one 95% interval in every output
        z, n, p = 1.96, decided, passed / decided
        spread = z * ((p * (1 - p) + z * z / (4 * n)) / n) ** 0.5
        assert low == pytest.approx((p + z * z / (2 * n) - spread) / (1 + z * z / n), abs=1e-9)
        assert high == pytest.approx((p + z * z / (2 * n) + spread) / (1 + z * z / n), abs=1e-9)


def test_axis_ticks_are_in_their_unit(report):
    _db, html = report
    assert "values from 0% to 100%" in figure(html, "funnel")
    assert re.search(r">[0-9]+ d</text>", figure(html, "time-to-decision"))
    assert re.search(r">[0-9]+%</text>", figure(html, "feeder-conversion"))
    assert re.search(r">[0-9]{2} [A-Z][a-z]{2} [0-9]{4}</text>", figure(html, "feeder-trend"))


def screenshot(html_text: str, folder: Path, name: str, height: int = 700) -> Image.Image:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is required: `make test` installs Debian's chromium"
    page = folder / f"{name}.html"
    page.write_text(html_text)
    shot = folder / f"{name}.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--hide-scrollbars",
            f"--user-data-dir={folder / 'profile'}",
            f"--window-size=800,{height}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return Image.open(shot).convert("RGB")


def pixels_of(image: Image.Image, colour: str, tolerance: int = 6) -> int:
    target = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(
        n
        for n, rgb in image.getcolors(maxcolors=1 << 20)
        if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True))
    )


def colourful_pixels(image: Image.Image) -> int:
    """Pixels that are neither white, black nor grey: drawn data, not axes or text."""
    return sum(
        n for n, (r, g, b) in image.getcolors(maxcolors=1 << 20) if max(r, g, b) - min(r, g, b) > 40
    )


MIN_DRAWN = {"feeder-trend": 150}  # one feedback run: one point per feeder


def test_every_chart_is_drawn_in_chromium_with_the_feeder_colours(report, tmp_path):
    db, html = report
    colours = expected_colors(db)
    # legends hidden: only drawn data may count (a legend shows its colours with no data)
    head = html[: html.index("</header>") + len("</header>")].replace(
        "</style>", ".role-legend { display: none; }</style>"
    )
    for chart in CHARTS:
        alone = f'{head}<figure id="chart-{chart}">{figure(html, chart)}</figure></body></html>'
        image = screenshot(alone, tmp_path, chart)
        assert colourful_pixels(image) > MIN_DRAWN.get(chart, 1500), f"{chart}: nothing drawn"
        if chart in FEEDER_CHARTS:
            for feeder, colour in colours.items():
                assert pixels_of(image, colour) >= 25, f"{chart}: {feeder} ({colour}) not drawn"
        if chart == "time-to-decision":
            drawn = [s for s, c in STATUS_COLORS.items() if pixels_of(image, c) >= 25]
            statuses = mart(
                db,
                "select distinct status from fct_interview_processes "
                "where days_to_decision is not null",
            )
            assert sorted(drawn) == sorted(r[0] for r in statuses)
    whole = screenshot(html, tmp_path, "whole", height=3400)
    assert colourful_pixels(whole) > 20_000


def test_a_chart_with_no_data_or_another_colour_fails_the_checks(report, tmp_path):
    """The checks above can fail: an empty chart and a swapped colour are caught."""
    db, html = report
    colours = expected_colors(db)
    head = html[: html.index("</header>") + len("</header>")].replace(
        "</style>", ".role-legend { display: none; }</style>"
    )
    svg = figure(html, "feeder-conversion")
    emptied = re.sub(r'<path aria-label="conversion_rate[^>]*>', "", svg)
    emptied = re.sub(r'<line[^>]*stroke="#[0-9a-f]{6}"[^>]*>', "", emptied)
    emptied = re.sub(r'<path [^>]*aria-roledescription="rule"[^>]*>', "", emptied)
    image = screenshot(f"{head}<figure>{emptied}</figure></body></html>", tmp_path, "emptied")
    first = next(iter(colours.values()))
    assert pixels_of(image, first) < 25
    swapped = svg.replace(first, "#000001")
    seen = mark_colors(swapped, "feeder_source")
    assert seen == mark_colors(swapped, "feeder_source") and seen
    assert seen != {f: {c} for f, c in colours.items()}


def same_drawing(svg: str, other: str) -> bool:
    return re.sub(r"gradient_\d+", "gradient", svg) == re.sub(r"gradient_\d+", "gradient", other)


def test_a_cached_chart_is_the_chart_drawn(report, tmp_path):
    """The nightly build's chart cache: a report drawn with it is the report drawn without it,
    figure for figure; a chart whose spec changed is drawn again, and only the current
    report's charts stay in the cache."""
    from feedback import html_report

    db, html = report
    cache = tmp_path / "charts"
    first = write_report(db, tmp_path / "first.html", cache).read_text()
    stored = sorted(cache.glob("*.svg"))
    assert len(stored) == len(REPORT_CHARTS)
    for chart in CHARTS:  # (vl-convert numbers gradients per process: gradient_0, _1, ...)
        assert same_drawing(figure(first, chart), figure(html, chart))
    funnel = [p for p in stored if figure(first, "funnel").startswith(p.read_text())]
    assert len(funnel) == 1
    # a planted SVG under the funnel's key is what the next report shows: read, not drawn
    funnel[0].write_text("<svg>planted</svg>", encoding="utf-8")
    second = write_report(db, tmp_path / "second.html", cache).read_text()
    assert figure(second, "funnel").startswith("<svg>planted</svg>")
    for chart in CHARTS[1:]:
        assert same_drawing(figure(second, chart), figure(html, chart))
    assert sorted(cache.glob("*.svg")) == stored

    # the funnel's spec changes: it is drawn again, its old SVG leaves the cache
    original = html_report.CHARTS
    funnel_id, funnel_build, funnel_caption = original[0]
    assert funnel_id == "funnel"
    html_report.CHARTS = (
        (
            funnel_id,
            lambda con, colors: {**funnel_build(con, colors), "title": "Funnel, changed"},
            funnel_caption,
        ),
        *original[1:],
    )
    try:
        third = write_report(db, tmp_path / "third.html", cache).read_text()
    finally:
        html_report.CHARTS = original
    assert "planted" not in third and "Funnel, changed" in figure(third, "funnel")
    now = sorted(cache.glob("*.svg"))
    assert len(now) == len(REPORT_CHARTS)
    assert set(stored) - set(now) == {funnel[0]} and len(set(now) - set(stored)) == 1

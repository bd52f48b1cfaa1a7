"""`itrack report ...` read the marts (values equal the mart rows), refuse unknown names with
the closest ones, survive hostile names; the HTML report renders every chart offline."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from itrack.cli.main import app
from tests.conftest import CHARTS, assert_exit, read

runner = CliRunner()


@pytest.fixture
def wh(published_300) -> Path:
    return published_300


def report(wh: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["report", *args, "--db", str(wh)])
    if result.exit_code != 0:  # a handled error exits; anything else escaped the handler
        assert type(result.exception) is SystemExit, repr(result.exception)
    return result.exit_code, result.output


def report_cli(wh: Path, *args: str) -> tuple[int, str]:
    """`itrack ARGS --db WH` (a command other than `report`)."""
    result = runner.invoke(app, [*args, "--db", str(wh)])
    if result.exit_code != 0:
        assert type(result.exception) is SystemExit, repr(result.exception)
    return result.exit_code, result.output


mart = read


def test_funnel_json_is_the_mart(wh):
    code, out = report(wh, "funnel", "--format", "json")
    assert code == 0, out
    rows = json.loads(out)
    assert rows[0]["grain"] == "overall"
    expected = dict(
        mart(
            wh,
            "select group_key, processes_started from mart_conversion_funnel "
            "where grain in ('overall', 'feeder_source')",
        )
    )
    assert {r["group_key"]: r["processes_started"] for r in rows} == expected


def test_funnel_filters_pick_the_grain(wh):
    [(feeder, company)] = mart(
        wh,
        "select feeder_source, company_name from "
        "mart_conversion_funnel where grain = 'feeder_company' "
        "order by total_started desc limit 1",
    )
    code, out = report(wh, "funnel", "--feeder", feeder, "--company", company, "--format", "csv")
    assert code == 0, out
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert (row["grain"], row["group_key"]) == ("feeder_company", f"{feeder} @ {company}")
    [(cohort,)] = mart(
        wh, "select min(group_key) from mart_conversion_funnel where grain = 'cohort_month'"
    )
    code, out = report(wh, "funnel", "--cohort", cohort, "--format", "json")
    assert json.loads(out)[0]["group_key"] == cohort


@pytest.mark.parametrize(
    ("option", "kind"), [("--feeder", "feeder"), ("--company", "company"), ("--cohort", "cohort")]
)
def test_an_empty_filter_is_an_unknown_name_not_no_filter(wh, option, kind):
    """`report funnel --feeder ''` printed every funnel, as if no filter was given, where the
    Python API raises and the HTTP API answers 422 (found by an exploratory run)."""
    code, out = report(wh, "funnel", option, "")
    assert (code, out.split(";")[0]) == (1, f"error: no such {kind} ''")


def test_rejects_of_an_empty_run_id_is_an_unknown_run_and_limit_is_bounded(wh):
    """`rejects --run ''` listed the unresolved quarantine as if no run was given; a --limit
    past what DuckDB takes was its conversion error, naming no option."""
    from ingest.store.duckdb.store import raw_store_path

    code, out = report_cli(wh, "rejects", "--run", "")
    assert (code, out) == (1, f"error: no run '' in {raw_store_path(wh)}\n")
    code, out = report_cli(wh, "rejects", "--limit", "99999999999999999999")
    assert code == 2
    assert "Invalid value for '--limit': Input should be less than or equal to 1000000000" in out


def test_company_stage_and_feeder_reports(wh):
    code, out = report(wh, "company", "Stripe", "--format", "json")
    assert code == 0, out
    [row] = json.loads(out)
    [(sent, preferred)] = mart(
        wh,
        "select total_candidates_sent, preferred_feeders from "
        "mart_company_insights where company_name = 'Stripe'",
    )
    assert row["total_candidates_sent"] == sent
    assert row["preferred_feeders"] == json.loads(preferred)
    code, out = report(wh, "stage", "technical", "--format", "json")
    assert (
        json.loads(out)[0]["pass_rate"]
        == mart(wh, "select pass_rate from mart_stage_performance where group_key = 'technical'")[
            0
        ][0]
    )
    code, out = report(wh, "feeder", "referral")
    assert code == 0 and "referral" in out and "%" in out


@pytest.mark.parametrize(
    "args",
    [
        ["company", "Stripee"],
        ["feeder", "refferal"],
        ["funnel", "--company", "Strip"],
        ["stage", "tecnical"],
    ],
)
def test_unknown_names_get_the_closest_known(wh, args):
    code, out = report(wh, *args)
    assert code == 1
    assert re.search(r"no such (company|feeder|stage) '.*'; closest: ", out), out


@pytest.mark.parametrize(
    "name",
    ["'); drop table mart_company_insights; --", '=HYPERLINK("http://x","y")', "%' or 1=1 --"],
)
def test_hostile_names_are_only_values(wh, name):
    for args in (
        ["company", name],
        ["feeder", name],
        ["stage", name],
        ["funnel", "--company", name],
        ["funnel", "--feeder", name],
        ["funnel", "--cohort", name],
    ):
        code, out = report(wh, *args)
        assert code == 1 and "no such" in out
    assert mart(wh, "select count(*) from mart_company_insights")[0][0] == 10


def test_a_feeder_named_like_json_stays_its_name(tmp_path, shared_plans):
    """Only the mart's JSON column (top_rejection_reasons) is decoded: feeders named `[1]` and
    `{}` came out of `report feeder` as a list and an object (and as `1` in the table)."""
    from itrack.pipeline import run_build

    src = tmp_path / "in"
    src.mkdir()
    (src / "candidates.jsonl").write_text(
        '{"id": "c1", "full_name": "Ann", "feeder_source": "[1]", '
        '"created_at": "2025-01-01T00:00:00Z"}\n'
        '{"id": "c2", "full_name": "Bo", "feeder_source": "{}", '
        '"created_at": "2025-01-01T00:00:00Z"}\n'
    )
    (src / "processes.jsonl").write_text(
        '{"id": "11111111-1111-4111-8111-111111111111", "candidate_id": "c1", '
        '"company_name": "Acme", "role_title": "SWE", "created_at": "2025-02-01T10:00:00Z", '
        '"status": "rejected_by_company", "updated_at": "2025-02-11T10:00:00Z", '
        '"final_outcome": "weak sql"}\n'
        '{"id": "22222222-2222-4222-8222-222222222222", "candidate_id": "c2", '
        '"company_name": "Acme", "role_title": "SWE", "created_at": "2025-02-01T10:00:00Z", '
        '"status": "in_progress", "updated_at": "2025-02-01T10:00:00Z"}\n'
    )
    db = tmp_path / "warehouse.duckdb"
    run_build([src], db=db, take_backup=False, note=lambda _m: None, plan_cache=shared_plans)
    code, out = report(db, "feeder", "[1]", "--format", "json")
    assert code == 0, out
    [row] = json.loads(out)
    assert (row["feeder_source"], row["feeder_key"]) == ("[1]", "[1]")
    assert row["top_rejection_reasons"] == [{"reason": "weak sql", "count": 1}]
    code, out = report(db, "feeder", "{}", "--format", "csv")
    assert code == 0, out
    [row] = csv.DictReader(io.StringIO(out))
    assert (row["feeder_source"], row["top_rejection_reasons"]) == ("{}", "[]")
    code, out = report(db, "feeder", "[1]")
    assert code == 0, out
    assert out.splitlines()[:2] == ["feeder [1]:", "- feeder_source: [1]"]
    assert "  top_rejection_reasons: weak sql 1" in out.splitlines()


def plain_records(text: str) -> list[list[tuple[str, str]]]:
    """The `key: value` blocks of a report printed to a log (not a terminal)."""
    records: list[list[tuple[str, str]]] = []
    for row in text.splitlines()[1:]:
        if row.startswith("- "):
            records.append([])
        key, _, value = row[2:].partition(":")
        records[-1].append((key, value.strip()))
    return records


def on_terminal(wh: Path, monkeypatch, columns: int, *args: str) -> str:
    """`itrack report ARGS` as drawn on a terminal `columns` wide."""
    monkeypatch.setattr("itrack.cli.output.is_terminal", lambda: True)
    result = runner.invoke(
        app,
        ["report", *args, "--db", str(wh)],
        env={"COLUMNS": str(columns)},
        terminal_width=columns,
    )
    assert_exit(result, 0)
    return result.output


def drawn_records(text: str) -> list[list[tuple[str, str]]]:
    """The field/value rows of a table drawn by `print_table`'s narrow layout: a value wrapped
    over several lines is joined with spaces, a field name folded (a line without a value:
    report values are never empty) without."""
    records: list[list[tuple[str, str]]] = [[]]
    for row in text.splitlines()[2:-1]:
        if row.startswith("├"):
            records.append([])
            continue
        key, value = (part.strip() for part in row.split("│")[1:3])
        if key and value:
            records[-1].append((key, value))
            continue
        last_key, last_value = records[-1][-1]
        records[-1][-1] = (last_key + key, f"{last_value} {value}" if value else last_value)
    return records


def test_the_funnel_and_company_tables_are_readable_in_80_columns(wh, monkeypatch):
    """Found by an exploratory run: on an 80-column terminal `itrack report funnel` drew its 12
    columns 3 to 6 characters wide ("feed/er_s/ourc/e", "67.6/%"), and `report company` its
    11 columns with each rejection reason over a dozen lines. A table wider than the terminal
    now prints each record as field/value rows, a rule between records, the values exactly
    those the plain text shows; a terminal wide enough still gets the table."""
    funnel = plain_records(report(wh, "funnel")[1])
    company = plain_records(report(wh, "company", "Stripe")[1])
    key_width = max(len(k) for record in funnel for k, _ in record)
    value_width = max(len(v) for record in funnel for _, v in record)
    width = key_width + value_width + 7
    left = (width - len("conversion funnel")) // 2

    def rule(ends: str) -> str:
        return f"{ends[0]}{'─' * (key_width + 2)}{ends[1]}{'─' * (value_width + 2)}{ends[2]}"

    expected = [" " * left + "conversion funnel" + " " * (width - left - 17), rule("┌┬┐")]
    for i, record in enumerate(funnel):
        if i:
            expected.append(rule("├┼┤"))
        expected += [f"│ {k.ljust(key_width)} │ {v.ljust(value_width)} │" for k, v in record]
    expected.append(rule("└┴┘"))
    assert on_terminal(wh, monkeypatch, 80, "funnel").splitlines() == expected
    assert len(funnel) == 7 and width <= 80

    drawn = on_terminal(wh, monkeypatch, 80, "company", "Stripe")
    assert max(len(row) for row in drawn.splitlines()) <= 80
    assert drawn_records(drawn) == company

    wide = on_terminal(wh, monkeypatch, 250, "funnel").splitlines()
    assert wide[2].split() == ["┃", *" ┃ ".join(k for k, _ in funnel[0]).split(), "┃"]
    assert len(wide) == 3 + 1 + len(funnel) + 1  # title, rules, header, one line per record


def test_a_narrow_terminal_folds_field_names_and_cuts_nothing(wh, monkeypatch):
    """At 40 columns the field names of `report stage` were cut ("avg_overall_rat…"): they
    fold now, as the values do; every name and value is whole."""
    plain = plain_records(report(wh, "stage", "technical")[1])
    drawn = on_terminal(wh, monkeypatch, 40, "stage", "technical")
    assert "…" not in drawn and max(len(row) for row in drawn.splitlines()) <= 40
    assert drawn_records(drawn) == plain


def test_build_writes_a_self_contained_html_report(wh):
    html = (wh.parent / "report.html").read_text()
    for chart in CHARTS:
        figure = re.search(rf'<figure id="chart-{chart}">(.*?)</figure>', html, re.S)
        assert figure, chart
        assert (
            "<svg" in figure.group(1)
            and len(re.findall(r"<(path|rect|line)\b", figure.group(1))) > 3
        ), chart
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:|url\(\s*["']?https?:|<script""", html)


def test_the_html_report_replaces_only_a_report(wh, tmp_path):
    """`itrack report html --out` naming the warehouse replaced it with HTML (the next build
    recovered); any file that is not a report is now left alone, one line, exit 2."""
    before = wh.read_bytes()[:4096]
    code, out = report(wh, "html", "--out", str(wh))
    assert (code, out) == (
        2,
        f"error: {wh} exists and is not an HTML report; not replaced (--out)\n",
    )
    assert wh.read_bytes()[:4096] == before
    feeders = tmp_path / "feeders.json"
    feeders.write_text('{"feeders": {}}')
    assert report(wh, "html", "--out", str(feeders))[0] == 2
    assert feeders.read_text() == '{"feeders": {}}'
    folder = tmp_path / "a folder"
    folder.mkdir()
    assert report(wh, "html", "--out", str(folder)) == (
        2,
        f"error: {folder}: not a regular file (a FIFO, device or folder); not touched\n",
    )  # it said "cannot write: [Errno 21] Is a directory: 3"
    folder.rmdir()
    again = tmp_path / "report.html"
    for _ in range(2):  # a new file, then the report it wrote
        assert report(wh, "html", "--out", str(again)) == (0, f"report written: {again}\n")
    assert again.read_text().startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("report.html/", "ends with '/', so it names a folder, not a file"),
        ("sub/report.html/", "ends with '/', so it names a folder, not a file"),
        ("/", "ends with '/', so it names a folder, not a file"),
        (".", "names a folder ('.'), not a file"),
        ("..", "names a folder ('..'), not a file"),
        ("sub/.", "names a folder ('.'), not a file"),
        ("sub/..", "names a folder ('..'), not a file"),
    ],
)
def test_the_html_report_refuses_an_out_spelled_as_a_folder(wh, tmp_path, monkeypatch, given, why):
    """Found by an exploratory run: `itrack report html --out report.html/` wrote report.html
    (`Path` drops a trailing '/', and a last `.`: `--out sub/.` wrote a file named sub), exit 0,
    where the shell and every other tool take a folder. Refused, one line, exit 2."""
    monkeypatch.chdir(tmp_path)
    assert report(wh, "html", "--out", given) == (2, f"error: --out: {given} {why}\n")
    assert list(tmp_path.iterdir()) == []


def test_html_report_renders_in_headless_chromium(wh, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is required: `make test` installs Debian's chromium"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    page = (wh.parent / "report.html").as_uri()
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120
    ).stdout
    for chart in CHARTS:
        assert f'id="chart-{chart}"' in dom, chart
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *flags, "--window-size=900,2600", f"--screenshot={shot}", page],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 50_000  # drawn charts, not a blank page


def test_the_html_report_goes_beside_the_warehouse_by_default(wh, tmp_path, monkeypatch):
    """Without --out, `itrack report html --db W` wrote ./data/report.html, relative to the
    working folder (a stray data/ folder there), not where the build publishes W's report."""
    copy = tmp_path / "elsewhere" / "warehouse.duckdb"
    copy.parent.mkdir()
    shutil.copyfile(wh, copy)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert report(copy, "html") == (0, f"report written: {copy.parent / 'report.html'}\n")
    assert (copy.parent / "report.html").read_text().startswith("<!doctype html>")
    assert list(work.iterdir()) == []


def test_the_html_report_header_counts_one_in_the_singular(wh, tmp_path):
    """Found by exploratory testing on a first build with one interview: the header read
    "1 interview processes, 0 placements, 1 companies"."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(wh, copy)
    con = duckdb.connect(str(copy))
    try:  # the header counts fct_interview_processes: keep one placement
        con.execute(
            "delete from fct_interview_processes where interview_process_id <> (select "
            "min(interview_process_id) from fct_interview_processes where is_placement)"
        )
    finally:
        con.close()
    out = tmp_path / "one.html"
    assert report(copy, "html", "--out", str(out)) == (0, f"report written: {out}\n")
    assert "<p>1 interview process, 1 placement, 1 company. Built " in out.read_text()


def test_the_company_table_shows_preferred_feeders_offer_rate_as_a_percentage(wh):
    """Found by exploratory testing: `itrack report company Stripe` printed
    "preferred_feeders: university 5 0.4", the offer rate as a fraction beside percentages
    everywhere else in the table (0.4 read as 0.4%)."""
    company, preferred = next(
        (name, json.loads(text))
        for name, text in mart(
            wh, "select company_name, preferred_feeders from mart_company_insights order by 1"
        )
        if json.loads(text)
    )
    code, out = report(wh, "company", company)
    assert code == 0, out
    shown = "; ".join(
        f"{f['feeder_source']} {f['processes']} {f['offer_rate']:.1%}" for f in preferred
    )
    assert f"  preferred_feeders: {shown}" in out.splitlines()

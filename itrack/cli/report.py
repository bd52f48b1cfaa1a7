"""`itrack report ...`: analyst reports read from the marts (never recomputed in Python).

Tables for people, `--format json|csv` for scripts. Names given on the command line are only
ever SQL parameters; an unknown one is refused with the closest known names.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from itrack.cli.common import DbOption, Target, file_option, warehouse, with_target
from itrack.cli.output import jsonable, line, print_json, print_table
from itrack.errors import new_app

app = new_app("Analyst reports from the marts (tables, JSON or CSV; HTML with charts).")


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[
    Format, typer.Option("--format", help="table (plain text when not a terminal), json or csv.")
]
# feedback.analytics is imported by the commands that use it: at module level, every `itrack`
# command's start would pay for it (about 10 ms)
reads_marts = with_target(wait=False, formats=(FormatOption, Format.table))
FUNNEL_COLUMNS = (
    "grain",
    "group_key",
    "processes_started",
    "phone_screen_pass_rate",
    "technical_pass_rate",
    "onsite_pass_rate",
    "offers_extended",
    "offer_rate",
    "offer_rate_after_interviews",
    "offers_accepted",
    "offer_accepted_rate",
    "in_flight",
)

# Second names of one concept (README "One concept, one name"): older names the marts keep for
# existing queries (= processes_started, offer_accepted_rate) and feeders.json's key
# candidates_sourced (= processes_started). Tables show one name; JSON and CSV every column.
COMPANY_ALIASES = ("processes", "acceptance_rate")
FEEDER_ALIASES = ("candidates_sourced",)
# mart_feeder_conversion's JSON columns (data_type json in the model YAML)
FEEDER_JSON_COLUMNS = ("top_rejection_reasons",)


def one_name(rows: list[dict[str, Any]], aliases: tuple[str, ...], fmt: Format) -> list[dict]:
    """`rows` as printed: in a table without the `aliases` columns."""
    if fmt is not Format.table:
        return rows
    return [{k: v for k, v in row.items() if k not in aliases} for row in rows]


def emit(rows: list[dict[str, Any]], fmt: Format, title: str) -> None:
    """Print rows as a table (plain text when not a terminal), a JSON array or CSV."""
    if fmt is Format.json:
        print_json(rows)
        return
    if fmt is Format.csv:
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
        sys.stdout.write(buffer.getvalue())
        return
    print_table(rows, title, shown=shown)


_jsonable = jsonable


# OWASP's CSV-injection rule: a text cell a spreadsheet would read as a formula (starting with
# = + - @, TAB or CR) gets a leading single quote; numbers are written as numbers.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return neutralize(json.dumps(value, default=_jsonable))
    if isinstance(value, str):
        return neutralize(value)
    return "" if value is None else value


RATE_WORDS = ("rate", "wilson", "depth", "adherence")


def shown(name: str, value: Any) -> str:
    """A report value as every report table prints it (and examples/): a rate (a name holding a
    `RATE_WORDS` word) as a percentage with one decimal, another fractional number (a rating,
    days) with two, none as `-`, a JSON list's items on one line."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}" if any(w in name for w in RATE_WORDS) else f"{value:.2f}"
    if isinstance(value, list):  # decoded JSON lists: items separated by "; " on one line
        # each field shown by its own name's rule: a preferred feeder's offer_rate read 0.4
        # (a fraction, beside percentages everywhere else in the table)
        return (
            "; ".join(
                " ".join(shown(k, v) for k, v in item.items())
                if isinstance(item, dict)
                else str(item)
                for item in value
            )
            or "-"
        )
    return " ".join(str(value).splitlines())


@app.command()
@reads_marts
def funnel(
    feeder: Annotated[str | None, typer.Option(help="Only this feeder.")] = None,
    company: Annotated[str | None, typer.Option(help="Only this company.")] = None,
    cohort: Annotated[str | None, typer.Option(help="Only this start month, YYYY-MM.")] = None,
    *,
    target: Target,
) -> None:
    """The conversion funnel: overall and per feeder, or for the feeder/company/cohort given."""
    from feedback import analytics

    with analytics.connect(target.warehouse) as con:
        if (feeder, company, cohort) != (None, None, None):  # an empty name is unknown
            funnels = [analytics.get_conversion_funnel(feeder, company, cohort=cohort, db=con)]
        else:
            funnels = [analytics.get_conversion_funnel(db=con)]
            funnels += analytics.get_conversion_funnels("feeder_source", db=con)
    rows = [{column: f[column] for column in FUNNEL_COLUMNS} for f in funnels]
    emit(rows, target.fmt, "conversion funnel")


@app.command()
@reads_marts
def company(name: Annotated[str, typer.Argument(help="Company name.")], *, target: Target) -> None:
    """Company insights: rates, time to decision, preferred feeders, rejection reasons."""
    from feedback import analytics

    insights = analytics.get_company_hiring_insights(name, db=target.warehouse).to_dict()
    rows = one_name([insights], COMPANY_ALIASES, target.fmt)
    emit(rows, target.fmt, f"company {insights['company_name']}")


@app.command()
@reads_marts
def stage(
    name: Annotated[str, typer.Argument(help="A stage type or any spelling of one.")],
    *,
    target: Target,
) -> None:
    """Stage performance: outcomes, pass rate, ratings, timing and feedback themes."""
    from feedback import analytics

    found = analytics.get_stage_performance(name, db=target.warehouse).to_dict()
    themes = found.pop("common_feedback_themes")
    names = found.pop("stage_names")
    row = {
        "grain": found.pop("grain"),
        "group_key": found.pop("name"),
        **found,
        "top_terms_passed": themes["passed"],
        "top_terms_failed": themes["failed"],
        "stage_names": [n["stage_name"] for n in names],
    }
    emit([row], target.fmt, f"stage {row['group_key']}")


@app.command()
@reads_marts
def feeder(name: Annotated[str, typer.Argument(help="Feeder source.")], *, target: Target) -> None:
    """Feeder conversion: the feedback metric with its interval, smoothing and stage rates."""
    from feedback import analytics

    with analytics.connect(target.warehouse) as con:
        known = analytics.resolve_feeder(con, name)
        rows = analytics.rows(
            con, "select * from mart_feeder_conversion where feeder_source = ?", [known]
        )
    emit(_decode_json(one_name(rows, FEEDER_ALIASES, target.fmt)), target.fmt, f"feeder {known}")


@app.command()
def html(
    out: Annotated[
        Path | None,
        file_option(
            "--out",
            help="HTML file to write (default: report.html beside the warehouse, where the "
            "build writes it: data/report.html).",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """One self-contained HTML report with charts (opens offline)."""

    from feedback.html_report import write_report
    from itrack.pipeline import default_report, settle_publish

    published = warehouse(db)
    # beside the warehouse, as the build publishes it: a fixed data/report.html was relative to
    # the working folder, so with --db or $ITRACK_DB elsewhere it wrote a stray ./data/ folder
    # and left the report next to the warehouse stale
    out = out or default_report(published)
    # a publish a killed build left unfinished, completed first (unless a build runs, which
    # completed it when it started): the report is of the warehouse it publishes, and is not
    # replaced afterwards by the staged report of the journal's roll forward
    settle_publish(published)
    path = write_report(published, out)
    line(f"report written: {path}")


def _decode_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON columns of mart_feeder_conversion (the reasons) as values, not strings. Only
    those: a name that happens to be JSON text (a feeder called `[1]` or `{}`) stays the text
    (it came out as a list or an object, and `1` in the table)."""
    return [
        {
            key: json.loads(value)
            if key in FEEDER_JSON_COLUMNS and isinstance(value, str)
            else value
            for key, value in row.items()
        }
        for row in rows
    ]

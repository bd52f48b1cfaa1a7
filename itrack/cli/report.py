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

from feedback.marts import open_marts, records, require_known
from itrack.cli.common import DbOption, warehouse
from itrack.cli.output import JsonAlias, jsonable, line, print_json, print_table
from itrack.errors import new_app

app = new_app("Analyst reports from the marts (tables, JSON or CSV; HTML with charts).")


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[
    Format,
    typer.Option("--format", help="table (plain text when not a terminal), json or csv."),
]
FUNNEL_COLUMNS = (
    "grain",
    "group_key",
    "total_started",
    "phone_screen_pass_rate",
    "technical_pass_rate",
    "onsite_pass_rate",
    "offers_extended",
    "offer_extended_rate",
    "offers_accepted",
    "offer_accepted_rate",
    "in_flight",
)


def emit(rows: list[dict[str, Any]], fmt: Format, title: str, as_json: bool = False) -> None:
    """Print rows as a table (plain text when not a terminal), a JSON array or CSV."""
    if as_json or fmt is Format.json:
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
    print_table(rows, title, shown=_shown)


_jsonable = jsonable


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, default=_jsonable)
    return "" if value is None else value


RATE_WORDS = ("rate", "wilson", "depth", "adherence")


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}" if any(w in name for w in RATE_WORDS) else f"{value:.2f}"
    if isinstance(value, list):  # decoded JSON lists: items separated by "; " on one line
        return (
            "; ".join(
                " ".join(f"{v}" for v in item.values()) if isinstance(item, dict) else str(item)
                for item in value
            )
            or "-"
        )
    return " ".join(str(value).splitlines())


def _funnel_rows(con, grain: str, **match: str) -> list[dict[str, Any]]:
    where = " and ".join(["grain = ?", *(f"{column} = ?" for column in match)])
    return records(
        con,
        f"select {', '.join(FUNNEL_COLUMNS)} from mart_conversion_funnel "
        f"where {where} order by total_started desc, group_key",
        [grain, *match.values()],
    )


@app.command()
def funnel(
    feeder: Annotated[str | None, typer.Option(help="Only this feeder.")] = None,
    company: Annotated[str | None, typer.Option(help="Only this company.")] = None,
    cohort: Annotated[str | None, typer.Option(help="Only this start month, YYYY-MM.")] = None,
    fmt: FormatOption = Format.table,
    db: DbOption = None,
    as_json: JsonAlias = False,
) -> None:
    """The conversion funnel: overall and per feeder, or for the feeder/company/cohort given."""

    with open_marts(warehouse(db)) as con:
        if feeder:
            require_known(con, "mart_feeder_conversion", "feeder_source", feeder, "feeder")
        if company:
            require_known(con, "mart_company_insights", "company_name", company, "company")
        if cohort:
            require_known(con, "mart_conversion_funnel", "group_key", cohort, "cohort")
        if feeder and company:
            rows = _funnel_rows(con, "feeder_company", feeder_source=feeder, company_name=company)
        elif feeder:
            rows = _funnel_rows(con, "feeder_source", group_key=feeder)
        elif company:
            rows = _funnel_rows(con, "company_name", group_key=company)
        elif cohort:
            rows = _funnel_rows(con, "cohort_month", group_key=cohort)
        else:
            rows = _funnel_rows(con, "overall") + _funnel_rows(con, "feeder_source")
    emit(rows, fmt, "conversion funnel", as_json)


@app.command()
def company(
    name: Annotated[str, typer.Argument(help="Company name.")],
    fmt: FormatOption = Format.table,
    db: DbOption = None,
    as_json: JsonAlias = False,
) -> None:
    """Company insights: rates, time to decision, preferred feeders, rejection reasons."""

    with open_marts(warehouse(db)) as con:
        require_known(con, "mart_company_insights", "company_name", name, "company")
        rows = records(con, "select * from mart_company_insights where company_name = ?", [name])
    emit(_decode_json(rows), fmt, f"company {name}", as_json)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="A stage type or a raw stage name.")],
    fmt: FormatOption = Format.table,
    db: DbOption = None,
    as_json: JsonAlias = False,
) -> None:
    """Stage performance: outcomes, pass rate, ratings, timing and feedback themes."""

    with open_marts(warehouse(db)) as con:
        require_known(con, "mart_stage_performance", "group_key", name, "stage")
        rows = records(
            con,
            "select * exclude (stage_group_id) from mart_stage_performance "
            "where group_key = ? order by grain desc",
            [name],
        )
    emit(_decode_json(rows), fmt, f"stage {name}", as_json)


@app.command()
def feeder(
    name: Annotated[str, typer.Argument(help="Feeder source.")],
    fmt: FormatOption = Format.table,
    db: DbOption = None,
    as_json: JsonAlias = False,
) -> None:
    """Feeder conversion: the feedback metric with its interval, smoothing and stage rates."""

    with open_marts(warehouse(db)) as con:
        require_known(con, "mart_feeder_conversion", "feeder_source", name, "feeder")
        rows = records(con, "select * from mart_feeder_conversion where feeder_source = ?", [name])
    emit(_decode_json(rows), fmt, f"feeder {name}", as_json)


@app.command()
def html(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path(
        "data/report.html"
    ),
    db: DbOption = None,
) -> None:
    """One self-contained HTML report with charts (opens offline)."""

    from feedback.html_report import write_report

    path = write_report(warehouse(db), out)
    line(f"report written: {path}")


def _decode_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON columns (preferred feeders, reasons, terms) as values, not strings."""
    decoded = []
    for row in rows:
        out = {}
        for key, value in row.items():
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    pass
            out[key] = value
        decoded.append(out)
    return decoded

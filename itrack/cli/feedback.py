"""`itrack feedback`: write feeders.json and placements; `itrack feedback report FEEDER`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from itrack.cli.common import DbOption, WaitOption, console, warehouse
from itrack.errors import HandledGroup

app = typer.Typer(
    help="Write metrics back to feeders.json and placement history.",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    cls=HandledGroup,
)


@app.callback()
def feedback(
    ctx: typer.Context,
    feeders: Annotated[Path | None, typer.Option(help="feeders.json to update.")] = None,
    placements: Annotated[
        Path | None, typer.Option(help="Placement history output (JSON).")
    ] = None,
    candidates: Annotated[
        Path | None,
        typer.Option(help="Candidates JSON/JSONL file to merge placement_history into."),
    ] = None,
    full: Annotated[
        bool, typer.Option(help="Recompute every feeder, not only changed ones.")
    ] = False,
    db: DbOption = None,
    wait: WaitOption = 0.0,
) -> None:
    """Update feeders.json metrics and placement history from the published marts."""
    if ctx.invoked_subcommand:
        return
    from feedback.service import run_feedback
    from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog

    published = warehouse(db)
    result = run_feedback(
        warehouse=published,
        log=DuckDBFeedbackLog(published, wait),
        feeders_path=feeders or published.parent / "feeders.json",
        placements_path=placements or published.parent / "candidate_placements.json",
        candidates_path=candidates,
        full=full,
    )
    console.print(f"feedback: {result}", highlight=False)


@app.command()
def report(
    feeder: Annotated[str, typer.Argument(help="Feeder source, e.g. ex-amazon.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """The feeder performance report: sourced, success by stage, time to hire, rejections."""
    from feedback.feeders import metrics_from_marts
    from feedback.marts import open_marts, require_known

    with open_marts(warehouse(db)) as con:
        require_known(con, "mart_feeder_conversion", "feeder_source", feeder, "feeder")
        metrics = metrics_from_marts(con)[feeder]
    if as_json:
        print(json.dumps({"feeder_source": feeder, **metrics}, indent=2))
        return
    table = Table(title=f"feeder {feeder}", show_header=False)
    table.add_row("candidates sourced", str(metrics["candidates_sourced"]))
    table.add_row("placements", str(metrics["placements"]))
    table.add_row("conversion rate", _pct(metrics["conversion_rate"]))
    wilson = metrics["wilson_interval"]
    table.add_row("95% interval", f"{_pct(wilson['lower'])} - {_pct(wilson['upper'])}")
    table.add_row("smoothed rate", _pct(metrics["smoothed_conversion_rate"]))
    for stage, rate in metrics["success_rate_by_stage"].items():
        table.add_row(f"success rate: {stage}", _pct(rate))
    days = metrics["avg_days_to_hire"]
    table.add_row("average days to hire", "-" if days is None else f"{days:.1f}")
    for reason in metrics["top_rejection_reasons"]:
        table.add_row("rejection reason", f"{reason['reason']} ({reason['count']})")
    console.print(table)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"

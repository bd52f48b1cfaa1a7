"""`itrack feedback`: write feeders.json and placements; `itrack feedback report FEEDER`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ingest.cli_output import (
    Format,
    FormatOption,
    JsonAlias,
    line,
    print_json,
    print_record,
    resolve,
)

app = typer.Typer(
    help="Write metrics back to feeders.json and placement history.", invoke_without_command=True
)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Warehouse path (default: $ITRACK_DB or data/warehouse.duckdb)."),
]


def _handled(func):  # the root CLI's error handling, imported lazily to avoid a cycle
    from ingest.cli import handle_errors

    return handle_errors(func)


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
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to wait for a busy raw store or a locked feeders.json (default 30).",
        ),
    ] = 30.0,  # ingest.store.DEFAULT_WAIT_SECONDS, as every command
) -> None:
    """Update feeders.json metrics and placement history from the published marts."""
    if ctx.invoked_subcommand:
        return
    _handled(_run)(feeders, placements, candidates, full, db, wait)


def _run(
    feeders: Path | None,
    placements: Path | None,
    candidates: Path | None,
    full: bool,
    db: Path | None,
    wait: float = 0.0,
) -> None:
    from feedback.service import run_feedback
    from ingest.store import warehouse_path

    warehouse = warehouse_path(db)
    result = run_feedback(
        warehouse=warehouse,
        raw_store_db=warehouse,
        feeders_path=feeders or warehouse.parent / "feeders.json",
        placements_path=placements or warehouse.parent / "candidate_placements.json",
        candidates_path=candidates,
        full=full,
        wait_seconds=wait,
    )
    line(f"feedback: {result}")


@app.command()
def report(
    feeder: Annotated[str, typer.Argument(help="Feeder source, e.g. ex-amazon.")],
    fmt: FormatOption = Format.table,
    db: DbOption = None,
    as_json: JsonAlias = False,
) -> None:
    """The feeder performance report: sourced, success by stage, time to hire, rejections."""
    _handled(_report)(feeder, resolve(fmt, as_json) is Format.json, db)


def _report(feeder: str, as_json: bool, db: Path | None) -> None:
    from feedback.feeders import metrics_from_marts
    from feedback.marts import open_marts, require_known

    with open_marts(db) as con:
        require_known(con, "mart_feeder_conversion", "feeder_source", feeder, "feeder")
        metrics = metrics_from_marts(con)[feeder]
    if as_json:
        print_json({"feeder_source": feeder, **metrics})
        return
    wilson = metrics["wilson_interval"]
    days = metrics["avg_days_to_hire"]
    record = {
        "candidates sourced": metrics["candidates_sourced"],
        "placements": metrics["placements"],
        "conversion rate": _pct(metrics["conversion_rate"]),
        "95% interval": f"{_pct(wilson['lower'])} - {_pct(wilson['upper'])}",
        "smoothed rate": _pct(metrics["smoothed_conversion_rate"]),
        **{
            f"success rate: {stage}": _pct(rate)
            for stage, rate in metrics["success_rate_by_stage"].items()
        },
        "average days to hire": "-" if days is None else f"{days:.1f}",
        "rejection reasons": "; ".join(
            f"{r['reason']} ({r['count']})" for r in metrics["top_rejection_reasons"]
        )
        or "-",
    }
    print_record(record, f"feeder {feeder}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"

"""`itrack feedback`: write feeders.json and placements; `itrack feedback report FEEDER`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ingest.errors import UserError
from ingest.store.duckdb.store import DEFAULT_WAIT_SECONDS
from itrack.cli.common import DbOption, Target, WaitOption, file_option, warehouse, with_target
from itrack.cli.output import line, print_json, print_record
from itrack.errors import new_app

app = new_app(
    "Write metrics back to feeders.json and placement history.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
def feedback(
    ctx: typer.Context,
    feeders: Annotated[
        Path | None, file_option("--feeders", help="feeders.json to update.")
    ] = None,
    placements: Annotated[
        Path | None, file_option("--placements", help="Placement history output (JSON).")
    ] = None,
    candidates: Annotated[
        Path | None,
        file_option(
            "--candidates", help="Candidates JSON/JSONL file to merge placement_history into."
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option(help="Recompute every feeder, not only changed ones.")
    ] = False,
    db: DbOption = None,
    wait: WaitOption = DEFAULT_WAIT_SECONDS,  # as every command; also for feeders.json's lock
) -> None:
    """Update feeders.json metrics and placement history from the published marts."""
    if ctx.invoked_subcommand:
        _hand_on(ctx, db, feeders=feeders, placements=placements, candidates=candidates, full=full)
        return
    from feedback.marts import require_published
    from itrack.pipeline import build_lock, feedback_lock
    from itrack.services import run_feedback_step

    published = require_published(warehouse(db))  # before the lock: nothing made beside it
    # Another feedback run (this command or POST /feedback/run, any process): waited for up to
    # --wait. A build writes these outputs itself, from the warehouse it publishes: a run beside
    # it computed from the one before and overwrote them (the API's POST /feedback/run is 409).
    # It waits for the build, as for any busy store, then reads what it published: the two
    # waits together no longer than --wait.
    deadline = time.monotonic() + wait
    with (
        feedback_lock(published, wait),
        build_lock(published, wait_seconds=max(0.0, deadline - time.monotonic())),
    ):
        result = run_feedback_step(
            published,
            wait,
            feeders=feeders,
            placements=placements,
            candidates_path=candidates,
            full=full,
        )
    line(f"feedback: {result}")


def _hand_on(ctx: typer.Context, db: Path | None, **run_options: object) -> None:
    """Before a subcommand: the group's `--db` is the subcommand's default (`itrack feedback
    --db X report F` reported on the default warehouse, silently, not on X); the options of the
    feedback run itself, which a subcommand does not do, are refused (they were ignored)."""
    given = [f"--{name}" for name, value in run_options.items() if value]
    if given:
        raise UserError(
            f"{', '.join(given)}: options of the feedback run, not of "
            f"`itrack feedback {ctx.invoked_subcommand}`; nothing was run"
        )
    ctx.obj = db


@app.command()
@with_target(wait=False)
def report(
    ctx: typer.Context,
    feeder: Annotated[str, typer.Argument(help="Feeder source, e.g. ex-amazon.")],
    *,
    target: Target,
) -> None:
    """The feeder performance report: sourced, success by stage, time to hire, rejections."""
    from itrack.services import feedback_service

    service = feedback_service(warehouse(target.db or ctx.obj))
    metrics = service.get_feeder_performance_report(feeder).to_dict()
    feeder = metrics["feeder_source"]  # as the marts spell it
    if target.json:
        print_json(metrics)
        return
    from itrack.cli.report import shown  # the rule of every report table

    wilson = metrics["wilson_interval"]
    record = {
        "candidates sourced": metrics["candidates_sourced"],
        "placements": metrics["placements"],
        "conversion rate": metrics["conversion_rate"],
        "decided processes": metrics["decided_processes"],
        "decided conversion rate": metrics["decided_conversion_rate"],
        "95% interval": (
            f"{shown('wilson_lower', wilson['lower'])} - {shown('wilson_upper', wilson['upper'])}"
        ),
        "smoothed rate": metrics["smoothed_conversion_rate"],
        **{
            f"success rate: {stage}": rate
            for stage, rate in metrics["success_rate_by_stage"].items()
        },
        "average days to hire": metrics["avg_days_to_hire"],
        "pipeline depth": metrics["pipeline_depth"],
        "rejection reasons": metrics["top_rejection_reasons"],
    }
    # each value shown as `itrack report feeder` shows it (rates as percentages with one
    # decimal, days with two, reasons as "reason count"): this table had its own rules
    print_record(record, f"feeder {feeder}", shown=shown)

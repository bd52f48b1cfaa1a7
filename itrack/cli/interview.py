"""`itrack interview ...`: the service API on the command line, one interview at a time.

Every command takes `--db` (the warehouse; the service writes the raw store beside it),
`--wait SECONDS` (how long to wait for another writer) and `--json` (the record as JSON for
scripts; readable tables otherwise). Refusals exit 1 with one line; a busy or unreadable
database exits 2.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ingest.contract import InterviewProcess, InterviewStage
from ingest.errors import UserError
from ingest.service import InterviewDetail, InterviewService
from itrack.cli.common import DbOption, WaitOption
from itrack.errors import new_app
from itrack.services import interview_service

app = new_app("Track one interview process at a time.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print the record as JSON.")]


@contextmanager
def _service(db: Path | None, wait: float) -> Iterator[InterviewService]:
    """The service on the configured store (errors are the shared handler's job)."""
    yield interview_service(db, wait)


@app.command()
def create(
    candidate: Annotated[str, typer.Option("--candidate", help="Candidate id (must be stored).")],
    company: Annotated[str, typer.Option("--company", help="Company name.")],
    role: Annotated[str, typer.Option("--role", help="Role title.")],
    feeder: Annotated[str | None, typer.Option("--feeder", help="Feeder source.")] = None,
    recruiter: Annotated[str | None, typer.Option("--recruiter", help="Recruiter name.")] = None,
    db: DbOption = None,
    wait: WaitOption = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Start an interview process (status in_progress) for a stored candidate."""
    with _service(db, wait) as service:
        process = service.create_interview_process(candidate, company, role, feeder, recruiter)
    _print_process(process, as_json)


@app.command("add-stage")
def add_stage(
    process_id: Annotated[str, typer.Argument(metavar="PROCESS_ID", help="Interview process id.")],
    name: Annotated[str, typer.Option("--name", help="Stage name, e.g. 'Phone Screen'.")],
    order: Annotated[int, typer.Option("--order", help="Stage order: the next one (max + 1).")],
    scheduled: Annotated[
        str | None,
        typer.Option("--scheduled", help="ISO date or timestamp, e.g. 2025-03-01T10:00Z"),
    ] = None,
    db: DbOption = None,
    wait: WaitOption = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Add the next stage to an open process."""
    with _service(db, wait) as service:
        stage = service.add_interview_stage(process_id, name, order, scheduled)
    _print_stage(stage, as_json)


@app.command()
def outcome(
    stage_id: Annotated[str, typer.Argument(metavar="STAGE_ID", help="Interview stage id.")],
    result: Annotated[
        str, typer.Argument(metavar="OUTCOME", help="pending, passed, failed, cancelled, no_show")
    ],
    overall: Annotated[int | None, typer.Option(help="Overall rating 1-5.")] = None,
    technical: Annotated[int | None, typer.Option(help="Technical rating 1-5.")] = None,
    culture_fit: Annotated[int | None, typer.Option(help="Culture-fit rating 1-5.")] = None,
    communication: Annotated[int | None, typer.Option(help="Communication rating 1-5.")] = None,
    feedback: Annotated[str | None, typer.Option(help="Feedback notes.")] = None,
    interviewer: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Interviewer name (repeat for several)."),
    ] = None,
    completed: Annotated[
        str | None, typer.Option(help="When the stage took place (default: now).")
    ] = None,
    db: DbOption = None,
    wait: WaitOption = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Record a stage's outcome; a failed stage closes an in-progress process."""
    given = {
        "overall": overall,
        "technical": technical,
        "culture_fit": culture_fit,
        "communication": communication,
    }
    ratings = {key: value for key, value in given.items() if value is not None}
    with _service(db, wait) as service:
        stage = service.update_stage_outcome(
            stage_id, result, ratings, feedback, interviewer or None, completed
        )
        process = service.get_interview(stage.interview_process_id).process
    _print_stage(stage, as_json)
    if not as_json:
        Console().print(f"process {process.id}: [bold]{process.status}[/bold]")


@app.command()
def complete(
    process_id: Annotated[str, typer.Argument(metavar="PROCESS_ID", help="Interview process id.")],
    status: Annotated[
        str,
        typer.Argument(
            metavar="STATUS",
            help="on_hold, in_progress, offer_extended, offer_accepted, offer_declined, "
            "rejected_by_company or candidate_withdrew",
        ),
    ],
    offer: Annotated[
        str | None,
        typer.Option(help="Offer details: a JSON object, or a path to a JSON file."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Final outcome text, e.g. a rejection reason.")
    ] = None,
    db: DbOption = None,
    wait: WaitOption = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Move a process to its next status; offer details move it to offer_extended."""
    offer_text = _read_offer(offer) if offer is not None else None
    with _service(db, wait) as service:
        process = service.complete_interview_process(process_id, status, offer_text, reason)
    _print_process(process, as_json)


@app.command()
def show(
    process_id: Annotated[str, typer.Argument(metavar="PROCESS_ID", help="Interview process id.")],
    db: DbOption = None,
    wait: WaitOption = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Show a process with its stages."""
    with _service(db, wait) as service:
        detail = service.get_interview(process_id)
    if as_json:
        _echo_json(detail.as_json())
    else:
        _print_detail(detail)


@app.command("list")
def list_(
    company: Annotated[str | None, typer.Option(help="Only this company.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    candidate: Annotated[str | None, typer.Option(help="Only this candidate.")] = None,
    db: DbOption = None,
    wait: WaitOption = 0.0,
    as_json: JsonOption = False,
) -> None:
    """List processes (oldest first), filtered by company, status and candidate."""
    with _service(db, wait) as service:
        processes = service.list_interviews(company, status, candidate)
    if as_json:
        _echo_json([p.model_dump(mode="json") for p in processes])
    else:
        Console().print(_process_table(processes, f"{len(processes)} interview processes"))


@app.command()
def history(
    candidate_id: Annotated[str, typer.Argument(metavar="CANDIDATE_ID", help="Candidate id.")],
    db: DbOption = None,
    wait: WaitOption = 0.0,
    as_json: JsonOption = False,
) -> None:
    """A candidate's interview history: every process with its stages."""
    with _service(db, wait) as service:
        details = service.get_candidate_interview_history(candidate_id)
    if as_json:
        _echo_json([d.as_json() for d in details])
        return
    if not details:
        Console().print(f"candidate {candidate_id} has no interview processes")
    for detail in details:
        _print_detail(detail)


# -- input and output ------------------------------------------------------------------------


def _read_offer(value: str) -> str:
    """`--offer` is JSON text when it starts with '{', else a file holding it."""
    if value.lstrip().startswith("{"):
        return value
    path = Path(value)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--offer: not a JSON object and no such file: {path}") from None
    except OSError as exc:
        raise UserError(f"--offer: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"--offer: {path} is not UTF-8 text") from None


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _print_process(process: InterviewProcess, as_json: bool) -> None:
    if as_json:
        _echo_json(process.model_dump(mode="json"))
    else:
        Console().print(_record_table(process.model_dump(mode="json"), "Interview process"))


def _print_stage(stage: InterviewStage, as_json: bool) -> None:
    if as_json:
        _echo_json(stage.model_dump(mode="json"))
    else:
        Console().print(_record_table(stage.model_dump(mode="json"), "Interview stage"))


def _print_detail(detail: InterviewDetail) -> None:
    console = Console()
    console.print(_record_table(detail.process.model_dump(mode="json"), "Interview process"))
    console.print(_stage_table(detail.stages))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _day(value: dt.datetime | None) -> str:
    return value.date().isoformat() if value else ""


def _record_table(record: dict[str, Any], title: str) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        table.add_row(key, _text(value))
    return table


def _stage_table(stages: list[InterviewStage]) -> Table:
    table = Table(title=f"{len(stages)} stages")
    for column in ("#", "stage", "id", "scheduled", "completed", "outcome", "o/t/c/m"):
        _add_column(table, column)
    for s in stages:
        ratings = "/".join(
            _text(v) or "-"
            for v in (
                s.overall_rating,
                s.technical_rating,
                s.culture_fit_rating,
                s.communication_rating,
            )
        )
        table.add_row(
            str(s.stage_order),
            s.stage_name,
            str(s.id),
            _day(s.scheduled_date),
            _day(s.completed_date),
            s.outcome.value,
            ratings,
        )
    return table


def _process_table(processes: list[InterviewProcess], title: str) -> Table:
    table = Table(title=title)
    columns: dict[str, Callable[[InterviewProcess], Any]] = {
        "id": lambda p: p.id,
        "candidate": lambda p: p.candidate_id,
        "company": lambda p: p.company_name,
        "role": lambda p: p.role_title,
        "status": lambda p: p.status.value,
        "feeder": lambda p: p.feeder_source,
    }
    for name in columns:
        _add_column(table, name)
    for process in processes:
        table.add_row(*(_text(get(process)) for get in columns.values()))
    return table


def _add_column(table: Table, name: str) -> None:
    # ids stay on one line so they can be copied into the next command
    if name == "id":
        table.add_column(name, no_wrap=True, min_width=36)
    else:
        table.add_column(name, overflow="fold")

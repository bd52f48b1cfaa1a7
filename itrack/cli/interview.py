"""`itrack interview ...`: the service API on the command line, one interview at a time.

Every command takes `--db` (the warehouse; the service writes the raw store beside it),
`--wait SECONDS` (how long to wait for another writer; default 30) and `--format json` (the
record as JSON for scripts; readable tables otherwise, plain text when not a terminal). Ids may
be given by a unique prefix (at least 4 characters). Refusals exit 1 with one line; a busy,
missing or unreadable store exits 2.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from feedback.atomic import NameTooLongError, read_regular
from ingest.errors import UserError
from ingest.text import clip
from itrack.cli.common import Target, filter_value, with_target
from itrack.cli.output import Format, line, print_json, print_record, print_table, text, warn
from itrack.errors import new_app
from itrack.settings import folder_spelling

if TYPE_CHECKING:  # the service and its store are imported when a command runs: every other
    # `itrack` command (the nightly build among them) starts without them
    from ingest.contract import InterviewProcess, InterviewStage
    from ingest.service import InterviewDetail, InterviewService

app = new_app("Track one interview process at a time.")

ProcessArg = Annotated[
    str, typer.Argument(metavar="PROCESS_ID", help="Interview process id (or a unique prefix).")
]
StageArg = Annotated[
    str, typer.Argument(metavar="STAGE_ID", help="Interview stage id (or a unique prefix).")
]
Rating = Annotated[int | None, typer.Option(help="Rating 1-5.")]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="When this happened (ISO 8601, e.g. 2025-03-01T10:00:00Z), to backfill past "
        "events; default now. Not before the process's last change, not in the future.",
    ),
]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why the correction is made (kept in the audit trail).")
]
QuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print only the new id (for scripts: P=$(itrack ... -q))."),
]
ByOption = Annotated[
    str | None, typer.Option("--by", help="Who makes the correction (default: your user name).")
]


def _service(target: Target) -> InterviewService:
    """The service on the configured store (errors are the shared handler's job)."""
    from itrack.services import interview_service

    _quiet_pool_log()
    return interview_service(target.db, target.wait)


def _quiet_pool_log() -> None:
    """A command's trouble is its one `error:` line: the PostgreSQL pool's warnings (e.g.
    `discarding closed connection: ...` when the server killed one) would reach stderr before
    it through logging's last-resort handler, as no logging is configured. A handler that
    drops them stops that; handlers a caller configured still get them (and `itrack serve`,
    whose log is a server log, never runs this)."""
    pool_log = logging.getLogger("psycopg.pool")
    if not any(isinstance(h, logging.NullHandler) for h in pool_log.handlers):
        pool_log.addHandler(logging.NullHandler())


def _by(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@app.command()
@with_target()
def create(
    candidate: Annotated[str, typer.Option("--candidate", help="Candidate id (must be stored).")],
    company: Annotated[str, typer.Option("--company", help="Company name.")],
    role: Annotated[str, typer.Option("--role", help="Role title.")],
    feeder: Annotated[str | None, typer.Option("--feeder", help="Feeder source.")] = None,
    recruiter: Annotated[str | None, typer.Option("--recruiter", help="Recruiter name.")] = None,
    new_company: Annotated[
        bool, typer.Option("--new-company", help="The company is new on purpose (not a typo).")
    ] = False,
    new_feeder: Annotated[
        bool, typer.Option("--new-feeder", help="The feeder is new on purpose (not a typo).")
    ] = False,
    at: AtOption = None,
    quiet: QuietOption = False,
    *,
    target: Target,
) -> None:
    """Start an interview process (status in_progress) for a stored candidate.

    A company or feeder not seen before is refused unless --new-company / --new-feeder says it
    is new on purpose; one close to a known name is refused with "did you mean". A second open
    process for the same candidate, company and role is created with a warning."""
    service = _service(target)
    process = service.create_interview_process(
        candidate,
        company,
        role,
        feeder,
        recruiter,
        at=at,
        check_names=True,
        new_company=new_company,
        new_feeder=new_feeder,
    )
    duplicates = service.open_duplicates(process)
    for other in duplicates:
        warn(
            f"candidate {process.candidate_id} already has an open process for "
            f"{process.company_name} / {process.role_title}: {other.id} ({other.status}, "
            f"since {text(other.created_at)})"
        )
    if quiet:
        line(str(process.id))
        return
    _print_process(process, target.fmt)


@app.command("add-stage")
@with_target()
def add_stage(
    process_id: ProcessArg,
    name: Annotated[str, typer.Option("--name", help="Stage name, e.g. 'Phone Screen'.")],
    order: Annotated[int, typer.Option("--order", help="Stage order: the next one (max + 1).")],
    scheduled: Annotated[
        str | None,
        typer.Option("--scheduled", help="ISO date or timestamp, e.g. 2025-03-01T10:00Z"),
    ] = None,
    at: AtOption = None,
    quiet: QuietOption = False,
    *,
    target: Target,
) -> None:
    """Add the next stage to an open process."""
    service = _service(target)
    stage = service.add_interview_stage(process_id, name, order, scheduled, at=at)
    if quiet:
        line(str(stage.id))
        return
    _print_stage(stage, target.fmt)


RatingOptions = dict[str, int | None]


@app.command()
@with_target()
def outcome(
    stage_id: StageArg,
    result: Annotated[
        str, typer.Argument(metavar="OUTCOME", help="pending, passed, failed, cancelled, no_show")
    ],
    overall: Rating = None,
    technical: Rating = None,
    culture_fit: Rating = None,
    communication: Rating = None,
    feedback: Annotated[str | None, typer.Option(help="Feedback notes.")] = None,
    interviewer: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Interviewer name (repeat for several)."),
    ] = None,
    completed: Annotated[
        str | None, typer.Option(help="When the stage took place (default: --at, else now).")
    ] = None,
    at: AtOption = None,
    *,
    target: Target,
) -> None:
    """Record a stage's outcome; a failed stage closes an in-progress process.

    JSON output is {"stage": ..., "process": ...}: a script sees when the process closed."""
    ratings = _ratings(overall, technical, culture_fit, communication)
    service = _service(target)
    done = service.record_stage_outcome(
        stage_id, result, ratings, feedback, interviewer or None, completed, at=at
    )
    _print_outcome(done, target.fmt)


@app.command()
@with_target()
def amend(
    stage_id: StageArg,
    result: Annotated[
        str,
        typer.Argument(metavar="OUTCOME", help="The correct outcome: pending, passed, failed, ..."),
    ],
    reason: ReasonOption,
    by: ByOption = None,
    overall: Rating = None,
    technical: Rating = None,
    culture_fit: Rating = None,
    communication: Rating = None,
    feedback: Annotated[str | None, typer.Option(help="Corrected feedback notes.")] = None,
    completed: Annotated[str | None, typer.Option(help="When the stage took place.")] = None,
    *,
    target: Target,
) -> None:
    """Correct a recorded stage outcome (also on a closed process), with a reason.

    A process closed by this stage's failure reopens to the status it had before. The old and
    new values, the reason and who made it are kept (`itrack interview audit PROCESS_ID`)."""
    ratings = _ratings(overall, technical, culture_fit, communication)
    service = _service(target)
    done = service.amend_stage_outcome(
        stage_id, result, reason, _by(by), ratings, feedback, None, completed
    )
    _print_outcome(done, target.fmt)


@app.command()
@with_target()
def reopen(
    process_id: ProcessArg,
    reason: ReasonOption,
    by: ByOption = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="Status to reopen to (default: the one it had before it closed)."
        ),
    ] = None,
    *,
    target: Target,
) -> None:
    """Reopen a closed process (a mistaken rejection, withdrawal, ...), with a reason."""
    service = _service(target)
    process = service.reopen_interview_process(process_id, reason, _by(by), to)
    _print_process(process, target.fmt)


@app.command()
@with_target()
def audit(process_id: ProcessArg, *, target: Target) -> None:
    """A process's audit trail: every status change and every correction (who, why)."""
    service = _service(target)
    trail = service.get_audit(process_id)
    if target.json:
        print_json(trail)
        return
    print_table(trail["status_history"], f"status history of process {trail['process_id']}")
    print_table(trail["corrections"], "corrections")


def _ratings(*values: int | None) -> dict[str, int]:
    names = ("overall", "technical", "culture_fit", "communication")
    return {k: v for k, v in zip(names, values, strict=True) if v is not None}


@app.command()
@with_target()
def complete(
    process_id: ProcessArg,
    status: Annotated[
        str,
        typer.Argument(
            metavar="STATUS",
            help="on_hold, in_progress, offer_extended, offer_accepted, offer_declined, "
            "rejected_by_company or candidate_withdrew",
        ),
    ],
    offer: Annotated[
        str | None, typer.Option(help="Offer details: a JSON object, or a path to a JSON file.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Final outcome text, e.g. a rejection reason.")
    ] = None,
    at: AtOption = None,
    *,
    target: Target,
) -> None:
    """Move a process to its next status; offer details move it to offer_extended."""
    offer_text = _read_offer(offer) if offer is not None else None
    service = _service(target)
    process = service.complete_interview_process(process_id, status, offer_text, reason, at=at)
    _print_process(process, target.fmt)


@app.command()
@with_target()
def show(process_id: ProcessArg, *, target: Target) -> None:
    """Show a process with its stages."""
    service = _service(target)
    detail = service.get_interview(process_id)
    if target.json:
        print_json(detail.as_json())
    else:
        _print_detail(detail)


@app.command("list")
@with_target()
def list_(
    company: Annotated[
        str | None,
        typer.Option(
            parser=filter_value, help="Only this company (whatever its case and spacing)."
        ),
    ] = None,
    status: Annotated[
        str | None, typer.Option(parser=filter_value, help="Only this status.")
    ] = None,
    candidate: Annotated[
        str | None, typer.Option(parser=filter_value, help="Only this candidate.")
    ] = None,
    *,
    target: Target,
) -> None:
    """List processes (oldest first), filtered by company, status and candidate."""
    service = _service(target)
    processes = service.list_interviews(company, status, candidate)
    if target.json:
        print_json([p.model_dump(mode="json") for p in processes])
    else:
        _print_processes(processes, f"{len(processes)} interview processes")


@app.command()
@with_target()
def history(
    candidate_id: Annotated[str, typer.Argument(metavar="CANDIDATE_ID", help="Candidate id.")],
    *,
    target: Target,
) -> None:
    """A candidate's interview history: every process with its stages."""
    service = _service(target)
    details = service.get_candidate_interview_history(candidate_id)
    if target.json:
        print_json([d.as_json() for d in details])
        return
    if not details:
        line(f"candidate {candidate_id} has no interview processes")
    for detail in details:
        _print_detail(detail)


# -- input and output ------------------------------------------------------------------------


def _read_offer(value: str) -> str:
    """`--offer` is JSON text when it starts with '{', else a file holding it."""
    if value.lstrip().startswith("{"):
        return value
    if not value:  # an unset variable: `Path("")` would be the current folder
        raise UserError("--offer: empty; give a JSON object or the path of a file holding one")
    path = Path(value)
    try:
        data = read_regular(path)  # a FIFO or device is refused, never read (it would hang)
    except NameTooLongError:  # text no file can be named: echoed whole it filled the screen
        raise UserError(f"--offer: not a JSON object and no such file: {clip(value)}") from None
    except UserError as exc:
        raise UserError(f"--offer: {exc}") from None
    if data is None:
        raise UserError(f"--offer: not a JSON object and no such file: {path}")
    why = folder_spelling(value)  # `offer.json/`: Path dropped the '/' and offer.json was read
    if why:
        raise UserError(f"--offer: {value} {why}")
    try:  # a byte order mark (Notepad's, PowerShell's) dropped, as every file read drops it
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"--offer: {path} is not UTF-8 text") from None


def _print_process(process: InterviewProcess, fmt: Format) -> None:
    if fmt is Format.json:
        print_json(process.model_dump(mode="json"))
        return
    print_record(process.model_dump(mode="json", exclude={"feedback"}), "Interview process")
    if getattr(process, "feedback", None) is not None:  # a completion that ran feedback
        line(str(process.feedback))


def _print_stage(stage: InterviewStage, fmt: Format) -> None:
    if fmt is Format.json:
        print_json(stage.model_dump(mode="json"))
    else:
        print_record(stage.model_dump(mode="json"), "Interview stage")


def _print_outcome(done: Any, fmt: Format) -> None:
    if fmt is Format.json:
        print_json(done.as_json())
        return
    print_record(done.stage.model_dump(mode="json"), "Interview stage")
    line(f"process {done.process.id}: {done.process.status}")
    if getattr(done, "feedback", None) is not None:
        line(str(done.feedback))


def _print_detail(detail: InterviewDetail) -> None:
    print_record(detail.process.model_dump(mode="json"), "Interview process")
    print_table(
        [_stage_row(s) for s in detail.stages],
        f"{len(detail.stages)} stages",
        ("#", "stage", "id", "scheduled", "completed", "outcome", "o/t/c/m"),
    )


def _day(value: dt.datetime | None) -> str:
    return value.date().isoformat() if value else ""


def _stage_row(s: InterviewStage) -> dict[str, Any]:
    ratings = "/".join(
        text(v) or "-"
        for v in (
            s.overall_rating,
            s.technical_rating,
            s.culture_fit_rating,
            s.communication_rating,
        )
    )
    return {
        "#": str(s.stage_order),
        "stage": s.stage_name,
        "id": str(s.id),
        "scheduled": _day(s.scheduled_date),
        "completed": _day(s.completed_date),
        "outcome": s.outcome.value,
        "o/t/c/m": ratings,
    }


PROCESS_COLUMNS: dict[str, Callable[[InterviewProcess], Any]] = {
    "id": lambda p: p.id,
    "candidate": lambda p: p.candidate_id,
    "company": lambda p: p.company_name,
    "role": lambda p: p.role_title,
    "status": lambda p: p.status.value,
    "feeder": lambda p: p.feeder_source,
}


def _print_processes(processes: list[InterviewProcess], title: str) -> None:
    rows = [{name: text(get(p)) for name, get in PROCESS_COLUMNS.items()} for p in processes]
    print_table(rows, title, list(PROCESS_COLUMNS))

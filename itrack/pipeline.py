"""`itrack build`: the nightly pipeline, safe for analysts holding the warehouse open.

backup raw store -> ingest -> copy the published warehouse to data/.build/ -> dbt build there
-> feedback (reads the build file) -> publish with one atomic rename -> HTML report.

Analysts' read-only connections keep the old file (its inode) until they reconnect, and a new
connection sees the new file whole: nobody ever sees a half-built warehouse, and a read-only
analyst session never blocks the build.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ingest.contract import new_run_id, utc_now
from ingest.errors import Refused, UserError
from ingest.extract import extract, is_database_url
from ingest.load import RunSummary, ingest_paths
from ingest.store.duckdb.store import raw_store_path


@dataclass
class Step:
    """One step of a build: its name, how long it took and what it did (one line)."""

    name: str
    seconds: float
    result: str


@dataclass
class BuildResult:
    warehouse: Path
    started_at: dt.datetime = field(default_factory=utc_now)
    ingest: RunSummary | None = None
    backup: Path | None = None
    feedback: object | None = None
    report: Path | None = None
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what dbt and the other steps reported
    published: dict[str, Path] = field(default_factory=dict)  # output -> where it went
    seconds: float = 0.0


Note = Callable[[str], None]


@contextmanager
def _step(result: BuildResult, name: str, note: Note) -> Iterator[list[str]]:
    """Time a step; the block appends its one-line result to the yielded list."""
    started = time.monotonic()
    outcome: list[str] = []
    yield outcome
    step = Step(name, round(time.monotonic() - started, 2), "; ".join(outcome) or "ok")
    result.steps.append(step)
    note(f"{name}: {step.result} ({step.seconds:.1f} s)")


def build_dir(warehouse: Path) -> Path:
    return warehouse.parent / ".build"


def run_build(
    paths: list[Path] | None,
    db: Path | str,
    wait_seconds: float = 0.0,
    source: str | None = None,
    feeders: Path | None = None,
    placements: Path | None = None,
    candidates: Path | None = None,
    report: Path | None = None,
    take_backup: bool = True,
    write_html: bool = True,
    note: Note = print,
) -> BuildResult:
    """Backup, ingest `paths` (none: nothing is ingested, the marts are rebuilt from the raw
    store as it is), dbt build, feedback, publish, HTML report. `note` gets one line per step
    as it finishes and whatever the steps report (dbt's notes included)."""
    clock = time.monotonic()
    warehouse = Path(db).absolute()
    raw_store = raw_store_path(warehouse)
    result = BuildResult(warehouse)

    def noted(message: str) -> None:
        result.notes.append(message)
        note(message)

    if not paths and source is None and not raw_store.exists():
        raise UserError(
            f"no raw store at {raw_store}: nothing to build; name the files to ingest "
            "(itrack build PATH...) or check --db"
        )
    if take_backup and raw_store.exists():
        from ingest.store.duckdb.backup import backup

        with _step(result, "backup", note) as out:
            result.backup = backup(warehouse, wait_seconds=wait_seconds)
            out.append(str(result.backup))
    if source is not None:
        if paths:
            raise UserError("build --from a database ingests no files: give one or the other")
        if not is_database_url(source):
            raise UserError(f"--from takes a postgresql:// URL, not '{source}'")
        with _step(result, "ingest", note) as out:
            extracted = extract(source, warehouse, wait_seconds=wait_seconds)
            result.ingest = extracted.run
            pulled = ", ".join(f"{n} {table}" for table, n in extracted.pulled.items())
            out.append(
                f"extract from {extracted.source}: pulled {pulled}; run "
                f"{extracted.run.run_id}: {extracted.run.accepted} accepted, "
                f"{extracted.run.rejected} rejected"
            )
    if paths:
        with _step(result, "ingest", note) as out:
            result.ingest = ingest_paths(paths, db=warehouse, wait_seconds=wait_seconds)
            out.append(
                f"run {result.ingest.run_id}: {result.ingest.accepted} accepted, "
                f"{result.ingest.rejected} rejected"
            )
            if result.ingest.total("inserted") + result.ingest.total("updated") == 0:
                out.append("no new records")
    building = _fresh_build_file(warehouse)
    try:
        with _step(result, "dbt build", note) as out:
            _dbt_build(building, raw_store, noted)
        with _step(result, "feedback", note) as out:
            result.feedback = _feedback(
                building, warehouse, feeders, placements, candidates, wait_seconds
            )
            out.append(str(result.feedback))
            data = warehouse.parent
            result.published["feeders"] = feeders or data / "feeders.json"
            result.published["placements"] = placements or data / "candidate_placements.json"
            if candidates is not None:
                result.published["candidates"] = candidates
        with _step(result, "publish", note) as out:
            _refresh_feedback_runs(building, raw_store)
            building.replace(warehouse)  # the publish: atomic on one filesystem
            result.published["warehouse"] = warehouse
            out.append(str(warehouse))
    finally:
        building.unlink(missing_ok=True)
        building.with_name(building.name + ".wal").unlink(missing_ok=True)
    if write_html:
        with _step(result, "report", note) as out:
            result.report = _report(warehouse, report)
            result.published["report"] = result.report
            out.append(str(result.report))
    result.seconds = round(time.monotonic() - clock, 2)
    return result


def _fresh_build_file(warehouse: Path) -> Path:
    """A private copy of the published warehouse: incremental models keep their state, and the
    published file is never opened for writing (an analyst may hold it open read-only)."""
    folder = build_dir(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    building = folder / f"{warehouse.stem}.{new_run_id('build')}.duckdb"
    if warehouse.exists():
        shutil.copy2(warehouse, building)
    return building


def _dbt_build(building: Path, raw_store: Path, note: Note) -> None:
    from itrack.dbt_runner import run_dbt

    outcome = run_dbt(["build"], warehouse=building, raw_store=raw_store)
    if not outcome.ok:
        failed = "; ".join(outcome.failures) or f"see {outcome.log_path}"
        raise Refused(f"dbt build failed, nothing published and no feedback written: {failed}")
    from feedback.data_quality import data_quality_lines

    for line in data_quality_lines(building):  # unmapped stage names, data-quality counts
        note(line)


def _feedback(
    building: Path,
    warehouse: Path,
    feeders: Path | None,
    placements: Path | None,
    candidates: Path | None,
    wait_seconds: float,
) -> object:
    from feedback.service import run_feedback
    from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog

    data = warehouse.parent
    result = run_feedback(
        warehouse=building,
        log=DuckDBFeedbackLog(warehouse, wait_seconds),
        feeders_path=feeders or data / "feeders.json",
        placements_path=placements or data / "candidate_placements.json",
        candidates_path=candidates,
        full=False,
    )
    return result


def _refresh_feedback_runs(building: Path, raw_store: Path) -> None:
    """Feedback appended to the raw store after dbt ran: rebuild its staging table (a dbt node,
    read from the declared source) so the published warehouse has the run just written."""
    from itrack.dbt_runner import run_dbt

    outcome = run_dbt(["run", "--select", "stg_itrack__feedback_runs"], building, raw_store)
    if not outcome.ok:
        failed = "; ".join(outcome.failures) or f"see {outcome.log_path}"
        raise Refused(f"dbt could not refresh stg_itrack__feedback_runs: {failed}")


def _report(warehouse: Path, report: Path | None) -> Path:
    from feedback.html_report import write_report

    return write_report(warehouse, report or warehouse.parent / "report.html")

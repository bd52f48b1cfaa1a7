"""`itrack build`: the nightly pipeline, safe for analysts holding the warehouse open.

backup raw store -> ingest -> copy the published warehouse to data/.build/ -> dbt build there
-> feedback (reads the build file) -> publish with one atomic rename -> HTML report.

Analysts' read-only connections keep the old file (its inode) until they reconnect, and a new
connection sees the new file whole: nobody ever sees a half-built warehouse, and a read-only
analyst session never blocks the build.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.contract import new_run_id
from ingest.errors import Refused, UserError
from ingest.extract import extract, is_database_url
from ingest.load import RunSummary, ingest_paths
from ingest.store.duckdb.store import connect, raw_store_path


@dataclass
class BuildResult:
    warehouse: Path
    ingest: RunSummary | None = None
    backup: Path | None = None
    feedback: object | None = None
    report: Path | None = None
    steps: list[str] = field(default_factory=list)


Note = Callable[[str], None]


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
    warehouse = Path(db).absolute()
    raw_store = raw_store_path(warehouse)
    result = BuildResult(warehouse)
    if take_backup and raw_store.exists():
        from ingest.store.duckdb.backup import backup

        result.backup = backup(warehouse, wait_seconds=wait_seconds)
        note(f"backup: {result.backup}")
    if source is not None:
        if paths:
            raise UserError("build --from a database ingests no files: give one or the other")
        if not is_database_url(source):
            raise UserError(f"--from takes a postgresql:// URL, not '{source}'")
        extracted = extract(source, warehouse, wait_seconds=wait_seconds)
        result.ingest = extracted.run
        pulled = ", ".join(f"{n} {table}" for table, n in extracted.pulled.items())
        note(
            f"extract from {extracted.source}: pulled {pulled}; {extracted.run.accepted} "
            f"accepted, {extracted.run.rejected} rejected (run {extracted.run.run_id})"
        )
    if paths:  # no paths: rebuild from what the raw store holds, ingest nothing
        result.ingest = ingest_paths(paths, db=warehouse, wait_seconds=wait_seconds)
        note(
            f"ingest: {result.ingest.accepted} accepted, {result.ingest.rejected} rejected "
            f"(run {result.ingest.run_id})"
        )
    building = _fresh_build_file(warehouse)
    try:
        _dbt_build(building, raw_store, note)
        result.feedback = _feedback(
            building, warehouse, feeders, placements, candidates, wait_seconds, note
        )
        _refresh_feedback_runs(building, raw_store)
        building.replace(warehouse)  # the publish: atomic on one filesystem
        note(f"published: {warehouse}")
    finally:
        building.unlink(missing_ok=True)
        building.with_name(building.name + ".wal").unlink(missing_ok=True)
    if write_html:
        result.report = _report(warehouse, report, note)
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
    note("dbt build: ok")


def _feedback(
    building: Path,
    warehouse: Path,
    feeders: Path | None,
    placements: Path | None,
    candidates: Path | None,
    wait_seconds: float,
    note: Note,
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
    note(f"feedback: {result}")
    return result


def _refresh_feedback_runs(building: Path, raw_store: Path) -> None:
    """Feedback appended to the raw store after dbt copied it: bring the build file up to date."""
    con = connect(building)
    try:
        con.execute(f"attach '{_sql(raw_store)}' as raw_store (read_only)")
        con.execute("create schema if not exists raw")
        con.execute(
            "create or replace table raw.feedback_runs as "
            "select * from raw_store.main.feedback_runs"
        )
        con.execute("detach raw_store")
        con.execute("checkpoint")
    finally:
        con.close()


def _report(warehouse: Path, report: Path | None, note: Note) -> Path:
    from feedback.html_report import write_report

    out = write_report(warehouse, report or warehouse.parent / "report.html")
    note(f"report: {out}")
    return out


def _sql(path: Path) -> str:
    return str(path).replace("'", "''")

"""`itrack build`: the nightly pipeline, safe for analysts holding the warehouse open.

backup raw store -> ingest -> snapshot of the raw store -> copy the published warehouse to
data/.build/ -> dbt build there (reading the snapshot) -> feedback (reads the build file) ->
publish with one atomic rename, together with feeders.json -> HTML report.

Analysts' read-only connections keep the old file (its inode) until they reconnect, and a new
connection sees the new file whole: nobody ever sees a half-built warehouse, and a read-only
analyst session never blocks the build.

Writers (the service API, `itrack interview`, ingest) and the build: dbt never opens the live
raw store. The build copies it under the writer lock (a file copy: writers wait that long, or
the build waits `--wait` for them, else exit 2 naming the holder) to
`data/.build/<stem>.snapshot-<id>/<stem>.raw.duckdb` and dbt attaches that copy read-only.
The feedback step takes the writer lock again only to log its run and publish.

One build per warehouse at a time (`data/.build/<stem>.build.lock`; busy: exit 2 naming the
holder, or `--wait`). Holding it, the build sweeps what a killed or failed build left
(`<stem>.build-*.duckdb`, snapshots), so a full disk never keeps the pipeline down.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import Refused
from ingest.load import RunSummary, fault_point, ingest_paths
from ingest.store import (
    connect,
    new_run_id,
    raw_store_path,
    store_lock,
    warehouse_path,
)

DEFAULT_INPUT = Path("data/sample")


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
    paths: list[Path] | None = None,
    db: Path | str | None = None,
    wait_seconds: float = 0.0,
    feeders: Path | None = None,
    placements: Path | None = None,
    candidates: Path | None = None,
    report: Path | None = None,
    take_backup: bool = True,
    write_html: bool = True,
    note: Note = print,
) -> BuildResult:
    warehouse = warehouse_path(db).absolute()
    raw_store = raw_store_path(warehouse)
    result = BuildResult(warehouse)
    with build_lock(warehouse, wait_seconds):
        sweep_leftovers(warehouse)
        if take_backup and raw_store.exists():
            from ingest.backup import backup

            result.backup = backup(warehouse, wait_seconds=wait_seconds)
            note(f"backup: {result.backup}")
        result.ingest = ingest_paths(
            paths or [DEFAULT_INPUT], db=warehouse, wait_seconds=wait_seconds
        )
        note(
            f"ingest: {result.ingest.accepted} accepted, {result.ingest.rejected} rejected "
            f"(run {result.ingest.run_id})"
        )
        run_id = new_run_id("build")
        snapshot = build_dir(warehouse) / f"{warehouse.stem}.snapshot-{run_id}" / raw_store.name
        building = build_dir(warehouse) / f"{warehouse.stem}.{run_id}.duckdb"
        try:
            snapshot_raw_store(raw_store, snapshot, wait_seconds)
            _fresh_build_file(warehouse, building)
            _dbt_build(building, snapshot, raw_store, note)
            result.feedback = _feedback(
                building, warehouse, feeders, placements, candidates, wait_seconds, note
            )
            note(f"published: {warehouse}")
        finally:
            _remove_db(building)
            shutil.rmtree(snapshot.parent, ignore_errors=True)
    if write_html:
        result.report = _report(warehouse, report, note)
    return result


@contextlib.contextmanager
def build_lock(warehouse: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """One build per warehouse location; busy -> StoreBusyError (exit 2) naming the holder."""
    folder = build_dir(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    with store_lock(folder / f"{warehouse.stem}.build", wait_seconds, what="build"):
        yield


def sweep_leftovers(warehouse: Path) -> list[Path]:
    """Remove what killed or failed builds of `warehouse` left in data/.build (call it holding
    `build_lock`: then no build of this warehouse is running)."""
    folder = build_dir(warehouse)
    swept = []
    for pattern in (f"{warehouse.stem}.build-*.duckdb*", f"{warehouse.stem}.snapshot-*"):
        for path in folder.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            swept.append(path)
    return swept


def snapshot_raw_store(raw_store: Path, snapshot: Path, wait_seconds: float = 0.0) -> None:
    """A consistent copy of the raw store for dbt to read: taken under the writer lock (no
    writer has the file open then), the file and any WAL a killed writer left, folded."""
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    with store_lock(raw_store, wait_seconds):
        if not raw_store.exists():
            from ingest.store import StoreError

            raise StoreError(f"no raw store at {raw_store}: run `itrack ingest` first")
        shutil.copyfile(raw_store, snapshot)
        wal = raw_store.with_name(raw_store.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, snapshot.with_name(snapshot.name + ".wal"))
    connect(snapshot).close()  # replays a copied WAL into the private copy, if any


def _remove_db(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)


def _fresh_build_file(warehouse: Path, building: Path) -> None:
    """A private copy of the published warehouse: incremental models keep their state, and the
    published file is never opened for writing (an analyst may hold it open read-only)."""
    building.parent.mkdir(parents=True, exist_ok=True)
    if warehouse.exists():
        shutil.copy2(warehouse, building)


def _dbt_build(building: Path, snapshot: Path, raw_store: Path, note: Note) -> None:
    from ingest.dbt_runner import run_dbt

    outcome = run_dbt(["build"], warehouse=building, raw_store=snapshot, location=raw_store)
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

    data = warehouse.parent
    result = run_feedback(
        warehouse=building,
        raw_store_db=warehouse,
        feeders_path=feeders or data / "feeders.json",
        placements_path=placements or data / "candidate_placements.json",
        candidates_path=candidates,
        full=False,
        wait_seconds=wait_seconds,
        publish=lambda store: _publish(building, warehouse, store),
    )
    note(f"feedback: {result}")
    return result


def _publish(building: Path, warehouse: Path, store) -> None:
    """Under the writer lock, with this run's feedback log rows inserted (uncommitted): copy the
    log into the build file, then publish it with one rename."""
    runs = store.sql("select * from feedback_runs").to_arrow_table()  # noqa: F841 - read by name
    con = connect(building)
    try:
        con.execute("create schema if not exists raw")
        con.execute("create or replace table raw.feedback_runs as select * from runs")
        con.execute("checkpoint")
    finally:
        con.close()
    fault_point("publish")
    building.replace(warehouse)  # the publish: atomic on one filesystem


def _report(warehouse: Path, report: Path | None, note: Note) -> Path:
    from feedback.html_report import write_report

    out = write_report(warehouse, report or warehouse.parent / "report.html")
    note(f"report: {out}")
    return out

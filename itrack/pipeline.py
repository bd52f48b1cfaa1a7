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
    dbt_nodes: list[str] = field(default_factory=list)  # unique ids dbt build ran
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
    data = warehouse.parent
    outputs = [feeders or data / "feeders.json", placements or data / "candidate_placements.json"]
    outputs += [candidates] if candidates else []
    outputs += [report or data / "report.html"] if write_html else []
    fingerprint = build_fingerprint(warehouse, outputs)
    if fingerprint is not None and fingerprint == _last_fingerprint(warehouse):
        # Nothing the marts, the feedback or the report are made from has changed since the
        # last published build: a no-op rerun publishes nothing and rewrites nothing.
        with _step(result, "dbt build", note) as out:
            out.append("skipped: nothing changed since the last build")
        result.seconds = round(time.monotonic() - clock, 2)
        return result
    building = _fresh_build_file(warehouse)
    try:
        with _step(result, "dbt build", note) as out:
            result.dbt_nodes = _dbt_build(building, raw_store, noted)
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
    _remember_fingerprint(warehouse, build_fingerprint(warehouse, outputs))
    result.seconds = round(time.monotonic() - clock, 2)
    return result


def build_fingerprint(warehouse: Path, outputs: list[Path]) -> str | None:
    """What a build's outputs are made of: per raw table dbt reads (its declared sources; not
    the audit tables every ingest appends to) the row count and a sum of row hashes (one scan,
    under a second at 1M records), the dbt project's files, and the published outputs' sizes
    and mtimes.
    None when there is no raw store or an output is missing (build)."""
    raw_store = raw_store_path(warehouse)
    if not raw_store.exists() or not warehouse.exists():
        return None
    import hashlib
    import json

    import duckdb
    import yaml

    from itrack.dbt_runner import PROJECT_DIR

    sources = yaml.safe_load(
        (PROJECT_DIR / "models" / "staging" / "itrack" / "_itrack__sources.yml").read_text()
    )
    tables = sorted(t["name"] for s in sources["sources"] for t in s["tables"])
    con = duckdb.connect(str(raw_store), read_only=True)
    try:
        present = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        state: dict[str, object] = {}
        for table in tables:
            if table in present:  # the content itself: any change, even by hand, rebuilds
                state[table] = con.execute(
                    f'select count(*), sum(hash(t)::hugeint)::varchar from "{table}" t'
                ).fetchone()
    finally:
        con.close()
    for path in sorted(PROJECT_DIR.rglob("*")):
        if path.is_file() and not {"target", "logs"} & set(path.relative_to(PROJECT_DIR).parts):
            state[str(path.relative_to(PROJECT_DIR))] = path.stat().st_mtime_ns
    for path in [warehouse, *outputs]:
        if not path.exists():
            return None
        state[str(path)] = [path.stat().st_size, path.stat().st_mtime_ns]
    return hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()


def _fingerprint_file(warehouse: Path) -> Path:
    return build_dir(warehouse) / f"{warehouse.name}.fingerprint"


def _last_fingerprint(warehouse: Path) -> str | None:
    path = _fingerprint_file(warehouse)
    return path.read_text().strip() if path.exists() else None


def _remember_fingerprint(warehouse: Path, fingerprint: str | None) -> None:
    path = _fingerprint_file(warehouse)
    if fingerprint is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fingerprint + "\n")


def _fresh_build_file(warehouse: Path) -> Path:
    """A private copy of the published warehouse: incremental models keep their state, and the
    published file is never opened for writing (an analyst may hold it open read-only)."""
    folder = build_dir(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    building = folder / f"{warehouse.stem}.{new_run_id('build')}.duckdb"
    if warehouse.exists():
        shutil.copy2(warehouse, building)
    return building


def _dbt_build(building: Path, raw_store: Path, note: Note) -> list[str]:
    from itrack.dbt_runner import run_dbt

    # Production builds run models, seeds and data tests; the unit tests (fixed inputs, no
    # data) prove the SQL and run in `make test` (tests/test_dbt_marts.py), not every night.
    outcome = run_dbt(
        ["build", "--exclude-resource-type", "unit_test"], warehouse=building, raw_store=raw_store
    )
    if not outcome.ok:
        failed = "; ".join(outcome.failures) or f"see {outcome.log_path}"
        raise Refused(f"dbt build failed, nothing published and no feedback written: {failed}")
    from feedback.data_quality import data_quality_lines

    for line in data_quality_lines(building):  # unmapped stage names, data-quality counts
        note(line)
    return outcome.nodes


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

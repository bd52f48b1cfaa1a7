"""`itrack build`: the nightly pipeline, safe for analysts holding the warehouse open.

backup raw store -> ingest -> snapshot of the raw store -> a new build file in data/.build/
(with the published seeds) -> dbt build there (reading the snapshot) -> feedback (reads the build
file) and the HTML report, staged -> publish: the warehouse, feeders.json, the placements and
the report replaced as one set through a journal (feedback/publish.py).

First, before it copies or writes anything, a build decides whether it can change anything:
with every input file loaded already (path, size, mtime) and the raw store, the dbt project and
the outputs as the last published build left them, it stops there (after a backup only if the
raw store differs from the newest backup).

Analysts' read-only connections keep the old file (its inode) until they reconnect, and a new
connection sees the new file whole: nobody ever sees a half-built warehouse, and a read-only
analyst session never blocks the build.

Writers (the service API, `itrack interview`, ingest) and the build: dbt never opens the live
raw store. The build copies it under the writer lock (a file copy: writers wait that long, or
the build waits `--wait` for them, else exit 2 naming the holder) to
`data/.build/<stem>.snapshot/<stem>.raw.duckdb`, and dbt reads that copy (its
`raw_store_path`). The feedback step takes the writer lock again only to log its run and
publish: the warehouse, feeders.json, the placements, the report and the run log change
together, or, after a kill, at the next command that takes the build lock (the journal's roll
forward, `finish_publish`).

One build per warehouse at a time (`data/.build/<stem>.build.lock`; busy: exit 2 naming the
holder, or `--wait`). Holding it, the build sweeps what a killed or failed build left
(`<stem>.build-*.duckdb`, snapshots), so a full disk never keeps the pipeline down.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from feedback.atomic import sweep_temp_files
from feedback.publish import STEP_HOOKS as STEP_HOOKS
from feedback.publish import build_dir, journal_path, stages
from ingest.errors import Interrupted, Refused, UserError
from ingest.interrupts import interrupted, interruptible
from ingest.migrate import check_dsn, masked
from ingest.pidlock import pid_lock
from ingest.stamps import new_run_id, utc_now
from ingest.store.duckdb.backup import (
    backup,
    content_fingerprint,
    default_backup_dir,
    newest_fingerprint,
)
from ingest.store.duckdb.store import (
    StoreBusyError,
    StoreError,
    connect,
    raw_store_path,
    remove_database,
    store_lock,
)
from itrack.settings import check_location, check_memory_limit, get_settings, location

if TYPE_CHECKING:
    from ingest.load import RunSummary
    from itrack.dbt_runner import DbtOutcome

# Callables told when a publish reaches a step ("publish", "journal", "renamed <name>",
# "logged"): STEP_HOOKS, imported above, is feedback.publish's list, told by every publisher
# (a build, `itrack feedback`, the live feedback path). The fault tests register one that kills
# the process there.


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


@dataclass(frozen=True)
class BuildRequest:
    """What one build was asked to do (`run_build`'s arguments, documented there)."""

    paths: list[Path] | None
    source: str | None
    wait_seconds: float
    feeders: Path | None
    placements: Path | None
    candidates: Path | None
    report: Path | None
    take_backup: bool
    write_html: bool
    replay: bool
    plan_cache: Path | None
    sign_key: bytes | None

    def report_path(self, warehouse: Path) -> Path | None:
        """Where the HTML report goes; None when the build writes none."""
        return (self.report or default_report(warehouse)) if self.write_html else None

    def feedback_files(self, warehouse: Path) -> dict[str, Path]:
        """The feedback step's files by output name, where they go."""
        data = warehouse.parent
        files = {
            "feeders": self.feeders or data / "feeders.json",
            "placements": self.placements or data / "candidate_placements.json",
        }
        return files | ({"candidates": self.candidates} if self.candidates else {})

    def outputs(self, warehouse: Path) -> list[Path]:
        """Every file the build publishes besides the warehouse."""
        report = self.report_path(warehouse)
        return [*self.feedback_files(warehouse).values(), *([report] if report else [])]


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
    replay: bool = True,
    plan_cache: Path | None = None,
    sign_key: bytes | None = None,
) -> BuildResult:
    """Backup, ingest `paths` (none: nothing is ingested, the marts are rebuilt from the raw
    store as it is), dbt build, feedback, publish, HTML report. `note` gets one line per step
    as it finishes and whatever the steps report (dbt's notes included). `replay`: run the
    compiled plan of the last dbt run when the project is unchanged (False: dbt runs).
    `plan_cache`: a folder of plans shared between warehouse locations (`ITRACK_PLAN_CACHE`):
    a location without a plan for its project takes one recorded elsewhere, and a plan
    recorded here is shared there. `sign_key` (`ITRACK_BACKUP_KEY_FILE`'s): the backup's
    manifest is signed with it, and a newest backup it did not sign is not taken as current."""
    clock = time.monotonic()
    request = BuildRequest(
        paths,
        source,
        wait_seconds,
        feeders,
        placements,
        candidates,
        report,
        take_backup,
        write_html,
        replay,
        plan_cache,
        sign_key,
    )
    # one location however it is spelled (a symlinked folder, `..`): its fingerprint, notes,
    # locks and dbt's paths are the same for every spelling, so a rerun through another one
    # skips as through the first; checked before anything is written
    warehouse = location(check_location(Path(db)))
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
    with build_lock(warehouse, wait_seconds, noted):  # an unfinished publish: completed first
        sweep_leftovers(warehouse)
        if write_html:  # a report staged by a build killed before its journal was written
            sweep_temp_files(request.report_path(warehouse))
        with _saying_what_stands(result):
            _build_locked(result, request, note, noted)
    result.seconds = round(time.monotonic() - clock, 2)
    return result


_ALL_LOADED = "skipped: every file is loaded already (same path, size and mtime)"


@contextmanager
def _saying_what_stands(result: BuildResult) -> Iterator[None]:
    """Ctrl-C after the build's ingest (or extract) committed says that its rows stay in the
    raw store: the plain "nothing of this run was written" was not true of them."""
    try:
        yield
    except BaseException as exc:
        ctrl_c = isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, Exception) and interrupted(exc)
        )
        if ctrl_c and result.ingest is not None:
            raise Interrupted(
                f"interrupted; ingest run {result.ingest.run_id} ({result.ingest.accepted} "
                "accepted) is in the raw store and stays: run the build again to publish it"
            ) from None
        raise


def _check_source(source: str, paths: list[Path] | None) -> None:
    """`--from` as the build can use it, refused before anything is done: these were checked
    after the backup, so a build that could not run took a snapshot first."""
    from ingest.extract import is_database_url

    if paths:
        raise UserError("build --from a database ingests no files: give one or the other")
    if not is_database_url(source):
        raise UserError(f"--from takes a postgresql:// URL, not '{masked(source, source)}'")
    check_dsn(source)


def _build_locked(result: BuildResult, request: BuildRequest, note: Note, noted: Note) -> None:
    """The build, holding the build lock (one per warehouse)."""
    if request.source is not None:
        _check_source(request.source, request.paths)
    warehouse = result.warehouse
    outputs = request.outputs(warehouse)
    # Before anything is copied or written: can this build change anything at all?
    check = _unchanged(
        warehouse,
        request.paths,
        request.source,
        outputs,
        request.take_backup,
        request.wait_seconds,
        request.sign_key,
    )
    if check.inputs_loaded and check.build_current:
        _nothing_to_build(result, request, check, note)
        return
    if request.take_backup and raw_store_path(warehouse).exists():
        with _step(result, "backup", note) as out:
            out.append(_take_backup(result, request))
    _ingest(result, request, check, note)
    _rebuild(result, request, check, outputs, note, noted)


def _nothing_to_build(
    result: BuildResult, request: BuildRequest, check: Unchanged, note: Note
) -> None:
    """Every input file is loaded already (same path, size and mtime), and the raw store, the
    dbt project and the outputs are as the last published build left them: ingest would find
    nothing, dbt and feedback would rebuild the same. Back up only if the raw store differs
    from the newest backup (the last build's own ingest and feedback log changed it after its
    backup); no snapshot, nothing rewritten."""
    if request.take_backup:
        with _step(result, "backup", note) as out:
            if check.backup_current:
                out.append("skipped: the newest backup holds the raw store as it is")
            else:
                out.append(_take_backup(result, request))
    if request.paths:
        with _step(result, "ingest", note) as out:
            out.append(_ALL_LOADED)
    with _step(result, "dbt build", note) as out:
        out.append("skipped: nothing changed since the last build")


def _take_backup(result: BuildResult, request: BuildRequest) -> str:
    """Back the raw store up (signed with the request's key); where the backup went."""
    result.backup = backup(
        result.warehouse, wait_seconds=request.wait_seconds, sign_key=request.sign_key
    )
    return str(result.backup)


def _ingest(result: BuildResult, request: BuildRequest, check: Unchanged, note: Note) -> None:
    """The ingest step: the extract of `--from`, or the files (skipped when every one is
    loaded and no orphan waits: the ingest would only record an empty run)."""
    # here, not at the top: a no-op build imports neither DuckDB nor the contract's models
    from ingest.extract import extract
    from ingest.load import ingest_paths

    warehouse, wait_seconds = result.warehouse, request.wait_seconds
    if request.source is not None:
        with _step(result, "ingest", note) as out:
            extracted = extract(request.source, warehouse, wait_seconds=wait_seconds)
            result.ingest = extracted.run
            pulled = ", ".join(f"{n} {table}" for table, n in extracted.pulled.items())
            out.append(
                f"extract from {extracted.source}: pulled {pulled}; run "
                f"{extracted.run.run_id}: {extracted.run.accepted} accepted, "
                f"{extracted.run.rejected} rejected"
            )
    if not request.paths:
        return
    with _step(result, "ingest", note) as out:
        if check.ingest_idle:  # (the raw store changed otherwise: by hand or by the service)
            out.append(_ALL_LOADED)
            return
        limit = get_settings().memory_limit  # as `itrack ingest` is bounded
        try:
            result.ingest = ingest_paths(
                request.paths, db=warehouse, wait_seconds=wait_seconds, memory_limit=limit
            )
        except StoreError:
            check_memory_limit(limit)  # the store would not open: was it the setting?
            raise
        out.append(
            f"run {result.ingest.run_id}: {result.ingest.accepted} accepted, "
            f"{result.ingest.rejected} rejected"
        )
        if result.ingest.changed == 0:
            out.append("no new records")


def _rebuild(
    result: BuildResult,
    request: BuildRequest,
    check: Unchanged,
    outputs: list[Path],
    note: Note,
    noted: Note,
) -> None:
    """Snapshot the raw store, build a new warehouse file from it (unless nothing the outputs
    are made from changed), then feedback, publish and the report."""
    warehouse = result.warehouse
    raw_store = raw_store_path(warehouse)
    run_id = new_run_id("build")
    # a fixed path per warehouse (one build at a time holds it): dbt's vars stay the same from
    # one build to the next, so its partial parsing keeps working
    snapshot = build_dir(warehouse) / f"{warehouse.stem}.snapshot" / raw_store.name
    building = build_dir(warehouse) / f"{warehouse.stem}.{run_id}.duckdb"
    try:
        snapshot_raw_store(raw_store, snapshot, request.wait_seconds)
        # No second scan when the answer is known: the raw store differed from the last
        # build's before ingest, or this ingest inserted or changed rows of the sources
        fingerprint = (
            None
            if check.build_current is False or (result.ingest is not None and result.ingest.changed)
            else build_fingerprint(warehouse, outputs, snapshot)
        )
        if fingerprint is not None and fingerprint == _last_fingerprint(warehouse):
            # Nothing the marts, the feedback or the report are made from has changed since the
            # last published build: a no-op rerun publishes nothing and rewrites nothing.
            with _step(result, "dbt build", note) as out:
                out.append("skipped: nothing changed since the last build")
            return
        with _step(result, "dbt build", note) as out:
            project = project_state()
            plan = _dbt_build(
                building,
                snapshot,
                warehouse,
                project,
                request.replay,
                request.plan_cache,
                noted,
                out,
            )
            result.dbt_nodes = plan.ran
        state = _feedback_and_publish(result, request, building, snapshot, plan, outputs, note)
        # the snapshot now holds this run's feedback log too: what the next build compares (the
        # outputs as published: feeders.json merged again if the scoring job wrote it meanwhile)
        if state is None:  # (nothing published: the digests were not taken)
            state = _raw_digests(snapshot, warehouse)
        _remember_fingerprint(warehouse, _fingerprint(state, warehouse, outputs))
        _source_tables(warehouse)  # noted for the next no-op (a first build's: only now)
        _remember(warehouse, "project", project)
    finally:
        if not stages(journal_path(warehouse), building):  # else the journal's, to roll forward
            remove_database(building)
        shutil.rmtree(snapshot.parent, ignore_errors=True)


def _feedback_and_publish(
    result: BuildResult,
    request: BuildRequest,
    building: Path,
    snapshot: Path,
    plan: _DbtRun,
    outputs: list[Path],
    note: Note,
) -> dict[str, object] | None:
    """The feedback step, which publishes the warehouse `building` with its files and the
    report as one set; the snapshot's digests it took for the journal's fingerprint (None when
    it published nothing)."""
    warehouse = result.warehouse
    rendering: list[Step] = []  # the report, rendered in the feedback step, before publish
    sources: list[dict[str, object]] = []  # the snapshot's digests, taken once

    def fingerprint(staged: list) -> str | None:
        """What this build records once `staged` (feedback.publish.Output) are published,
        carried by its journal: the snapshot holds this run's feedback log rows by now, and
        a rename keeps a file's size and mtime."""
        sources.append(_raw_digests(snapshot, warehouse))
        moved = {os.path.realpath(o.target): Path(o.staged) for o in staged if o.staged}
        return _fingerprint(sources[-1], warehouse, outputs, moved)

    with _step(result, "feedback", note) as out:
        result.feedback = _feedback(
            building,
            snapshot,
            warehouse,
            request.feeders,
            request.placements,
            request.candidates,
            request.report_path(warehouse),
            request.wait_seconds,
            plan.feedback_runs_sql,
            rendering,
            fingerprint,
        )
        out.append(str(result.feedback))
        result.published |= request.feedback_files(warehouse)
        result.published["warehouse"] = warehouse
    with _step(result, "publish", note) as out:  # done with the feedback, in one journal
        out.append(str(warehouse))
    for step in rendering:  # published with the rest: said after the publish
        result.report = result.published["report"] = Path(step.result)
        result.steps.append(step)
        note(f"report: {step.result} ({step.seconds:.1f} s)")
    return sources[-1] if sources else None


def build_fingerprint(
    warehouse: Path, outputs: list[Path], raw_store: Path | None = None
) -> str | None:
    """What a build's outputs are made of: per raw table dbt reads (its declared sources; not
    the audit tables every ingest appends to) the row count and a sum of row hashes (one scan,
    under a second at 1M records), the dbt project's files, and the published outputs' sizes
    and mtimes.
    None when there is no raw store or an output is missing (build). `raw_store`: the build's
    snapshot of it (the live store may be held by a writer)."""
    raw_store = raw_store or raw_store_path(warehouse)
    if not raw_store.exists() or not warehouse.exists():
        return None
    return _fingerprint(_raw_digests(raw_store, warehouse), warehouse, outputs)


def _raw_digests(raw_store: Path, warehouse: Path) -> dict[str, object]:
    """`_source_digests` of the raw store (or a build's snapshot of it) at `raw_store`."""
    import duckdb

    con = interruptible(duckdb.connect(str(raw_store), read_only=True))
    try:
        return _source_digests(con, warehouse)
    finally:
        con.close()


def _source_digests(
    con,
    warehouse: Path,
    digests: dict[str, list] | None = None,
    tables: list[str] | None = None,
) -> dict[str, object]:
    """Per raw table dbt reads (its declared sources), the row count and sum of row hashes:
    the content itself, so any change, even by hand, rebuilds. The feedback log by run and
    feeder: the build adds its own run's rows to its snapshot with its own clock, the live store
    with the log's. `digests`: the other tables' digests already taken (`table_digests`);
    `tables`: the sources' tables (`_source_tables`), when the caller has them."""
    from ingest.store.duckdb.backup import table_digests

    tables = _source_tables(warehouse) if tables is None else tables
    present = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    state: dict[str, object] = {}
    for table in tables:
        if table == "feedback_runs" and table in present:
            state[table] = list(
                con.execute(
                    "select count(*), sum(hash((run_id, feeder_source))::hugeint)::varchar "
                    "from feedback_runs"
                ).fetchone()
            )
        elif digests is not None and table in digests:
            state[table] = digests[table]
        elif table in present:
            state[table] = table_digests(con, [table])[table]
    return state


def _source_tables(warehouse: Path) -> list[str]:
    """The raw tables the dbt project declares as its sources (`_itrack__sources.yml`),
    remembered with the file's size and mtime: a no-op build reads the note instead of importing
    and running a YAML parser (about 0.02 s of its 0.4 s)."""
    from itrack.dbt_runner import PROJECT_DIR

    path = PROJECT_DIR / "models" / "staging" / "itrack" / "_itrack__sources.yml"
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns]
    seen = _noted_for(warehouse, "sources", stamp)
    if isinstance(seen, list):
        return seen
    import yaml

    # libyaml's safe loader where PyYAML has it: the pure-Python one took 0.05 s of a no-op
    sources = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    tables = sorted(t["name"] for s in sources["sources"] for t in s["tables"])
    if warehouse.exists():  # a note belongs to a published warehouse (`_remembered`)
        _note_for(warehouse, "sources", stamp, tables)
    return tables


def _fingerprint(
    state: dict[str, object],
    warehouse: Path,
    outputs: list[Path],
    staged: dict[str, Path] | None = None,
) -> str | None:
    """The build fingerprint of raw-store digests `state`: with the dbt project's files and the
    published outputs' sizes and mtimes (None: an output is missing). `staged`: the files to be
    renamed over some of them (by real path), whose sizes and mtimes they will have."""
    import hashlib
    import json

    from itrack.dbt_runner import PROJECT_DIR

    state = dict(state)
    for path in sorted(PROJECT_DIR.rglob("*")):
        if path.is_file() and not {"target", "logs"} & set(path.relative_to(PROJECT_DIR).parts):
            state[str(path.relative_to(PROJECT_DIR))] = path.stat().st_mtime_ns
    for path in [warehouse, *outputs]:
        found = (staged or {}).get(os.path.realpath(path), path)
        if not found.exists():
            return None
        # keyed by the location, not the spelling: `--feeders` through a symlink is the same file
        state[str(location(path))] = [found.stat().st_size, found.stat().st_mtime_ns]
    return hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()


@dataclass
class Unchanged:
    """What a build can skip, decided before it copies or writes anything."""

    inputs_loaded: bool = False  # every input file loaded already (path, size, mtime)
    # and an ingest of them would record an empty run and change nothing: at least one input
    # file, and no orphan of an earlier run waiting to be validated again
    ingest_idle: bool = False
    # the raw store's sources, the dbt project and the outputs as the last build left them
    # (None: not known before ingest, e.g. an extract or an input file not loaded yet; the
    # ingest's counts or a scan of the snapshot decide)
    build_current: bool | None = None
    backup_current: bool = False  # the raw store equals the newest backup


def _unchanged(
    warehouse: Path,
    paths: list[Path] | None,
    source: str | None,
    outputs: list[Path],
    take_backup: bool,
    wait_seconds: float,
    sign_key: bytes | None = None,
) -> Unchanged:
    """Whether the inputs are loaded already and the raw store (one scan of its tables, under
    the writer lock so no write is half done), the project and the outputs are as the last
    published build and the newest backup recorded them, and whether an ingest of the inputs
    would have nothing to do (`ingest_idle`, also known without a published build). An extract
    (`--from`) always runs; with an input file not loaded yet the build runs too, and the raw
    store is not scanned."""
    raw_store = raw_store_path(warehouse)
    last = _last_fingerprint(warehouse)
    wal = raw_store.with_name(raw_store.name + ".wal")
    if source is not None or not raw_store.exists() or wal.exists():
        return Unchanged()
    from ingest.inputs import prepare_files

    files = [(f.kind, f.label, f.size, f.mtime_ns) for f in prepare_files(paths or [], None)]
    with store_lock(raw_store, wait_seconds):
        # under the writer lock: nobody writes the store meanwhile. What was read of the store
        # is noted with its stamp: a no-op rerun decides without opening it (the digests' scan
        # took 0.45 s at 1M; opening it, DuckDB's import 0.1 s of every no-op)
        tables = _source_tables(warehouse)
        stamp = [*_file_stamp(raw_store), *tables]
        facts = _noted_for(warehouse, "raw-store", stamp)
        if not isinstance(facts, dict):
            facts = _store_facts(raw_store, warehouse, files, tables, scan=last is not None)
            if "digests" in facts:
                _note_for(warehouse, "raw-store", stamp, facts)
    if not _all_loaded(files, facts["loaded"]):
        # the build ingests, backs up and then learns from the ingest (or one scan of the
        # snapshot) whether anything changed: a scan now would decide nothing
        return Unchanged()
    idle = bool(files) and not facts["retries"]
    if last is None:  # no published build to compare with: it builds
        return Unchanged(inputs_loaded=True, ingest_idle=idle)
    return Unchanged(
        inputs_loaded=True,
        ingest_idle=idle,
        build_current=_fingerprint(facts["sources"], warehouse, outputs) == last,
        backup_current=take_backup
        and newest_fingerprint(default_backup_dir(warehouse), warehouse, sign_key)
        == content_fingerprint(facts["digests"]),
    )


def _store_facts(
    raw_store: Path,
    warehouse: Path,
    files: list[tuple[str, str, int, int]],
    tables: list[str],
    scan: bool,
) -> dict[str, object]:
    """What `_unchanged` reads of the raw store: the files completed runs loaded (`loaded`),
    whether orphans wait for a retry (`retries`), and when `scan` and every one of `files` is
    loaded, every table's digests (`digests`) and the dbt sources' (`sources`)."""
    from ingest.load import loaded_stats, retries_waiting
    from ingest.store.duckdb.backup import table_digests

    con = connect(raw_store, read_only=True)
    try:
        loaded = loaded_stats(con)
        facts: dict[str, object] = {"loaded": loaded, "retries": retries_waiting(con)}
        if scan and _all_loaded(files, loaded):
            digests = table_digests(con)
            sources = _source_digests(con, warehouse, digests, tables)
            facts |= {"digests": digests, "sources": sources}
        return facts
    finally:
        con.close()


def _all_loaded(files: list[tuple[str, str, int, int]], loaded: list) -> bool:
    """Every input file's (kind, path, size, mtime) is one a completed run loaded (`loaded`:
    as read from the store, or from the note, where JSON made the tuples lists)."""
    return {tuple(f) for f in files} <= {tuple(f) for f in loaded}


def _file_stamp(path: Path) -> list[int]:
    """What changes whenever a file is written or replaced: inode, size, mtime and ctime (ctime
    cannot be set back by hand)."""
    stat = path.stat()
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _noted_for(warehouse: Path, what: str, stamp: list[int]) -> object | None:
    """The value noted as `what` (`_note_for`) for a file with this stamp (its size, mtime, ...),
    None when the note is missing, damaged or for another stamp: work done once per version of
    a file, not per build."""
    with contextlib.suppress(ValueError, TypeError, AttributeError):  # damaged: none
        seen = json.loads(_remembered(warehouse, what) or "{}")
        if seen.get("stamp") == stamp:
            return seen.get("value")
    return None


def _note_for(warehouse: Path, what: str, stamp: list[int], value: object) -> None:
    _remember(warehouse, what, json.dumps({"stamp": stamp, "value": value}))


def project_state(project: Path | None = None) -> str:
    """A hash of every file of the dbt project (not dbt's outputs `target/` and `logs/`)."""
    import hashlib

    from itrack.dbt_runner import PROJECT_DIR

    root = project or PROJECT_DIR
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not {"target", "logs"} & set(relative.parts):
            data = path.read_bytes()
            digest.update(f"{relative}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def _remembered(warehouse: Path, what: str) -> str | None:
    """What the last published build of `warehouse` noted as `what` (None: nothing)."""
    path = build_dir(warehouse) / f"{warehouse.name}.{what}"
    if not warehouse.exists() or not path.exists():
        return None
    return path.read_text().strip()


def _remember(warehouse: Path, what: str, value: str) -> None:
    """Note `value` as `what` for the next build (replaced whole: a reader never sees half)."""
    path = build_dir(warehouse) / f"{warehouse.name}.{what}"
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".new")
    staged.write_text(value + "\n")
    staged.replace(path)


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


@contextmanager
def build_lock(
    warehouse: Path, wait_seconds: float = 0.0, note: Note | None = None
) -> Iterator[None]:
    """One build per warehouse location; busy -> BuildBusy (exit 2) naming the holder.
    Whoever takes it first completes a publish a killed build or feedback run left unfinished
    (`finish_publish`), so what it reads and writes is one run's set of outputs."""
    with _build_lock_file(warehouse, wait_seconds):
        finish_publish(warehouse, wait_seconds, note)
        yield


class BuildBusy(StoreBusyError):
    """Another build of the warehouse held the build lock for the whole wait."""


class FeedbackRunning(StoreBusyError):
    """Another feedback run on the warehouse held its feedback lock for the whole wait."""


@contextmanager
def feedback_lock(published: Path, wait_seconds: float) -> Iterator[None]:
    """One feedback run outside a build at a time per warehouse, whatever process asks
    (`itrack feedback`, POST /feedback/run on any server worker): a run waits for another up to
    `wait_seconds`, then FeedbackRunning naming it. A file lock beside the build's: each API
    server queued only its own runs (a thread lock), so a run of another worker or of the CLI
    was taken for a build (409 "a build is running"). Taken before the build lock, which a
    build holds alone: waiting here never waits for a build."""
    lock = build_dir(published) / f"{published.stem}.feedback.lock"

    def busy(holder: str) -> Exception:
        return FeedbackRunning(
            f"another feedback run on {published} is still running (PID {holder}) after "
            f"{wait_seconds:g} s; retry later or pass --wait SECONDS"
        )

    def cannot_open(exc: OSError) -> Exception:
        return StoreError(f"cannot create lock file {lock}: {exc.strerror}")

    with pid_lock(lock, wait_seconds, busy, cannot_open):
        yield


def _build_lock_file(warehouse: Path, wait_seconds: float) -> contextlib.AbstractContextManager:
    folder = build_dir(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    return store_lock(
        folder / f"{warehouse.stem}.build", wait_seconds, what="build", busy_error=BuildBusy
    )


def finish_publish(
    warehouse: Path, wait_seconds: float = 0.0, note: Note | None = None, held: Path | None = None
) -> None:
    """Complete (roll forward) the publish journaled for `warehouse`, if one was left
    unfinished, saying so in one line (`note`, default stderr). Its writer is gone once the
    journal's advisory lock is free (every writer of the journal holds it while the journal
    exists), which the roll forward takes, with feeders.json's, unless the caller holds both
    already (`held`: that feeders.json)."""
    path = journal_path(warehouse)
    if not path.exists():  # the usual case: one stat, nothing imported
        return
    from feedback.publish import Journal, roll_forward
    from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog

    def completed(journal: Journal) -> None:
        """A build's publish completed: its fingerprint recorded as the build would have, so
        the next build of the same inputs does nothing."""
        if journal.fingerprint is not None:
            _remember_fingerprint(warehouse, journal.fingerprint)

    log = DuckDBFeedbackLog(warehouse, wait_seconds)
    line = roll_forward(path, log, wait_seconds, held, completed)
    if line is not None:
        (note or _to_stderr)(line)


def default_report(warehouse: Path) -> Path:
    """Where the HTML report of `warehouse` goes unless told otherwise: beside it (the build's
    and `itrack report html`'s one default)."""
    return warehouse.parent / "report.html"


def settle_publish(warehouse: Path, wait_seconds: float = 0.0, held: Path | None = None) -> None:
    """For a writer of the outputs that does not hold the build lock (the live feedback path):
    complete an unfinished publish first. Not holding the journal's advisory lock (`held`
    None), only if no build runs (one that runs completed it when it started, or is publishing
    it now, holding that lock: it would be waited for). Holding it (and `held`, feeders.json's),
    a journal still there is
    one whose writer is gone (a build's or another live run's): completed now, before this
    writer stages its own outputs and journal."""
    if not journal_path(warehouse).exists():
        return
    if held is not None:
        finish_publish(warehouse, wait_seconds, held=held)
        return
    with contextlib.ExitStack() as building:
        try:
            building.enter_context(_build_lock_file(warehouse, 0))
        except StoreBusyError:
            return
        finish_publish(warehouse, wait_seconds)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def sweep_leftovers(warehouse: Path) -> list[Path]:
    """Remove what killed or failed builds of `warehouse` left in data/.build (call it holding
    `build_lock`: then no build of this warehouse is running)."""
    folder = build_dir(warehouse)
    swept = []
    # (not a journal's temp file: the live feedback path writes journals without the build
    # lock; the next publish sweeps a killed writer's, holding the journal's lock)
    patterns = [f"{warehouse.stem}.build-*.duckdb*", f"{warehouse.stem}.snapshot"]
    for pattern in patterns:
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
            raise StoreError(f"no raw store at {raw_store}: run `itrack ingest` first")
        shutil.copyfile(raw_store, snapshot)
        wal = raw_store.with_name(raw_store.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, snapshot.with_name(snapshot.name + ".wal"))
    connect(snapshot).close()  # replays a copied WAL into the private copy, if any


def _fresh_build_file(warehouse: Path, building: Path, keep_seeds: bool) -> bool:
    """A new, private build file; with `keep_seeds` it holds the published warehouse's seed
    tables (every table outside the models' schema `main`), which a build without
    --full-refresh does not load. No model is incremental, so nothing else is taken over: a
    copy of the whole published file cost a second at 1M and left the old tables' blocks free
    in the next published file (293 MB became 568 MB after one build at 1M). The published file
    is only read (an analyst may hold it open read-only). Returns whether the file has the
    seeds: not when they were not asked for, or when a process holds the published file open
    for writing (it cannot be attached then; the build loads the seeds itself)."""
    import duckdb

    from ingest.sqltext import sql_text
    from itrack.dbt_plan import copy_seed_tables

    remove_database(building)
    building.parent.mkdir(parents=True, exist_ok=True)
    con = interruptible(duckdb.connect(str(building)))
    try:
        if not (keep_seeds and warehouse.exists()):
            return False
        try:
            con.execute(f"attach {sql_text(str(warehouse))} as published (read_only)")
        except duckdb.IOException:  # "Could not set lock on file": a writer holds it
            return False
        return copy_seed_tables(con, "published") > 0
    finally:
        con.close()


# how the dbt step counts the nodes it ran, by unique-id prefix
NODE_KINDS = {"seed": "seeds", "model": "models", "test": "data tests"}


@dataclass
class _DbtRun:
    ran: list[str]  # unique ids of the models and tests run (seeds too when dbt loaded them)
    feedback_runs_sql: str | None = None  # the replayed SQL of stg_itrack__feedback_runs


def _dbt_build(
    building: Path,
    snapshot: Path,
    warehouse: Path,
    project: str,
    replay: bool,
    plan_cache: Path | None,
    note: Note,
    out: list[str],
) -> _DbtRun:
    """Models and data tests into the new build file `building`, reading `snapshot`: by
    replaying the compiled plan of the last dbt run when it is valid for this project
    (itrack/dbt_plan.py; the location's own, else one shared in `plan_cache`), else by `dbt
    build`, whose results become the next plan (shared too)."""
    from itrack import dbt_plan

    raw_store = raw_store_path(warehouse)
    key = dbt_plan.plan_key(project, dbt_plan.catalog_of(warehouse))
    plan = dbt_plan.load(raw_store, key) if replay else None
    if plan is None and replay and plan_cache is not None:
        if dbt_plan.adopt(plan_cache, key, raw_store):
            plan = dbt_plan.load(raw_store, key)
    outcome = None
    as_of = utc_now()
    if plan is not None:
        _fresh_build_file(warehouse, building, keep_seeds=False)
        outcome = dbt_plan.replay(plan, building, snapshot, raw_store, as_of=as_of)
    feedback_runs_sql = None
    if outcome is None:  # no valid plan, or the build file is not named as the plan expects
        outcome = _run_dbt_build(building, snapshot, warehouse, project)
        plan = dbt_plan.record(outcome.results, key) if outcome.ok else None
        if plan is not None:
            dbt_plan.save(plan, raw_store, building)
            problem = dbt_plan.share(raw_store, key, plan_cache) if plan_cache else None
            if problem:
                note(f"dbt plan not shared: cannot write {plan_cache} ({problem})")
        how = "ran dbt"
    else:
        how = "replayed dbt's compiled plan"
        feedback_runs_sql = plan.sql_of("stg_itrack__feedback_runs", as_of)
    if not outcome.ok:
        failed = "; ".join(outcome.failures) or f"see {outcome.log_path}"
        raise Refused(f"dbt build failed, nothing published and no feedback written: {failed}")
    counts = {kind: sum(n.startswith(f"{kind}.") for n in outcome.nodes) for kind in NODE_KINDS}
    ran = ", ".join(f"{n} {NODE_KINDS[kind]}" for kind, n in counts.items() if n)
    out.append(f"ok: {how} ({ran})")
    from feedback.data_quality import data_quality_lines

    for line in data_quality_lines(building):  # unmapped stage names, data-quality counts
        note(line)
    return _DbtRun(outcome.nodes, feedback_runs_sql)


def _run_dbt_build(building: Path, snapshot: Path, warehouse: Path, project: str) -> DbtOutcome:
    """`dbt build` of the models and data tests (seeds too when the project changed)."""
    from itrack.dbt_runner import run_dbt

    # Seeds are loaded by a full refresh, which any change to the project (a model, a macro,
    # a seed) triggers; otherwise the build file takes the published ones.
    full_refresh = project != _remembered(warehouse, "project")
    full_refresh |= not _fresh_build_file(warehouse, building, keep_seeds=not full_refresh)
    # Production builds run models, seeds and data tests; the unit tests (fixed inputs, no
    # data) prove the SQL and run in `make test` (tests/test_dbt_marts.py), not every night.
    # --no-write-json: manifest.json and run_results.json cost ~0.3 s to write and nothing
    # reads them (each node's time is in logs/dbt.log; `dbt build` by hand writes them).
    # Seeds are project files: the warehouse has them as of the last full refresh, which any
    # change to the project triggers, so an incremental build runs models and data tests only.
    selection = ["--full-refresh"] if full_refresh else ["--resource-type", "model", "test"]
    return run_dbt(
        ["build", "--no-write-json", "--exclude-resource-type", "unit_test", *selection],
        warehouse=building,
        raw_store=snapshot,
        location=raw_store_path(warehouse),
    )


def _feedback(
    building: Path,
    snapshot: Path,
    warehouse: Path,
    feeders: Path | None,
    placements: Path | None,
    candidates: Path | None,
    report: Path | None,
    wait_seconds: float,
    feedback_runs_sql: str | None,
    rendering: list[Step],
    fingerprint: Callable[[list], str | None],
) -> object:
    """The feedback step, which publishes: its files, the warehouse `building` becomes and the
    `report` (None: none) are staged, then replaced as one set (feedback.publish), the journal
    carrying the build's `fingerprint` of them."""
    from feedback.publish import file_output
    from itrack.services import run_feedback_step

    def stage(run_id: str, written: dict[str, dict]) -> list:
        """The build's own outputs, staged once the run is in its warehouse."""
        _refresh_feedback_runs(building, snapshot, warehouse, run_id, written, feedback_runs_sql)
        staged = [file_output(building, warehouse)]  # first: what analysts open
        if report is not None:
            staged += _stage_report(building, warehouse, report, rendering)
        return staged

    return run_feedback_step(
        warehouse,
        wait_seconds,
        built=building,
        feeders=feeders,
        placements=placements,
        candidates_path=candidates,
        full=False,
        before_publish=stage,
        previous=warehouse,  # the published warehouse the placements file was rendered from
        journal=journal_path(warehouse),
        fingerprint=fingerprint,
    )


def _refresh_feedback_runs(
    building: Path,
    snapshot: Path,
    warehouse: Path,
    run_id: str,
    written: dict[str, dict],
    sql: str | None,
) -> None:
    """This run's feedback log rows, added to the snapshot, then its staging table rebuilt by
    the SQL dbt compiled for it in this build (`sql`: the replayed plan's), so the published
    warehouse has the run it publishes with. Private files only: no lock held, nobody waits.
    (A second dbt invocation did the same in about a second: start-up, parse, one node.)"""
    from itrack.dbt_runner import rebuild_table

    if written:
        now = utc_now()
        rows = [(run_id, name, json.dumps(metrics), now) for name, metrics in written.items()]
        con = connect(snapshot)
        try:
            con.executemany("insert into feedback_runs values (?, ?, ?, ?)", rows)
            con.execute("checkpoint")
        finally:
            con.close()
    location = raw_store_path(warehouse)
    rebuild_table("stg_itrack__feedback_runs", building, snapshot, location, sql)


def _stage_report(building: Path, warehouse: Path, report: Path, rendering: list[Step]) -> list:
    """The report of the build file, staged to be published with it (its time in `rendering`:
    the summary's report step)."""
    from feedback.html_report import stage_report
    from feedback.publish import staged_output

    started = time.monotonic()
    # the charts drawn by the last build's report, per warehouse location
    cache = build_dir(warehouse) / f"{warehouse.stem}.report-charts"
    staged = stage_report(building, report, cache, shown=warehouse.name)
    rendering.append(Step("report", round(time.monotonic() - started, 2), str(report)))
    return staged_output(staged)

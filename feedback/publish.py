"""The publish journal: one run's outputs replaced as a set, rolled forward after a crash.

A build publishes several files (the warehouse, feeders.json, the placements, the candidates
file, the HTML report); `itrack feedback` the middle three, the live feedback path
(FeedbackService) feeders.json and an accepted offer's placements. Renames are atomic one at a
time, not
together: a process killed between two of them left, say, the new warehouse beside the previous
night's feeders.json. So, once every output is staged (a synced temp file beside its target):

1. the journal is written durably (`data/.build/<stem>.publish.json`: the staged files' folders
   fsynced, then temp file, fsync, rename, fsync of the folder): every staged file, its target
   and what it must hold, and the feedback log's record of the run;
2. the outputs are replaced in order and the log's record committed (`carry_out`);
3. the journal is removed.

Every writer holds the journal's advisory lock (`locked(journal path)`), then feeders.json's,
from before it stages until the journal is removed: the journal's lock serialises the writers
of one warehouse whichever feeders.json each writes. A journal found by whoever holds the
journal's lock is a publish that did not finish: the next
command that takes the build lock, or writes the outputs (the live feedback path, see
itrack.pipeline.finish_publish), completes it first with the same `carry_out` (roll forward),
or, when a staged file is missing or not what was staged, removes it and says so in one line,
leaving the outputs it had not replaced yet as they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedback.atomic import (
    Staged,
    fsync_dir,
    lock_path,
    locked,
    read_regular,
    rename_into_place,
    resolve_target,
    sweep_temp_files,
    write_atomic,
)
from ingest.checksum import sha256_of

if TYPE_CHECKING:  # not imported here: a no-op build imports this module, and never DuckDB
    from feedback.feeders import FeedersUpdate
    from feedback.service import FeedbackLog

# FeedbackLog state: the run whose journal's log record is committed (the record is written
# once, by the publish or by its roll forward, never twice)
PUBLISHED_KEY = "published_run"

Reached = Callable[[str], None]  # told each step of a publish; the fault tests kill there

# Callables told when a publish reaches a step ("publish", "journal", "renamed <name>",
# "logged"), whoever publishes (a build, `itrack feedback`, the live feedback path): the fault
# tests register one that kills the process there (itrack.pipeline.STEP_HOOKS is this list).
STEP_HOOKS: list[Reached] = []


def _hooks(step: str) -> None:
    for hook in STEP_HOOKS:
        hook(step)


def build_dir(warehouse: Path) -> Path:
    """`data/.build`: where the builds of the warehouses in `warehouse`'s folder keep their
    files (build files, snapshots, dbt's state, locks, this journal). Defined here, the lowest
    module that needs it: the pipeline and the dbt runner import it."""
    return Path(warehouse).parent / ".build"


def journal_path(warehouse: Path) -> Path:
    """The journal of `warehouse`'s location, beside the build's other files."""
    return build_dir(warehouse) / f"{Path(warehouse).stem}.publish.json"


@dataclass
class Output:
    """One staged output: `staged` is renamed over `target` (a symlink's target, resolved)."""

    target: str
    staged: str | None  # None: feeders.json already says what this run would write
    size: int = 0
    inode: int = 0  # a rename keeps it: the target having it means the rename was done
    sha256: str | None = None  # None: not hashed (the warehouse: size and inode only)
    backup: bool = False  # the replaced version kept as `<name>.bak`
    # feeders.json only: this run's metrics of the feeders it recomputed, their updated_at
    # and the sha256 of the version they were merged into; the target changed since (the
    # scoring job wrote it) -> merged again into that version, as a build does
    metrics: dict[str, Any] | None = None
    updated_at: str | None = None
    base_sha256: str | None = None


@dataclass
class Journal:
    run_id: str
    outputs: list[Output] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # the feedback log's record
    state: dict[str, str] = field(default_factory=dict)
    # a build's: the fingerprint it records once these outputs are published (its sources, the
    # dbt project, the outputs' sizes and mtimes, which a rename keeps), so that a roll forward
    # records it too and the next build of the same inputs does nothing (itrack.pipeline)
    fingerprint: str | None = None


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def staged_output(staged: Staged | None) -> list[Output]:
    """The journal entry of a staged JSON or HTML file (none when it changes nothing)."""
    if staged is None or staged.tmp is None:
        return []
    info = staged.tmp.stat()
    return [
        Output(
            str(staged.target),
            str(staged.tmp),
            info.st_size,
            info.st_ino,
            _sha256(staged.data),
            backup=staged.keep_backup and staged.previous is not None,
        )
    ]


def file_output(staged: Path, target: Path) -> Output:
    """The journal entry of a file staged by someone else (the build's warehouse): synced
    here, as the JSON files were when written."""
    fd = os.open(staged, os.O_RDONLY)
    try:
        os.fsync(fd)
        info = os.fstat(fd)
    finally:
        os.close(fd)
    return Output(str(resolve_target(target)), str(staged), info.st_size, info.st_ino)


def feeders_output(update: FeedersUpdate, metrics: dict[str, Any], now: str) -> Output:
    """feeders.json's entry: its staged file, if any, and what to merge again if it changed."""
    staged = update.staged
    assert staged is not None
    entry = staged_output(staged) or [Output(str(staged.target), None)]
    return dataclasses.replace(
        entry[0], metrics=metrics, updated_at=now, base_sha256=_sha256(staged.previous)
    )


def publish(
    path: Path | None, journal: Journal, log: FeedbackLog | None, reached: Reached | None = None
) -> set[str]:
    """Write `journal` durably, then carry it out (the targets written are returned). A
    failure after the journal is written leaves it and its staged files for the roll forward.
    Call it holding the journal's advisory lock, then feeders.json's (`locked`, as
    feedback.service.locked_outputs takes them) from before the staging to the end, as every
    writer of a journal does: `roll_forward` relies on it. `log` None: nothing
    to log (the live path's call that changed no metrics and no ledger). `path` None: no
    location to journal in (the live path given its warehouse as a connection): the renames
    and the log's record only."""
    reached = reached or _hooks
    reached("publish")  # every output staged, nothing written yet
    if path is not None:
        for folder in {Path(o.staged).parent for o in journal.outputs if o.staged}:
            fsync_dir(folder)  # the staged files' names survive a power loss too
        sweep_temp_files(path)  # a journal a killed writer was writing (it held our lock)
        write_atomic(path, _dumps(path, journal), keep_backup=False)
    reached("journal")
    return carry_out(path, journal, log, reached, logged=False)  # a new run: not logged yet


def carry_out(
    path: Path | None,
    journal: Journal,
    log: FeedbackLog | None,
    reached: Reached,
    logged: bool | None = None,
) -> set[str]:
    """The renames and the log's record, each done once however often this is run (the rule
    for the publish and its roll forward alike); then the journal is removed. `logged`: whether
    the log's record is committed already; None: asked of the log (a roll forward: the killed
    run may have committed it; the publish itself knows it has not, and saves opening the
    store). `log` None: the renames only."""
    written: set[str] = set()

    def replace_all() -> None:
        for output in journal.outputs:
            if _replace(output):
                written.add(output.target)
            reached(f"renamed {Path(output.target).name}")

    if log is not None and logged is None:
        logged = log.get_state(PUBLISHED_KEY, "") == journal.run_id
    if log is None or logged:
        replace_all()  # killed after the log's commit: only the renames may be left (none)
    else:  # the renames inside the log's transaction: committed after the last of them
        state = {**journal.state, PUBLISHED_KEY: journal.run_id}
        log.record_run(journal.run_id, journal.metrics, state, replace_all)
    reached("logged")
    if path is not None:
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
    return written


def _replace(output: Output) -> bool:
    """Put one output in place; False when it was in place already (or changes nothing)."""
    if output.metrics is not None:
        return _merge_feeders(output)
    staged, target = Path(output.staged or ""), Path(output.target)
    if not staged.exists():
        return False  # renamed by the run that was killed (`problem` checked the inode)
    backup = read_regular(target) if output.backup else None
    then = "the publish completes at the next build or feedback run"
    rename_into_place(staged, target, backup, target, then)
    return True


def _merge_feeders(output: Output) -> bool:
    """feeders.json: the staged file renamed when the target is as it was staged against;
    else (the scoring job wrote it since, or the staged file is gone) this run's metrics merged
    into the version on disk, as a build merges them."""
    target = Path(output.target)
    staged = Path(output.staged) if output.staged else None
    if _sha256(read_regular(target)) == output.base_sha256:
        if staged is None:
            return False
        if staged.exists() and sha256_of(staged) == output.sha256:
            return _replace(dataclasses.replace(output, metrics=None))
    from feedback.feeders import FeedersUpdate, merge_metrics

    metrics, now = output.metrics or {}, output.updated_at or ""
    update = FeedersUpdate(target, lambda doc: merge_metrics(doc, metrics, set(metrics), now))
    try:
        return update.commit()
    finally:
        update.discard()
        if staged is not None:
            staged.unlink(missing_ok=True)


def problem(output: Output) -> str | None:
    """Why `output` cannot be put in place: its staged file is gone (and not renamed) or not
    what was staged. None: it can. feeders.json always can (its metrics are in the journal)."""
    if output.metrics is not None or output.staged is None:
        return None
    staged, target = Path(output.staged), Path(output.target)
    try:
        info = staged.stat()
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            if target.stat().st_ino == output.inode:
                return None  # renamed already
        return f"{staged} (staged for {target.name}) is missing"
    damaged = info.st_size != output.size
    if not damaged and output.sha256 is not None:
        damaged = sha256_of(staged) != output.sha256  # streamed: 40 MB placements at 1M
    return f"{staged} (staged for {target.name}) is not what was staged" if damaged else None


def _dumps(path: Path, journal: Journal) -> bytes:
    """The journal as JSON, its paths relative to its folder: a location moved or restored
    elsewhere with its journal completes its own files, never those where it was."""
    raw = dataclasses.asdict(journal)
    for output in raw["outputs"]:
        for key in ("target", "staged"):
            if output[key] is not None:
                output[key] = os.path.relpath(output[key], path.parent)
    return json.dumps(raw, indent=1).encode()


def read(path: Path) -> Journal:
    """The journal at `path`; unreadable -> ValueError saying why."""
    try:
        raw = json.loads(path.read_bytes())
        outputs = [Output(**o) for o in raw.pop("outputs")]
        for output in outputs:
            output.target = os.path.normpath(path.parent / output.target)
            if output.staged is not None:
                output.staged = os.path.normpath(path.parent / output.staged)
        return Journal(outputs=outputs, **raw)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path} cannot be read ({exc})") from None


def roll_forward(
    path: Path,
    log: FeedbackLog,
    wait_seconds: float | None = None,
    held: Path | None = None,
    completed: Callable[[Journal], None] | None = None,
) -> str | None:
    """Complete the unfinished publish journaled at `path`; returns the one line to show, or
    None when there was nothing left to complete (its writer finished it meanwhile).

    Every writer of a journal holds the journal's advisory lock (`locked(path)`), then
    feeders.json's, from before it stages until it has removed the journal (a build, `itrack
    feedback` and the live feedback path alike, whichever feeders.json each writes), so the
    journal is read holding the journal's lock: one there then is one whose writer is gone.
    feeders.json's lock is taken too, for the merge with the scoring job's edits. `held`: the
    caller holds the journal's lock and the lock of this feeders.json already (not taken
    again). `completed(journal)`: told once its outputs are in place and its record logged (not
    when it is abandoned). Its temp files are not swept (some are staged here)."""
    with contextlib.ExitStack() as locks:
        if held is None:
            locks.enter_context(locked(path, wait_seconds, sweep=False))
        journal = _read_or_abandon(path)  # its writer may have finished it meanwhile
        if not isinstance(journal, Journal):
            return journal
        feeders = next((o.target for o in journal.outputs if o.metrics is not None), None)
        if feeders and (held is None or lock_path(held) != lock_path(Path(feeders))):
            locks.enter_context(locked(Path(feeders), wait_seconds, sweep=False))
        found = next(filter(None, map(problem, journal.outputs)), None)
        if found is not None:
            _abandon(path, journal)
            return (
                f"publish: cannot complete the unfinished publish of {journal.run_id}: {found}; "
                "the outputs it had not replaced yet are kept as they were (the next build "
                "replaces every output)"
            )
        written = carry_out(path, journal, log, lambda _step: None)
        if completed is not None:
            completed(journal)
    names = ", ".join(Path(o.target).name for o in journal.outputs if o.target in written)
    names = names or "nothing was left to replace"
    return f"publish: completed the unfinished publish of {journal.run_id} ({names})"


def _read_or_abandon(path: Path) -> Journal | str | None:
    """The journal at `path`; None if there is none (any more); unreadable: removed, and the
    line saying so."""
    try:
        return read(path)
    except ValueError as exc:
        if not path.exists():
            return None  # removed by its writer, which finished
        _abandon(path, None)
        return (
            f"publish: an unfinished publish was abandoned: {exc}; the next build replaces "
            "every output"
        )


def _abandon(path: Path, journal: Journal | None) -> None:
    """Remove a journal that cannot be completed and the staged files it still lists."""
    for output in journal.outputs if journal else []:
        if output.staged is not None:
            Path(output.staged).unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def stages(path: Path, staged: Path) -> bool:
    """Whether the journal at `path` lists `staged` (then it is the journal's, for its roll
    forward): a journal there may be another writer's (the live feedback path's)."""
    try:
        return any(o.staged == str(staged) for o in read(path).outputs)
    except ValueError:  # none, or unreadable (its roll forward abandons it)
        return False


def pending(path: Path) -> bool:
    """A journal is there: its staged files belong to it (never discard them)."""
    return path.exists()

"""The feedback step: marts -> feeders.json, candidate_placements.json, feedback_runs.

Which feeders a default run updates: those with a process that reached a trigger status
(offer_accepted, rejected_by_company, candidate_withdrew) since the last run's watermark, as in
the seed design, and also those with any other change to their processes or stages since then
(a new in-flight process changes `candidates_sourced` too), those whose stored metrics no longer
match the marts although none of their rows changed (a process or a candidate moved to another
feeder: the old feeder lost it), and all of them when the overall conversion rate moved (it is
the prior of every smoothed rate). A feeder the file has metrics for but the marts no longer
know gets the metrics of no processes (`empty_metrics`). So a default run and `--full` write
the same file (a property test in tests/test_dbt_reference.py); the default run just touches
less.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
from pydantic import Field

from feedback.analytics import (
    Result,
    UnknownNameError,
    definition,
    name_key,
    resolve_feeder,
    resolve_name,
)
from feedback.analytics import connect as connect_marts
from feedback.atomic import (
    Staged,
    locked,
    read_regular,
    resolve_target,
    sweep_temp_files,
)
from feedback.feeders import (
    WILSON_CONFIDENCE,
    FeedersUpdate,
    _rate,
    load_feeders_file,
    merge_metrics,
    metrics_from_marts,
    plain,
    wilson,
)
from feedback.marts import open_read_only, require_marts, require_published
from feedback.placements import (
    in_record_order,
    merged_candidates,
    patch_placements,
    placements_bytes,
    placements_digest,
    placements_from_marts,
    read_placements,
    refuse_foreign_placements,
    render_placements,
)
from feedback.publish import (
    Journal,
    Output,
    Reached,
    feeders_output,
    journal_path,
    pending,
    publish,
    staged_output,
)
from ingest.contract import (
    FEEDBACK_TRIGGER_STATUSES,
    STAGE_TYPES,
    STORED,
    TERMINAL_STATUSES,
    InterviewStatus,
    PlacementRecord,
)
from ingest.errors import Refused, UserError
from ingest.sqltext import sql_text
from ingest.stamps import new_run_id

REQUIRED_MARTS = ("fct_interview_processes", "mart_feeder_conversion")
EPOCH = "1970-01-01 00:00:00"


@dataclass
class FeedbackResult:
    run_id: str
    updated_feeders: list[str] = field(default_factory=list)
    triggered_feeders: list[str] = field(default_factory=list)
    marked_feeders: list[str] = field(default_factory=list)
    feeders_written: bool = False
    placements: int = 0
    placements_written: bool = False
    # candidates whose placements were rendered again when only they changed (None: all)
    placements_rendered: int | None = None
    candidates_written: bool = False

    def __str__(self) -> str:
        changed = ", ".join(self.updated_feeders)
        return (
            f"{len(self.marked_feeders)} feeder(s) recomputed, "
            f"{len(self.updated_feeders)} changed"
            + (f" ({changed})" if changed else "")
            + f", {self.placements} placements"
            + (
                f" (rendered again for {self.placements_rendered} changed candidates)"
                if self.placements_rendered is not None
                else ""
            )
        )


def _check_marts(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    why = " (feedback is never written from a failed or missing build)"
    require_marts(con, warehouse, REQUIRED_MARTS, why)


class FeedbackLog(Protocol):
    """Where the feedback step keeps its watermark and logs what it wrote (the raw store's
    `feedback_state` and `feedback_runs` on DuckDB)."""

    def get_state(self, key: str, default: str) -> str: ...

    def record_run(
        self,
        run_id: str,
        metrics: dict[str, dict[str, Any]],
        state: dict[str, str],
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        """One transaction: `metrics` logged, `state` set; `before_commit()` (the files'
        rename) runs inside it, so a failure there leaves the log unchanged."""


def _feeders_of(con: duckdb.DuckDBPyConnection, process_ids_sql: str, watermark: str) -> set[str]:
    rows = con.execute(
        f"""
        select distinct f.feeder_source from fct_interview_processes f
        where f.interview_process_id in ({process_ids_sql})""",
        {"wm": watermark},
    ).fetchall()
    return {r[0] for r in rows}


def triggered_feeders(con: duckdb.DuckDBPyConnection, watermark: str) -> set[str]:
    """The seed's triggers: a process reached a trigger status since the watermark."""
    triggers = ", ".join(f"'{s.value}'" for s in FEEDBACK_TRIGGER_STATUSES)
    return _feeders_of(
        con,
        f"""select interview_process_id from stg_itrack__interview_status_history
                                where recorded_at > $wm and to_status in ({triggers})""",
        watermark,
    )


def changed_feeders(con: duckdb.DuckDBPyConnection, watermark: str) -> set[str]:
    """Any other change since the watermark: a status, a process or a stage record."""
    return _feeders_of(
        con,
        """
        select interview_process_id from stg_itrack__interview_status_history
        where recorded_at > $wm
        union select interview_process_id from stg_itrack__interview_processes
        where loaded_at > $wm
        union select interview_process_id from stg_itrack__interview_stages
        where loaded_at > $wm""",
        watermark,
    )


def _new_watermark(con: duckdb.DuckDBPyConnection) -> str:
    return str(
        con.execute("""
        select greatest(
            (select max(recorded_at) from stg_itrack__interview_status_history),
            (select max(loaded_at) from stg_itrack__interview_processes),
            (select max(loaded_at) from stg_itrack__interview_stages))""").fetchone()[0]
        or EPOCH
    )


def empty_metrics() -> dict[str, Any]:
    """The metrics of a feeder with no processes."""
    return {
        "candidates_sourced": 0,
        "placements": 0,
        "conversion_rate": None,
        "decided_processes": 0,
        "decided_conversion_rate": None,
        "wilson_interval": {"lower": None, "upper": None, "confidence": WILSON_CONFIDENCE},
        "smoothed_conversion_rate": None,
        "success_rate_by_stage": {t.value: None for t in STAGE_TYPES},
        "avg_days_to_hire": None,
        "pipeline_depth": None,
        "top_rejection_reasons": [],
    }


def keep_file_keys(
    document: dict[str, Any], fresh: dict[str, dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """`fresh` (keyed as the marts spell each feeder: its most frequent spelling) keyed as
    feeders.json (`document`) already keys the feeder, and the renames made. The scoring job
    keeps its settings (weights, patterns) under the file's key: when more processes arrive
    spelled `referral` than `Referral`, the marts' spelling flips, and the metrics moved to a
    new key `referral` while `Referral` kept the weight with the metrics of no processes. An
    entry the marts no longer spell is the feeder's when its name compares equal
    (`name_key`: case, whitespace, Unicode form) to exactly one marts spelling that has no
    entry of its own; otherwise it is a feeder gone (`gone_feeders`)."""
    entries = document.get("feeders", {})
    spellings: dict[str, list[str]] = {}
    for name in fresh:
        spellings.setdefault(name_key(name), []).append(name)
    renames: dict[str, str] = {}
    for name in sorted(entries):
        same = spellings.get(name_key(name), [])
        if name not in fresh and len(same) == 1 and same[0] not in entries:
            renames.setdefault(same[0], name)  # two old spellings of one feeder: the first
    return {renames.get(f, f): m for f, m in fresh.items()}, renames


def gone_feeders(document: dict[str, Any], fresh: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Feeders feeders.json (`document`) has metrics for but the marts (`fresh`) no longer
    know (every process moved to another feeder, or its spelling changed): their metrics become
    those of no processes, in a default run, with --full and live alike."""
    entries = document.get("feeders", {})
    return {f: empty_metrics() for f, e in entries.items() if "metrics" in e and f not in fresh}


def _stored_metrics(entries: dict[str, Any], feeder: str) -> dict[str, Any] | None:
    metrics = entries.get(feeder, {}).get("metrics")
    if metrics is None:
        return None
    return plain({k: v for k, v in metrics.items() if k != "updated_at"})


# FeedbackLog state: the placement rows' digest and the sha256 of the file they rendered to
PLACEMENTS_KEY = "placements_rendered"


def _state(digest: str, data: bytes) -> str:
    return f"{digest} {hashlib.sha256(data).hexdigest()}"


def _rendered_state(digest: str, data: bytes, folded: bool) -> str:
    """What the log keeps of the placements file written as `data`: that it is exactly the
    rendering of the rows of `digest` (later runs keep or patch it), unless the ledger's
    outcomes were `folded` in: then none, so the next run renders it whole (a build that
    counts them, or a reopen that undoes one, may leave the rows' digest unchanged)."""
    return "" if folded else _state(digest, data)


def _placements_current(stored: str, path: Path, digest: str) -> bool:
    """Whether `path` holds exactly what placement rows of `digest` render to: the last run
    logged (`stored`) that digest with the sha256 of the bytes it wrote (or found), and the
    file still has them. Then rendering 128k records again (about 3 s at 1M) changes nothing."""
    if stored.split(" ")[0] != digest:
        return False
    data = read_regular(resolve_target(path))
    return data is not None and stored == _state(digest, data)


def _placements_of(
    warehouse: Path, previous: Path | None, stored: str, path: Path
) -> tuple[bytes, int | None]:
    """The bytes of `warehouse`'s placements file: patched from the file at `path` when it
    holds what the rows of the `previous` warehouse rendered to (the last run logged their
    digest and the file's sha256 as `stored`), else rendered whole; and how many candidates
    were rendered again (None: all of them)."""
    con = open_read_only(Path(warehouse))
    try:
        data = read_regular(resolve_target(path)) if previous and previous.exists() else None
        if data is not None:
            with contextlib.suppress(duckdb.Error):  # unreadable or another shape: render all
                con.execute(f"attach {sql_text(str(previous))} as previous (read_only)")
                _count, digest = placements_digest(con, "previous")
                if stored == _state(digest, data):
                    patched = patch_placements(con, "previous", data)
                    if patched is not None:
                        return patched
        return render_placements(con)[1], None
    finally:
        con.close()


def run_feedback(
    warehouse: Path,
    log: FeedbackLog,
    feeders_path: Path,
    placements_path: Path,
    candidates_path: Path | None = None,
    full: bool = False,
    now: str | None = None,
    wait_seconds: float = 0.0,
    before_publish: Callable[[str, dict[str, dict[str, Any]]], list[Output]] | None = None,
    previous: Path | None = None,
    journal: Path | None = None,
    reached: Reached | None = None,
    settle: Callable[[Path], None] | None = None,
    fingerprint: Callable[[list[Output]], str | None] | None = None,
    prior_strength: float | None = None,
) -> FeedbackResult:
    """Compute from `warehouse` (a built file) and write the outputs; state kept in `log`.
    `prior_strength`: dbt var feeder_prior_strength, for live outcomes (`live_metrics`).
    `previous`: the warehouse the placements file was last rendered from, if still there (the
    build's published one): then only the candidates whose placements changed are rendered.

    Order, so that nothing is ever half-done: compute; under the journal's and feeders.json's
    advisory locks (`locked_outputs`, waiting up to `wait_seconds`) stage feeders.json, the
    placements and the candidates file (synced temp files); `before_publish(run_id, metrics
    written)` stages the build's own outputs (its warehouse, with the run added, and the
    report) and returns them; then the publish journal (`journal`, default beside `previous or
    warehouse`) lists them all and is carried out (feedback.publish): the renames (feeders.json
    merged again if the scoring job wrote it meanwhile) inside the log's transaction. A failure
    before the journal leaves every file, the warehouse and the log as they were; after it, the
    next command that takes the build lock completes the publish. `reached`: told each step of
    the publish (default feedback.publish.STEP_HOOKS). A journal found pending once the locks
    are held (a live feedback run killed since this command completed the last one) is
    completed first by `settle(feeders_path)`, the shell's roll forward (as FeedbackService's;
    None: refused as pending). `fingerprint(outputs)`: what
    the build records once `outputs` are published, carried by the journal for its roll forward."""
    require_published(warehouse)
    result = FeedbackResult(new_run_id("feedback"))
    document = load_feeders_file(feeders_path)  # refuse a corrupt file before any work
    con = open_read_only(Path(warehouse))
    try:
        _check_marts(con, warehouse)
        fresh, renames = keep_file_keys(document, metrics_from_marts(con))
        prior = (
            con.execute(
                "select sum(placements) || '/' || sum(candidates_sourced) "
                "from mart_feeder_conversion"
            ).fetchone()[0]
            or "0/0"
        )
        watermark = _new_watermark(con)
        since = log.get_state("watermark", EPOCH)
        result.triggered_feeders = sorted(renames.get(f, f) for f in triggered_feeders(con, since))
        entries = document.get("feeders", {})
        fresh |= gone_feeders(document, fresh)
        if full or log.get_state("prior", "") != prior:
            marked = set(fresh)
        else:
            changed = {renames.get(f, f) for f in changed_feeders(con, since)}
            marked = set(result.triggered_feeders) | changed
            # feeders the file has no metrics for yet, and feeders whose stored metrics no
            # longer match the marts although none of their rows changed (a process or a
            # candidate moved to another feeder: the old feeder lost it): so a default run
            # writes exactly what --full writes
            marked |= {f for f in fresh if _stored_metrics(entries, f) != fresh[f]}
        placements, digest = placements_digest(con)
        # rendered below only when the file lacks it (the candidates file merge needs it too)
        history, data = (
            render_placements(con) if full or candidates_path is not None else (None, None)
        )
    finally:
        con.close()
    now = now or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def merge(document: dict) -> list[str]:
        """Our metrics into `document` (re-run on the scoring job's newer version, if any)."""
        return merge_metrics(document, fresh, marked, now)

    result.marked_feeders = sorted(marked)
    path = journal or journal_path(previous or warehouse)

    with locked_outputs(feeders_path, placements_path, candidates_path, wait_seconds, path, settle):
        # read under the lock, which the live path holds when it adds an outcome to the ledger
        entries = json.loads(log.get_state(LIVE_KEY, "{}"))
        undone: dict[str, list[dict[str, Any]]] = {}
        if entries:
            con = open_read_only(Path(warehouse))
            try:
                live, entries = fold_live_outcomes(con, entries, fresh, prior_strength)
                undone = _undone_placements(con, entries)
            finally:
                con.close()
            if live is not fresh:  # the overall rate moved too: every feeder's smoothed rate
                fresh.update(live)
                marked |= set(live)
                result.marked_feeders = sorted(marked)
        ledger = json.dumps(entries, sort_keys=True)
        # merged from the ledger the build left (an outcome it saw undone is gone), before
        # anything is staged, so a candidates file that cannot be merged is refused unwritten
        merged = _merged_candidates(candidates_path, history, ledger, undone)
        update = FeedersUpdate(feeders_path, merge)
        rendered = log.get_state(PLACEMENTS_KEY, "")
        folded = bool(_live_placements(ledger) or undone)
        if data is None and (folded or not _placements_current(rendered, placements_path, digest)):
            data, result.placements_rendered = _placements_of(
                warehouse, previous, rendered, placements_path
            )
        if data is not None and folded:
            data = placements_bytes(_ledger_history(json.loads(data), ledger, undone))
        places = None if data is None else Staged(placements_path, data)
        if places is not None:
            rendered = _rendered_state(digest, places.data, folded)
        people = None if merged is None else Staged(candidates_path, merged)
        outputs: list[Output] = []
        try:
            written = {n: plain(update.document["feeders"][n]["metrics"]) for n in update.result}
            if before_publish is not None:
                outputs += before_publish(result.run_id, written)
            ours = {f: fresh[f] for f in sorted(marked & fresh.keys())}
            outputs += [feeders_output(update, ours, now), *staged_output(places)]
            outputs += staged_output(people)
            # the log's record: metrics written, new watermark; committed after the renames
            state = {"watermark": watermark, "prior": prior, PLACEMENTS_KEY: rendered}
            state[LIVE_KEY] = ledger
            run = Journal(result.run_id, outputs, written, state)
            run.fingerprint = fingerprint(outputs) if fingerprint is not None else None
            done = publish(path, run, log, reached)
        finally:
            if not pending(path):  # else its staged files are the journal's, for the roll forward
                discard_staged(outputs, update, places, people)
    result.feeders_written = str(update.staged.target) in done if update.staged else False
    result.placements_written = places is not None and str(places.target) in done
    result.candidates_written = people is not None and str(people.target) in done
    result.updated_feeders = update.result
    result.placements = placements
    return result


def _merged_candidates(
    path: Path | None,
    history: dict[str, list[dict[str, Any]]] | None,
    ledger: str,
    undone: dict[str, list[dict[str, Any]]],
) -> bytes | None:
    """The candidates file at `path` with the built placement `history`, as the `ledger`
    leaves it (`_ledger_history`), as each candidate's placement_history."""
    if path is None or history is None:
        return None
    return merged_candidates(path, _ledger_history(history, ledger, undone), complete=True)


def _ledger_history(
    history: dict[str, list[dict[str, Any]]],
    ledger: str,
    undone: dict[str, list[dict[str, Any]]],
) -> dict[str, list[dict[str, Any]]]:
    """The built placement `history` with the outcomes no build has counted yet: the `undone`
    built placements (`_undone_placements`) out, the `ledger`'s accepted offers in."""
    kept: dict[str, list[dict[str, Any]]] = {}
    for candidate, records in history.items():
        left = [r for r in records if r not in undone.get(candidate, [])]
        if left:
            kept[candidate] = left
    return _with_placements(kept, _live_placements(ledger))


def _undone_placements(
    con: duckdb.DuckDBPyConnection, ledger: dict[str, list[Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The build's placements of processes the ledger holds a later outcome for that is not
    an accepted offer (reopened and withdrawn or rejected live): candidate id -> records."""
    accepted = InterviewStatus.OFFER_ACCEPTED.value
    ids = [pid for pid, values in ledger.items() if _ledger_entry(values)[1] != accepted]
    return placements_from_marts(con, process_ids=ids) if ids else {}


def discard_staged(outputs: list[Output], *staged: Staged | FeedersUpdate | None) -> None:
    """Remove what a publish that never got its journal written had staged."""
    for item in staged:
        if item is not None:
            item.discard()
    for output in outputs:
        if output.staged is not None:
            Path(output.staged).unlink(missing_ok=True)


def fold_live_outcomes(
    con: duckdb.DuckDBPyConnection,
    ledger: dict[str, list[Any]],
    fresh: dict[str, dict[str, Any]],
    prior_strength: float | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[Any]]]:
    """The marts' metrics `fresh` (of the warehouse `con` reads) with the outcomes processed
    live since its build (`ledger`, the FeedbackLog's LIVE_KEY state) folded in: each replaces
    its process's contribution to the counts, and the rates from counts alone are recomputed,
    every feeder's smoothed rate with the moved overall rate. Also the ledger left: outcomes
    the build counted as they are now are dropped. One rule for the live path
    (`FeedbackService`) and the nightly step, which wiped them until a build had them."""
    if not ledger:
        return fresh, ledger
    built = _built_statuses(con, list(ledger))
    deltas, kept = _live_deltas(ledger, built, list(fresh))
    if not deltas:
        return fresh, kept
    totals = con.execute(
        "select placements, candidates_sourced, smoothed_conversion_rate "
        "from mart_feeder_conversion"
    ).fetchall()
    no_change = [0, 0, 0]
    folded = {
        feeder: live_metrics(metrics, deltas.get(feeder, no_change), deltas, totals, prior_strength)
        for feeder, metrics in fresh.items()
    }
    return folded, kept


def check_outputs(feeders: Path, placements: Path, candidates: Path | None) -> None:
    """Refuse, before anything is locked or written, outputs that would overwrite each other
    or a file that is not theirs: one path given for two of them (`--placements feeders.json`
    replaced the scoring job's file with the placements), or a placements path naming another
    file (the warehouse, the raw store: replaced with JSON, exit 0)."""
    seen: dict[object, str] = {}
    for name, path in (
        ("feeders.json", feeders),
        ("the placements file", placements),
        ("the candidates file", candidates),
    ):
        if path is None:
            continue
        other = seen.setdefault(_file_identity(path), name)
        if other != name:
            raise UserError(f"{other} and {name} are one file ({path}); each needs its own")
    refuse_foreign_placements(placements)


def _file_identity(path: Path) -> object:
    """One file however it is named (links, `..`, a relative path): its device and inode, or
    where it would be created."""
    try:
        found = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (found.st_dev, found.st_ino)


@contextmanager
def locked_outputs(
    feeders_path: Path,
    placements_path: Path,
    candidates_path: Path | None = None,
    wait_seconds: float | None = None,
    journal: Path | None = None,
    settle: Callable[[Path], None] | None = None,
) -> Iterator[None]:
    """The publish `journal`'s advisory lock, then feeders.json's (`feedback.atomic.locked`),
    which every writer of the feedback outputs holds, and every writer of a publish journal from
    before it stages until it has removed the journal: the journal's lock serialises the
    writers of one warehouse's journal whichever feeders.json each writes (`itrack feedback
    --feeders` elsewhere than the API's). Holding them, a journal still pending is one whose
    writer is gone: `settle(feeders_path)` completes it first (its roll forward, not taking the
    locks again), so this writer works on that publish's files and never writes its own
    journal over it (one still pending then is refused, exit 2). Then the temp files a killed
    writer left beside feeders.json, the placements and the candidates file are swept (a 1M
    placements file's is 40 MB): with no journal pending, none of them is a staged file its
    roll forward renames."""
    check_outputs(feeders_path, placements_path, candidates_path)
    with contextlib.ExitStack() as locks:
        if journal is not None and journal.parent.parent.is_dir():  # (the warehouse's folder)
            journal.parent.mkdir(exist_ok=True)  # data/.build: the lock file's place
            locks.enter_context(locked(journal, wait_seconds, sweep=False))
        locks.enter_context(locked(feeders_path, wait_seconds, sweep=False))
        if journal is not None and pending(journal):
            if settle is not None:
                settle(feeders_path)
            if pending(journal):  # never written over: its staged files would be lost
                raise UserError(
                    f"{journal}: an unfinished publish is pending; run `itrack feedback` to "
                    "complete it"
                )
        for path in (feeders_path, placements_path, candidates_path):
            if path is not None:
                sweep_temp_files(path)
        yield


# ---- the Python API: one process, one feeder ----------------------------------------------------


@dataclass(frozen=True)
class ProcessOutcome:
    """What the feedback step needs of one live process; the application shell reads it from
    the operational store (`read_process`), so this package never opens that store itself."""

    interview_id: str
    candidate_id: str
    company_name: str
    role_title: str
    feeder_source: str | None  # the process's feeder, else its candidate's
    status: str
    decided_at: dt.datetime | None  # when it entered `status` (the placement date)
    offer_details: dict[str, Any] | None = None


class OutcomeResult(Result):
    """What `process_interview_outcome` / `update_feeder_conversion_rates` did."""

    run_id: str
    feeder_source: str
    metrics: dict[str, Any]  # the feeder's metrics object as now in feeders.json
    feeders_updated: bool  # feeders.json changed (False: it already said this)
    live_processes: int  # outcomes of this feeder folded in that the last build has not seen
    logged: bool  # the metrics were appended to the run log (only when they changed)
    interview_id: str | None = None
    status: str | None = None
    placement_recorded: bool = False  # the placements file changed (a candidate's history)
    candidates_updated: bool = False

    def __str__(self) -> str:
        what = "feeders.json updated" if self.feeders_updated else "feeders.json already current"
        text = f"{what} for {self.feeder_source}"
        if self.placement_recorded:  # an acceptance's, else one taken out (or a missing file)
            accepted = self.status == InterviewStatus.OFFER_ACCEPTED.value
            text += "; placement recorded" if accepted else "; placement history updated"
        return text


def _feeder_doc(*columns: str) -> Any:
    """A field described by the dbt docs of `mart_feeder_conversion` (the one source)."""
    text = " ".join(definition("mart_feeder_conversion", c) for c in columns)
    return Field(description=text)


class FeederPerformanceReport(Result):
    """`itrack feedback report FEEDER`: the feeder's metrics as the last build computed them
    (the object a build writes to feeders.json, without `updated_at`). Read from the published
    warehouse only: the counts of outcomes processed live since (the log's ledger, folded into
    feeders.json) are not in it until the next build."""

    feeder_source: str = _feeder_doc("feeder_source")
    candidates_sourced: int = _feeder_doc("candidates_sourced")
    placements: int = _feeder_doc("placements")
    conversion_rate: float | None = _feeder_doc("conversion_rate")
    decided_processes: int = _feeder_doc("decided_processes")
    decided_conversion_rate: float | None = _feeder_doc("decided_conversion_rate")
    wilson_interval: dict[str, float | None] = _feeder_doc("wilson_lower", "wilson_upper")
    smoothed_conversion_rate: float | None = _feeder_doc("smoothed_conversion_rate")
    success_rate_by_stage: dict[str, float | None] = _feeder_doc(
        "phone_screen_pass_rate", "technical_pass_rate", "onsite_pass_rate"
    )
    avg_days_to_hire: float | None = _feeder_doc("avg_days_to_hire")
    pipeline_depth: float | None = _feeder_doc("pipeline_depth")
    top_rejection_reasons: list[dict[str, Any]] = _feeder_doc("top_rejection_reasons")


LIVE_KEY = "live_outcomes"  # FeedbackLog state: outcomes processed since they were last built


class FeedbackService:
    """The feedback step one process or one feeder at a time, with the nightly step's rules.

    - `warehouse`: the published warehouse (path or DuckDB connection); its marts define every
      metric.
    - `feeders_path`, `placements_path`, `candidates_path`: the files the nightly step writes,
      written the same way (schema check first, only `metrics` touched, `updated_at` moves only
      when a value changed, atomic replace with `.bak`, one writer at a time).
    - `read_process(interview_id) -> ProcessOutcome`: the operational store's view of one
      process, supplied by the shell.
    - `log` (`FeedbackLog`): the metrics run log and the state that remembers the outcomes
      processed since the last build, so their counts stay folded in until a build sees them.
    - `settle(held)`: completes a publish a killed build or live run left unfinished
      (feedback.publish), first; `held`: the feeders.json whose advisory lock the caller holds
      (None: none yet).

    The outputs of one outcome (feeders.json, the placements, the candidates file) are
    published as one set, as a build's are: staged, then the publish journal, the renames
    inside the log's transaction, the journal removed; a run killed between two renames is
    completed by the next command that writes them.

    Live outcomes: the last build counted each process with the status it had then. A processed
    outcome replaces that process's contribution to its feeder's counts (`candidates_sourced`,
    `placements`, `decided_processes`, and the overall rate that is the smoothing prior), and the
    rates that follow from counts alone are recomputed with the marts' formulas
    (`conversion_rate`, `decided_conversion_rate`, `wilson_interval`, `smoothed_conversion_rate`).
    Stage rates, days to hire, depth and rejection reasons stay as of the last build; the next
    build recomputes everything.
    """

    def __init__(
        self,
        warehouse: Path | str | duckdb.DuckDBPyConnection,
        feeders_path: Path,
        placements_path: Path,
        *,
        candidates_path: Path | None = None,
        read_process: Callable[[str], ProcessOutcome] | None = None,
        log: FeedbackLog | None = None,
        prior_strength: float | None = None,
        clock: Callable[[], str] | None = None,
        settle: Callable[[Path | None], None] | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.feeders_path = Path(feeders_path)
        self.placements_path = Path(placements_path)
        self.candidates_path = Path(candidates_path) if candidates_path else None
        self._read_process = read_process
        self._log = log
        # dbt var feeder_prior_strength: the smoothing when the build's rows cannot tell it
        self.prior_strength = prior_strength
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        # completes a publish a killed build or live run left unfinished (the shell's, which
        # knows the build lock): before anything is read, so the outcome lands on that
        # publish's files
        self._settle = settle or (lambda _held: None)

    # -- the seed's calls ------------------------------------------------------------------------

    def process_interview_outcome(self, interview_id: str | Any) -> OutcomeResult:
        """For a process that reached offer_accepted, rejected_by_company or
        candidate_withdrew: update every feeder's metrics in feeders.json and each placement
        history the outcome changes, as the nightly step writes them from the same store, and
        log the metrics that changed. Idempotent: a second call
        writes nothing and logs nothing."""
        if self._read_process is None:
            raise UserError("FeedbackService needs `read_process` to look up a process")
        self._settle(None)
        if not isinstance(self.warehouse, duckdb.DuckDBPyConnection):
            require_published(self.warehouse)  # no build yet: refuse before opening the store
        outcome = self._read_process(str(interview_id))
        triggers = sorted(s.value for s in FEEDBACK_TRIGGER_STATUSES)
        if outcome.status not in triggers:
            raise Refused(
                f"process {outcome.interview_id} is {outcome.status}: feedback runs for a "
                f"process that reached {', '.join(triggers)}"
            )
        with self._locked():
            result = self._update_feeder(outcome.feeder_source or UNATTRIBUTED, outcome)
        return result.model_copy(
            update={"interview_id": outcome.interview_id, "status": outcome.status}
        )

    def update_feeder_conversion_rates(self, feeder_source: str) -> OutcomeResult:
        """The seed's five steps for one feeder: (1) its processes (2) candidates sourced
        (3) placements (4) conversion rate = placements / candidates sourced (5) feeders.json
        updated and the metrics logged, with the nightly step's merge and safety rules."""
        self._settle(None)
        with self._locked():
            return self._update_feeder(feeder_source, None)

    def get_feeder_performance_report(self, feeder_source: str) -> FeederPerformanceReport:
        """Total candidates sourced, success rate by stage, average time to hire, common
        rejection reasons (and the rest of the feeder's metrics), from the last build."""
        with connect_marts(self.warehouse) as con:
            feeder = resolve_feeder(con, feeder_source)
            metrics = metrics_from_marts(con)[feeder]
        return FeederPerformanceReport(feeder_source=feeder, **metrics)

    # -- internals ---------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One read-merge-write of feeders.json at a time (API workers, CLI, notebooks, the
        scoring job): `locked_outputs`, the documented advisory lock."""
        paths = (self.feeders_path, self.placements_path, self.candidates_path)
        with locked_outputs(*paths, journal=self._journal(), settle=self._settle):
            yield

    def _journal(self) -> Path | None:
        """The publish journal of the warehouse's location (None: given as a connection, no
        location: the outputs are replaced in order, without a journal)."""
        if isinstance(self.warehouse, duckdb.DuckDBPyConnection):
            return None
        return journal_path(Path(self.warehouse))

    def _update_feeder(self, feeder_source: str, outcome: ProcessOutcome | None) -> OutcomeResult:
        """Every feeder's metrics and the placement histories the outcome changes, as the
        nightly step writes them from the last build and the ledger (`fold_live_outcomes`,
        `_ledger_history`: its rules, not a copy), staged and published as one set
        (feedback.publish) with the log's record. Every feeder: an outcome moves the overall
        rate, the prior of each smoothed rate; each candidate whose history moves: an
        acceptance adds one, a rejection or withdrawal of a process that had one takes it out."""
        document = load_feeders_file(self.feeders_path)  # refuse a corrupt file before any work
        ledger = json.loads(self._log.get_state(LIVE_KEY, "{}")) if self._log else {}
        before = dict(ledger)
        with connect_marts(self.warehouse) as con:
            _check_marts(con, Path(str(self.warehouse)))
            if outcome is not None:
                decided = outcome.decided_at.isoformat() if outcome.decided_at else None
                entry: list[Any] = [outcome.feeder_source or UNATTRIBUTED, outcome.status, decided]
                if outcome.status == InterviewStatus.OFFER_ACCEPTED.value:
                    # the placement too: the nightly step re-renders the placements file from
                    # the marts, and keeps it there until a build counts the process (LIVE_KEY)
                    entry += [outcome.candidate_id, _placement_record(outcome, con)]
                ledger[outcome.interview_id] = entry
            fresh, _ = keep_file_keys(document, metrics_from_marts(con))
            try:
                feeder = resolve_name(feeder_source, list(fresh), "feeder")
            except UnknownNameError:
                if outcome is None:
                    raise
                raise UserError(
                    f"feeder '{feeder_source}' is not in the last build yet; the next build "
                    "adds it to feeders.json"
                ) from None
            fresh |= gone_feeders(document, fresh)
            folded, ledger = fold_live_outcomes(con, ledger, fresh, self.prior_strength)
            changes = self._placement_changes(con, before, ledger)
        run_id, now = new_run_id("feedback"), self._clock()
        record = self._log is not None and ledger != before
        outputs: list[Output] = []
        update: FeedersUpdate[list[str]] | None = None
        places: Staged | None = None
        people: Staged | None = None
        journal = self._journal()
        try:
            update = FeedersUpdate(
                self.feeders_path, lambda doc: merge_metrics(doc, folded, set(folded), now)
            )
            if not update.result:
                update.discard()  # our metrics are there already: the file is not rewritten
            if changes is not None:
                places, people = self._stage_placements(*changes)
            outputs = [feeders_output(update, folded, now)]
            outputs += [*staged_output(places), *staged_output(people)]
            document = update.document
            logged = {n: plain(document["feeders"][n]["metrics"]) for n in update.result}
            record = self._log is not None and (bool(logged) or record)
            done: set[str] = set()
            staged = any(o.staged for o in outputs)
            if record or staged:
                state = {LIVE_KEY: json.dumps(ledger, sort_keys=True)} if record else {}
                run = Journal(run_id, outputs, logged, state)
                # no file to replace: the log's record alone, one transaction, no journal
                done = publish(journal if staged else None, run, self._log if record else None)
        finally:
            if journal is None or not pending(journal):  # else the journal's, to roll forward
                discard_staged(outputs, update, places, people)
        return OutcomeResult(
            run_id=run_id,
            feeder_source=feeder,
            metrics=plain(document["feeders"][feeder]["metrics"]),  # as read, if not rewritten
            feeders_updated=str(update.staged.target) in done if update.staged else False,
            live_processes=sum(1 for f, *_ in ledger.values() if name_key(f) == name_key(feeder)),
            logged=bool(logged) and record,
            placement_recorded=places is not None and str(places.target) in done,
            candidates_updated=people is not None and str(people.target) in done,
        )

    def _placement_changes(
        self,
        con: duckdb.DuckDBPyConnection,
        before: dict[str, list[Any]],
        ledger: dict[str, list[Any]],
    ) -> tuple[dict[str, list[dict[str, Any]]], bool] | None:
        """(candidate id -> placement history, whole) that the ledger's change from `before`
        to `ledger` makes in the nightly step's placements file (`_ledger_history`; [] for a
        candidate placed no more), reading only the candidates of the processes whose entries
        changed, and the file not at all: it holds `before`'s rendering, as the last live run
        or build left it. A missing file is rendered whole (`whole`), as the nightly step
        renders it. None: nothing changes."""
        if not resolve_target(self.placements_path).exists():
            built = placements_from_marts(con)
            return _ledger_history(built, json.dumps(ledger), _undone_placements(con, ledger)), True
        moved = sorted(p for p in before.keys() | ledger.keys() if before.get(p) != ledger.get(p))
        if not moved:
            return None
        candidates = set(placements_from_marts(con, process_ids=moved))  # the build placed
        for values in [before.get(p) for p in moved] + [ledger.get(p) for p in moved]:
            if values is not None and (placement := _ledger_entry(values)[3]):
                candidates.add(placement[0])  # accepted live
        if not candidates:
            return None
        old, new = (_histories_of(con, sorted(candidates), side) for side in (before, ledger))
        changed = {c: new.get(c, []) for c in sorted(candidates) if new.get(c) != old.get(c)}
        return (changed, False) if changed else None

    def _stage_placements(
        self, changes: dict[str, list[dict[str, Any]]], whole: bool
    ) -> tuple[Staged, Staged | None]:
        """The placements file with the histories `changes` sets (a candidate with [] left
        out, as the nightly step leaves one never placed), staged, and the candidates file with
        them as `placement_history` (`whole`: `changes` holds every placed candidate)."""
        history, finite = read_placements(self.placements_path)
        for candidate, records in changes.items():
            if records:
                history[candidate] = records
            else:
                history.pop(candidate, None)
        # finite: no NaN or infinity in the file as read; the marts' records and the ledger's
        # (OfferDetails' amounts are finite) hold none either
        places = Staged(self.placements_path, placements_bytes(history, finite))
        people = None
        if self.candidates_path is not None:
            try:
                merged = merged_candidates(self.candidates_path, changes, complete=whole)
                people = Staged(self.candidates_path, merged)
            except BaseException:
                places.discard()
                raise
        return places, people


def _histories_of(
    con: duckdb.DuckDBPyConnection, candidates: list[str], ledger: dict[str, list[Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The placement histories of `candidates` in the nightly step's placements file with the
    `ledger`'s outcomes folded in (`_ledger_history`; a candidate placed nowhere is absent)."""
    built = placements_from_marts(con, candidates)
    history = _ledger_history(built, json.dumps(ledger), _undone_placements(con, ledger))
    return {c: history[c] for c in candidates if c in history}


UNATTRIBUTED = "unattributed"


def _built_names(con: duckdb.DuckDBPyConnection, outcome: ProcessOutcome) -> tuple[str, str]:
    """(company, role) of the process as the last build shows them (the company by its display
    name, the most frequent spelling of its key); a process the build lacks keeps its own."""
    found = con.execute(
        "select company_name, role_title from fct_interview_processes "
        "where interview_process_id::varchar = ?",
        [outcome.interview_id],
    ).fetchone()
    return (found[0], found[1]) if found else (outcome.company_name, outcome.role_title)


def _placement_record(outcome: ProcessOutcome, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """An accepted offer as a placement history record (the marts' shape and names)."""
    company, role = _built_names(con, outcome)
    record = {
        "company": company,
        "role": role,
        "placement_date": outcome.decided_at,
        "offer_details": outcome.offer_details,
    }
    # the stored process's offer, accepted under the rules of its day
    return PlacementRecord.model_validate(record, context=STORED).model_dump(
        mode="json", exclude_none=True
    )


def _live_placements(ledger: str) -> dict[str, list[dict[str, Any]]]:
    """candidate id -> the placements of the ledger's accepted offers (no build counted yet)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for values in json.loads(ledger).values():
        if placement := _ledger_entry(values)[3]:
            candidate, record = placement
            found.setdefault(candidate, []).append(in_record_order(record))
    return found


def _with_placements(
    history: dict[str, list[dict[str, Any]]], added: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Placement `history` with the `added` records it lacks, each candidate's in date order."""
    merged = dict(history)
    for candidate, records in added.items():
        mine = list(merged.get(candidate, []))
        for record in records:
            if record not in mine:
                mine.append(record)
        merged[candidate] = sorted(
            mine, key=lambda r: (r["placement_date"], r["company"], r["role"])
        )
    return merged


TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)


def _ledger_entry(values: list[Any]) -> tuple[str, str, str | None, list[Any]]:
    """(feeder, status, decided_at, placement) of a ledger entry `[feeder, status, decided_at,
    *placement]`, placement `[candidate id, record]` or none; entries written before decided_at
    was kept lack it (an even length)."""
    feeder, status, *rest = values
    decided = rest.pop(0) if len(rest) % 2 else None
    return feeder, status, decided, rest


def _built_statuses(
    con: duckdb.DuckDBPyConnection, ids: list[str]
) -> dict[str, tuple[str, str, dt.datetime]]:
    """process id -> (feeder, status, updated_at) as the last build counted it."""
    if not ids:
        return {}
    found = con.execute(
        "select interview_process_id::varchar, feeder_source, status, updated_at "
        "from fct_interview_processes where interview_process_id::varchar in "
        "(select unnest(?::varchar[]))",
        [ids],
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in found}


def _counts(status: str) -> tuple[int, int, int]:
    """One process's contribution: (candidates_sourced, placements, decided_processes)."""
    return 1, int(status == InterviewStatus.OFFER_ACCEPTED.value), int(status in TERMINAL)


def _live_deltas(
    ledger: dict[str, list[Any]], built: dict[str, tuple[str, str, dt.datetime]], feeders: list[str]
) -> tuple[dict[str, list[int]], dict[str, list[Any]]]:
    """Per feeder (as the marts spell it), what the live outcomes add to the built counts;
    outcomes the build already counted are dropped from the ledger: as they are now, or
    superseded by a later change the build saw (a reopen: the build's status is the truth)."""
    spelled = {name_key(f): f for f in feeders}
    deltas: dict[str, list[int]] = {}
    kept = {}
    for pid, values in sorted(ledger.items()):
        feeder, status, decided, _placement = _ledger_entry(values)
        name = spelled.get(name_key(feeder), feeder)
        old = built.get(pid)
        if old is not None and (
            (spelled.get(name_key(old[0]), old[0]), old[1]) == (name, status)
            or (decided is not None and old[2] >= dt.datetime.fromisoformat(decided))
        ):
            continue  # the build has caught up with this outcome
        kept[pid] = ledger[pid]
        for target, sign, state in ((name, 1, status), *(((old[0], -1, old[1]),) if old else ())):
            add = deltas.setdefault(spelled.get(name_key(target), target), [0, 0, 0])
            for i, value in enumerate(_counts(state)):
                add[i] += sign * value
    return deltas, kept


def live_metrics(
    metrics: dict[str, Any],
    delta: list[int],
    deltas: dict[str, list[int]],
    totals: list[tuple[int, int, float | None]],
    prior_strength: float | None,
) -> dict[str, Any]:
    """A feeder's built metrics with its live `delta` folded into the counts, and the rates
    that follow from counts alone recomputed with the marts' formulas. The smoothing strength
    is solved from the build's rows; when none moved from the overall rate, it is
    `prior_strength` (dbt var feeder_prior_strength), without which smoothed rates stay."""
    placed_all, sourced_all = sum(r[0] for r in totals), sum(r[1] for r in totals)
    k = derive_prior_strength(totals, placed_all / sourced_all if sourced_all else None)
    if k is None:  # every built feeder at the overall rate (no placement yet, one feeder)
        k = prior_strength
    placed_all += sum(d[1] for d in deltas.values())
    sourced_all += sum(d[0] for d in deltas.values())
    n = metrics["candidates_sourced"] + delta[0]
    placed = metrics["placements"] + delta[1]
    decided = metrics["decided_processes"] + delta[2]
    out = dict(metrics)
    out["candidates_sourced"], out["placements"], out["decided_processes"] = n, placed, decided
    out["conversion_rate"] = _rate(placed / n if n else None)
    out["decided_conversion_rate"] = _rate(placed / decided if decided else None)
    lower, upper = wilson(placed, n)
    out["wilson_interval"] = {
        "lower": _rate(lower),
        "upper": _rate(upper),
        "confidence": WILSON_CONFIDENCE,
    }
    if k is not None and sourced_all and n + k:
        prior = placed_all / sourced_all
        out["smoothed_conversion_rate"] = _rate((placed + k * prior) / (n + k))
    return out


def derive_prior_strength(
    rows: list[tuple[int, int, float | None]], prior: float | None
) -> float | None:
    """k of `smoothed = (placements + k * prior) / (candidates_sourced + k)`, solved from the
    build's own (placements, candidates_sourced, smoothed) rows: the one furthest from the
    prior, so live rates are smoothed exactly as the build smooths. None if no row moves."""
    if prior is None:
        return None
    usable = [r for r in rows if r[2] is not None and abs(r[2] - prior) > 1e-9]
    if not usable:
        return None
    placed, sourced, smoothed = max(usable, key=lambda r: abs(r[2] - prior))
    return round((placed - smoothed * sourced) / (smoothed - prior), 6)

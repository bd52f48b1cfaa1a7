"""The feedback step: marts -> feeders.json, candidate_placements.json, feedback_runs.

Which feeders a default run updates: those with a process that reached a trigger status
(offer_accepted, rejected_by_company, candidate_withdrew) since the last run's watermark, as in
the seed design, and also those with any other change to their processes or stages since then
(a new in-flight process changes `candidates_sourced` too), and all of them when the overall
conversion rate moved (it is the prior of every smoothed rate). That is exactly the set of
feeders whose metrics can differ, so a default run and `--full` write the same file; the
default run just touches less.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from feedback.atomic import write_atomic
from feedback.feeders import dumps, load_feeders_file, merge_metrics, metrics_from_marts
from feedback.placements import merge_into_candidates, placements_from_marts, write_placements
from ingest.contract import FEEDBACK_TRIGGER_STATUSES
from ingest.errors import UserError
from ingest.store import connect, new_run_id, open_store, utc_now

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
    candidates_written: bool = False

    def __str__(self) -> str:
        return (
            f"{len(self.updated_feeders)} feeder(s) updated"
            f" ({', '.join(self.updated_feeders) or 'none'}), {self.placements} placements"
        )


def _check_marts(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    present = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()
    }
    missing = [m for m in REQUIRED_MARTS if m not in present]
    if missing:
        raise UserError(
            f"{warehouse}: no {', '.join(missing)}; run `itrack build` first "
            "(feedback is never written from a failed or missing build)"
        )


def _state(db: Path | str | None, key: str, default: str) -> str:
    with open_store(db) as store:
        row = store.execute("select value from feedback_state where key = ?", [key]).fetchone()
    return row[0] if row else default


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


def run_feedback(
    warehouse: Path,
    raw_store_db: Path | str | None,
    feeders_path: Path,
    placements_path: Path,
    candidates_path: Path | None = None,
    full: bool = False,
    now: str | None = None,
) -> FeedbackResult:
    """Compute from `warehouse` (a built file) and write the outputs; state in the raw store."""
    if not Path(warehouse).exists():
        raise UserError(f"{warehouse}: no warehouse; run `itrack build` first")
    result = FeedbackResult(new_run_id("feedback"))
    document = load_feeders_file(feeders_path)  # refuse a corrupt file before any work
    con = connect(Path(warehouse), read_only=True)
    try:
        _check_marts(con, warehouse)
        fresh = metrics_from_marts(con)
        prior = (
            con.execute(
                "select sum(placements) || '/' || sum(candidates_sourced) "
                "from mart_feeder_conversion"
            ).fetchone()[0]
            or "0/0"
        )
        watermark = _new_watermark(con)
        since = _state(raw_store_db, "watermark", EPOCH)
        result.triggered_feeders = sorted(triggered_feeders(con, since))
        if full or _state(raw_store_db, "prior", "") != prior:
            marked = set(fresh)
        else:
            marked = set(result.triggered_feeders) | changed_feeders(con, since)
            entries = document.get("feeders", {})  # feeders the file has no metrics for yet
            marked |= {f for f in fresh if "metrics" not in entries.get(f, {})}
        history = placements_from_marts(con)
    finally:
        con.close()
    now = now or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result.marked_feeders = sorted(marked)
    result.updated_feeders = merge_metrics(document, fresh, marked, now)
    result.feeders_written = write_atomic(feeders_path, dumps(document))
    result.placements = sum(len(v) for v in history.values())
    result.placements_written = write_placements(placements_path, history)
    if candidates_path is not None:
        result.candidates_written = merge_into_candidates(candidates_path, history)
    _record_run(raw_store_db, result, document, watermark, prior)
    return result


def _record_run(
    db: Path | str | None, result: FeedbackResult, document: dict, watermark: str, prior: str
) -> None:
    """After the files are written: log what was written, then advance the watermark."""
    now = utc_now()
    with open_store(db) as store:
        store.begin()
        for name in result.updated_feeders:
            metrics = document["feeders"][name]["metrics"]
            store.execute(
                "insert into feedback_runs values (?, ?, ?, ?)",
                [result.run_id, name, json.dumps(metrics), now],
            )
        for key, value in (("watermark", watermark), ("prior", prior)):
            store.execute(
                "insert or replace into feedback_state values (?, ?, ?)", [key, value, now]
            )
        store.commit()

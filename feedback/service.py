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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb

from feedback.atomic import write_atomic
from feedback.feeders import dumps, load_feeders_file, merge_metrics, metrics_from_marts
from feedback.marts import open_read_only
from feedback.placements import merge_into_candidates, placements_from_marts, write_placements
from ingest.contract import FEEDBACK_TRIGGER_STATUSES, new_run_id
from ingest.errors import UserError

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


class FeedbackLog(Protocol):
    """Where the feedback step keeps its watermark and logs what it wrote (the raw store's
    `feedback_state` and `feedback_runs` on DuckDB)."""

    def get_state(self, key: str, default: str) -> str: ...

    def record_run(
        self, run_id: str, metrics: dict[str, dict[str, Any]], state: dict[str, str]
    ) -> None: ...


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
        f"""select interview_process_id from raw.interview_status_history
                                where recorded_at > $wm and to_status in ({triggers})""",
        watermark,
    )


def changed_feeders(con: duckdb.DuckDBPyConnection, watermark: str) -> set[str]:
    """Any other change since the watermark: a status, a process or a stage record."""
    return _feeders_of(
        con,
        """
        select interview_process_id from raw.interview_status_history where recorded_at > $wm
        union select id from raw.interview_processes where _loaded_at > $wm
        union select interview_process_id from raw.interview_stages where _loaded_at > $wm""",
        watermark,
    )


def _new_watermark(con: duckdb.DuckDBPyConnection) -> str:
    return str(
        con.execute("""
        select greatest(
            (select max(recorded_at) from raw.interview_status_history),
            (select max(_loaded_at) from raw.interview_processes),
            (select max(_loaded_at) from raw.interview_stages))""").fetchone()[0]
        or EPOCH
    )


def run_feedback(
    warehouse: Path,
    log: FeedbackLog,
    feeders_path: Path,
    placements_path: Path,
    candidates_path: Path | None = None,
    full: bool = False,
    now: str | None = None,
) -> FeedbackResult:
    """Compute from `warehouse` (a built file) and write the outputs; state kept in `log`."""
    if not Path(warehouse).exists():
        raise UserError(f"{warehouse}: no warehouse; run `itrack build` first")
    result = FeedbackResult(new_run_id("feedback"))
    document = load_feeders_file(feeders_path)  # refuse a corrupt file before any work
    con = open_read_only(Path(warehouse))
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
        since = log.get_state("watermark", EPOCH)
        result.triggered_feeders = sorted(triggered_feeders(con, since))
        if full or log.get_state("prior", "") != prior:
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
    # After the files are written: log what was written, then advance the watermark.
    log.record_run(
        result.run_id,
        {name: document["feeders"][name]["metrics"] for name in result.updated_feeders},
        {"watermark": watermark, "prior": prior},
    )
    return result

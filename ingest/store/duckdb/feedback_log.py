"""The feedback step's log in the raw store: the metrics written per run (`feedback_runs`) and
its watermark (`feedback_state`). Implements `feedback.service.FeedbackLog` structurally (ingest
never imports feedback)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.stamps import utc_now
from ingest.store.duckdb.store import open_store


class DuckDBFeedbackLog:
    def __init__(self, db: Path | str, wait_seconds: float = 0.0) -> None:
        self.db = Path(db)
        self.wait_seconds = wait_seconds

    def get_state(self, key: str, default: str) -> str:
        with open_store(self.db, self.wait_seconds) as store:
            row = store.execute("select value from feedback_state where key = ?", [key]).fetchone()
        return row[0] if row else default

    def record_run(
        self,
        run_id: str,
        metrics: dict[str, dict[str, Any]],
        state: dict[str, str],
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        """One transaction: the metrics written for each feeder, then the new state;
        `before_commit()` runs inside it under the writer lock (the build publishes there), so
        if it fails nothing is logged."""
        now = utc_now()
        with open_store(self.db, self.wait_seconds) as store:
            store.begin()
            for name, values in metrics.items():
                store.execute(
                    "insert into feedback_runs values (?, ?, ?, ?)",
                    [run_id, name, json.dumps(values), now],
                )
            for key, value in state.items():
                store.execute(
                    "insert or replace into feedback_state values (?, ?, ?)", [key, value, now]
                )
            if before_commit is not None:
                before_commit()
            store.commit()

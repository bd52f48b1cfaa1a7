"""feeders.json: feeder metrics for the candidate-scoring job, merged into the file it owns.

The feedback step owns exactly one thing per feeder: its `metrics` object. Everything else in
the file (top-level keys, per-feeder fields, their order and values) belongs to the scoring job
and is written back as it was read.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import jsonschema

from feedback.atomic import dumps_indented
from ingest.errors import UserError

ROUND = 6  # decimals kept for rates: stable bytes across runs, far below any decision's noise
WILSON_CONFIDENCE = 0.95


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("feedback").joinpath("feeders.schema.json").read_text())


def load_feeders_file(path: Path) -> dict[str, Any]:
    """The existing file (or an empty document); invalid JSON or schema -> UserError (exit 2)."""
    if not path.exists():
        return {"feeders": {}}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); left untouched, fix or move it") from None
    validate(document, path)
    return document


def validate(document: Any, path: Path | str) -> None:
    try:
        jsonschema.validate(document, schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise UserError(
            f"{path}: does not match feedback/feeders.schema.json at {where}: "
            f"{exc.message}; left untouched"
        ) from None


def _rate(value: float | None) -> float | None:
    return None if value is None else round(float(value), ROUND)


def metrics_from_marts(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Each feeder's metrics object (without `updated_at`), read from mart_feeder_conversion."""
    cursor = con.execute("select * from mart_feeder_conversion order by feeder_source")
    names = [d[0] for d in cursor.description]
    metrics = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        metrics[row["feeder_source"]] = {
            "candidates_sourced": row["candidates_sourced"],
            "placements": row["placements"],
            "conversion_rate": _rate(row["conversion_rate"]),
            "decided_processes": row["decided_processes"],
            "decided_conversion_rate": _rate(row["decided_conversion_rate"]),
            "wilson_interval": {
                "lower": _rate(row["wilson_lower"]),
                "upper": _rate(row["wilson_upper"]),
                "confidence": WILSON_CONFIDENCE,
            },
            "smoothed_conversion_rate": _rate(row["smoothed_conversion_rate"]),
            "success_rate_by_stage": {
                stage: _rate(row[f"{stage}_pass_rate"])
                for stage in ("phone_screen", "technical", "onsite")
            },
            "avg_days_to_hire": _rate(row["avg_days_to_hire"]),
            "pipeline_depth": _rate(row["pipeline_depth"]),
            "top_rejection_reasons": json.loads(row["top_rejection_reasons"] or "[]"),
        }
    return metrics


def merge_metrics(
    document: dict[str, Any], fresh: dict[str, dict[str, Any]], feeders: set[str], now: str
) -> list[str]:
    """Set `metrics` of `feeders` (in place); `updated_at` moves only when a value changed.
    New feeders are appended in name order; feeders without data are left untouched.
    Returns the feeders whose metrics changed."""
    entries = document.setdefault("feeders", {})
    changed = []
    for name in sorted(feeders & fresh.keys()):
        entry = entries.setdefault(name, {})
        old = dict(entry.get("metrics") or {})
        old.pop("updated_at", None)
        if old != fresh[name]:
            entry["metrics"] = {**fresh[name], "updated_at": now}
            changed.append(name)
    return changed


def dumps(document: dict[str, Any]) -> bytes:
    return dumps_indented(document)

"""feeders.json: feeder metrics for the candidate-scoring job, merged into the file it owns.

The feedback step owns exactly one thing per feeder: its `metrics` object. Everything else in
the file (top-level keys, per-feeder fields, their order and values) belongs to the scoring job
and is written back as it was read:

- numbers keep their spelling (`1E2`, `0.30000000000000004`, `1e400` are written back as
  read: decimals are parsed as `Number`, a `Decimal` that remembers its text);
- strings keep every code point, lone surrogate escapes (`"\ud800"`) included (written back
  escaped);
- what is not JSON is refused with the reason, the file left untouched (exit 2): duplicate keys
  (which value would be meant?), `NaN`/`Infinity`, invalid UTF-8, nesting deeper than Python
  can parse;
- a UTF-8 byte order mark is accepted and dropped on the next write (RFC 8259: JSON text is
  written without one).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

import duckdb

from feedback.atomic import Staged, dumps_indented, orjson_safe, read_regular
from ingest.errors import UserError, refuse_duplicate_keys

ROUND = 6  # decimals kept for rates: stable bytes across runs, far below any decision's noise
WILSON_CONFIDENCE = 0.95
# its z, as mart_feeder_conversion writes it (tests/test_feedback_service.py compares the two)
WILSON_Z = 1.96
T = TypeVar("T")


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("feedback").joinpath("feeders.schema.json").read_text())


def wilson(successes: int, n: int) -> tuple[float | None, float | None]:
    """The 95% Wilson score interval of successes / n, as mart_feeder_conversion computes it
    (clamped to [0, 1]); (None, None) when n is 0. The one Python copy of that rule: the live
    feeder metrics and the report's stage pass rates use it."""
    if not n:
        return None, None
    p = successes / n
    centre = p + WILSON_Z * WILSON_Z / (2 * n)
    half = WILSON_Z * math.sqrt(p * (1 - p) / n + WILSON_Z * WILSON_Z / (4 * n**2))
    scale = 1 + WILSON_Z * WILSON_Z / n
    return max(0.0, (centre - half) / scale), min(1.0, (centre + half) / scale)


class Number(Decimal):
    """A JSON number as the file spelled it: compares as a decimal, written back as read."""

    text: str

    def __new__(cls, text: str) -> Number:
        number = super().__new__(cls, text)
        number.text = text
        return number


def _not_finite(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(data: bytes, path: Path | str) -> Any:
    """Strict, lossless JSON (see the module docstring); anything else -> UserError (exit 2)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not valid UTF-8 (byte {exc.start}); left untouched, fix or move it"
        ) from None
    text = text.removeprefix("\ufeff")
    try:
        return json.loads(
            text,
            parse_float=Number,
            parse_constant=_not_finite,
            object_pairs_hook=refuse_duplicate_keys,
        )
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except ValueError as exc:  # duplicate key, NaN/Infinity, an integer too long to read
        reason = str(exc)
    except RecursionError:
        reason = "nested too deeply"
    raise UserError(f"{path}: not valid JSON ({reason}); left untouched, fix or move it")


def load_feeders_file(path: Path) -> dict[str, Any]:
    """The existing file (or an empty document); invalid JSON or schema -> UserError (exit 2).
    A symlink is read through; a FIFO or other non-regular file is refused, never opened."""
    return _document(read_regular(path), path)


def _document(data: bytes | None, path: Path) -> dict[str, Any]:
    if data is None:
        return {"feeders": {}}
    document = parse_json(data, path)
    validate(document, path)
    return document


class FeedersUpdate(Generic[T]):
    """One read-merge-write of feeders.json that never loses the scoring job's concurrent edit.

    `merge(document)` changes the document in place (our `metrics` only) and returns what the
    caller wants to know (e.g. the feeders it changed). The merged file is staged at once (a
    synced temp file); `commit()` re-reads the file and, if anything changed since it was read
    (the scoring job wrote meanwhile), merges again into that version before the rename, so
    neither side's fields are lost. Hold `feedback.atomic.locked(path)` around it to also close
    the microseconds between that last read and the rename (the documented advisory lock)."""

    def __init__(self, path: Path, merge: Callable[[dict[str, Any]], T]) -> None:
        self.path, self.merge = Path(path), merge
        self.staged: Staged | None = None
        self._stage(read_regular(self.path))

    def _stage(self, base: bytes | None) -> None:
        self.document = _document(base, self.path)
        self.result: T = self.merge(self.document)
        if self.staged is None:
            self.staged = Staged(self.path, dumps(self.document), previous=base)
        else:
            self.staged.restage(dumps(self.document), base)

    def commit(self, attempts: int = 5) -> bool:
        assert self.staged is not None
        for _ in range(attempts):
            current = read_regular(self.path)
            if current == self.staged.previous:
                return self.staged.commit()
            self._stage(current)  # written meanwhile: merge into the version on disk
        raise UserError(f"{self.path} keeps changing while feedback writes it; retry later")

    def discard(self) -> None:
        if self.staged is not None:
            self.staged.discard()


@cache
def _validator() -> Any:
    """The schema's validator, the schema itself checked once per process: `jsonschema.validate`
    checks the schema against its metaschema on every call (20 ms; a build validates twice)."""
    import jsonschema  # here: most commands import this module and never validate

    cls = jsonschema.validators.validator_for(schema())
    cls.check_schema(schema())
    return cls(schema())


def validate(document: Any, path: Path | str) -> None:
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(document))  # what jsonschema.validate raises
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise UserError(
            f"{path}: does not match feedback/feeders.schema.json at {where}: "
            f"{error.message}; left untouched"
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
        old = plain(dict(entry.get("metrics") or {}))
        old.pop("updated_at", None)
        if old != fresh[name]:
            entry["metrics"] = {**fresh[name], "updated_at": now}
            changed.append(name)
    return changed


def plain(value: Any) -> Any:
    """The document with `Number`s as floats: for comparing with freshly computed metrics."""
    if isinstance(value, Number):
        return float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _string(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def _encode(value: Any, level: int) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Number):
        return value.text
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise UserError(f"cannot write a non-finite number ({value}) to feeders.json")
        return float.__repr__(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    inner, outer = "  " * (level + 1), "  " * level
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = (f"{inner}{_string(str(k))}: {_encode(v, level + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + outer + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = (f"{inner}{_encode(v, level + 1)}" for v in value)
        return "[\n" + ",\n".join(items) + "\n" + outer + "]"
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def dumps_line(value: Any) -> str:
    """One JSON Lines record, as `json.dumps(ensure_ascii=False)` spells it, but numbers as
    read and lone surrogates escaped (the compact twin of `dumps`)."""
    if isinstance(value, dict):
        items = (f"{_string(str(k))}: {dumps_line(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps_line(v) for v in value) + "]"
    return _encode(value, 0)


def dumps(document: dict[str, Any]) -> bytes:
    """As `json.dumps(indent=2, ensure_ascii=False)` would (orjson's fast path when it spells
    the same bytes), but numbers as read and lone surrogates escaped (always valid UTF-8)."""
    if orjson_safe(document):
        return dumps_indented(document)
    return (_encode(document, 0) + "\n").encode("utf-8")

"""Placement history per candidate (the seed's PlacementRecord), written for every accepted
process: `candidate_placements.json`, and optionally merged into a candidates JSON/JSONL file."""

from __future__ import annotations

import heapq
import json
import math
import re
from pathlib import Path
from typing import Any

import duckdb
import orjson

from feedback.atomic import dumps_indented, read_regular, refuse_to_replace, write_atomic
from feedback.feeders import Number, dumps, dumps_line
from ingest.contract import OfferDetails, PlacementRecord
from ingest.errors import UserError, json_reason, refuse_duplicate_keys


def placement_rows(catalog: str | None = None) -> str:
    """What the placements file is rendered from: one row per accepted process (of the
    warehouse attached as `catalog`, else the connection's own)."""
    facts = f"{catalog}.main.fct_interview_processes" if catalog else "fct_interview_processes"
    return f"""
    select candidate_id, company_name, role_title, placed_at, offer_details
    from {facts} where is_placement"""


PLACEMENT_ROWS = placement_rows()


def placements_digest(
    con: duckdb.DuckDBPyConnection, catalog: str | None = None
) -> tuple[int, str]:
    """(placements, a digest of their rows: count and sum of row hashes, one scan). The file
    is a function of these rows alone, so an equal digest renders the same bytes."""
    count, total = con.execute(
        "select count(*), coalesce(sum(hash(p)::hugeint), 0)::varchar "
        f"from ({placement_rows(catalog)}) p"
    ).fetchone()
    return count, f"{count}/{total}"


def placements_from_marts(
    con: duckdb.DuckDBPyConnection,
    candidate_id: str | list[str] | None = None,
    process_ids: list[str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """candidate id -> placement records sorted by date (then company, role); only the given
    candidate's (or candidates') when `candidate_id` is given. Each record is what
    PlacementRecord(...).model_dump(mode="json", exclude_none=True) gives (same keys in the
    same order, same values; tests/test_feedback.py compares them), built without pydantic: the
    rows were validated by the contract when they were written, and validating them again took
    1.2 s of the feedback step at 1M. No float in them is NaN or infinite (JSON has none)."""
    if candidate_id is None:
        where, params = "", []
    else:
        ids = [candidate_id] if isinstance(candidate_id, str) else candidate_id
        where, params = " and candidate_id in (select unnest(?::varchar[]))", [ids]
    if process_ids is not None:  # only these processes' placements
        where += " and interview_process_id::varchar in (select unnest(?::varchar[]))"
        params.append(process_ids)
    rows = con.execute(
        f"{PLACEMENT_ROWS}{where} order by candidate_id, placed_at, company_name, role_title",
        params,
    ).fetchall()
    history: dict[str, list[dict[str, Any]]] = {}
    for candidate, company, role, placed_at, offer in rows:
        record = {"company": company, "role": role, "placement_date": placed_at.isoformat()}
        if offer:
            record["offer_details"] = _offer_details(offer)
        history.setdefault(candidate, []).append(record)
    return history


def render_placements(
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, list[dict[str, Any]]], bytes]:
    """Every candidate's placement history and the bytes of the placements file it makes."""
    history = placements_from_marts(con)
    return history, placements_bytes(history, finite=True)


# Between two top-level entries of an indented JSON object: nothing nested is indented by
# only two spaces, and no string holds a raw newline
_ENTRY = b',\n  "'


def _entries(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """The top-level entries of a JSON object as `placements_bytes` writes it (indented, keys
    sorted), in file order: (key, entry) with the key's UTF-8 bytes and the entry's bytes from
    the key on. None when a key holds an escape (a backslash): its bytes then are not its text."""
    if data == b"{}\n":
        return []
    if not (data.startswith(b'{\n  "') and data.endswith(b"\n}\n")):
        return None
    pieces = data[5:-3].split(_ENTRY)
    try:
        keys = [piece[: piece.index(b'"')] for piece in pieces]
    except ValueError:
        return None
    return None if b"\\" in b"".join(keys) else list(zip(keys, pieces, strict=True))


def patch_placements(
    con: duckdb.DuckDBPyConnection, previous: str, data: bytes
) -> tuple[bytes, int] | None:
    """The placements file of `con`'s warehouse made from `data`, the file rendered from the
    rows of the warehouse attached as `previous`: only the candidates whose placement rows
    differ (per candidate the sum of its row hashes, both sides) are rendered again, the other
    entries are kept as bytes (an entry depends on its candidate's rows alone, and the keys stay
    sorted as the encoder sorts them: by code point, which is UTF-8's byte order). (bytes,
    candidates rendered), the bytes exactly what `render_placements` gives; None when `data` is
    not a file `placements_bytes` wrote or a key holds an escape (then it is rendered whole).
    After a 1% delta at 1M (600 of 117k candidates changed): about 0.4 s instead of 1.3 s."""
    entries = _entries(data)
    if entries is None:
        return None
    per_candidate = "select candidate_id, sum(hash(p)::hugeint) as h from ({}) p group by 1"
    changed = [
        candidate
        for (candidate,) in con.execute(
            f"""select coalesce(new.candidate_id, old.candidate_id)
            from ({per_candidate.format(PLACEMENT_ROWS)}) new
            full join ({per_candidate.format(placement_rows(previous))}) old
                on new.candidate_id = old.candidate_id
            where new.h is distinct from old.h"""
        ).fetchall()
    ]
    fresh = _entries(placements_bytes(placements_from_marts(con, changed), finite=True))
    if fresh is None:
        return None
    gone = {candidate.encode("utf-8") for candidate in changed}
    kept = [entry for entry in entries if entry[0] not in gone]
    merged = [entry for _key, entry in heapq.merge(kept, fresh)]  # both sorted by key
    if not merged:
        return b"{}\n", len(changed)
    return b'{\n  "' + _ENTRY.join(merged) + b"\n}\n", len(changed)


# PlacementRecord.offer_details' fields in the order its model_dump gives them
_OFFER_FIELDS = tuple(OfferDetails.model_fields)


def _offer_details(text: str) -> dict[str, Any]:
    """The stored offer JSON as OfferDetails dumps it (field order, no nulls). orjson reads an
    integer beyond 64 bits as a float, always in exponent notation: such an offer is read
    again by the standard library, which keeps the integer."""
    values = orjson.loads(text)
    if any(type(v) is float and "e" in repr(v) for v in values.values()):
        values = json.loads(text)
    return {k: values[k] for k in _OFFER_FIELDS if values.get(k) is not None}


# a placement record's fields in the order PlacementRecord dumps them (the marts' records)
_RECORD_FIELDS = tuple(PlacementRecord.model_fields)


def in_record_order(record: dict[str, Any]) -> dict[str, Any]:
    """`record` (a placement history record read back from JSON with sorted keys) with its
    fields, and its offer's, in the order the build writes them."""
    ordered = {k: record[k] for k in _RECORD_FIELDS if k in record}
    if isinstance(offer := ordered.get("offer_details"), dict):
        ordered["offer_details"] = {k: offer[k] for k in _OFFER_FIELDS if k in offer}
    return ordered


def read_placements(path: Path) -> tuple[dict[str, list[dict[str, Any]]], bool]:
    """The placements file as written by `write_placements` ({} if there is none yet), and
    whether every float in it is finite (no NaN, Infinity or 1e400: `write_placements`'s
    `finite`, which writes the 40 MB file at 1M records through orjson without a walk)."""
    text = _read_text(path)
    if text is None:
        return {}, True
    finite = True

    def number(text: str) -> float:
        nonlocal finite
        value = float(text)
        finite = finite and math.isfinite(value)
        return value

    history = _parse(text, path, None, parse_float=number, parse_constant=number)
    if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
        raise UserError(f"{path}: expected {{candidate id: [placement, ...]}}; left untouched")
    return history, finite


def placements_bytes(history: dict[str, list[dict[str, Any]]], finite: bool = False) -> bytes:
    return dumps_indented(history, sort_keys=True, finite=finite)


def write_placements(
    path: Path, history: dict[str, list[dict[str, Any]]], finite: bool = False
) -> bool:
    """Write the file (`finite`: no NaN or infinite float in `history`, see `dumps_indented`)."""
    return write_atomic(path, placements_bytes(history, finite))


# How a placements file starts, as this module writes it: `{}`, or `{"<candidate id>": [`.
_PLACEMENTS_START = re.compile(rb'\{\s*(\}|"(?:[^"\\]|\\.)*"\s*:\s*\[)')


def refuse_foreign_placements(path: Path) -> None:
    """The placements file replaces only a placements file (or an empty one): `--placements`
    naming the warehouse, the raw store or feeders.json replaced it with JSON, exit 0."""
    refuse_to_replace(
        path,
        lambda head: _PLACEMENTS_START.match(head) is not None,
        "a placements file",
        "--placements",
    )


def merged_candidates(
    path: Path, history: dict[str, list[dict[str, Any]]], complete: bool = False
) -> bytes:
    """The candidates file's new bytes, written nowhere (the caller stages and publishes them):
    `placement_history` set on each candidate of a JSON (array or {"candidates": [...]}) or
    JSONL file, other fields untouched; the history is replaced, never appended, so re-running
    never duplicates a record. `complete`: `history` holds every placed candidate (a feedback
    run's), so one absent from it has no placement any more (its offer_accepted process was
    reopened or corrected) and loses the `placement_history` an earlier run wrote; else (the
    live path's candidates) the others are left as they are. A candidate given with no records
    (`[]`) loses it either way. A file that cannot be merged
    is refused (UserError) before a caller writes anything else."""
    text = _read_text(path)
    if text is None:
        raise UserError(f"{path}: no such candidates file")
    # Each record is checked with the standard library's fast parse first; only one whose
    # history changes is read again with its numbers as spelled and written anew (6x slower
    # per record): a nightly run changes few of a 384k-candidate file's lines, the others keep
    # their bytes.
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        lines = []
        for number, line in enumerate(_jsonl_lines(text), start=1):
            checked = _parse(line, path, number, **_CHECKED) if line.strip() else None
            if checked is not None and _apply(checked, history, path, number, complete):
                record = _parse(line, path, number, **_UNTOUCHED)
                _apply(record, history, path, number, complete)
                line = dumps_line(record) + ("\r" if line.endswith("\r") else "")
            lines.append(line)
        return ("\n".join(lines) + "\n").encode("utf-8")
    checked = _records(_parse(text, path, None, **_CHECKED), path)
    if not any([_apply(record, history, path, index, complete) for record, index in checked]):
        return text.encode("utf-8")  # no history changes: every byte as it was
    document = _parse(text, path, None, **_UNTOUCHED)
    for record, index in _records(document, path):
        _apply(record, history, path, index, complete)
    return dumps(document)


def _jsonl_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text, split at LF only, each with its CR if it had one (kept,
    so a CRLF file stays CRLF). `str.splitlines` also split at U+2028, U+2029, U+0085 and other
    separators a JSON string may hold unescaped (`json.dumps(ensure_ascii=False)` writes
    them): a valid record was cut in two and the whole file refused as not JSON."""
    return (text[:-1] if text.endswith("\n") else text).split("\n")


def _records(document: Any, path: Path) -> list[tuple[Any, int]]:
    """The candidates of a JSON document (an array or {"candidates": [...]}), numbered."""
    records = document.get("candidates") if isinstance(document, dict) else document
    if not isinstance(records, list):
        raise UserError(f'{path}: expected an array of candidates or {{"candidates": [...]}}')
    return [(record, index) for index, record in enumerate(records, start=1)]


def _parse(text: str, path: Path, line: int | None, **hooks: Any) -> Any:
    where = f" line {line}" if line else ""
    try:
        return json.loads(text, **hooks)
    except ValueError as exc:  # malformed, or a number too long to read
        reason = json_reason(exc)
    except RecursionError:
        reason = "nested too deeply"
    raise UserError(f"{path}{where}: not valid JSON ({reason}); left untouched")


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# The scoring job's candidates file is read as feeders.json is (its fields are written back
# untouched): numbers keep their spelling (`1e400` came back as `Infinity`, which is not JSON,
# and `0.30000000000000000001` as `0.3`); a key given twice or `NaN` is refused, not resolved
# by dropping a value.
_CHECKED: dict[str, Any] = {
    "parse_constant": _not_a_number,
    "object_pairs_hook": refuse_duplicate_keys,
}
_UNTOUCHED: dict[str, Any] = {"parse_float": Number, **_CHECKED}


def _read_text(path: Path) -> str | None:
    """The UTF-8 text of a regular file (None if absent): a FIFO or device is refused, never
    opened for reading (it would hang), invalid UTF-8 is refused with the byte."""
    data = read_regular(path)
    if data is None:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not valid UTF-8 (byte {exc.start}); left untouched") from None


def _apply(
    record: Any, history: dict[str, list[dict[str, Any]]], path: Path, where: int, complete: bool
) -> bool:
    """Set (or, placed no more, remove) the candidate's `placement_history`: whether it
    changed."""
    if not isinstance(record, dict) or "id" not in record:
        raise UserError(f"{path}: candidate {where} is not an object with an 'id'; left untouched")
    placements = history.get(str(record["id"]))
    if placements:
        changed = record.get("placement_history") != placements
        record["placement_history"] = placements
        return changed
    # placed no more (absent from a complete `history`, or given with no records): as one
    # never placed
    if (complete or placements is not None) and "placement_history" in record:
        del record["placement_history"]
        return True
    return False

"""What every store implementation shares: the columns the contract gives each table, how ids
are given by people, process filters and how corrected values are written in the audit."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Unpack

from ingest.contract import InterviewProcess, InterviewStage, InterviewStatus
from ingest.ports import ProcessFilters

PROCESS_COLUMNS: tuple[str, ...] = tuple(InterviewProcess.model_fields)
STAGE_COLUMNS: tuple[str, ...] = tuple(InterviewStage.model_fields)
MIN_PREFIX = 4  # an id may be given by a unique prefix of at least this many characters
ID_PREFIX = re.compile(r"[0-9a-f][0-9a-f-]*")
# kind -> (table, what a person calls it)
ID_KINDS = {
    "process": ("interview_processes", "interview process"),
    "stage": ("interview_stages", "interview stage"),
}


# A process's feeder: its own, else its candidate's (the rule of the marts and the feedback step).
PROCESS_FEEDER_SQL = (
    "coalesce(feeder_source, (select c.feeder_source from candidates c "
    "where c.id = interview_processes.candidate_id))"
)


def process_filters(
    mark: str,
    company_name: str | None = None,
    status: InterviewStatus | str | None = None,
    candidate_id: str | None = None,
    **filters: Unpack[ProcessFilters],
) -> tuple[str, list[Any]]:
    """`where ...` and its parameters for every filter given (`mark`: the driver's `?`/`%s`):
    equality on company, status and candidate; `feeder` the process's feeder, else its
    candidate's; created in [`created_from`, `created_to`); `after` a keyset cursor, the rows
    after (created_at, id) in the stable order every list uses."""
    clauses, params = [], []
    for column, value in (
        ("company_name", company_name),
        ("status", InterviewStatus(status).value if status else None),
        ("candidate_id", candidate_id),
        (PROCESS_FEEDER_SQL, filters.get("feeder")),
    ):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    for clause, value in (
        ("created_at >= ", filters.get("created_from")),
        ("created_at < ", filters.get("created_to")),
    ):
        if value is not None:
            clauses.append(f"{clause}{mark}")
            params.append(value)
    after = filters.get("after")
    if after is not None:
        clauses.append(f"(created_at, id) > ({mark}, {mark})")
        params.extend(after)
    return (f"where {' and '.join(clauses)}" if clauses else ""), params


def audit_text(value: Any) -> str | None:
    """A corrected field's old or new value as the corrections audit stores it."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(getattr(value, "value", value))

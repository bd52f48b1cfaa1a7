"""What every store implementation shares: the columns the contract gives each table, how ids
are given by people, process filters, how corrected values are written in the audit, and the
repository queries that are the same SQL on both engines (`SharedQueries`)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any, Unpack
from uuid import UUID

from ingest.contract import (
    InterviewProcess,
    InterviewStage,
    InterviewStatus,
    OfferDetails,
    offer_json,
)
from ingest.errors import NotFoundError, Refused
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


# A run of ASCII whitespace (space, tab, LF, VT, FF, CR): the escapes read alike in both engines.
_NAME_KEY_SPACES = r"[ \t\n\v\f\r]+"


def name_key_sql(expression: str) -> str:
    """A company or feeder name as the list filters compare it: case and runs of whitespace do
    not count ("Stripe", " stripe", "STRIPE" are one company, as `itrack interview create`
    and the analytics tell spellings apart). Both sides of a comparison go through it, so they
    fold alike on either engine; PostgreSQL indexes this expression of `company_name`
    (migration 20261127150000): keep the two spelled the same.

    Whitespace is the ASCII set, spelled out: `\\s` is ASCII in DuckDB's regex engine but the
    locale's spaces in PostgreSQL's (U+3000 and U+2003 among them), so one name matched on one
    store and not on the other."""
    return f"lower(trim(regexp_replace({expression}, '{_NAME_KEY_SPACES}', ' ', 'g')))"


def process_filters(
    mark: str,
    company_name: str | None = None,
    status: InterviewStatus | str | None = None,
    candidate_id: str | None = None,
    **filters: Unpack[ProcessFilters],
) -> tuple[str, list[Any]]:
    """`where ...` and its parameters for every filter given (`mark`: the driver's `?`/`%s`):
    equality on status and candidate; company and `feeder` (the process's feeder, else its
    candidate's) by `name_key_sql`; created in [`created_from`, `created_to`); `after` a keyset
    cursor, the rows after (created_at, id) in the stable order every list uses."""
    clauses, params = [], []
    for column, value in (
        ("status", InterviewStatus(status).value if status else None),
        ("candidate_id", candidate_id),
    ):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    for column, value in (
        ("company_name", company_name),
        (PROCESS_FEEDER_SQL, filters.get("feeder")),
    ):
        if value is not None:
            clauses.append(f"{name_key_sql(column)} = {name_key_sql(mark)}")
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
    if isinstance(value, OfferDetails):  # as the process's column holds it, never its repr
        return offer_json(value)
    return str(getattr(value, "value", value))


def select_sql(
    table: str, columns: Sequence[str], where: str, order: str, limit: int | None = None
) -> str:
    """The one shape of every process and stage read: ties broken by id, so pages are stable."""
    sql = f"select {', '.join(columns)} from {table} {where} order by {order}, id"
    return sql if limit is None else f"{sql} limit {int(limit)}"


class SharedQueries:
    """The repository methods both stores answer with the same SQL: candidates' feeders,
    process searches, stage orders, ids given by people, stored names, open look-alike
    processes. A repository mixes this in and provides `MARK`
    (its driver's parameter mark), `_rows` and `_select_processes`."""

    MARK = "?"

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _dicts(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _select_processes(
        self, where: str, params: list[Any], *, limit: int | None = None
    ) -> list[InterviewProcess]:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.MARK)

    def candidate_feeder(self, candidate_id: str) -> str | None:
        """The candidate's feeder source; NotFoundError when the candidate is unknown."""
        rows = self._rows(
            self._sql("select feeder_source from candidates where id = ?"), [candidate_id]
        )
        if not rows:
            raise NotFoundError(f"candidate '{candidate_id}' not found")
        return rows[0][0]

    def get_interviews_by_candidate(self, candidate_id: str) -> list[InterviewProcess]:
        return self.find_interviews(candidate_id=candidate_id)

    def find_interviews(
        self,
        company_name: str | None = None,
        status: InterviewStatus | str | None = None,
        candidate_id: str | None = None,
        *,
        limit: int | None = None,
        **filters: Unpack[ProcessFilters],
    ) -> list[InterviewProcess]:
        """Processes matching every filter given (`process_filters`), oldest first
        (created_at, id), at most `limit`."""
        where, params = process_filters(self.MARK, company_name, status, candidate_id, **filters)
        return self._select_processes(where, params, limit=limit)

    def max_stage_order(self, interview_id: UUID) -> int:
        """Highest stage_order of a process, 0 when it has no stages."""
        rows = self._rows(
            self._sql(
                "select coalesce(max(stage_order), 0) from interview_stages"
                " where interview_process_id = ?"
            ),
            [interview_id],
        )
        return int(rows[0][0]) if rows else 0

    def resolve_id(self, kind: str, value: UUID | str) -> UUID:
        """A full id as given, or the one (visible) id of this kind starting with `value` (at
        least MIN_PREFIX characters). Ambiguous prefixes and ids of another kind are refused,
        saying so; a full id that does not exist is reported by the caller's lookup."""
        if isinstance(value, UUID):
            return value
        text = str(value).strip().lower()
        try:
            return UUID(text)
        except ValueError:
            pass
        table, what = ID_KINDS[kind]
        if len(text) < MIN_PREFIX or not ID_PREFIX.fullmatch(text):
            raise self._not_found(kind, value)
        ids = [
            row[0]
            for row in self._rows(
                self._sql(f"select id from {table} where {_STARTS_WITH} order by id limit 4"),
                [text],
            )
        ]
        if len(ids) == 1:
            return ids[0] if isinstance(ids[0], UUID) else UUID(str(ids[0]))
        if len(ids) > 1:
            shown = ", ".join(str(i) for i in ids[:3]) + (", ..." if len(ids) > 3 else "")
            raise Refused(
                f"{what} id prefix '{value}' is ambiguous: it matches {shown}; give more characters"
            )
        raise self._not_found(kind, value)

    def _not_found(self, kind: str, value: UUID | str) -> NotFoundError:
        """'not found', or what the id is instead (a stage id given for a process, ...)."""
        what = ID_KINDS[kind][1]
        text = str(value).strip().lower()
        for other, (table, other_what) in ID_KINDS.items():
            if other == kind or len(text) < MIN_PREFIX or not ID_PREFIX.fullmatch(text):
                continue
            if self._rows(self._sql(f"select 1 from {table} where {_STARTS_WITH} limit 1"), [text]):
                return NotFoundError(f"'{value}' is an {other_what} id, not an {what} id")
        if self._rows(self._sql("select 1 from candidates where id = ?"), [str(value).strip()]):
            return NotFoundError(f"'{value}' is a candidate id, not an {what} id")
        if not ID_PREFIX.fullmatch(text):
            return NotFoundError(f"{what} '{value}' not found (not a valid id)")
        return NotFoundError(f"{what} '{value}' not found")

    def status_before(self, interview_id: UUID, status: InterviewStatus) -> InterviewStatus | None:
        """The status a process had before it last moved to `status` (from the history)."""
        rows = self._rows(
            self._sql(
                "select from_status from interview_status_history where interview_process_id = ?"
                " and to_status = ? order by changed_at desc, recorded_at desc limit 1"
            ),
            [str(interview_id), InterviewStatus(status).value],
        )
        return InterviewStatus(rows[0][0]) if rows and rows[0][0] else None

    def corrections(self, interview_id: UUID) -> list[dict[str, Any]]:
        """The corrections of a process and its stages, oldest first (as written)."""
        return self._dicts(
            self._sql(
                "select recorded_at, record_kind, cast(record_id as varchar) as record_id, field,"
                " old_value, new_value, reason, changed_by, run_id from corrections"
                " where interview_process_id = ? order by recorded_at, record_kind, field"
            ),
            [str(interview_id)],
        )

    def status_history(self, interview_id: UUID) -> list[dict[str, Any]]:
        """The status history of a process, oldest first."""
        return self._dicts(
            self._sql(
                "select changed_at, from_status, to_status, source, run_id"
                " from interview_status_history where interview_process_id = ?"
                " order by changed_at, recorded_at"
            ),
            [str(interview_id)],
        )

    def known_names(self, column: str) -> list[str]:
        """Distinct company names (`company_name`) or feeders (`feeder_source`, from processes
        and candidates) stored (visible), sorted."""
        if column == "company_name":
            sql = "select distinct company_name from interview_processes"
        elif column == "feeder_source":
            sql = (
                "select feeder_source from interview_processes where feeder_source is not null "
                "union select feeder_source from candidates where feeder_source is not null"
            )
        else:
            raise ValueError(column)
        return sorted(row[0] for row in self._rows(sql, []))

    def open_processes_like(
        self, candidate_id: str, company_name: str, role_title: str, terminal: Sequence[str]
    ) -> list[InterviewProcess]:
        """Open (non-terminal) processes of a candidate for the same company and role."""
        closed = ", ".join("?" for _ in terminal) or "null"
        return self._select_processes(
            self._sql(
                "where candidate_id = ? and lower(company_name) = lower(?) "
                f"and lower(role_title) = lower(?) and status not in ({closed})"
            ),
            [candidate_id, company_name, role_title, *terminal],
        )


# an id column's text starts with the parameter (both engines spell it so)
_STARTS_WITH = "starts_with(cast(id as varchar), ?)"

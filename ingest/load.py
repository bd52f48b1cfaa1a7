"""One ingest run: land files, validate in bulk, check references and transitions, upsert.

Everything a run writes (rows, status history, quarantine, audit) happens in one DuckDB
transaction on the raw store: a crash or kill at any point leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ingest import readers
from ingest.contract import (
    LOAD_ORDER,
    MODELS,
    TABLES,
    InterviewStatus,
    reachable,
)
from ingest.readers import InputFile
from ingest.store import StoreError, new_run_id, open_store, raw_store_path, utc_now
from ingest.validate import Rejection, compile_model, explain

# Orphans may be fixed by a later run that brings the parent: they are retried automatically.
RETRYABLE_CODES = ("orphan_stage", "orphan_process")
REJECT_COLUMNS = (
    "file_path",
    "line_no",
    "kind",
    "record_id",
    "raw",
    "error_code",
    "field",
    "error_message",
    "retryable",
)


@dataclass
class FileCounts:
    path: str
    kind: str
    fmt: str
    sha256: str
    skipped: bool = False
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    rejected: int = 0


@dataclass
class RunSummary:
    run_id: str
    files: list[FileCounts] = field(default_factory=list)
    rejects_by_code: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # quarantined orphans of earlier runs validated again by this run
    retry_resolved: int = 0  # of those, how many this run resolved (loaded, or another error)
    waiting: int = 0  # orphans still waiting for their parent after this run (new ones too)
    waiting_since: dt.datetime | None = None  # when the oldest of those was quarantined
    skipped_paths: list[str] = field(default_factory=list)  # unrecognised files in folders

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def accepted(self) -> int:
        return self.total("inserted") + self.total("updated") + self.total("unchanged")

    @property
    def rejected(self) -> int:
        return sum(self.rejects_by_code.values())


def fault_point(step: str) -> None:
    """Test hook: ITRACK_FAULT_AT=<step> kills the process right here with SIGKILL, so the fault
    tests can prove a run killed at any step leaves the store as it was. Steps: read,
    validate, load, history, commit."""
    if os.environ.get("ITRACK_FAULT_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


# progress(message, steps_done, steps_total): one step per file read, per kind validated/loaded.
Progress = Callable[[str, int, int], None]


def prepare_files(
    paths: list[Path], kind: str | None, skipped: list[str] | None = None
) -> list[InputFile]:
    """Resolve, classify and fingerprint inputs before the store is touched (errors exit 2);
    unrecognised files found in folders are appended to `skipped` (with the reason)."""
    files = []
    found, passed_over = readers.expand_paths_reporting(paths, kind)
    if skipped is not None:
        skipped.extend(passed_over)
    for path in found:
        fmt = readers.detect_format(path)
        files.append(InputFile(path, readers.detect_kind(path, kind), fmt, readers.sha256_of(path)))
    files.sort(key=lambda f: LOAD_ORDER.index(f.kind))
    return files


def ingest_paths(
    paths: list[Path],
    db: Path | str | None = None,
    kind: str | None = None,
    wait_seconds: float = 0.0,
    progress: Progress | None = None,
    force: bool = False,
) -> RunSummary:
    """Load the given files as one run into the raw store beside warehouse `db`."""
    skipped: list[str] = []
    files = prepare_files(paths, kind, skipped)
    summary = ingest_inputs(files, db, wait_seconds, progress, force)
    summary.skipped_paths = skipped
    return summary


# Called inside the run's transaction, after the merge and before the audit is final: an
# extract writes the source's status history and its watermark here, so they commit (or not)
# with the rows.
BeforeCommit = Callable[[duckdb.DuckDBPyConnection, "RunSummary"], None]


def ingest_inputs(
    files: list[InputFile],
    db: Path | str | None = None,
    wait_seconds: float = 0.0,
    progress: Progress | None = None,
    force: bool = False,
    derive_history: bool = True,
    before_commit: BeforeCommit | None = None,
) -> RunSummary:
    """Load prepared inputs (files, or local copies of a database's tables) as one run.

    `derive_history=False` when the source brings its own status history (a database
    extract): the merge then does not infer history rows from the status changes it sees.
    """
    steps = iter(range(len(files) + 2 * len(LOAD_ORDER) + 1))
    total = len(files) + 2 * len(LOAD_ORDER)

    def note(message: str) -> None:
        if progress:
            progress(message, next(steps), total)

    with open_store(db, wait_seconds) as con:
        con.execute("set TimeZone = 'UTC'")
        # Bounded memory whatever the file size: DuckDB spills to disk beyond this.
        con.execute(f"set memory_limit = '{os.environ.get('ITRACK_MEMORY_LIMIT', '1GB')}'")
        con.begin()
        try:
            summary = _run(con, files, note, force, derive_history)
            if before_commit is not None:
                before_commit(con, summary)
            fault_point("commit")
            con.commit()
        except (duckdb.IOException, duckdb.TransactionException) as exc:
            _rollback(con)  # a full or read-only disk surfaces here, or at the commit
            raise StoreError(
                f"cannot write {raw_store_path(db)}: {_first_line(exc)}; "
                "nothing of this run was written"
            ) from None
        except BaseException:
            _rollback(con)
            raise
    return summary


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        con.rollback()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _run(
    con: duckdb.DuckDBPyConnection,
    files: list[InputFile],
    note: Callable[[str], None],
    force: bool,
    derive_history: bool = True,
) -> RunSummary:
    run = RunSummary(new_run_id())
    started = utc_now()
    _create_work_tables(con)
    loaded = _loaded_hashes(con)
    for source in files:
        counts = FileCounts(source.label, source.kind, source.fmt, source.sha256)
        run.files.append(counts)
        if not force and (source.kind, source.sha256) in loaded:
            counts.skipped = True
            note(f"skip {source.label} (already loaded)")
            continue
        note(f"read {source.label}")
        _land_file(con, source)
        counts.rows_read = con.execute(
            "select count(*) from landing where file_path = ?", [source.label]
        ).fetchone()[0] + len(source.problems)
    fault_point("read")
    _split_inline_stages(con)
    run.retried = _queue_retries(con)
    for kind in LOAD_ORDER:
        note(f"validate {kind}")
        _validate_kind(con, kind)
        fault_point("validate")
        note(f"load {kind}")
        _check_and_merge(con, kind, run.run_id, derive_history)
    _finish(con, run, started)
    return run


# ---------------------------------------------------------------- landing


def _create_work_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        create or replace temp sequence landing_rec;
        create or replace temp table landing (
            rec bigint default nextval('landing_rec'), kind varchar, file_path varchar,
            line_no bigint, raw varchar);
        create or replace temp table rejects (
            file_path varchar, line_no bigint, kind varchar, record_id varchar, raw varchar,
            error_code varchar, field varchar, error_message varchar, retryable boolean);
        create or replace temp table outcomes (
            file_path varchar, kind varchar, outcome varchar, n bigint);
        create or replace temp table file_landing (line_no bigint, raw varchar);
    """)


def _loaded_hashes(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    rows = con.execute("""
        select distinct f.kind, f.sha256 from ingest_files f
        join ingest_runs r using (run_id)
        where r.status = 'completed' and not f.skipped""").fetchall()
    return {(k, s) for k, s in rows}


def _land_file(con: duckdb.DuckDBPyConnection, source: InputFile) -> None:
    con.execute("delete from file_landing")
    readers.land(con, source, "file_landing")
    con.execute(
        "insert into landing (kind, file_path, line_no, raw) "
        "select ?, ?, line_no, raw from file_landing",
        [source.kind, source.label],
    )
    problems = [Rejection(p.code, None, p.message) for p in source.problems]
    _add_rejects(
        con,
        [
            (source.label, p.line_no, source.kind, None, p.raw, r.code, None, r.message, False)
            for p, r in zip(source.problems, problems, strict=True)
        ],
    )
    if not problems and not con.execute("select count(*) from file_landing").fetchone()[0]:
        _add_rejects(
            con,
            [
                (
                    source.label,
                    None,
                    source.kind,
                    None,
                    None,
                    "empty_file",
                    None,
                    "the file holds no records",
                    False,
                )
            ],
        )


def _split_inline_stages(con: duckdb.DuckDBPyConnection) -> None:
    """A process record may carry its stages inline as `stages`: they become stage records."""
    con.execute("""
        insert into landing (kind, file_path, line_no, raw)
        select 'stages', file_path, line_no,
               json_merge_patch(json_object('interview_process_id', raw->>'id'), s)::varchar
        from (select file_path, line_no, raw,
                     unnest(from_json(raw->'stages', '["JSON"]')) as s
              from landing
              where kind = 'processes' and json_valid(raw) and json_type(raw) = 'OBJECT'
                and json_type(raw, '$.stages') = 'ARRAY')
        where json_type(s) = 'OBJECT';
        update landing set raw = json_merge_patch(raw, '{"stages": null}')::varchar
        where kind = 'processes' and json_valid(raw) and json_type(raw) = 'OBJECT'
          and json_type(raw, '$.stages') = 'ARRAY';
    """)


def _queue_retries(con: duckdb.DuckDBPyConnection) -> int:
    """Unresolved orphans from earlier runs are validated again in this one (unless their file
    is being read again anyway)."""
    return con.execute("""
        insert into landing (kind, file_path, line_no, raw)
        select kind, file_path, line_number, raw_payload from quarantine q
        where retryable and resolved_run_id is null and not exists (
            select 1 from landing l where l.kind = q.kind and l.file_path = q.file_path
              and l.line_no = q.line_number)""").fetchone()[0]


def _settle_retries(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """A quarantined orphan seen again with the same problem keeps its row (no pile-up);
    one that loaded, or now fails for another reason, is resolved by this run."""
    same = """q.kind = r.kind and q.file_path is not distinct from r.file_path
              and q.line_number is not distinct from r.line_no"""
    con.execute(
        f"""
        update quarantine q set resolved_run_id = $run
        where retryable and resolved_run_id is null
          and exists (select 1 from landing r where {same})
          and not exists (select 1 from rejects r where {same} and r.error_code = q.error_code)
        """,
        {"run": run_id},
    )
    con.execute(f"""
        delete from rejects r where exists (
            select 1 from quarantine q where q.retryable and q.resolved_run_id is null
              and {same} and r.error_code = q.error_code)""")


def _add_rejects(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    readers.insert_arrow(
        con,
        "rejects",
        pa.table({name: list(col) for name, col in zip(REJECT_COLUMNS, columns, strict=True)}),
    )


# ---------------------------------------------------------------- per-record validation


def _validate_kind(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """Fill `staged_<kind>` with every record valid on its own; explain the others."""
    model, table = MODELS[kind], TABLES[kind]
    compiled = compile_model(model)
    con.execute(f"""
        create or replace temp table staged_{kind} as
        select null::bigint as rec, null::varchar as file_path, null::bigint as line_no,
               * exclude (_run_id, _loaded_at)
        from {table} limit 0""")
    con.execute(
        f"""
        create or replace temp table checked as
        {compiled.checked_sql("(select rec, raw from landing where kind = ?)")}
        """,
        [kind],
    )
    con.execute(f"""
        insert into staged_{kind}
        select c.rec, l.file_path, l.line_no, {compiled.typed_columns()}
        from checked c join landing l using (rec) where c.ok""")
    slow = con.execute("""
        select l.rec, l.file_path, l.line_no, l.raw from checked c join landing l using (rec)
        where not c.ok""").fetchall()
    valid, rejected = [], []
    for rec, file_path, line_no, raw in slow:
        row, why = explain(model, raw)
        if row is not None:
            valid.append({"rec": rec, "file_path": file_path, "line_no": line_no, **row})
        else:
            rejected.append(
                (
                    file_path,
                    line_no,
                    kind,
                    why.record_id,
                    raw,
                    why.code,
                    why.field,
                    why.message,
                    False,
                )
            )
    if valid:
        readers.insert_arrow(con, f"staged_{kind}", pa.Table.from_pylist(valid))
    _add_rejects(con, rejected)
    con.execute("drop table checked")


# ---------------------------------------------------------------- cross-record checks and merge


def _reject_where(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    code: str,
    condition: str,
    message_sql: str,
    field_name: str | None = None,
) -> None:
    """Move staged rows matching `condition` to the rejects, with a per-row message.
    The condition is evaluated once; the (usually empty) result drives insert and delete."""
    con.execute(f"""
        create or replace temp table failing as
        select rec, file_path, line_no, id::varchar as record_id, {message_sql} as message
        from staged_{kind} s where {condition}""")
    if not con.execute("select count(*) from failing").fetchone()[0]:
        return
    con.execute(f"""
        insert into rejects
        select f.file_path, f.line_no, '{kind}', f.record_id, l.raw, '{code}',
               {f"'{field_name}'" if field_name else "null"}, f.message,
               {code in RETRYABLE_CODES}
        from failing f join landing l using (rec)""")
    con.execute(f"delete from staged_{kind} where rec in (select rec from failing)")


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_name = ? "
        "and table_schema = 'main' order by ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows if not r[0].startswith("_")]


def _dedupe_in_run(con: duckdb.DuckDBPyConnection, kind: str, cols: list[str]) -> None:
    """Same id twice in one run: the newest `updated_at` wins (older copies are stale);
    copies with the same `updated_at` but different contents are ambiguous and rejected."""
    if con.execute(f"select count(*) = count(distinct id) from staged_{kind}").fetchone()[0]:
        return  # the common case: nothing to rank
    content = f"hash({', '.join(cols)})"
    con.execute(f"""
        create or replace temp table ranked as
        select *, {content} as _h,
               rank() over (partition by id order by updated_at desc) as _rank,
               row_number() over (partition by id order by updated_at desc, {content}, line_no)
                   as _pos
        from staged_{kind};
        create or replace temp table conflicts as
        select id, string_agg(distinct file_path || ':' || line_no, ', ') as places
        from ranked where _rank = 1 group by id having count(distinct _h) > 1;""")
    con.execute(f"""
        insert into rejects
        select r.file_path, r.line_no, '{kind}', r.id::varchar,
               (select raw from landing l where l.rec = r.rec), 'duplicate_id', 'id',
               'id ' || r.id || ' appears more than once in this run with different contents '
               || 'and the same updated_at (' || c.places || ')', false
        from ranked r join conflicts c using (id) where r._rank = 1;
        insert into outcomes
        select file_path, '{kind}', case when _rank > 1 then 'stale' else 'unchanged' end,
               count(*)
        from ranked where _pos > 1 and id not in (select id from conflicts)
        group by all;
        create or replace temp table staged_{kind} as
        select * exclude (_h, _rank, _pos) from ranked
        where _pos = 1 and id not in (select id from conflicts);
        drop table ranked; drop table conflicts;""")


def _check_references(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    if kind == "processes":
        _reject_where(
            con,
            kind,
            "orphan_process",
            "candidate_id not in (select id from staged_candidates union all "
            "select id from candidates)",
            "'candidate ' || candidate_id || ' is not known yet; retried on the next run'",
            "candidate_id",
        )
        allowed = ", ".join(
            f"'{a.value}>{b.value}'" for a in InterviewStatus for b in sorted(reachable(a) | {a})
        )
        _reject_where(
            con,
            kind,
            "invalid_transition",
            f"""exists (select 1 from interview_processes p where p.id = s.id
                 and p.updated_at <= s.updated_at
                 and p.status || '>' || s.status not in ({allowed}))""",
            """'status cannot go from ' || (select p.status from interview_processes p
                where p.id = s.id) || ' to ' || s.status""",
            "status",
        )
    elif kind == "stages":
        _reject_where(
            con,
            kind,
            "orphan_stage",
            "interview_process_id not in (select id from staged_processes union all "
            "select id from interview_processes)",
            "'interview process ' || interview_process_id || ' is not known yet; "
            "retried on the next run'",
            "interview_process_id",
        )
        _reject_where(
            con,
            kind,
            "date_before_process",
            """exists (select 1 from (select id, created_at from staged_processes union all
                   select id, created_at from interview_processes
                   where id not in (select id from staged_processes)) p
                 where p.id = s.interview_process_id
                   and least(s.scheduled_date, s.completed_date) < p.created_at)""",
            "'stage date is before its process was created'",
            "scheduled_date",
        )
        _reject_where(
            con,
            kind,
            "duplicate_stage_order",
            """exists (select 1 from (
                   select id, interview_process_id, stage_order, null::bigint as line_no
                   from interview_stages where id not in (select id from staged_stages)
                   union all select id, interview_process_id, stage_order, line_no
                   from staged_stages) o
                 where o.interview_process_id = s.interview_process_id
                   and o.stage_order = s.stage_order and o.id <> s.id
                   and (o.line_no is null or o.line_no < s.line_no))""",
            "'stage_order ' || stage_order || ' is already taken by another stage of process '"
            " || interview_process_id",
            "stage_order",
        )


def _check_and_merge(
    con: duckdb.DuckDBPyConnection, kind: str, run_id: str, derive_history: bool = True
) -> None:
    table = TABLES[kind]
    cols = _columns(con, table)
    _dedupe_in_run(con, kind, cols)
    _check_references(con, kind)
    same = " and ".join(f"s.{c} is not distinct from t.{c}" for c in cols)
    con.execute(f"""
        create or replace temp table classified as
        select s.*, case
                 when t.id is null then 'inserted'
                 when t.updated_at > s.updated_at then 'stale'
                 when {same} then 'unchanged'
                 else 'updated' end as _outcome,
               t.status_before
        from staged_{kind} s
        left join (select *, {"status" if kind == "processes" else "null"} as status_before
                   from {table}) t using (id)""")
    con.execute(
        """
        insert into outcomes select file_path, ?, _outcome, count(*)
        from classified group by all""",
        [kind],
    )
    if kind == "processes" and derive_history:
        _record_status_history(con, run_id)
        fault_point("history")
    col_list = ", ".join(cols)
    for outcome, verb in (("inserted", "insert"), ("updated", "insert or replace")):
        con.execute(
            f"""
            {verb} into {table} ({col_list}, _run_id, _loaded_at)
            select {col_list}, ?, ? from classified where _outcome = ?""",
            [run_id, utc_now(), outcome],
        )
    fault_point("load")
    con.execute("drop table classified")


def _record_status_history(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """New processes start in in_progress at creation; every observed change is a row."""
    con.execute(
        """
        insert into interview_status_history
        select id, null, 'in_progress', created_at, $run, 'ingest', $now
        from classified where _outcome = 'inserted'
        union all
        select id, 'in_progress', status, updated_at, $run, 'ingest', $now
        from classified where _outcome = 'inserted' and status <> 'in_progress'
        union all
        select id, status_before, status, updated_at, $run, 'ingest', $now
        from classified where _outcome = 'updated' and status <> status_before""",
        {"run": run_id, "now": utc_now()},
    )


# ---------------------------------------------------------------- audit


def _finish(con: duckdb.DuckDBPyConnection, run: RunSummary, started: dt.datetime) -> None:
    _settle_retries(con, run.run_id)
    # Counted per file across kinds: inline stages count on their process file.
    counts = {
        (f, o): n
        for f, o, n in con.execute(
            "select file_path, outcome, sum(n) from outcomes group by all"
        ).fetchall()
    }
    rejected = dict(con.execute("select file_path, count(*) from rejects group by all").fetchall())
    for f in run.files:
        for outcome in ("inserted", "updated", "unchanged", "stale"):
            setattr(f, outcome, counts.get((f.path, outcome), 0))
        f.rejected = rejected.get(f.path, 0)
    run.rejects_by_code = dict(
        con.execute(
            "select error_code, count(*) from rejects group by 1 order by 2 desc"
        ).fetchall()
    )
    now = utc_now()
    con.execute(
        """
        insert into quarantine
        select $run, file_path, line_no, kind, record_id, raw, error_code, field, error_message,
               retryable, null, $now from rejects""",
        {"run": run.run_id, "now": now},
    )
    run.retry_resolved = con.execute(
        "select count(*) from quarantine where retryable and resolved_run_id = ?", [run.run_id]
    ).fetchone()[0]
    run.waiting, run.waiting_since = con.execute(
        "select count(*), min(quarantined_at) from quarantine "
        "where retryable and resolved_run_id is null"
    ).fetchone()
    for f in run.files:
        con.execute(
            "insert into ingest_files values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run.run_id,
                f.path,
                f.kind,
                f.fmt,
                f.sha256,
                f.skipped,
                f.rows_read,
                f.inserted,
                f.updated,
                f.unchanged,
                f.stale,
                f.rejected,
            ],
        )
    con.execute(
        "insert into ingest_runs values (?, 'ingest', 'completed', ?, ?, ?, ?, ?, ?, ?)",
        [
            run.run_id,
            started,
            now,
            run.total("rows_read"),
            run.accepted,
            run.rejected,
            run.total("stale"),
            run.total("unchanged"),
        ],
    )

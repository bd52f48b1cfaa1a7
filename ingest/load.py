"""One ingest run: land files, validate in bulk, check references and transitions, upsert.

Everything a run writes (rows, status history, quarantine, audit) happens in one DuckDB
transaction on the raw store: a crash or kill at any point leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import duckdb

from ingest import readers
from ingest.contract import LOAD_ORDER, MODELS, TABLES, InterviewStatus, reachable
from ingest.errors import StoreError, UserError
from ingest.inputs import InputFile, prepare_files
from ingest.stamps import new_run_id, utc_now
from ingest.store.duckdb.store import SCHEMA, open_store, raw_store_path
from ingest.text import storable
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
    size_bytes: int | None = None
    mtime_ns: int | None = None


@dataclass
class RunSummary:
    run_id: str
    files: list[FileCounts] = field(default_factory=list)
    rejects_by_code: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # quarantined orphans of earlier runs validated again by this run
    retry_resolved: int = 0  # of those, how many this run resolved (loaded, or another error)
    waiting: int = 0  # orphans still waiting for their parent after this run (new ones too)
    waiting_since: dt.datetime | None = None  # when the oldest of those was quarantined
    # records refused again exactly as an unresolved quarantine entry of an earlier run (a
    # database extract's overlap pulls them again): that entry stays, no reject of this run
    still_refused: int = 0
    skipped_paths: list[str] = field(default_factory=list)  # unrecognised files in folders
    started: dt.datetime | None = None
    # files read by a fast reader (no raw text landed): their lines are read back on demand
    fast_files: dict[str, InputFile] = field(default_factory=dict, repr=False)

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def changed(self) -> int:
        """Records that inserted or changed a row of the store."""
        return self.total("inserted") + self.total("updated")

    @property
    def accepted(self) -> int:
        return self.changed + self.total("unchanged")

    @property
    def rejected(self) -> int:
        return sum(self.rejects_by_code.values())


# Callables told when a run reaches each step: read, validate, load, history, commit (and an
# extract's pulled). The fault tests register one that kills the process there, proving a run
# killed at any step leaves the store as it was.
STEP_HOOKS: list[Callable[[str], None]] = []


def reached(step: str) -> None:
    """Tell STEP_HOOKS that the run reached `step` (ingest's own steps, and the extract's)."""
    for hook in STEP_HOOKS:
        hook(step)


# progress(message, steps_done, steps_total): one step per file read, per kind validated/loaded.
Progress = Callable[[str, int, int], None]


def loaded_stats(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int, int]]:
    """(kind, path, size, mtime in ns) of every file a completed run loaded (or found to be a
    copy of a loaded one): an ingest skips a file with one of these unread (`con`: the raw
    store, read-only is enough)."""
    return list(_loaded_files(con)[0])


def ingest_paths(
    paths: list[Path],
    db: Path | str,
    kind: str | None = None,
    wait_seconds: float = 0.0,
    progress: Progress | None = None,
    force: bool = False,
    memory_limit: str | None = "1GB",
) -> RunSummary:
    """Load the given files as one run into the raw store beside warehouse `db`."""
    skipped: list[str] = []
    files = prepare_files(paths, kind, skipped)
    summary = ingest_inputs(files, db, wait_seconds, progress, force, memory_limit=memory_limit)
    summary.skipped_paths = skipped
    return summary


# Called inside the run's transaction, after the merge and before the audit is final: an
# extract writes the source's status history and its watermark here, so they commit (or not)
# with the rows. `before_merge` (the same signature) runs in the transaction before the merge:
# an extract deletes there what the source deleted, so a row that takes a deleted row's place
# (a stage order, an id changed) is merged against the store without it.
BeforeCommit = Callable[[duckdb.DuckDBPyConnection, "RunSummary"], None]


def ingest_inputs(
    files: list[InputFile],
    db: Path | str,
    wait_seconds: float = 0.0,
    progress: Progress | None = None,
    force: bool = False,
    derive_history: bool = True,
    before_commit: BeforeCommit | None = None,
    memory_limit: str | None = "1GB",
    before_merge: BeforeCommit | None = None,
    refused_again_once: bool = False,
) -> RunSummary:
    """Load prepared inputs (files, or local copies of a database's tables) as one run.

    `derive_history=False` when the source brings its own status history (a database
    extract): the merge then does not infer history rows from the status changes it sees.
    `refused_again_once` when the source is pulled with an overlap (a database extract): a
    record refused again exactly as an unresolved quarantine entry of an earlier run (same
    file or table, record, reason and payload; its row in a pull has no fixed line) keeps that
    one entry and is counted as `still_refused`, not as this run's reject.
    """
    steps = iter(range(len(files) + 2 * len(LOAD_ORDER) + 1))
    total = len(files) + 2 * len(LOAD_ORDER)

    def note(message: str) -> None:
        if progress:
            progress(message, next(steps), total)

    # Bounded memory whatever the file size: DuckDB spills to disk beyond `memory_limit`.
    with open_store(db, wait_seconds, memory_limit=memory_limit) as con:
        con.execute("set TimeZone = 'UTC'")
        # Reading only fills temporary tables, outside the run's transaction: a fast reader
        # refusing a file (a malformed line, a duplicate key) then costs nothing but the
        # fallback to the line reader. Everything written to the store is in the transaction.
        run = _land(con, files, note, force)
        con.begin()
        try:
            if before_merge is not None:
                before_merge(con, run)
                _drop_settled_retries(con, run.run_id)
            summary = _run(con, run, note, derive_history, refused_again_once)
            if before_commit is not None:
                before_commit(con, summary)
            reached("commit")
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


def _land(
    con: duckdb.DuckDBPyConnection, files: list[InputFile], note: Callable[[str], None], force: bool
) -> RunSummary:
    """Skip files already loaded (same path, size and mtime; else same sha256), land the rest
    into temporary tables, then queue earlier orphans for retry."""
    run = RunSummary(new_run_id())
    run.started = utc_now()
    _create_work_tables(con)
    con.execute(
        "insert into run_files select unnest(?), unnest(?)",
        [[source.label for source in files], list(range(1, len(files) + 1))],
    )
    by_stat, by_hash = _loaded_files(con)
    for index, source in enumerate(files):
        stat = (source.kind, source.label, source.size, source.mtime_ns)
        if not force and stat in by_stat:
            source.sha256 = by_stat[stat]
        counts = FileCounts(source.label, source.kind, source.fmt, source.sha256)
        # the path, size and mtime are recorded for every file, skipped or a copy: the audit
        # says what was seen, and the next run skips a copy unread
        counts.size_bytes, counts.mtime_ns = source.size, source.mtime_ns
        run.files.append(counts)
        if not force and source.sha256 and (source.kind, source.sha256) in by_hash:
            counts.skipped = True
            note(f"skip {source.label} (already loaded)")
            continue
        note(f"read {source.label}")
        fast = _land_file(con, source, index + 1)
        counts.sha256 = source.sha256
        if not force and (source.kind, source.sha256) in by_hash:  # a copy, hashed while read
            con.execute("delete from landing where file_path = ?", [source.label])
            for kind in LOAD_ORDER:
                con.execute(f"delete from checked_{kind} where file_path = ?", [source.label])
            counts.skipped = True
            continue
        if fast:
            run.fast_files[source.label] = source
        counts.rows_read = con.execute(
            "select count(*) from landing where file_path = ?", [source.label]
        ).fetchone()[0] + len(source.problems)
    reached("read")
    _split_inline_stages(con)
    run.retried = _queue_retries(con)
    _parse_landed(con)
    _drop_superseded_retries(con)
    return run


def _parse_landed(con: duckdb.DuckDBPyConnection) -> None:
    """The line-read rows into `checked_<kind>`: one parse for the fields, one for the keys.
    Only kinds with line-read rows: planning a kind's statement costs 30-70 ms even over none."""
    read = con.execute("select distinct kind from landing where not fast").fetchall()
    for kind in [k for k in LOAD_ORDER if (k,) in read]:
        compiled = compile_model(MODELS[kind])
        parsed = compiled.parse_sql(
            "(select rec, file_path, line_no, raw from landing where kind = ? and not fast)"
        )
        con.execute(f"insert into checked_{kind} {compiled.checked_sql(f'({parsed})')}", [kind])


def _run(
    con: duckdb.DuckDBPyConnection,
    run: RunSummary,
    note: Callable[[str], None],
    derive_history: bool = True,
    refused_again_once: bool = False,
) -> RunSummary:
    for kind in LOAD_ORDER:
        note(f"validate {kind}")
        _validate_kind(con, kind, run.fast_files)
        reached("validate")
        note(f"load {kind}")
        _check_and_merge(con, kind, run.run_id, run.fast_files, derive_history, run.retried > 0)
    _finish(con, run, run.started, refused_again_once)
    return run


def validate_lines(kind: str, lines: list[str]) -> tuple[dict[int, dict], dict[int, str]]:
    """The bulk contract check alone, on raw JSON lines of one kind, in a private in-memory
    database: the typed rows that pass (by line number) and the error code of each line that
    does not. Cross-record checks (references, duplicates) are not part of it."""
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(SCHEMA)
        _create_work_tables(con)
        con.executemany(
            "insert into landing (kind, file_path, line_no, raw) values (?, '<lines>', ?, ?)",
            [[kind, line_no, raw] for line_no, raw in enumerate(lines, start=1)],
        )
        _parse_landed(con)
        _validate_kind(con, kind)
        cursor = con.execute(
            "select line_no, * exclude (rec, file_path, line_no, ok, has_stages) "
            f"from staged_{kind}"
        )
        names = [d[0] for d in cursor.description]
        passed = {row[0]: dict(zip(names[1:], row[1:], strict=True)) for row in cursor.fetchall()}
        failed = dict(con.execute("select line_no, error_code from rejects").fetchall())
        return passed, failed
    finally:
        con.close()


# ---------------------------------------------------------------- landing


def _create_work_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        create or replace temp sequence landing_rec;
        create or replace temp table landing (
            rec bigint default nextval('landing_rec'), kind varchar, file_path varchar,
            line_no bigint, raw varchar, fast boolean default false,
            retry boolean default false);
        create or replace temp table rejects (
            file_path varchar, line_no bigint, kind varchar, record_id varchar, raw varchar,
            error_code varchar, field varchar, error_message varchar, retryable boolean);
        create or replace temp table outcomes (
            file_path varchar, kind varchar, outcome varchar, n bigint);
        create or replace temp table file_landing (line_no bigint, raw varchar);
        create or replace temp table run_files (file_path varchar, position integer);
    """)
    for kind in LOAD_ORDER:  # checked rows (fast readers and line readers): see _validate_kind
        compiled = compile_model(MODELS[kind])
        parse = compiled.parse_sql(
            "(select 0::bigint as rec, ''::varchar as file_path, 0::bigint as line_no, "
            "'{}'::varchar as raw limit 0)"
        )
        con.execute(
            f"create or replace temp table checked_{kind} as {compiled.checked_sql(f'({parse})')}"
        )


def _loaded_files(
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[tuple[str, str, int, int], str], set[tuple[str, str]]]:
    """Files of completed runs: by (kind, path, size, mtime) -> sha256 (copies of loaded files
    included: read once, found to be copies, skipped unread from then on), and by (kind,
    sha256) those whose records were loaded."""
    rows = con.execute("""
        select distinct f.kind, f.file_path, f.size_bytes, f.mtime_ns, f.sha256, f.skipped
        from ingest_files f join ingest_runs r using (run_id)
        where r.status = 'completed'""").fetchall()
    by_stat = {(k, p, n, m): h for k, p, n, m, h, _ in rows if n is not None and m is not None}
    return by_stat, {(k, h) for k, _, _, _, h, skipped in rows if not skipped}


def _land_file(con: duckdb.DuckDBPyConnection, source: InputFile, index: int) -> bool:
    """Land one file; True when a fast reader took it (no raw text landed, rows in
    `parsed_<kind>` directly). The sha256 is computed in a thread while DuckDB reads."""
    with ThreadPoolExecutor(1) as pool:
        scan = pool.submit(readers.scan, source.path)
        try:
            fast = readers.land_fast(con, source, index, scan)
            if not fast:
                con.execute("delete from file_landing")
                readers.land(con, source, "file_landing")
                con.execute(
                    "insert into landing (kind, file_path, line_no, raw) "
                    "select ?, ?, line_no, raw from file_landing",
                    [source.kind, source.label],
                )
        except OSError as exc:  # gone or unreadable since it was listed: not the store's fault
            raise UserError(f"{source.path}: cannot read ({exc.strerror or exc})") from None
        source.sha256 = scan.result().sha256
    problems = [Rejection(p.code, None, p.message) for p in source.problems]
    _add_rejects(
        con,
        [
            (source.label, p.line_no, source.kind, None, p.raw, r.code, None, r.message, False)
            for p, r in zip(source.problems, problems, strict=True)
        ],
    )
    empty = not con.execute(
        "select count(*) from landing where file_path = ?", [source.label]
    ).fetchone()[0]
    if not problems and empty:
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
    return fast


def _fill_raw(
    con: duckdb.DuckDBPyConnection, recs_sql: str, fast_files: dict[str, InputFile]
) -> None:
    """Read back the raw text of fast-read rows in `recs_sql` (only rejected or unusual rows
    need it: the quarantine keeps each record as it was written)."""
    if not fast_files:
        return
    wanted = con.execute(f"""
        select file_path, list(line_no order by line_no) from landing
        where raw is null and fast and rec in ({recs_sql}) group by all""").fetchall()
    for file_path, lines in wanted:
        readers.read_back(con, fast_files[file_path], lines, "file_landing")
        con.execute(
            """update landing set raw = f.raw from file_landing f
            where landing.file_path = ? and landing.fast and landing.line_no = f.line_no""",
            [file_path],
        )


def _split_inline_stages(con: duckdb.DuckDBPyConnection) -> None:
    """A process record may carry its stages inline as `stages`: they become stage records."""
    # Each element becomes a stage record, in list order; one that is not an object lands as
    # it is, and the contract refuses it (`not_an_object`) as it would a line of a stage file.
    con.execute("""
        insert into landing (kind, file_path, line_no, raw)
        select 'stages', file_path, line_no,
               case when json_type(s) = 'OBJECT' then
                   json_merge_patch(json_object('interview_process_id', raw->>'id'), s)::varchar
               else coalesce(s::varchar, 'null') end
        from (select rec, file_path, line_no, raw, unnest(stages) as s,
                     generate_subscripts(stages, 1) as position
              from (select *, from_json(raw->'stages', '["JSON"]') as stages
                    from landing
                    where kind = 'processes' and json_valid(raw) and json_type(raw) = 'OBJECT'
                      and json_type(raw, '$.stages') = 'ARRAY'))
        order by rec, position;
        update landing set raw = json_merge_patch(raw, '{"stages": null}')::varchar
        where kind = 'processes' and json_valid(raw) and json_type(raw) = 'OBJECT'
          and json_type(raw, '$.stages') = 'ARRAY';
    """)


def retries_waiting(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether orphans of earlier runs wait in quarantine: every ingest validates them again."""
    return con.execute(
        "select count(*) > 0 from quarantine where retryable and resolved_run_id is null"
    ).fetchone()[0]


def _queue_retries(con: duckdb.DuckDBPyConnection) -> int:
    """Every unresolved orphan of earlier runs is validated again in this one, as a `retry`
    row. Its file may be read again in this run, holding another record at its line (the
    nightly export at the same path, an extract's table): a line is no record's identity, so
    only a copy of the same record, by id, stands for it (`_drop_superseded_retries`)."""
    if not retries_waiting(con):
        return 0  # the common case: no scan of the landed rows
    return con.execute("""
        insert into landing (kind, file_path, line_no, raw, retry)
        select kind, file_path, line_number, raw_payload, true from quarantine
        where retryable and resolved_run_id is null""").fetchone()[0]


def _drop_superseded_retries(con: duckdb.DuckDBPyConnection) -> None:
    """A retried orphan whose record this run reads again (the same id: its current copy) is
    not validated twice: the copy read stands for it, and settles it (`_settle_retries`)."""
    if not con.execute("select count(*) > 0 from landing where retry").fetchone()[0]:
        return
    for kind in LOAD_ORDER:
        con.execute(f"""
            delete from checked_{kind} where rec in (
                select c.rec from checked_{kind} c join landing l using (rec)
                where l.retry and c.id in (
                    select f.id from checked_{kind} f join landing n using (rec)
                    where not n.retry))""")


def _drop_settled_retries(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """A retried orphan that this run settled before the merge (an extract: the source deleted
    the record) is not loaded: its quarantine entry is resolved, and a record the source no
    longer has must not arrive from the quarantine."""
    if not con.execute("select count(*) > 0 from landing where retry").fetchone()[0]:
        return
    for kind in LOAD_ORDER:
        con.execute(
            f"""
            delete from checked_{kind} where rec in (
                select l.rec from landing l join checked_{kind} c using (rec)
                join quarantine q on q.kind = l.kind and q.file_path = l.file_path
                  and q.line_number is not distinct from l.line_no
                  and q.record_id = c.id::varchar
                where l.retry and q.retryable and q.resolved_run_id = $run)""",
            {"run": run_id},
        )


def _settle_retries(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """A quarantined orphan (every one was retried, `_queue_retries`) refused again for the
    same reason, as the same record at the same place, keeps its row (no pile-up); one that
    loaded, was read again elsewhere, or now fails for another reason is resolved by this run
    (a new refusal is quarantined as such)."""
    same = """q.kind = r.kind and q.file_path is not distinct from r.file_path
              and q.line_number is not distinct from r.line_no
              and q.record_id is not distinct from r.record_id"""
    con.execute(
        f"""
        update quarantine q set resolved_run_id = $run
        where retryable and resolved_run_id is null
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
    # refused input may hold lone surrogates (JSON escapes) that no UTF-8 column can hold
    columns = [
        [storable(v) if isinstance(v, str) else v for v in col] for col in zip(*rows, strict=True)
    ]
    readers.insert_columns(
        con, "rejects", {name: list(col) for name, col in zip(REJECT_COLUMNS, columns, strict=True)}
    )


# ---------------------------------------------------------------- per-record validation


def _validate_kind(
    con: duckdb.DuckDBPyConnection, kind: str, fast_files: dict[str, InputFile] | None = None
) -> None:
    """`staged_<kind>`: every record valid on its own; the others explained (pydantic).

    The checked rows become the staged rows where they are (a rename, not a copy of a million
    rows): those the SQL did not accept are explained and deleted, and the ones pydantic
    accepts after all are added back. Its columns: `rec, file_path, line_no, ok, has_stages`
    and the raw table's, in the contract's order (`_check_and_merge` names the columns it
    writes)."""
    model = MODELS[kind]
    staged = f"staged_{kind}"
    con.execute(f"drop table if exists {staged}")
    con.execute(f"alter table checked_{kind} rename to {staged}")
    _fill_raw(con, f"select rec from {staged} where not ok", fast_files or {})
    slow = con.execute(f"""
        select l.rec, l.file_path, l.line_no, l.raw from {staged} c join landing l using (rec)
        where not c.ok order by l.rec""").fetchall()
    if slow:
        con.execute(f"delete from {staged} where not ok")
    valid, rejected = [], []
    for rec, file_path, line_no, raw in slow:
        row, why = explain(model, raw)
        if row is not None:
            valid.append(
                {"rec": rec, "file_path": file_path, "line_no": line_no, "ok": True, **row}
            )
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
        readers.insert_columns(con, staged, {name: [r[name] for r in valid] for name in valid[0]})
    _add_rejects(con, rejected)


# ---------------------------------------------------------------- cross-record checks and merge

# SQL: where a staged row `{row}` comes in this run, for "the first one wins": its file's place
# among the run's files (0: a retried row of an earlier run's file), its line, then its place on
# that line (the inline stages of one process record share its line: landed in list order).
RUN_ORDER = (
    "coalesce((select position from run_files f where f.file_path = {row}.file_path), 0), "
    "{row}.line_no, {row}.rec"
)


def _reject_where(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    code: str,
    condition: str,
    message_sql: str,
    field_name: str | None = None,
    fast_files: dict[str, InputFile] | None = None,
    field_sql: str | None = None,
    join: str = "",
) -> None:
    """Move staged rows matching `condition` to the rejects, with a per-row message and field
    (`field_name`, or `field_sql` when it depends on the row); `join` adds a table to the
    staged rows `s` that all three may read (one join instead of a subquery in each).
    The condition is evaluated once; the (usually empty) result drives insert and delete."""
    field = field_sql or (f"'{field_name}'" if field_name else "null")
    con.execute(f"""
        create or replace temp table failing as
        select rec, file_path, line_no, id::varchar as record_id, {message_sql} as message,
               {field} as field
        from staged_{kind} s {join} where {condition}""")
    if not con.execute("select count(*) from failing").fetchone()[0]:
        return
    _fill_raw(con, "select rec from failing", fast_files or {})
    con.execute(f"""
        insert into rejects
        select f.file_path, f.line_no, '{kind}', f.record_id, l.raw, '{code}', f.field,
               f.message,
               {code in RETRYABLE_CODES}
        from failing f join landing l using (rec)""")
    con.execute(f"delete from staged_{kind} where rec in (select rec from failing)")


def _iso(separator: str, timestamp: str) -> str:
    """SQL spelling a naive timestamp as Python does (`isoformat(separator)`): seconds always,
    microseconds only when there are any, so a message is the one the service writes."""
    return (
        f"strftime({timestamp}, '%Y-%m-%d{separator}%H:%M:%S') || case when "
        f"epoch_us({timestamp}) % 1000000 <> 0 then strftime({timestamp}, '.%f') else '' end"
    )


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_name = ? "
        "and table_schema = 'main' order by ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows if not r[0].startswith("_")]


def _counted_path(retried: bool) -> str:
    """SQL: the file a staged row's outcome counts for. A retried orphan (a `retry` row of
    landing) counts for none: its file may be read again in this run, and its rows are what
    was read now (the summary counts the orphan as retried and resolved instead)."""
    if not retried:
        return "file_path"  # the common case: no lookup
    return "case when rec in (select rec from landing where retry) then null else file_path end"


def _dedupe_in_run(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    cols: list[str],
    fast_files: dict[str, InputFile],
    counted: str = "file_path",
) -> bool:
    """Same id twice in one run: the newest `updated_at` wins (older copies are stale);
    copies with the same `updated_at` but different contents are ambiguous and rejected;
    copies of the winner's contents go to `copies` (True: there may be some)."""
    if con.execute(f"select count(*) = count(distinct id) from staged_{kind}").fetchone()[0]:
        return False  # the common case: nothing to rank
    content = f"hash({', '.join(cols)})"
    con.execute(f"""
        create or replace temp table ranked as
        select *, {content} as _h,
               rank() over (partition by id order by updated_at desc) as _rank,
               row_number() over (partition by id order by updated_at desc, {content},
                                  {RUN_ORDER.format(row="staged")}) as _pos
        from staged_{kind} staged;
        create or replace temp table conflicts as
        select id, string_agg(file_path || ':' || line_no, ', ' order by file_path, line_no)
                   as places  -- ordered: the message is the same on every run
        from (select distinct id, file_path, line_no from ranked where _rank = 1)
        where id in (select id from ranked where _rank = 1
                     group by id having count(distinct _h) > 1)
        group by id;""")
    _fill_raw(
        con, "select rec from ranked r join conflicts c using (id) where r._rank = 1", fast_files
    )
    con.execute(f"""
        insert into rejects
        select r.file_path, r.line_no, '{kind}', r.id::varchar,
               (select raw from landing l where l.rec = r.rec), 'duplicate_id', 'id',
               'id ' || r.id || ' appears more than once in this run with different contents '
               || 'and the same updated_at (' || c.places || ')', false
        from ranked r join conflicts c using (id) where r._rank = 1;
        insert into outcomes  -- (an older copy of an id whose newest ones conflict: stale)
        select {counted}, '{kind}', 'stale', count(*)
        from ranked where _pos > 1 and _rank > 1 group by all;
        -- copies of the winner, same contents: they share its fate (_settle_copies)
        create or replace temp table copies as
        select c.rec, c.file_path, c.line_no, w.file_path as winner_file,
               w.line_no as winner_line, c.id
        from ranked c join ranked w on w.id = c.id and w._pos = 1
        where c._pos > 1 and c._rank = 1 and c.id not in (select id from conflicts);
        create or replace temp table staged_{kind} as
        select * exclude (_h, _rank, _pos) from ranked
        where _pos = 1 and id not in (select id from conflicts);
        drop table ranked; drop table conflicts;""")
    return True


def _settle_copies(
    con: duckdb.DuckDBPyConnection, kind: str, fast_files: dict[str, InputFile]
) -> None:
    """Copies of a record with the winner's contents (`_dedupe_in_run`) share its fate once the
    references are checked: unchanged beside a winner that stays, rejected with its reason (at
    their own line, retried alike when it is an orphan) beside one that was rejected. They were
    counted unchanged, accepted, beside an orphan that was stored nowhere."""
    con.execute(f"""
        insert into outcomes select file_path, '{kind}', 'unchanged', count(*)
        from copies where id in (select id from staged_{kind}) group by all;
        delete from copies where id in (select id from staged_{kind})""")
    if con.execute("select count(*) > 0 from copies").fetchone()[0]:
        _fill_raw(con, "select rec from copies", fast_files)
        con.execute(f"""
            insert into rejects
            select c.file_path, c.line_no, '{kind}', r.record_id, l.raw, r.error_code, r.field,
                   r.error_message, r.retryable
            from copies c join landing l using (rec)
            join rejects r on r.kind = '{kind}' and r.file_path = c.winner_file
                 and r.line_no = c.winner_line and r.record_id = c.id::varchar
            qualify row_number() over (partition by c.rec) = 1""")
    con.execute("drop table copies")


def _check_references(
    con: duckdb.DuckDBPyConnection, kind: str, fast_files: dict[str, InputFile]
) -> None:
    reject = functools.partial(_reject_where, fast_files=fast_files)
    if kind == "processes":
        reject(
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
        reject(
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
        reject(
            con,
            kind,
            "orphan_stage",
            "interview_process_id not in (select id from staged_processes union all "
            "select id from interview_processes)",
            "'interview process ' || interview_process_id || ' is not known yet; "
            "retried on the next run'",
            "interview_process_id",
        )
        # contract.stage_date_error's rule, field and message (the service's), in SQL; each
        # stage's process is known by now (orphans are rejected above): an inner join
        processes = """join (select id as process_id, created_at as process_created_at
                   from staged_processes
                   union all select id, created_at from interview_processes
                   where id not in (select id from staged_processes)) p
                 on p.process_id = s.interview_process_id"""
        created = "p.process_created_at"
        early = f"s.scheduled_date < {created}"
        date = f"case when {early} then s.scheduled_date else s.completed_date end"
        reject(
            con,
            kind,
            "date_before_process",
            f"least(s.scheduled_date, s.completed_date) < {created}",
            f"case when {early} then 'scheduled_date' else 'completed_date' end || ' ' || "
            f"{_iso('T', date)} || ' is before the process was created (' || "
            f"{_iso(' ', created)} || ')'",
            field_sql=f"case when {early} then 'scheduled_date' else 'completed_date' end",
            join=processes,
        )
        reject(
            con,
            kind,
            "duplicate_stage_order",
            f"""exists (select 1 from (
                   select id, interview_process_id, stage_order, null as run_order
                   from interview_stages where id not in (select id from staged_stages)
                   union all select id, interview_process_id, stage_order,
                                    [{RUN_ORDER.format(row="st")}] as run_order
                   from staged_stages st) o
                 where o.interview_process_id = s.interview_process_id
                   and o.stage_order = s.stage_order and o.id <> s.id
                   and (o.run_order is null or o.run_order < [{RUN_ORDER.format(row="s")}]))""",
            "'stage_order ' || stage_order || ' is already taken by another stage of process '"
            " || interview_process_id",
            "stage_order",
        )


def _check_and_merge(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    run_id: str,
    fast_files: dict[str, InputFile] | None = None,
    derive_history: bool = True,
    retried: bool = False,
) -> None:
    table = TABLES[kind]
    cols = _columns(con, table)
    counted = _counted_path(retried)
    copies = _dedupe_in_run(con, kind, cols, fast_files or {}, counted)
    _check_references(con, kind, fast_files or {})
    if copies:
        _settle_copies(con, kind, fast_files or {})
    status = "status" if kind == "processes" else "null"
    if con.execute(f"select count(*) = 0 from {table}").fetchone()[0]:
        # A first load: every staged row is new, written straight from the staged rows
        # (classifying them against an empty table would only copy all of them once more).
        con.execute(f"""
            create or replace temp table classified as
            select *, null::varchar as _outcome, null::varchar as status_before
            from staged_{kind} limit 0""")
        new = accepted = f"staged_{kind}"
    else:
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
            left join (select *, {status} as status_before from {table}) t using (id)""")
        new = "(select * from classified where _outcome = 'inserted')"
        accepted = "(select id from classified where _outcome <> 'stale')"
    _resolve_rejects_of_accepted(con, kind, run_id, accepted)
    con.execute(
        f"""
        insert into outcomes select {counted}, ?, 'inserted', count(*) from {new} group by all
        union all
        select {counted}, ?, _outcome, count(*) from classified where _outcome <> 'inserted'
        group by all""",
        [kind, kind],
    )
    with _rows_in_any_order(con):
        if kind == "processes" and derive_history:
            _record_status_history(con, run_id, new)
            reached("history")
        col_list = ", ".join(cols)
        write = f"into {table} ({col_list}, _run_id, _loaded_at) select {col_list}, ?, ? from"
        con.execute(f"insert {write} {new}", [run_id, utc_now()])
        # An update replaces the row of its id: the raw tables keep ids unique without an index
        # (migration 20261126120000), and every row written here has an id classified above.
        con.execute(
            f"delete from {table} where id in "
            "(select id from classified where _outcome = 'updated')"
        )
        con.execute(f"insert {write} classified where _outcome = 'updated'", [run_id, utc_now()])
    reached("load")
    con.execute("drop table classified")


def _resolve_rejects_of_accepted(
    con: duckdb.DuckDBPyConnection, kind: str, run_id: str, accepted: str
) -> None:
    """Earlier runs' rejects of a record this run accepts (`accepted`: their ids) are resolved by
    it: the corrected copy loaded, so `itrack rejects` no longer lists the broken one as
    waiting for attention. (Orphans are settled by their retry, `_settle_retries`.)"""
    waiting = "not retryable and resolved_run_id is null and kind = ?"
    if not con.execute(f"select count(*) > 0 from quarantine where {waiting}", [kind]).fetchone()[
        0
    ]:
        return  # the common case: nothing to look up among the accepted ids
    # a UUID as the record spelled it may differ from the stored one in case and form (no
    # dashes, braces: the contract takes them), so it is compared as the UUID it reads as; a
    # text id (a candidate's) is compared exactly: CAND-1 and cand-1 are two candidates
    spelled = "record_id"
    if readers.field_base(MODELS[kind], "id") is UUID:
        spelled = "try_cast(record_id as uuid)::varchar"
    con.execute(
        f"""
        update quarantine set resolved_run_id = ?
        where {waiting} and {spelled} in (select id::varchar from {accepted})""",
        [run_id, kind],
    )


@contextlib.contextmanager
def _rows_in_any_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The raw tables' inserts, free to write rows in any order (a table's rows have none).
    Keeping the staged rows' order kept the small row groups the parallel landing left (three
    of about 9,500 rows in the 1M stage file), and the store's next checkpoint rewrote the
    table to merge them: 0.6-1.0 s per big table at the end of a 1M ingest."""
    (before,) = con.execute("select current_setting('preserve_insertion_order')").fetchone()
    con.execute("set preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute(f"set preserve_insertion_order = {'true' if before else 'false'}")


def _record_status_history(con: duckdb.DuckDBPyConnection, run_id: str, new: str) -> None:
    """New processes (`new`) start in in_progress at creation; every observed change is a
    row."""
    con.execute(
        f"""
        insert into interview_status_history
        select id, null, 'in_progress', created_at, $run, 'ingest', $now
        from {new}
        union all
        select id, 'in_progress', status, updated_at, $run, 'ingest', $now
        from {new} where status <> 'in_progress'
        union all
        select id, status_before, status, updated_at, $run, 'ingest', $now
        from classified where _outcome = 'updated' and status <> status_before""",
        {"run": run_id, "now": utc_now()},
    )


# ---------------------------------------------------------------- audit


def _finish(
    con: duckdb.DuckDBPyConnection,
    run: RunSummary,
    started: dt.datetime,
    refused_again_once: bool = False,
) -> None:
    _settle_retries(con, run.run_id)
    if refused_again_once:
        (run.still_refused,) = con.execute("""
            delete from rejects r where exists (
                select 1 from quarantine o
                where o.resolved_run_id is null and o.kind = r.kind
                  and o.file_path is not distinct from r.file_path
                  and o.record_id is not distinct from r.record_id
                  and o.error_code = r.error_code
                  and o.raw_payload is not distinct from r.raw)""").fetchone()
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
            "select error_code, count(*) from rejects group by 1 order by 2 desc, 1"
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
            "insert into ingest_files (run_id, file_path, kind, format, sha256, skipped, rows_read,"
            " inserted, updated, unchanged, stale, rejected, size_bytes, mtime_ns)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                f.size_bytes,
                f.mtime_ns,
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

"""`itrack`: the command line. Errors are one line for people; exit codes are an interface:
0 done, 1 refused (a rule said no, or --strict saw rejects), 2 cannot run (input, busy, I/O)."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ingest.errors import Refused, StoreError, UserError
from ingest.interrupts import interrupted
from ingest.store.duckdb.store import DEFAULT_WAIT_SECONDS
from itrack.cli import db as db_cli
from itrack.cli import feedback as feedback_cli
from itrack.cli import interview as interview_cli
from itrack.cli import report as report_cli
from itrack.cli import serve as serve_cli
from itrack.cli.common import (
    DbOption,
    Target,
    WaitOption,
    file_option,
    path_option,
    path_value,
    warehouse,
    with_target,
)
from itrack.cli.output import Format, line, print_json, print_record, print_table, text
from itrack.errors import err_console, fail, new_app, reader_left
from itrack.generate import generate_command
from itrack.settings import check_memory_limit, get_settings

if TYPE_CHECKING:
    from rich.progress import Progress

# every command: one line and an exit code, options given once (itrack/errors.py)
app = new_app(
    "interview-tracking: validated ingest, dbt marts and feedback for recruiting outcomes.",
    # usage errors as one plain line in logs; rich panels only for a person at a terminal
    rich_markup_mode="rich" if sys.stderr.isatty() else None,
)
console = Console(soft_wrap=True, markup=False)  # data is never markup; one line per path


# --overlap's bound: one year is more than any late commit; more would only re-pull
# everything (--full says that), and a huge one overflows the watermark arithmetic.
MAX_OVERLAP_MINUTES = 525_600


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        try:  # an eager option runs before any command, outside HandledGroup.invoke
            line(f"itrack {version('interview-tracking')}")
        except BrokenPipeError:
            reader_left()
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """interview-tracking: validated ingest, dbt marts and feedback for recruiting outcomes."""


def _names_database(value: str) -> bool:
    """Whether an argument is a postgresql:// URL. The extract's rule is imported only for a
    value holding `://`: its import costs a no-op build 0.2 s."""
    if "://" not in value:
        return False
    from ingest.extract import is_database_url

    return is_database_url(value)


def _path_or_url(value: str) -> str:
    """An ingest argument as given (a file, a folder or a postgresql:// URL); an empty one, or
    a URL of another scheme, is refused (`path_value`)."""
    if not _names_database(value):
        path_value(value)
    return value


def _build_path(value: str) -> Path:
    """A build argument: a file or folder. A postgresql:// URL is refused, pointing to
    `--from` (as a path it lost a `/` and was "no such file or directory")."""
    if _names_database(value):
        raise typer.BadParameter("a database is extracted with --from URL, not as a path")
    return path_value(value)


@app.command()
@with_target()
def ingest(
    paths: Annotated[
        list[str],
        typer.Argument(
            parser=_path_or_url,
            help="Files or folders (JSONL, JSON, CSV, Parquet), or one postgresql:// URL: the "
            "nightly extract of the rows changed there since the last extract.",
            show_default=False,
        ),
    ],
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="candidates, processes or stages (default: file name)."),
    ] = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any record was rejected.")] = False,
    force: Annotated[bool, typer.Option(help="Load files whose sha256 was loaded.")] = False,
    overlap: Annotated[
        float | None,
        typer.Option(
            help="Extract: minutes before the last watermark pulled again (late commits), "
            f"0 to {MAX_OVERLAP_MINUTES} (one year); default 15.",
            show_default=False,
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option(help="Extract: pull every row, ignoring the watermark.")
    ] = False,
    *,
    target: Target,
) -> None:
    """Validate records and load them into the raw store in one transaction."""
    from ingest.extract import is_database_url
    from ingest.load import ingest_paths

    if kind is not None and kind not in ("candidates", "processes", "stages"):
        raise UserError(f"--kind must be candidates, processes or stages, not '{kind}'")
    urls = [p for p in paths if is_database_url(p)]
    if urls:
        if len(paths) > 1:
            raise UserError("a postgresql:// URL is extracted on its own: ingest files separately")
        if kind is not None or force:
            raise UserError(
                "--kind and --force apply to files, not to a postgresql:// extract"
                " (it reads each table as its kind; --full pulls every row again)"
            )
        extract_command(urls[0], target.warehouse, target.wait, overlap, full, strict, target.json)
        return
    if full or overlap is not None:
        raise UserError("--full and --overlap apply to a postgresql:// extract, not to files")
    with progress_bar() as bar:
        task = bar.add_task("ingest", total=None)

        def step(message: str, done: int, total: int) -> None:
            bar.update(task, description=message, completed=done, total=total)

        limit = get_settings().memory_limit
        try:
            summary = ingest_paths(
                [Path(p) for p in paths],
                db=target.warehouse,
                kind=kind,
                wait_seconds=target.wait,
                force=force,
                progress=step,
                memory_limit=limit,
            )
        except StoreError:
            check_memory_limit(limit)  # the store would not open: was it the setting?
            raise
    if target.json:
        print_json(summary_dict(summary))
    else:
        print_summary(summary)
    if strict and summary.rejected:
        fail(f"{summary.rejected} record(s) rejected (--strict); see `itrack rejects`", 1)


def extract_command(
    url: str,
    db: Path,
    wait: float,
    overlap: float | None,
    full: bool,
    strict: bool,
    as_json: bool,
) -> None:
    """`itrack ingest postgresql://...`: the nightly extract (ingest/extract.py); `overlap`
    None is the extract's default."""
    from ingest.extract import extract
    from ingest.migrate import check_dsn

    if overlap is not None and not 0 <= overlap <= MAX_OVERLAP_MINUTES:  # nan: never compares
        raise UserError(
            f"--overlap must be from 0 to {MAX_OVERLAP_MINUTES} minutes (one year), not {overlap:g}"
        )
    check_dsn(url)  # the rule of every command taking a DSN (its password never shown)
    with progress_bar() as bar:
        task = bar.add_task("extract", total=None)

        def step(message: str, done: int, total: int) -> None:
            bar.update(task, description=message, completed=done, total=total)

        result = extract(
            url,
            db,
            wait_seconds=wait,
            progress=step,
            full=full,
            **({} if overlap is None else {"overlap": dt.timedelta(minutes=overlap)}),
        )
    summary = result.run
    if as_json:
        marks = {t: m.isoformat() if m else None for t, m in result.watermarks.items()}
        details = {
            "source": result.source,
            "pulled": result.pulled,
            "watermarks": marks,
            "history_added": result.history_added,
            "corrections_added": result.corrections_added,
            "deleted": result.deleted,
            "still_refused": result.still_refused,
        }
        print_json({**summary_dict(summary), "extract": details})
    else:
        pulled = ", ".join(f"{n} {table}" for table, n in result.pulled.items())
        line(f"extract from {result.source}: pulled {pulled}")
        print_summary(summary)
        if result.still_refused:
            line(
                f"still refused: {result.still_refused} row(s) pulled again, quarantined by an "
                "earlier run (see itrack rejects)"
            )
        deleted = sum(result.deleted.values())
        line(
            f"status history: {result.history_added} new row(s); corrections: "
            f"{result.corrections_added} new; deleted at the source: {deleted} row(s); "
            "watermarks saved with the run"
        )
    if strict and summary.rejected:
        fail(f"{summary.rejected} record(s) rejected (--strict); see `itrack rejects`", 1)


def progress_bar() -> Progress:
    """A progress bar on stderr for people; off entirely when stderr is not a terminal."""
    # imported here: a command that shows no progress does not pay for it (about 10 ms)
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # file names are data
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def summary_dict(summary: Any) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "files": [vars(f) for f in summary.files],
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "rejects_by_code": summary.rejects_by_code,
        "retried": summary.retried,
        "retry_resolved": summary.retry_resolved,
        "waiting": summary.waiting,
        "waiting_since": text(summary.waiting_since) or None,
        "skipped_files": summary.skipped_paths,
    }


FILE_COLUMNS = ("rows_read", "accepted", "rejected", "inserted", "updated", "unchanged", "stale")


def file_rows(summary: Any) -> list[dict[str, Any]]:
    """One row per file: records read, accepted (inserted + updated + unchanged), rejected."""
    any_skipped = any(f.skipped for f in summary.files)
    rows = []
    for f in summary.files:
        row: dict[str, Any] = {"file": f.path, "kind": f.kind}
        counts = {n: getattr(f, n) for n in FILE_COLUMNS if n != "accepted"}
        counts["accepted"] = f.inserted + f.updated + f.unchanged
        row.update({n: None if f.skipped else counts[n] for n in FILE_COLUMNS})
        if any_skipped:
            row["note"] = "skipped: already loaded" if f.skipped else ""
        rows.append(row)
    return rows


def print_summary(summary: Any) -> None:
    print_table(
        file_rows(summary),
        f"ingest run {summary.run_id}: {summary.accepted} accepted, {summary.rejected} rejected",
    )
    for skipped in summary.skipped_paths:
        line(f"skipped {skipped}")
    if summary.rejects_by_code:
        print_table(
            [{"error_code": c, "records": n} for c, n in summary.rejects_by_code.items()],
            "rejected records by error code",
        )
        line(f"details: itrack rejects --run {summary.run_id}")
    for message in orphan_lines(summary):
        line(message)


def orphan_lines(summary: Any) -> list[str]:
    """What became of the orphans (records waiting for their parent) of earlier runs."""
    lines = []
    if summary.retried:
        lines.append(
            f"orphans from earlier runs: {summary.retried} retried, "
            f"{summary.retry_resolved} resolved, {summary.retried - summary.retry_resolved} "
            "still waiting"
        )
    if summary.waiting:
        since = text(summary.waiting_since)
        lines.append(
            f"orphans waiting for their parent record: {summary.waiting} "
            f"(oldest quarantined {since} UTC); see itrack rejects"
        )
    return lines


REJECT_COLUMNS = (
    "run_id",
    "file_path",
    "line_number",
    "kind",
    "record_id",
    "error_code",
    "field",
    "error_message",
    "retryable",
    "resolved_run_id",
    "quarantined_at",
)


# --limit's bound: far past any quarantine, and within what DuckDB's LIMIT takes (a bigger
# number was a DuckDB conversion error naming no option)
MAX_ROWS = 1_000_000_000


@app.command()
@with_target()
def rejects(
    run: Annotated[str | None, typer.Option("--run", help="Only this run's rejects.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved ones.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=MAX_ROWS, help="Rows to show.")] = 50,
    *,
    target: Target,
) -> None:
    """List quarantined records with their reason (unresolved ones by default)."""
    from ingest.store.duckdb.store import open_store, raw_store_path

    where, params = [], []
    if run is not None:  # (an empty --run is an unknown run, not no filter)
        where.append("run_id = ?")
        params.append(run)
    if not all_ and run is None:
        where.append("resolved_run_id is null")
    sql = (
        f"select {', '.join(REJECT_COLUMNS)} from quarantine"
        + (" where " + " and ".join(where) if where else "")
        + " order by quarantined_at, file_path, line_number limit ?"
    )
    with open_store(target.warehouse, target.wait, read_only=True) as con:
        if (
            run is not None
            and not con.execute(
                "select count(*) from ingest_runs where run_id = ?", [run]
            ).fetchone()[0]
        ):
            raise Refused(f"no run '{run}' in {raw_store_path(target.warehouse)}")
        total = con.execute(
            "select count(*) from quarantine" + (" where " + " and ".join(where) if where else ""),
            params,
        ).fetchone()[0]
        cursor = con.execute(sql, [*params, limit])
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    if target.json:
        print_json(rows)
        return
    shown = ("file_path", "line_number", "kind", "record_id", "error_code", "error_message")
    if all_ or run:  # resolved ones are listed too: say which run loaded each
        shown += ("resolved_run_id",)
    title = f"quarantine: {len(rows)} of {total} shown" + (f" (run {run})" if run else "")
    print_table([{n: r[n] for n in shown} for r in rows], title)
    if total > len(rows):
        line(f"{total - len(rows)} more: pass --limit {total}")


@app.command()
@with_target()
def build(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            parser=_build_path, help="Files or folders to ingest first (none: only rebuild)."
        ),
    ] = None,
    backup: Annotated[bool, typer.Option(help="Back up the raw store first.")] = True,
    html: Annotated[bool, typer.Option(help="Write the HTML report.")] = True,
    replay: Annotated[
        bool,
        typer.Option(
            help="With the dbt project unchanged, replay the compiled plan of the last dbt "
            "run (--no-replay: run dbt itself).",
        ),
    ] = True,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Extract the changes of this postgresql:// database instead of ingesting files.",
        ),
    ] = None,
    *,
    target: Target,
) -> None:
    """The nightly pipeline: backup, ingest PATHs, dbt build, feedback, publish, report.

    Without PATHs nothing is ingested: the marts are rebuilt from the raw store as it is. Each
    step prints one timestamped line as it finishes; a summary for the log follows."""
    from ingest.store.duckdb.backup import default_backup_dir
    from itrack.pipeline import run_build

    # the key of ITRACK_BACKUP_KEY_FILE, read (or refused) before anything is written
    key = _read_key(None, default_backup_dir(target.warehouse)) if backup else None

    def live(message: str) -> None:  # progress lines: stdout for logs, stderr beside JSON
        stamped = f"{dt.datetime.now(dt.UTC):%H:%M:%S} {message}\n"
        (sys.stderr if target.json else sys.stdout).write(stamped)

    result = run_build(
        paths,
        source=source,
        db=target.warehouse,
        wait_seconds=target.wait,
        take_backup=backup,
        sign_key=key,
        write_html=html,
        note=live,
        replay=replay,
        plan_cache=get_settings().plan_cache_dir(),
    )
    summary = build_summary(result)
    if target.json:
        print_json(summary)
        return
    print_build_summary(summary, result)


def build_summary(result: Any) -> dict[str, Any]:
    feedback = result.feedback
    return {
        "started_at": f"{result.started_at:%Y-%m-%dT%H:%M:%SZ}",
        "seconds": result.seconds,
        "warehouse": str(result.warehouse),
        "steps": [vars(step) for step in result.steps],
        "ingest": summary_dict(result.ingest) if result.ingest else None,
        "notes": result.notes,
        "feeders_recomputed": list(getattr(feedback, "marked_feeders", [])),
        "feeders_updated": list(getattr(feedback, "updated_feeders", [])),
        "published": {name: str(path) for name, path in result.published.items()},
    }


def print_build_summary(summary: dict[str, Any], result: Any) -> None:
    line(f"build summary: started {summary['started_at']}, took {summary['seconds']:.1f} s")
    print_table(
        [
            {"step": s["name"], "seconds": s["seconds"], "result": s["result"]}
            for s in summary["steps"]
        ],
        "steps",
        shown=lambda name, value: f"{value:.1f}" if name == "seconds" else text(value),
    )
    rebuilt = any(s.name == "dbt build" and s.result.startswith("ok") for s in result.steps)
    if result.ingest is not None:
        print_summary(result.ingest)
    elif not any(s.name == "ingest" for s in result.steps):  # (a skipped one says why above)
        line("ingest: no paths given, nothing ingested" + (" (the marts were rebuilt)" * rebuilt))
    for message in summary["notes"]:
        line(message)
    updated = summary["feeders_updated"]
    line(
        f"feeders: {len(summary['feeders_recomputed'])} recomputed, {len(updated)} changed"
        + (f" ({', '.join(updated)})" if updated else "")
    )
    print_record(summary["published"], "published")


KeyFileOption = Annotated[
    Path | None,
    file_option(
        "--key-file",
        help="Secret key to sign the manifest with HMAC-SHA256 (a key inside the backup folder "
        "is refused: it would travel with the backups); restore with the same key refuses a "
        "snapshot whose signature does not match. Default: $ITRACK_BACKUP_KEY_FILE, the key "
        "the build signs its backups with.",
    ),
]


@app.command("backup")
def backup_command(
    to: Annotated[
        Path | None,
        path_option("--to", help="Folder (default: backups/ beside the warehouse)."),
    ] = None,
    keep: Annotated[int, typer.Option(min=1, help="Snapshots to keep (at least 1).")] = 7,
    db: DbOption = None,
    wait: WaitOption = DEFAULT_WAIT_SECONDS,
    key_file: KeyFileOption = None,
) -> None:
    """Snapshot the raw store (Parquet + manifest of row counts and checksums)."""
    from ingest.store.duckdb.backup import backup, default_backup_dir

    key = _read_key(key_file, to or default_backup_dir(warehouse(db)))
    target = backup(warehouse(db), to, keep, wait, sign_key=key)
    line(f"backup written: {target}")


def _read_key(path: Path | None, folder: Path) -> bytes | None:
    """The signing key in `path` (--key-file), else in `ITRACK_BACKUP_KEY_FILE` (None: neither
    given), kept outside the backup `folder`. The build signs its backups with the same."""
    from ingest.store.duckdb.backup import check_key_outside

    named = f"--key-file {path}"
    if path is None:
        path = get_settings().backup_key_path()
        named = f"ITRACK_BACKUP_KEY_FILE={path}"
    if path is None:
        return None
    check_key_outside(path, folder, named)
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise UserError(f"{named}: cannot read the key file: {exc.strerror}") from None
    if not key:
        raise UserError(f"{named}: the key file is empty")
    return key


@app.command()
def restore(
    snapshot: Annotated[
        Path,
        typer.Argument(parser=path_value, help="A backup folder (or a folder of backups)."),
    ],
    db: DbOption = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing raw store.")] = False,
    wait: WaitOption = DEFAULT_WAIT_SECONDS,
    key_file: KeyFileOption = None,
) -> None:
    """Restore a backup as the raw store, verifying its manifest; then run `itrack build`.

    From a folder of backups: the newest complete backup of this raw store (a folder holding
    none: exit 2 naming the stores it holds, unless a restore without --overwrite can take the
    backups of the one store there); with --key-file, the newest one the key signed (newer ones
    it did not sign are passed over and named; none signed: exit 2). A backup whose files do
    not match its manifest is refused, never replaced by an older one.

    Takes the writer lock like every writer: busy -> exit 2 naming the holder (or --wait)."""
    from ingest.store.duckdb.backup import MANIFEST, PARTIAL, latest, restore, store_of

    if not snapshot.is_dir():
        raise UserError(f"{snapshot}: no such backup folder")
    one = (snapshot / MANIFEST).exists() or snapshot.name.endswith(PARTIAL)
    key = _read_key(key_file, snapshot.parent if one else snapshot)  # the folder of backups
    passed_over: list[Path] = []
    store = of = store_of(warehouse(db))
    if not one:
        # another store's backups only into a new raw store (nothing replaced), and said
        snapshot, passed_over, of = latest(snapshot, warehouse(db), key, elsewhere=not overwrite)
    target = restore(snapshot, warehouse(db), overwrite, wait, sign_key=key)
    line(f"restored {snapshot} -> {target}")
    if of != store:
        line(
            f"the folder holds no backup of {store}: this one is of "
            f"{of or 'a store its manifest does not name'}, the one store it holds"
        )
    if passed_over:  # said, not silent: the raw store is older than the newest backup
        names = ", ".join(p.name for p in passed_over)
        line(f"passed over {len(passed_over)} newer backup(s) not signed with the key: {names}")


@app.command()
def export(
    out: Annotated[Path, path_option("--out", help="Folder for the files.")],
    anonymize: Annotated[
        bool, typer.Option("--anonymize", help="Drop names and free text (required).")
    ] = False,
    db: DbOption = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="parquet or csv (text cells starting with = + - @ get a ')."),
    ] = "parquet",
) -> None:
    """Export the marts without personal data (names, notes), for sharing outside the team.

    The folder ends with this export's files: an earlier export's tables there (the other
    format's too, as its manifest lists them) are replaced or removed; other files stay."""
    from feedback.export import export_anonymized

    if not anonymize:
        raise UserError(
            "only --anonymize exports exist: analysts inside the team query the "
            "warehouse itself (read-only)"
        )
    counts = export_anonymized(out, warehouse(db), fmt)
    line(f"exported {len(counts)} tables ({sum(counts.values())} rows) to {out}")


@app.command()
def docs(db: DbOption = None) -> None:
    """Build the dbt docs site (lineage of every model), offline."""
    from ingest.store.duckdb.store import raw_store_path
    from itrack.dbt_runner import docs_generate

    target = docs_generate(warehouse(db), raw_store_path(warehouse(db)))
    line(
        f"dbt docs: open {target / 'static_index.html'} (self-contained, offline; "
        f"{target / 'index.html'} needs the files beside it)"
    )


@app.command()
@with_target(wait=False)
def sql(
    command: Annotated[
        str | None,
        typer.Option("--command", "-c", help="Run this SQL and exit (else read SQL from stdin)."),
    ] = None,
    *,
    target: Target,
) -> None:
    """Query the published warehouse read-only: `-c SQL`, SQL on stdin, or a prompt.

    Uses the same DuckDB as the build, so it reads every warehouse the build writes (the
    separate DuckDB CLI must be of the same version or newer). Statements end with `;`. At the
    prompt, `.tables` lists the tables and views, `.quit` (or Ctrl-D) leaves. Writing is
    refused: the warehouse is opened read-only and the nightly build replaces it whole. With
    `--format json`, `-c` or stdin holds one statement (comments aside), whose rows print as one
    JSON document; several are refused (exit 2) before any runs: run each on its own."""
    from ingest.store.duckdb.store import connect_waiting

    path = target.warehouse
    if not path.exists():
        raise UserError(f"{path}: no warehouse yet; run `itrack build PATH` first (or check --db)")
    con = connect_waiting(path, 0.0)
    # read-only keeps the warehouse as built; no file access keeps `copy ... to`, `export
    # database` and the file readers off the disk (they wrote personal data to any path)
    con.execute("set enable_external_access = false")
    output = target.fmt
    try:
        if command is not None:
            _run_script(con, command, "-c", output)
        elif sys.stdin.isatty():
            _sql_prompt(con, path, output)
        else:
            _run_script(con, _stdin_text(), "stdin", output)
    finally:
        con.close()


def _run_script(con: Any, script: str, source: str, output: Format) -> None:
    """Each statement's rows in order (`-c` or stdin); exit 1 when one failed (the rest ran)."""
    statements = _statements(script)
    _refuse_several_for_json(statements, source, output)
    ok = True
    for statement in statements:
        ok = _run_sql(con, statement, output) and ok
    if not ok:
        raise typer.Exit(1)


def _refuse_several_for_json(statements: list[str], source: str, output: Format) -> None:
    """JSON output is one document: each statement printed its own, so `select 1; select 2`
    printed two arrays one after the other, which no JSON reader takes. Refused before any runs
    (a statement of comments alone prints nothing and does not count)."""
    count = sum(1 for statement in statements if _has_code(statement))
    if output is Format.json and count > 1:
        raise UserError(
            f"{source} holds {count} statements; --format json prints one statement's rows "
            "(one JSON document): run them one at a time; nothing was run"
        )


def _has_code(statement: str) -> bool:
    """Whether a statement holds more than comments and blanks (DuckDB runs nothing for it)."""
    i = 0
    while i < len(statement):
        end = _span_end(statement, i)
        if end is not None and statement.startswith(("--", "/*"), i):
            i = end  # a comment: skipped
        elif end is not None or not statement[i].isspace():
            return True  # a quoted string or any other character: code
        else:
            i += 1
    return False


def _stdin_text() -> str:
    """SQL piped in, as UTF-8 (a byte order mark dropped). Bytes that are not UTF-8 are refused
    before anything runs: read as text they reached DuckDB as lone surrogates, after the
    statements before them had run ("Python Conversion Failure: cannot encode str ...")."""
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"stdin: not valid UTF-8 (byte {exc.start}); nothing was run") from None


def _statements(script: str) -> list[str]:
    """Split a script at `;` outside quotes and comments (`_span_end`) into statements."""
    statements, current, i = [], [], 0
    while i < len(script):
        end = _span_end(script, i)
        if end is not None:  # copied whole up to its closer (or the script's end)
            current.append(script[i:end])
            i = end
            continue
        if script[i] == ";":
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(script[i])
        i += 1
    statements.append("".join(current).strip())
    return [s for s in statements if s]


# What DuckDB reads as one token in which `;` ends nothing: quotes, comments (an apostrophe in a
# `--` comment opens no quote), dollar quotes (`$$a;b$$`, `$tag$...$tag$`) and escape strings
# (`E'it\'s'`, where a backslash escapes the quote); the last two were cut at their `;`.
_DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_ESCAPE_STRING = re.compile(r"(?<![A-Za-z0-9_])[eE]'(?:[^'\\]|\\.)*'?", re.S)
_CLOSERS = {"'": "'", '"': '"', "--": "\n", "/*": "*/"}


def _span_end(script: str, i: int) -> int | None:
    """The end of the quoted string or comment that starts at `i`, if one does (its closer
    included; the script's end when it has none)."""
    if escaped := _ESCAPE_STRING.match(script, i):
        return escaped.end()
    if dollar := _DOLLAR_QUOTE.match(script, i):
        end = script.find(dollar.group(), dollar.end())
        return len(script) if end < 0 else end + len(dollar.group())
    opener = next((o for o in _CLOSERS if script.startswith(o, i)), None)
    if opener is None:
        return None
    end = script.find(_CLOSERS[opener], i + len(opener))
    return len(script) if end < 0 else end + len(_CLOSERS[opener])


def _run_sql(con: Any, statement: str, output: Format) -> bool:
    """Run one statement and print its rows; a DuckDB error is one line (False)."""
    import duckdb  # the shell's connection imported it already (`connect_waiting`)

    try:
        cursor = con.execute(statement)
        if cursor is None:  # only comments: nothing ran, nothing to print
            return True
        names = _distinct_names([d[0] for d in cursor.description or ()])
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()] if names else []
    except duckdb.Error as exc:
        if interrupted(exc):  # Ctrl-C: the command stops (exit 130), not this statement alone
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"error: {reason}\n")
        return False
    if output is Format.json:
        print_json(rows)
    elif names:
        print_table(rows, f"{len(rows)} row(s)", names, shown=_exact_cell)
    return True


def _exact_cell(_name: str, value: Any) -> str:
    """A cell of a query's answer: a timestamp to its last digit (the reports' tables show
    seconds, which made 10:00:00.25 and 10:00:00.75 print alike, as a TIME did not)."""
    return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else text(value)


def _distinct_names(names: list[str]) -> list[str]:
    """Column names as row keys: a name given again (`select p.company_name, s.company_name`,
    `select *` over a join) becomes `name_1`, `name_2`, ... (the first free one). As dict keys
    the repeats collapsed: JSON lost every copy but the last and the table printed the last
    copy's value under each."""
    taken = set(names)
    distinct: list[str] = []
    for name in names:
        if name in distinct:
            suffix = 1
            while f"{name}_{suffix}" in taken:
                suffix += 1
            name = f"{name}_{suffix}"
            taken.add(name)
        distinct.append(name)
    return distinct


def _sql_prompt(con: Any, path: Path, output: Format) -> None:
    line(f"{path} (read-only). End statements with ';'. .tables lists tables, .quit leaves.")
    buffer = ""
    while True:
        try:
            text_in = input("itrack> " if not buffer else "   ...> ")
        except (EOFError, KeyboardInterrupt):
            line()
            return
        if not buffer and text_in.strip() in (".quit", ".exit"):
            return
        if not buffer and text_in.strip() == ".tables":
            _run_sql(
                con,
                "select table_schema, table_name, table_type from information_schema.tables "
                "order by table_schema, table_name",
                output,
            )
            continue
        buffer += text_in + "\n"
        if buffer.rstrip().endswith(";"):
            for statement in _statements(buffer):
                _run_sql(con, statement, output)
            buffer = ""


app.add_typer(interview_cli.app, name="interview")
app.add_typer(feedback_cli.app, name="feedback")
app.add_typer(report_cli.app, name="report")
app.add_typer(db_cli.app, name="db")
app.command("generate")(generate_command)
app.command("serve")(serve_cli.serve)
app.command("token")(serve_cli.token)

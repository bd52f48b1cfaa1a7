"""`itrack`: the command line. Errors are one line for people; exit codes are an interface:
0 done, 1 refused (a rule said no, or --strict saw rejects), 2 cannot run (input, busy, I/O)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.errors import UserError
from itrack.cli import db as db_cli
from itrack.cli import feedback as feedback_cli
from itrack.cli import interview as interview_cli
from itrack.cli import report as report_cli
from itrack.cli.common import DbOption, WaitOption, console, warehouse
from itrack.errors import err_console, fail, new_app
from itrack.generate import generate_command
from itrack.settings import get_settings

app = new_app(
    "interview-tracking: validated ingest, dbt marts and feedback for recruiting outcomes."
)
app.add_typer(interview_cli.app, name="interview")
app.add_typer(feedback_cli.app, name="feedback")
app.add_typer(report_cli.app, name="report")
app.add_typer(db_cli.app, name="db")
app.command("generate")(generate_command)


@app.command()
def ingest(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files or folders (JSONL, JSON, CSV, Parquet), or one postgresql:// URL: the "
            "nightly extract of the rows changed there since the last extract.",
            show_default=False,
        ),
    ],
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="candidates, processes or stages (default: file name)."),
    ] = None,
    db: DbOption = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any record was rejected.")] = False,
    force: Annotated[bool, typer.Option(help="Load files whose sha256 was loaded.")] = False,
    wait: WaitOption = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    overlap: Annotated[
        float,
        typer.Option(
            help="Extract: minutes before the last watermark pulled again (late commits)."
        ),
    ] = 15.0,
    full: Annotated[
        bool, typer.Option(help="Extract: pull every row, ignoring the watermark.")
    ] = False,
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
        extract_command(urls[0], warehouse(db), wait, overlap, full, strict, as_json)
        return
    with progress_bar() as bar:
        task = bar.add_task("ingest", total=None)

        def step(message: str, done: int, total: int) -> None:
            bar.update(task, description=message, completed=done, total=total)

        summary = ingest_paths(
            [Path(p) for p in paths],
            db=warehouse(db),
            kind=kind,
            wait_seconds=wait,
            force=force,
            progress=step,
            memory_limit=get_settings().memory_limit,
        )
    if as_json:
        print(json.dumps(summary_dict(summary), indent=2))
    else:
        print_summary(summary)
    if strict and summary.rejected:
        fail(f"{summary.rejected} record(s) rejected (--strict); see `itrack rejects`", 1)


def extract_command(
    url: str, db: Path, wait: float, overlap: float, full: bool, strict: bool, as_json: bool
) -> None:
    """`itrack ingest postgresql://...`: the nightly extract (ingest/extract.py)."""
    import datetime as dt

    from ingest.extract import extract

    if overlap < 0:
        raise UserError("--overlap must be 0 or more minutes")
    with progress_bar() as bar:
        task = bar.add_task("extract", total=None)

        def step(message: str, done: int, total: int) -> None:
            bar.update(task, description=message, completed=done, total=total)

        result = extract(
            url,
            db,
            wait_seconds=wait,
            progress=step,
            overlap=dt.timedelta(minutes=overlap),
            full=full,
        )
    summary = result.run
    if as_json:
        marks = {t: m.isoformat() if m else None for t, m in result.watermarks.items()}
        details = {"source": result.source, "pulled": result.pulled, "watermarks": marks}
        print(
            json.dumps(
                {
                    **summary_dict(summary),
                    "extract": {**details, "history_added": result.history_added},
                },
                indent=2,
            )
        )
    else:
        pulled = ", ".join(f"{n} {table}" for table, n in result.pulled.items())
        console.print(f"extract from {result.source}: pulled {pulled}", highlight=False)
        print_summary(summary)
        console.print(
            f"status history: {result.history_added} new row(s); watermarks saved with the run",
            highlight=False,
        )
    if strict and summary.rejected:
        fail(f"{summary.rejected} record(s) rejected (--strict); see `itrack rejects`", 1)


def progress_bar() -> Progress:
    """A progress bar on stderr for people; silent when output is not a terminal."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def summary_dict(summary: Any) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "files": [vars(f) for f in summary.files],
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "rejects_by_code": summary.rejects_by_code,
        "retried": summary.retried,
    }


def print_summary(summary: Any) -> None:
    table = Table(title=f"ingest run {summary.run_id}")
    for name in ("file", "kind", "read", "inserted", "updated", "unchanged", "stale", "rejected"):
        table.add_column(name, justify="left" if name in ("file", "kind") else "right")
    for f in summary.files:
        if f.skipped:
            table.add_row(f.path, f.kind, "skipped: already loaded", "", "", "", "", "")
            continue
        table.add_row(
            f.path,
            f.kind,
            *(
                str(getattr(f, n))
                for n in ("rows_read", "inserted", "updated", "unchanged", "stale", "rejected")
            ),
        )
    console.print(table)
    if summary.rejects_by_code:
        codes = Table(title="rejected records by error code")
        codes.add_column("error_code")
        codes.add_column("records", justify="right")
        for code, n in summary.rejects_by_code.items():
            codes.add_row(code, str(n))
        console.print(codes)
        console.print("details: [bold]itrack rejects --run " + summary.run_id + "[/]")
    if summary.retried:
        console.print(f"retried {summary.retried} quarantined orphan(s) from earlier runs")


@app.command()
def rejects(
    run: Annotated[str | None, typer.Option("--run", help="Only this run's rejects.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved ones.")] = False,
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON lines.")] = False,
) -> None:
    """List quarantined records with their reason (unresolved ones by default)."""
    from ingest.store.duckdb.store import read_store

    where, params = [], []
    if run:
        where.append("run_id = ?")
        params.append(run)
    if not all_ and not run:
        where.append("resolved_run_id is null")
    sql = (
        "select run_id, file_path, line_number, kind, record_id, error_code, field, "
        "error_message, retryable, resolved_run_id from quarantine"
        + (" where " + " and ".join(where) if where else "")
        + " order by quarantined_at, file_path, line_number limit ?"
    )
    with read_store(warehouse(db)) as con:
        cursor = con.execute(sql, [*params, limit])
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    if as_json:
        for row in rows:
            print(json.dumps(dict(zip(names, row, strict=True)), default=str))
        return
    table = Table(title=f"quarantine ({len(rows)} shown)")
    for name in ("file_path", "line_number", "kind", "record_id", "error_code", "error_message"):
        table.add_column(name, overflow="fold")
    for row in rows:
        record = dict(zip(names, row, strict=True))
        table.add_row(
            *(
                str(record[n] if record[n] is not None else "")
                for n in (
                    "file_path",
                    "line_number",
                    "kind",
                    "record_id",
                    "error_code",
                    "error_message",
                )
            )
        )
    console.print(table)


@app.command()
def build(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders to ingest (none: rebuild from the raw store)."),
    ] = None,
    db: DbOption = None,
    wait: WaitOption = 0.0,
    backup: Annotated[bool, typer.Option(help="Back up the raw store first.")] = True,
    html: Annotated[bool, typer.Option(help="Write the HTML report.")] = True,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Extract the changes of this postgresql:// database instead of ingesting files.",
        ),
    ] = None,
) -> None:
    """The nightly pipeline: backup, ingest, dbt build, feedback, publish, report."""
    from itrack.pipeline import run_build

    result = run_build(
        paths,
        source=source,
        db=warehouse(db),
        wait_seconds=wait,
        take_backup=backup,
        write_html=html,
        note=lambda msg: console.print(msg, highlight=False),
    )
    if result.ingest:
        print_summary(result.ingest)


@app.command("backup")
def backup_command(
    to: Annotated[Path | None, typer.Option("--to", help="Folder (default data/backups/).")] = None,
    keep: Annotated[int, typer.Option(help="Snapshots to keep.")] = 7,
    db: DbOption = None,
    wait: WaitOption = 0.0,
) -> None:
    """Snapshot the raw store (Parquet + manifest of row counts and checksums)."""
    from ingest.store.duckdb.backup import backup

    console.print(f"backup written: {backup(warehouse(db), to, keep, wait)}", highlight=False)


@app.command()
def restore(
    snapshot: Annotated[Path, typer.Argument(help="A backup folder (or a folder of backups).")],
    db: DbOption = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing raw store.")] = False,
) -> None:
    """Restore a backup as the raw store, verifying its manifest; then run `itrack build`."""
    from ingest.store.duckdb.backup import MANIFEST, latest, restore

    if not (snapshot / MANIFEST).exists():
        snapshot = latest(snapshot)
    console.print(
        f"restored {snapshot} -> {restore(snapshot, warehouse(db), overwrite)}", highlight=False
    )


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Folder for the Parquet files.")],
    anonymize: Annotated[
        bool, typer.Option("--anonymize", help="Drop names and free text (required).")
    ] = False,
    db: DbOption = None,
) -> None:
    """Export the marts without personal data (names, notes), for sharing outside the team."""
    from feedback.export import export_anonymized

    if not anonymize:
        raise UserError(
            "only --anonymize exports exist: analysts inside the team query the "
            "warehouse itself (read-only)"
        )
    counts = export_anonymized(out, warehouse(db))
    console.print(
        f"exported {len(counts)} tables ({sum(counts.values())} rows) to {out}", highlight=False
    )


@app.command()
def docs(db: DbOption = None) -> None:
    """Build the dbt docs site (lineage of every model), offline."""
    from ingest.store.duckdb.store import raw_store_path
    from itrack.dbt_runner import docs_generate

    target = docs_generate(warehouse(db), raw_store_path(warehouse(db)))
    console.print(
        f"dbt docs: open {target / 'static_index.html'} (self-contained, offline; "
        f"{target / 'index.html'} needs the files beside it)",
        highlight=False,
    )

"""`itrack db`: versioned schema migrations of both stores.

`itrack db upgrade --dsn postgresql://...` applies supabase/migrations to a PostgreSQL/Supabase
database (`--auth-shim` first creates, on plain PostgreSQL, the roles and auth.uid()/auth.jwt()
that Supabase provides); `itrack db upgrade` without `--dsn` upgrades the DuckDB raw store beside
the warehouse. Both apply only what is missing and can be run again; `itrack db status` lists
what is applied and what is pending.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ingest.errors import UserError
from ingest.migrate import (
    POSTGRES_MIGRATIONS,
    applied_postgres,
    discover,
    duckdb_applied,
    masked,
    upgrade_postgres,
)
from ingest.store.duckdb.store import (
    DEFAULT_WAIT_SECONDS,
    MIGRATIONS,
    open_store,
    raw_store_path,
    upgrade_store,
)
from itrack.cli.common import DbOption, Target, WaitOption, warehouse, with_target
from itrack.cli.output import line, print_json
from itrack.errors import new_app
from itrack.settings import get_settings

app = new_app("Schema migrations: PostgreSQL/Supabase (--dsn) or the DuckDB raw store.")

DsnOption = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        help="A postgresql:// URL (default: $ITRACK_PG_DSN when ITRACK_STORE=postgres); "
        "without it, the DuckDB raw store beside --db.",
    ),
]


def _dsn(dsn: str | None) -> str | None:
    """The PostgreSQL database to work on: `--dsn`, else `ITRACK_PG_DSN` when
    `ITRACK_STORE=postgres` (which then needs it: never the DuckDB store instead); None for the
    DuckDB raw store. A value that is no URL is refused naming where it came from, its password
    masked (the line goes to logs)."""
    source = "--dsn"
    if dsn is None:
        settings = get_settings()
        if settings.store != "postgres":
            return None
        dsn, source = settings.postgres_dsn(), "ITRACK_PG_DSN"
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise UserError(f"{source} takes a postgresql:// URL, not '{masked(dsn, dsn)}'")
    return dsn


@app.command()
def upgrade(
    dsn: DsnOption = None,
    db: DbOption = None,
    auth_shim: Annotated[
        bool,
        typer.Option(
            "--auth-shim",
            help="Plain PostgreSQL only: first create the roles anon, authenticated, "
            "service_role and the auth.uid()/auth.jwt() helpers Supabase provides.",
        ),
    ] = False,
    wait: WaitOption = DEFAULT_WAIT_SECONDS,
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="DuckDB raw store only: make a new, empty one where there is none (without it "
            "a missing store, a mistyped --db, is refused).",
        ),
    ] = False,
) -> None:
    """Apply the pending migrations (each one with its ledger row, or not at all)."""
    url = _dsn(dsn)
    if url is not None:
        if create:  # a PostgreSQL database is made by its server, never by itrack
            raise UserError("--create is for the DuckDB raw store, not PostgreSQL")
        applied = upgrade_postgres(url, auth_shim=auth_shim, report=_applied, wait_seconds=wait)
        total = len(discover(POSTGRES_MIGRATIONS))
        where = "PostgreSQL"
    else:
        if auth_shim:
            raise UserError("--auth-shim is for PostgreSQL: give --dsn")
        applied = upgrade_store(warehouse(db), wait, report=_applied, create=create)
        total = len(discover(MIGRATIONS))
        where = str(raw_store_path(warehouse(db)))
    state = f"applied {len(applied)}" if applied else "nothing to apply"
    line(f"{where}: {state}; {total} migration(s) in place")


@app.command()
@with_target()
def status(dsn: DsnOption = None, *, target: Target) -> None:
    """List the migrations: applied or pending."""
    url = _dsn(dsn)
    if url is not None:
        migrations = discover(POSTGRES_MIGRATIONS)
        done = set(applied_postgres(url, target.wait))
    else:
        migrations = discover(MIGRATIONS)
        # a read: a missing raw store (a mistyped --db) is exit 2 naming it, never created
        with open_store(target.warehouse, target.wait, read_only=True) as con:
            done = set(duckdb_applied(con) or {})
    known = {m.version for m in migrations}
    rows = [
        {"migration": m.label, "state": "applied" if m.version in done else "pending"}
        for m in migrations
    ]
    # applied by a newer itrack: listed, not left out (status said "all applied" on a database
    # ahead of the code reading it)
    rows += [{"migration": version, "state": "unknown"} for version in sorted(done - known)]
    if target.json:
        print_json(rows)
        return
    for row in rows:
        line(f"{row['state']:8} {row['migration']}")
    if done - known:
        line("unknown: applied by a newer itrack than this one; upgrade itrack before using it")


def _applied(label: str) -> None:
    line(f"applied {label}")

"""`itrack serve` (the HTTP API under uvicorn) and `itrack token` (a bearer token for tries)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

import typer

from ingest.errors import UserError
from ingest.text import clip
from itrack.cli.common import DbOption
from itrack.settings import get_settings


def _config(db: Path | None, no_auth: bool, threads: int | None):
    from itrack.api import ApiConfig

    settings = get_settings()
    return ApiConfig(
        db=settings.warehouse(db),
        store=settings.store,
        pg_dsn=settings.pg_dsn,
        jwt_secret=settings.jwt_key(),
        no_auth=no_auth,
        organization_id=_uuid(settings.org_id, "ITRACK_ORG_ID"),
        **({"threads": threads} if threads else {}),  # else ApiConfig's default
    )


def _uuid(value: str | None, name: str) -> str | None:
    """An organization or user id, canonical. The server answers 401 to a token whose
    app_metadata.org_id or sub is not a UUID (PostgreSQL holds them as uuid), so a store of a
    non-UUID organization would refuse every token, and `itrack token` would print ones the
    server refuses: both are refused here instead."""
    from itrack.api.auth import canonical_uuid

    if value is None:
        return None
    canonical = canonical_uuid(value)
    if canonical is None:
        raise UserError(f"{name}: '{clip(value)}' is not a UUID")
    return canonical


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="No bearer tokens: every request acts as a local admin. Loopback only.",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes (PostgreSQL store only): one per core uses every core.",
        ),
    ] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Threads per process running requests, and its pooled connections [default: 4].",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Serve the HTTP API: OpenAPI at /openapi.json, docs at /docs.

    Store: ITRACK_STORE (duckdb: the raw store beside --db; postgres: ITRACK_PG_DSN). Tokens:
    HS256 JWTs signed with ITRACK_JWT_SECRET (Supabase-compatible claims)."""
    from ingest.interrupts import ctrl_c_left_alone
    from itrack.api.serve import ServeError, run

    config = _config(db, no_auth, threads)
    try:
        with ctrl_c_left_alone():  # uvicorn stops gracefully: requests in flight finish
            run(config, host, port, workers)
    except ServeError as exc:
        raise UserError(str(exc)) from None


# A token for tries lives at most a year; a longer --hours (1e10, inf) overflowed the expiry
# date: "unexpected OverflowError", exit 3.
MAX_TOKEN_HOURS = 366 * 24


def token(
    role: Annotated[
        str, typer.Option(help="App role: recruiter or lead (app_metadata.itrack_role).")
    ] = "lead",
    org: Annotated[
        str | None,
        typer.Option(
            help="Organization id, a UUID (app_metadata.org_id; default: $ITRACK_ORG_ID)."
        ),
    ] = None,
    sub: Annotated[str | None, typer.Option(help="User id, a UUID (default: a new one).")] = None,
    hours: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=MAX_TOKEN_HOURS,
            help=f"Valid for this many hours (at most {MAX_TOKEN_HOURS}, a year).",
        ),
    ] = 8.0,
) -> None:
    """Print a bearer token signed with ITRACK_JWT_SECRET (for local tries and scripts)."""
    from itrack.api.auth import make_token

    if role not in ("recruiter", "lead"):
        raise UserError(f"--role: '{role}' is not recruiter or lead")
    settings = get_settings()
    key = settings.jwt_key()
    if key is None:
        raise UserError("no ITRACK_JWT_SECRET set: the token must be signed with the server's")
    app_role: Literal["recruiter", "lead"] = "lead" if role == "lead" else "recruiter"
    typer.echo(
        make_token(
            key,
            # an empty --org/--sub (an unset shell variable) is refused, not taken as absent
            sub=_uuid(sub, "--sub"),
            organization_id=(
                _uuid(org, "--org") if org is not None else _uuid(settings.org_id, "ITRACK_ORG_ID")
            ),
            app_role=app_role,
            expires_in=dt.timedelta(hours=hours),
        )
    )

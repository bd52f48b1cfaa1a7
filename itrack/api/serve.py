"""`itrack serve`: the HTTP API under uvicorn."""

from __future__ import annotations

from pathlib import Path

from itrack.api.app import ApiConfig, create_app, is_loopback


class ServeError(ValueError):
    """The server cannot start as asked (one line for the CLI)."""


def check(config: ApiConfig, host: str) -> None:
    if config.no_auth and not is_loopback(host):
        raise ServeError(
            f"--no-auth is only allowed on a loopback address (127.0.0.1, ::1, localhost), "
            f"not {host}: anyone on the network could change every interview"
        )
    if not config.no_auth and not config.jwt_secret:
        raise ServeError(
            "no JWT secret: set ITRACK_JWT_SECRET (HS256, the Supabase project's JWT secret), "
            "or pass --no-auth for local use on 127.0.0.1"
        )


def run(config: ApiConfig, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve until interrupted. One process: the embedded store is shared by its threads."""
    import uvicorn

    check(config, host)
    app = create_app(config)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


def main(argv: list[str] | None = None) -> None:  # python -m itrack.api.serve (tests, bench)
    import argparse

    parser = argparse.ArgumentParser(prog="python -m itrack.api.serve")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--store", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--pg-dsn")
    parser.add_argument("--jwt-secret")
    parser.add_argument("--org")
    parser.add_argument("--no-auth", action="store_true")
    args = parser.parse_args(argv)
    run(
        ApiConfig(
            db=args.db,
            store=args.store,
            pg_dsn=args.pg_dsn,
            jwt_secret=args.jwt_secret,
            organization_id=args.org,
            no_auth=args.no_auth,
        ),
        args.host,
        args.port,
    )


if __name__ == "__main__":
    main()

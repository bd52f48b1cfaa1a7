"""A real PostgreSQL server for the tests, and a throw-away database per test module.

The server: `ITRACK_TEST_PG_DSN` if set (it must answer: a set DSN that does not is an error,
never a skip), else the local server at postgresql://postgres@127.0.0.1:5432/postgres, else a
throw-away server started here with the PostgreSQL binaries (`initdb`, `pg_ctl`; `make test`
installs Debian's `postgresql` package where they are missing) in a temporary folder on a free
loopback port, stopped at the end of the session.

The databases: `itrack_test_<random>`, created from template0, migrated with the auth shim
(roles anon, authenticated, service_role and auth.uid()/auth.jwt()), dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ingest.migrate import upgrade_postgres

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
# What a first extract pulls from the extract tests' seed: one candidate, one process that
# moved once (two status-history rows), one stage; no corrections, nothing deleted.
SEED_PULLED = {
    "candidates": 1,
    "interview_processes": 1,
    "interview_stages": 1,
    "interview_status_history": 2,
    "corrections": 0,
    "deleted_rows": 0,
}
ENV_DSN = "ITRACK_TEST_PG_DSN"


class NoServer(RuntimeError):
    pass


def _answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("select 1")
        return True
    except psycopg.OperationalError:
        return False


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    raise NoServer(
        f"no PostgreSQL server answers and `{name}` is not installed: set {ENV_DSN}, start a "
        "server, or install Debian's `postgresql` package (`make test` does)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_server() -> Iterator[str]:
    """initdb + pg_ctl in a temporary folder (as user postgres when run as root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    folder = Path(tempfile.mkdtemp(prefix="itrack-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], **run
    )
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder}"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
        **run,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], **run)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def server() -> Iterator[str]:
    """The admin DSN of a reachable server (see the module docstring)."""
    configured = os.environ.get(ENV_DSN)
    if configured:
        if not _answers(configured):
            raise NoServer(f"{ENV_DSN}={configured} does not answer")
        yield configured
    elif _answers(DEFAULT_DSN):
        yield DEFAULT_DSN
    else:
        with throwaway_server() as dsn:
            yield dsn


def _url(params: dict) -> str:
    """Connection parameters as a postgresql:// URL (what users give `itrack`)."""
    user = params.get("user") or "postgres"
    password = f":{params['password']}" if params.get("password") else ""
    host = params.get("host") or "127.0.0.1"
    return f"postgresql://{user}{password}@{host}:{params.get('port') or 5432}/{params['dbname']}"


def with_dbname(dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return _url(params)


@contextmanager
def database(admin_dsn: str, migrate: bool = True, template: str | None = None) -> Iterator[str]:
    """A new uniquely named database (migrated with the auth shim, or a copy of `template`, a
    migrated database nobody is connected to), dropped afterwards."""
    name = f"itrack_test_{uuid.uuid4().hex[:12]}"
    source = template or "template0"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}" template "{source}" encoding \'UTF8\'')
    dsn = with_dbname(admin_dsn, name)
    try:
        if migrate and template is None:
            upgrade_postgres(dsn, auth_shim=True)
        yield dsn
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def with_user(dsn: str, user: str) -> str:
    params = conninfo_to_dict(dsn)
    params["user"] = user
    params.pop("password", None)
    return _url(params)


def display(dsn: str) -> str:
    """The DSN as itrack's messages show it (no password)."""
    from ingest.migrate import display_dsn

    return display_dsn(dsn)


@contextmanager
def store_settings(dsn: str, monkeypatch) -> Iterator[str]:
    """`ITRACK_STORE=postgres ITRACK_PG_DSN=<dsn>` for in-process CLI calls: the cached settings
    and pooled store are read again on entry and dropped on exit."""
    from itrack import services
    from itrack.settings import get_settings

    monkeypatch.setenv("ITRACK_STORE", "postgres")
    monkeypatch.setenv("ITRACK_PG_DSN", dsn)
    get_settings.cache_clear()
    services.postgres_store.cache_clear()
    try:
        yield dsn
    finally:
        get_settings.cache_clear()
        services.postgres_store.cache_clear()

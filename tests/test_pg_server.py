"""The test server itself: where no PostgreSQL answers, the tests start a throw-away one.

`make test` on a machine without a running server (CI on a fresh machine, a laptop) must still
run every PostgreSQL test, never skip them: tests/pg.py then starts its own server with the
PostgreSQL binaries in a temporary folder, and stops it afterwards.
"""

from __future__ import annotations

import socket

import psycopg
import pytest

from tests import pg


def test_without_a_server_a_throwaway_one_is_started_and_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(pg.ENV_DSN, raising=False)
    monkeypatch.setattr(pg, "DEFAULT_DSN", "postgresql://postgres@127.0.0.1:1/postgres")
    with pg.server() as admin:
        assert admin != "postgresql://postgres@127.0.0.1:1/postgres"
        with pg.database(admin) as dsn, psycopg.connect(dsn) as conn:
            versions = conn.execute("select count(*) from supabase_migrations.schema_migrations")
            assert versions.fetchone()[0] >= 1
            version = conn.execute("select current_setting('server_version_num')::int >= 150000")
            assert version.fetchone() == (True,)
        port = int(admin.rsplit(":", 1)[1].split("/", 1)[0])
    with socket.socket() as sock:  # stopped: nothing listens on its port any more
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_configured_server_that_does_not_answer_is_an_error_not_a_skip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(pg.ENV_DSN, "postgresql://postgres@127.0.0.1:1/postgres")
    with pytest.raises(pg.NoServer, match="ITRACK_TEST_PG_DSN=postgresql://postgres@127.0.0.1:1/"):
        with pg.server():
            pass

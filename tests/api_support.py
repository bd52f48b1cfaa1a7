"""Shared set-up for the HTTP API tests: a store with candidates, tokens, a client."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient

from ingest.store.duckdb.store import open_store
from itrack.api import ApiConfig, create_app
from itrack.api.auth import make_token

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
ORG = "0d9c3f5e-1111-4aaa-8bbb-000000000001"
LEAD = "9a1b2c3d-0000-4000-8000-00000000000a"
RECRUITER_A = "9a1b2c3d-0000-4000-8000-0000000000a1"
RECRUITER_B = "9a1b2c3d-0000-4000-8000-0000000000b2"
T0 = dt.datetime(2025, 1, 1)
CANDIDATES = {"cand-1": "ex-amazon", "cand-2": "referral", "cand-3": None}


def seed_candidates(db: Path, candidates: dict[str, str | None] = CANDIDATES) -> None:
    with open_store(db) as con:
        for cid, feeder in candidates.items():
            con.execute(
                "insert into candidates values (?, ?, ?, null, null, ?, ?, 'seed', ?)",
                [cid, f"Candidate {cid}", feeder, T0, T0, T0],
            )


@dataclass
class StoreEnv:
    """One store under test: its kind, the app settings for it, and its status history."""

    kind: str
    db: Path  # the warehouse path (the raw store beside it on DuckDB)
    dsn: str | None = None

    @property
    def config(self) -> dict:
        if self.kind == "postgres":
            return {"store": "postgres", "pg_dsn": self.dsn}
        return {}

    def history(self, pid: str) -> list[tuple]:
        sql = (
            "select from_status, to_status from interview_status_history "
            "where interview_process_id = {} order by changed_at"
        )
        if self.kind == "postgres":
            with psycopg.connect(self.dsn) as conn:
                return [tuple(r) for r in conn.execute(sql.format("%s"), [pid]).fetchall()]
        with open_store(self.db, wait_seconds=5) as con:  # the server lets go when idle
            return con.execute(sql.format("?"), [pid]).fetchall()

    def add_process(
        self,
        process_id: str,
        candidate_id: str,
        company: str,
        feeder: str | None,
        created_at: dt.datetime,
    ) -> None:
        """An in_progress process with a chosen id and creation time (as ingest writes them),
        e.g. for ties in the list order."""
        if self.kind == "postgres":
            assert self.dsn is not None
            seed_pg_process(self.dsn, process_id, candidate_id, company, feeder, created_at)
            return
        with open_store(self.db, wait_seconds=5) as con:
            con.execute(
                "insert into interview_processes values (?, ?, ?, 'Engineer', 'in_progress', ?, "
                "null, null, null, ?, ?, 'seed', ?)",
                [process_id, candidate_id, company, feeder, created_at, created_at, created_at],
            )


def seed_pg_candidates(dsn: str, candidates: dict[str, str | None] = CANDIDATES) -> None:
    """Candidates of organization ORG, written as the database owner (as ingest would)."""
    with psycopg.connect(dsn) as conn:
        for cid, feeder in candidates.items():
            conn.execute(
                "insert into candidates (id, organization_id, full_name, feeder_source, "
                "created_at, updated_at) values (%s, %s, %s, %s, %s, %s)",
                [cid, ORG, f"Candidate {cid}", feeder, T0, T0],
            )


def seed_pg_process(
    dsn: str,
    process_id: str,
    candidate_id: str,
    company: str,
    feeder: str | None,
    created_at: dt.datetime,
    role: str = "Engineer",
) -> None:
    """An in_progress process of organization ORG with a given id (as ingest would write it),
    for tests that pair PostgreSQL with a warehouse built from the same rows."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "insert into interview_processes (id, organization_id, candidate_id, company_name, "
            "role_title, feeder_source, created_at) values (%s, %s, %s, %s, %s, %s, %s)",
            [process_id, ORG, candidate_id, company, role, feeder, created_at.isoformat() + "Z"],
        )


@contextmanager
def store_env(
    kind: str, tmp: Path, pg_admin: str | None = None, fresh_dsn: str | None = None
) -> Iterator[StoreEnv]:
    """A seeded store: DuckDB in `tmp`, or a migrated PostgreSQL database (`fresh_dsn`, else a
    throw-away one on `pg_admin`)."""
    db = tmp / "warehouse.duckdb"
    if kind == "duckdb":
        seed_candidates(db)
        yield StoreEnv("duckdb", db)
        return
    if fresh_dsn is not None:
        seed_pg_candidates(fresh_dsn)
        yield StoreEnv("postgres", db, fresh_dsn)
        return
    from tests import pg

    assert pg_admin is not None
    with pg.database(pg_admin) as dsn:
        seed_pg_candidates(dsn)
        yield StoreEnv("postgres", db, dsn)


def token(sub: str = LEAD, app_role: str | None = "lead", **kw) -> dict[str, str]:
    kw.setdefault("organization_id", ORG)
    return {"Authorization": f"Bearer {make_token(SECRET, sub=sub, app_role=app_role, **kw)}"}


def lead() -> dict[str, str]:
    return token(LEAD, "lead")


def recruiter(sub: str = RECRUITER_A) -> dict[str, str]:
    return token(sub, "recruiter")


@contextmanager
def client(db: Path, **config) -> Iterator[TestClient]:
    config.setdefault("jwt_secret", SECRET)
    config.setdefault("organization_id", ORG)
    # long enough that a loaded machine (CI: the suite on two workers beside PostgreSQL) never
    # answers "busy" to a test that means no contention; a test of busy passes its own short wait
    config.setdefault("wait_seconds", 10)
    app = create_app(ApiConfig(db=db, **config))
    with TestClient(app) as c:
        yield c


def new_process(c: TestClient, headers=None, **body) -> dict:
    payload = {"candidate_id": "cand-1", "company_name": "Acme", "role_title": "SWE", **body}
    r = c.post("/interviews", json=payload, headers=lead() if headers is None else headers)
    assert r.status_code == 201, r.text
    return r.json()


def move(c: TestClient, process_id: str, status: str, **body) -> dict:
    """`PUT /interviews/{id}` as the lead: the answer (checked: 200 and the new status)."""
    r = c.put(f"/interviews/{process_id}", json={"status": status, **body}, headers=lead())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == status
    return r.json()


def assert_error(r, status: int, field: str | None = None, contains: str = "") -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"status", "code", "message", "field", "errors"}
    assert err["status"] == status
    if field is not None:
        assert err["field"] == field, err
    assert contains in err["message"], err["message"]
    return err


def random_id() -> str:
    return str(uuid.uuid4())

"""Shared set-up for the HTTP API tests: a store with candidates, tokens, a client."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    config.setdefault("wait_seconds", 0.5)
    app = create_app(ApiConfig(db=db, **config))
    with TestClient(app) as c:
        yield c


def new_process(c: TestClient, headers=None, **body) -> dict:
    payload = {"candidate_id": "cand-1", "company_name": "Acme", "role_title": "SWE", **body}
    r = c.post("/interviews", json=payload, headers=lead() if headers is None else headers)
    assert r.status_code == 201, r.text
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

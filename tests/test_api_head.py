"""HEAD wherever GET: the GET's status and headers, no body; OPTIONS wherever a path exists:
204 and the path's methods. A real server on loopback (uvicorn leaves the body out of a HEAD
answer)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from itrack.api import ApiConfig, create_app
from tests.api_server import serve
from tests.api_support import ORG, SECRET, lead


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("api_head") / "warehouse.duckdb"
    with serve(create_app(ApiConfig(db=db, jwt_secret=SECRET, organization_id=ORG))) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [("/health", {}, 200), ("/interviews", {}, 401), ("/interviews", lead(), 200)],
)
def test_head_answers_as_get_without_the_body(base: str, path: str, headers: dict, status: int):
    got = httpx.get(f"{base}{path}", headers=headers)
    head = httpx.head(f"{base}{path}", headers=headers)
    assert (head.status_code, got.status_code) == (status, status)
    assert head.content == b""
    assert head.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == str(len(got.content))


def test_head_where_get_is_not_taken_is_405_listing_the_methods(base: str):
    head = httpx.head(f"{base}/feedback/run", headers=lead())
    assert (head.status_code, head.headers["allow"], head.content) == (405, "OPTIONS, POST", b"")


def test_options_is_204_listing_the_methods_of_the_path(base: str):
    """OPTIONS was 405 on every path (found by an exploratory run). No token needed: the 405
    of another method lists the same methods to anyone. A path that does not exist is 404."""
    pid = "0e6f2d7a-91b4-4c3e-8a5d-7f1e2c9b4a60"
    cases = {
        "/interviews": "GET, HEAD, OPTIONS, POST",
        f"/interviews/{pid}": "GET, HEAD, OPTIONS, PUT",
        f"/interviews/stages/{pid}/outcome": "OPTIONS, PUT",
        "/interviews/company/AC/DC": "GET, HEAD, OPTIONS",
        "/health": "GET, HEAD, OPTIONS",
        "/feedback/run": "OPTIONS, POST",
    }
    for path, allowed in cases.items():
        r = httpx.options(f"{base}{path}")
        assert (r.status_code, r.headers.get("allow"), r.content) == (204, allowed, b""), path
        assert "content-type" not in r.headers
    r = httpx.options(f"{base}/nowhere")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")

"""HEAD wherever GET: the GET's status and headers, no body. A real server on loopback (uvicorn
leaves the body out of a HEAD answer)."""

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
    assert (head.status_code, head.headers["allow"], head.content) == (405, "POST", b"")

"""Request bodies over the API's limit are 413 before the server holds them in memory, with or
without a token (the body is read before the token is checked). A real server on loopback: the
body arrives in pieces only there."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from itrack.api import ApiConfig, create_app
from tests.api_server import serve
from tests.api_support import ORG, SECRET

TOO_LARGE = {
    "error": {
        "status": 413,
        "code": "too_large",
        "message": "invalid input: body: request body too large: at most 32000000 bytes",
        "field": "body",
        "errors": [{"field": "body", "message": "request body too large: at most 32000000 bytes"}],
    }
}
CHUNK = 1_000_000
LIMIT = 32_000_000


@pytest.fixture(scope="module")
def address(tmp_path_factory) -> Iterator[tuple[str, int]]:
    db = tmp_path_factory.mktemp("api_limits") / "warehouse.duckdb"
    app = create_app(ApiConfig(db=db, jwt_secret=SECRET, organization_id=ORG))
    with serve(app) as base:
        url = urlsplit(base)
        yield url.hostname or "127.0.0.1", url.port or 80


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """The status and JSON body of the one response on `sock` (the server closes or it ends)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body[:length])


def test_a_declared_length_over_the_limit_is_413_before_the_body(address):
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(
            b"POST /interviews HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000000\r\n\r\n"
        )
        assert _answer(sock) == (413, TOO_LARGE)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_chunked_body_growing_past_the_limit_is_413(address, method: str):
    """Without the limit the server read all of it (800 MB: 2 GB resident) before its 401."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(
            f"{method} /interviews HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        piece = b"%x\r\n" % CHUNK + b"a" * CHUNK + b"\r\n"
        for _ in range(LIMIT // CHUNK + 1):
            sock.sendall(piece)
        assert _answer(sock) == (413, TOO_LARGE)

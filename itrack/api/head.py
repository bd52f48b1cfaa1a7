"""HEAD is answered wherever GET is (RFC 9110 9.3.2): FastAPI routes take only the methods they
declare, so `HEAD /health` (uptime checks, load balancers) was 405. The request runs as GET; the
server sends the headers of its answer without the body."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


def runs_as(method: str) -> str:
    """The method a request is routed by."""
    return "GET" if method == "HEAD" else method


class HeadAsGet:
    """ASGI middleware: a HEAD request is routed as GET. The scope is copied, so uvicorn still
    sees HEAD in its own and leaves the body out (Content-Length stays the GET's)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = {**scope, "method": runs_as(scope["method"])}
        await self.app(scope, receive, send)

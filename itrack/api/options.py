"""OPTIONS is answered wherever a path exists (RFC 9110 9.3.7): 204 and `Allow` listing the
methods the path takes. FastAPI routes take only the methods they declare, so `OPTIONS
/interviews` was 405. No CORS: a preflight gets the same answer and no Access-Control headers.
No token is needed, as for the 405 that lists the same methods."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from itrack.api.asgi import HttpMiddleware
from itrack.api.head import runs_as

HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(scope: Scope) -> list[str]:
    """The methods the request's path takes (OPTIONS among them when any other is). Each route
    is asked whether it would take the request with that method (`matches`, public), not for
    its method list: FastAPI 0.165 keeps an included router as one route, which has none."""
    routes = scope["app"].router.routes
    taken = [
        method
        for method in HTTP_METHODS
        if method != "OPTIONS"
        and any(
            route.matches({**scope, "method": runs_as(method)})[0] == Match.FULL for route in routes
        )
    ]
    return sorted([*taken, "OPTIONS"], key=HTTP_METHODS.index) if taken else []


class AnswerOptions(HttpMiddleware):
    """ASGI middleware: OPTIONS on a path some route takes is 204 + Allow; on any other path it
    goes on to the router (404, or the trailing-slash redirect)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            allowed = allowed_methods(scope)
            if allowed:
                response = Response(status_code=204, headers={"Allow": ", ".join(allowed)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

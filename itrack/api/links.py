"""The links the API hands out (a page's `next`, a trailing slash's redirect, `Location`) are
relative references, the path and query alone: they were absolute URLs built from the
request's `Host` header (and uvicorn's `X-Forwarded-Proto`), so a client sending
`Host: evil.example` was given links to another host. A relative reference resolves against
the address the client called, whatever stands in front of the server.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import Receive, Scope, Send


def relative_url(path: str, query: str = "") -> str:
    """`path` (decoded, as in the ASGI scope) percent-encoded again, with `query` (encoded).
    Starlette re-encodes only ?, # and \\ of a decoded path, so a company named 'A%41' got a
    link to 'AA' and one named '50% Off' a link with a bare space in it. One leading slash: a
    reference starting `//` names a host."""
    reference = "/" + quote(path, safe="/").lstrip("/")
    return f"{reference}?{query}" if query else reference


def redirect_slashes_relatively(router: Router) -> None:
    """Starlette's trailing-slash redirect (`/interviews/` -> 307 `/interviews`), with a
    relative `Location`: the router's own built it from the Host header."""
    router.redirect_slashes = False
    fallback = router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["type"] == "http" and path != "/":
            toggled = {**scope, "path": path.rstrip("/") if path.endswith("/") else path + "/"}
            if any(route.matches(toggled)[0] is not Match.NONE for route in router.routes):
                query = scope.get("query_string", b"").decode("latin-1")
                location = relative_url(toggled["path"], query)
                await RedirectResponse(location)(scope, receive, send)
                return
        await fallback(scope, receive, send)

    router.default = default

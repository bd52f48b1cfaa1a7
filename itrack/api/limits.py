"""The largest request body the API reads: a bigger one is 413 before it is held in memory.

Bodies are read whole (the framework's parser, the duplicate-key check) and before the token is
checked, so without a bound anyone reaching the port could make the server hold gigabytes
(an 800 MB unauthenticated body grew the process to 2 GB before its 401).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from ingest.contract import MAX_TEXT
from itrack.api.asgi import HttpMiddleware
from itrack.api.errors import body_error

# The largest text field (MAX_TEXT characters) with every character JSON-escaped as a
# surrogate pair (12 bytes: "\ud83d\ude00"), and room for the other fields.
MAX_BODY_BYTES = 16 * MAX_TEXT


def too_large_message() -> str:
    return f"request body too large: at most {MAX_BODY_BYTES} bytes"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit(HttpMiddleware):
    """ASGI middleware: a declared Content-Length over the limit is answered at once; a body
    that grows past it as it arrives (chunked) stops the request with the same 413."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _declared_length(scope)
        if declared is not None and declared > MAX_BODY_BYTES:
            await body_error(413, too_large_message())(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:  # the app's handler answers it (errors.py)
                    raise HTTPException(413, too_large_message())
            return message

        await self.app(scope, limited, send)

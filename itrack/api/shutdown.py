"""Requests still running when the server stops: `itrack serve` gives them a grace period
(serve.SHUTDOWN_GRACE_SECONDS), then uvicorn cancels them. A cancelled request is answered 503
+ Retry-After here, not left to uvicorn, which logged each as "Exception in ASGI application"
with a traceback (a client stalled mid-body at SIGTERM)."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from itrack.api.asgi import HttpMiddleware
from itrack.api.errors import RETRY_AFTER_SECONDS, refusal

STOPPING = "the server is stopping; retry in a moment"


class AnswerWhenCancelled(HttpMiddleware):
    """ASGI middleware, outermost: a request cancelled before its answer started gets 503; one
    cancelled mid-answer just ends (the connection closes)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except asyncio.CancelledError:
            if not started:
                headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Connection": "close"}
                await refusal(503, STOPPING, headers)(scope, receive, send)

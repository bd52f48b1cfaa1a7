"""Per-request dependencies: the caller's session on the store, and what runs after it commits."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ingest.service import FeedbackStatus
from itrack.api.auth import Principal, current_principal, require_writer
from itrack.api.backend import run_feedback
from itrack.api.errors import error_responses

Caller = Annotated[Principal, Depends(current_principal)]
READ_ERRORS = error_responses(401, 403, 404, 422, 503)
WRITE_ERRORS = error_responses(401, 403, 404, 409, 422, 503)


def one_hop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A blocking endpoint run in one worker-thread hop. FastAPI runs a sync endpoint in the
    thread pool and then validates its response in a second hop; as a coroutine that awaits the
    thread, the validation runs on the event loop (it does not block: pure CPU, microseconds).
    Each hop is a thread hand-over under the GIL: at 20 clients they cost more than the work."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)  # FastAPI reads the parameters of the wrapped function
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return run


def reads(router: APIRouter) -> Callable[..., Any]:
    """`get(path, model, summary)`: `@router.get` with the response model, the read errors and
    a summary (OpenAPI), the endpoint run in one thread hop (`one_hop`)."""

    def get(path: str, model: Any, summary: str) -> Any:
        route = router.get(path, response_model=model, responses=READ_ERRORS, summary=summary)
        return lambda endpoint: route(one_hop(endpoint))

    return get


def writes(router: APIRouter, method: str) -> Callable[..., Any]:
    """`put(path, model, summary)` (or post): the route with the write errors."""
    route = getattr(router, method)

    def decorate(path: str, model: Any, summary: str, status_code: int = 200) -> Any:
        register = route(
            path,
            status_code=status_code,
            response_model=model,
            responses=WRITE_ERRORS,
            summary=summary,
        )
        return lambda endpoint: register(one_hop(endpoint))

    return decorate


@contextmanager
def read_session(request: Request, caller: Principal) -> Iterator[Any]:
    with request.app.state.backend.session(caller, write=False) as session:
        session.check_org()
        yield session


@contextmanager
def write_session(request: Request, caller: Principal) -> Iterator[Any]:
    require_writer(caller)
    with request.app.state.backend.session(caller, write=True) as session:
        session.check_org()
        yield session


def feedback_after_commit(request: Request, session: Any) -> FeedbackStatus | None:
    """The feedback step for what the request's committed changes moved to offer_accepted,
    rejected_by_company or candidate_withdrew (None: nothing did); call it after the
    `write_session` block, i.e. after the commit."""
    config = request.app.state.config
    return run_feedback(
        request.app.state.backend,
        session.triggers,
        Path(config.db),
        config.feeders_path,
        config.wait_seconds,
    )

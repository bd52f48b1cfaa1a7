"""Per-request dependencies: the caller's session on the store, and what runs after it commits."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from ingest.errors import StoreBusyError
from ingest.service import FeedbackStatus
from itrack.api.auth import Principal, current_principal, require_writer
from itrack.api.backend import run_feedback
from itrack.api.errors import error_responses

Caller = Annotated[Principal, Depends(current_principal)]
_M = TypeVar("_M", bound=BaseModel)
READ_ERRORS = error_responses(401, 403, 404, 422, 503)
WRITE_ERRORS = error_responses(401, 403, 404, 409, 415, 422, 503)


def one_hop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A blocking endpoint run in one worker-thread hop, on the app's few threads
    (`ApiConfig.threads`). FastAPI runs a sync endpoint in the thread pool and then validates
    its response in a second hop; as a coroutine that awaits the thread, the validation runs on
    the event loop (it does not block: pure CPU, microseconds). Each hop is a thread hand-over
    under the GIL: at 20 clients they cost more than the work. The hop is asyncio's own
    (`run_in_executor`, the caller's context variables copied), about half the Python of
    Starlette's `run_in_threadpool` (anyio's capacity limiter and cancel scope, which these
    endpoints do not use).

    A request that waited for a thread longer than `wait_seconds` is not run: 503 +
    Retry-After, as when the store is busy (its client has waited as long as it would for the
    store)."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)  # FastAPI reads the parameters of the wrapped function
    async def run(*args: Any, **kwargs: Any) -> Any:
        app = kwargs["request"].app  # every endpoint takes the request
        queued = time.monotonic()

        def in_thread() -> Any:
            if time.monotonic() - queued > app.state.config.wait_seconds:
                raise StoreBusyError("the server is busy: every worker thread was taken; retry")
            return endpoint(*args, **kwargs)

        call = functools.partial(contextvars.copy_context().run, in_thread)
        return await asyncio.get_running_loop().run_in_executor(app.state.workers, call)

    return run


def construct(model: type[_M], record: BaseModel, **extra: Any) -> _M:
    """`record` as the response `model` (a subclass of the record's contract model that adds
    only its OpenAPI example, UTC timestamps with `Z` and fields such as `feedback`, given in
    `extra`), without validating its values again: they were validated when the record was
    built or read (the contract model)."""
    values = {name: getattr(record, name) for name in model.model_fields if hasattr(record, name)}
    return model.model_construct(**{**values, **extra})


def record_response(
    model: type[BaseModel],
    record: BaseModel,
    status_code: int = 200,
    location: str | None = None,
    **extra: Any,
) -> Response:
    """One record's answer: `construct(model, record, **extra)` as JSON. FastAPI validated a
    route's returned dict against its response model again, a tenth of the server's CPU per
    request; the route keeps `model` as its response model (OpenAPI, and the schema tests check
    every answer against it)."""
    body = construct(model, record, **extra).model_dump_json()
    headers = {"Location": location} if location else None
    return Response(body, status_code, headers, media_type="application/json")


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

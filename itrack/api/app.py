"""The HTTP API's app factory: `create_app(ApiConfig(...))`; `itrack serve` runs it."""

from __future__ import annotations

import email.message
import ipaddress
import json
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from starlette.requests import ClientDisconnect

from ingest.contract import NUL_MESSAGE
from ingest.errors import DuplicateKey, refuse_duplicate_keys
from itrack.api import errors
from itrack.api.errors import ApiError
from itrack.api.head import HeadAsGet
from itrack.api.limits import BodyLimit
from itrack.api.links import redirect_slashes_relatively
from itrack.api.options import AnswerOptions
from itrack.api.routes import analytics, feedback, health, interviews
from itrack.api.shutdown import AnswerWhenCancelled

DESCRIPTION = """
Interview processes and stages over the interview service, analytics from the published
warehouse, and the feedback step on demand.

**Authentication**: `Authorization: Bearer <JWT>` (HS256, Supabase-compatible claims: `sub`,
`role`, `app_metadata.org_id`, `app_metadata.itrack_role` = recruiter | lead). A
recruiter changes only the processes assigned to them, a lead any process of the
organization.

**Errors** all have one shape: `{"error": {"status", "code", "message", "field", "errors"}}`.
404 unknown id, 409 refused by a business rule (the message names the rule), 422 invalid input
(`field` names it), 503 + `Retry-After` when the store is busy.
"""


@dataclass(frozen=True)
class ApiConfig:
    db: Path = Path("data/warehouse.duckdb")
    store: Literal["duckdb", "postgres"] = "duckdb"
    pg_dsn: str | None = None
    jwt_secret: str | None = None
    no_auth: bool = False
    organization_id: str | None = None
    wait_seconds: float = 2.0  # how long a request waits for a thread or the store, then 503
    feeders_path: Path | None = None
    # Threads running the blocking endpoints, per server process (`itrack serve --threads`).
    # Few: each thread hop and every database round trip of a thread is a GIL hand-over,
    # and past a few threads those cost more than the extra concurrency gains (bench/README).
    threads: int = 4
    pg_pool_size: int | None = None  # PostgreSQL connections per process; None: `threads`


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_backend(config: ApiConfig):
    if config.store == "postgres":
        from itrack.api.backend import PostgresBackend

        pool_size = config.pg_pool_size or config.threads  # a thread holds one at a time
        return PostgresBackend(config.pg_dsn, pool_size, config.wait_seconds)
    from itrack.api.backend import DuckDBBackend

    return DuckDBBackend(config.db, config.wait_seconds, config.organization_id)


NOT_UTF8_MESSAGE = "is not UTF-8 text once its %-escapes are decoded"


def _escapes_utf8(escaped: str) -> bool:
    """Whether `escaped` (a URL's path or a query part, %-escaped) decodes to UTF-8 text."""
    try:
        urllib.parse.unquote_to_bytes(escaped.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _not_utf8(request: Request) -> set[tuple[str, str]]:
    """The parameters whose %-escapes are not UTF-8 (`/company/%FF`): the server decodes them
    to U+FFFD and the endpoint searched for that character, answering 200 for a name nobody
    sent."""
    found = set()
    raw_path = request.scope.get("raw_path", b"").decode("latin-1")
    if not _escapes_utf8(raw_path):  # a path value with a U+FFFD the client did not send
        found |= {("path", n) for n, v in request.path_params.items() if "\ufffd" in str(v)}
    for part in request.scope.get("query_string", b"").decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if not _escapes_utf8(value):
            found.add(("query", urllib.parse.unquote_plus(name)))
    return found


def refuse_unreadable_parameters(request: Request) -> None:
    """A path or query parameter holding NUL is 422 naming it, on either store: no stored text
    holds NUL (the contract refuses it), and PostgreSQL cannot even compare with it. So is one
    whose %-escapes are not UTF-8 text (`_not_utf8`)."""
    not_utf8 = _not_utf8(request)
    given = [
        *(("path", name, value) for name, value in request.path_params.items()),
        *(("query", name, value) for name, value in request.query_params.multi_items()),
    ]
    for where, name, value in given:
        field = f"{where}.{name}"
        if "\x00" in str(value):
            raise ApiError(422, f"invalid input: {field}: {NUL_MESSAGE}", field=field)
        if (where, name) in not_utf8:
            raise ApiError(422, f"invalid input: {field}: {NOT_UTF8_MESSAGE}", field=field)


def refuse_unknown_query_parameters(request: Request) -> None:
    """A query parameter the endpoint does not take, or one given twice, is 422 naming it:
    both were ignored (`?compnay=Stripe` listed every company's processes, `?cohort=2025-03`
    answered the overall funnel, `?limit=1&limit=2` took the last), a silent wrong answer.
    The parameters each endpoint takes are those its OpenAPI operation declares."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    path = getattr(route, "path_format", None)
    if path is None:
        return
    taken = _query_parameters(request.app).get((path, request.method.lower()), ())
    seen = request.query_params.multi_items()
    names = [name for name, _ in seen]
    for name in dict.fromkeys(names):
        field = f"query.{name}"
        if name not in taken:
            takes = ", ".join(taken) if taken else "none"
            message = f"not a parameter of this endpoint (it takes: {takes})"
            raise ApiError(422, f"invalid input: {field}: {message}", field=field)
        if names.count(name) > 1:
            message = f"given {names.count(name)} times (which value is meant?)"
            raise ApiError(422, f"invalid input: {field}: {message}", field=field)


def _query_parameters(app: FastAPI) -> dict[tuple[str, str], tuple[str, ...]]:
    """(path, method) -> the query parameters its OpenAPI operation declares; built once."""
    known = getattr(app.state, "query_parameters", None)
    if known is None:
        known = {
            (path, method): tuple(
                p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
            )
            for path, operations in app.openapi()["paths"].items()
            for method, operation in operations.items()
        }
        app.state.query_parameters = known
    return known


def _is_json(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON, as the framework reads it (application/json or
    application/<anything>+json, any parameters)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def refuse_body_not_json(request: Request) -> None:
    """A body sent to an endpoint that reads JSON without a JSON Content-Type is 415 naming the
    header: the framework does not parse it then, and answered 422 "body: Input should be a
    valid dictionary or object" for the JSON object `curl -d '{...}'` sends as a form. A body
    sent with POST or PUT to an endpoint that reads none (POST /feedback/run) is 422: it was
    ignored, so `{"feeder": "referral"}` ran the step for every feeder, a silent wrong answer
    (as a query parameter the endpoint does not take)."""
    reads_body = getattr(request.scope.get("route"), "body_field", None) is not None
    content_type = request.headers.get("content-type")
    if reads_body and _is_json(content_type):
        return
    if not reads_body and request.method not in ("POST", "PUT", "PATCH"):
        return
    try:
        body = await request.body()
    except ClientDisconnect:
        return
    if not body:  # nothing sent: the framework's "Field required" names the body
        return
    if not reads_body:
        message = "this endpoint takes no body (send none)"
        raise ApiError(422, f"invalid input: body: {message}", field="body")
    field = "header.content-type"
    got = f"got {content_type}" if content_type else "none was given"
    message = f"the body must be JSON sent as Content-Type: application/json ({got})"
    raise ApiError(415, f"invalid input: {field}: {message}", field=field)


class _Pairs(list):
    """A JSON object's (key, value) pairs, as read (`object_pairs_hook`)."""


def _duplicated(value: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
    """Where the first key given twice is, as a field (`body.offer_details.base_salary`,
    `body.0.x` in a list), in the order the parser meets them: the innermost object first, as
    `refuse_duplicate_keys` refuses it. None: no key is given twice."""
    if isinstance(value, _Pairs):
        keys = [key for key, _ in value]
        for key, item in value:
            found = _duplicated(item, (*path, key))
            if found:
                return found
        twice = next((key for key in keys if keys.count(key) > 1), None)
        return (*path, twice) if twice is not None else None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _duplicated(item, (*path, str(index)))
            if found:
                return found
    return None


async def refuse_duplicate_body_keys(request: Request) -> None:
    """A JSON body naming a key twice is 422, as ingest quarantines such a record
    (`duplicate_key`) and feeders.json refuses it: the framework's parser keeps the last value,
    so `{"feeder_source": "referral", ..., "feeder_source": "bootcamp"}` was stored as bootcamp.
    A body that is not JSON is left to the framework's own error, and so is a client gone
    before its body arrived (the framework's 400 where the endpoint reads one; no traceback in
    the server's log: every request passes here, a GET too)."""
    try:
        body = await request.body()
    except ClientDisconnect:
        return
    if not body:
        return
    try:
        json.loads(body, object_pairs_hook=refuse_duplicate_keys)
    except DuplicateKey as exc:
        where = _duplicated(json.loads(body, object_pairs_hook=_Pairs), ("body",))
        field = ".".join(where) if where else "body"
        raise ApiError(422, f"invalid input: {field}: {exc}", field=field) from None
    except (ValueError, RecursionError):  # not JSON: the framework says so
        return


def create_app(config: ApiConfig) -> FastAPI:
    if not config.no_auth and not config.jwt_secret:
        raise ValueError("set a JWT secret (ITRACK_JWT_SECRET) or run with --no-auth on loopback")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        app.state.workers.shutdown(wait=True)
        app.state.backend.close()

    app = FastAPI(
        title="interview-tracking API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[
            Depends(refuse_unreadable_parameters),
            Depends(refuse_unknown_query_parameters),
            Depends(refuse_body_not_json),
            Depends(refuse_duplicate_body_keys),
        ],
    )
    app.state.config = config
    app.state.workers = ThreadPoolExecutor(config.threads, thread_name_prefix="itrack-api")
    app.state.backend = make_backend(config)
    app.add_middleware(BodyLimit)
    app.add_middleware(HeadAsGet)
    app.add_middleware(AnswerOptions)
    app.add_middleware(AnswerWhenCancelled)  # last added: outermost
    errors.install(app)
    app.include_router(health.router)
    app.include_router(analytics.router)
    app.include_router(interviews.router)
    app.include_router(feedback.router)
    redirect_slashes_relatively(app.router)
    return app

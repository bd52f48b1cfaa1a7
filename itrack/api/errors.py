"""Errors over HTTP: one JSON shape, produced by ONE exception handler.

Every error response is

    {"error": {"status": 409, "code": "refused", "message": "...", "field": null,
               "errors": [{"field": "body.company_name", "message": "..."}]}}

`field` names the first offending input (422), `errors` lists all of them. Which status a
domain error gets is decided by the shared mapping (`itrack.errors`), the same table that gives
the CLI its exit codes; routes never catch and translate by hand.
"""

from __future__ import annotations

import logging
from typing import Any

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import NotAllowed, NotFoundError, Refused, StoreBusyError, StoreError, UserError
from ingest.field_errors import field_errors
from itrack.api.options import allowed_methods
from itrack.api.warehouse import WarehouseMissing
from itrack.errors import http_status

log = logging.getLogger("itrack.api")

RETRY_AFTER_SECONDS = 2
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "refused",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    500: "internal",
    503: "busy",
}


class ApiError(Exception):
    """An HTTP-level refusal raised by the API itself (authentication, permissions)."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.field = field


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str
    message: str


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: int
    code: str
    message: str
    field: str | None = None
    errors: list[FieldError] = []


class ErrorResponse(BaseModel):
    """The one shape of every error response."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "error": {
                    "status": 409,
                    "code": "refused",
                    "message": "process 1f0c... cannot move from in_progress to offer_accepted; "
                    "allowed next: candidate_withdrew, offer_extended, on_hold, "
                    "rejected_by_company",
                    "field": None,
                    "errors": [],
                }
            }
        },
    )
    error: ErrorBody


def _response(
    status: int,
    message: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    errors = errors or []
    body = ErrorBody(
        status=status,
        code=CODES.get(status, "error"),
        message=message,
        field=errors[0].field if errors else None,
        errors=errors,
    )
    return JSONResponse(
        ErrorResponse(error=body).model_dump(mode="json"), status_code=status, headers=headers
    )


def refusal(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error answered outside the handler (ASGI middleware), in the one shape."""
    return _response(status, message, headers=headers)


def body_error(status: int, message: str) -> JSONResponse:
    """A refusal of the request body as a whole (not JSON, too large): `field` is `body`."""
    error = FieldError(field="body", message=message)
    return _response(status, f"invalid input: body: {message}", [error])


def _validation_errors(request: Request, exc: RequestValidationError) -> list[FieldError]:
    """Each offending input once, named as the client spelled it (`body.offer_details.
    base_salary`, not a union member's `...base_salary.int`): the rule ingest and the CLI
    follow, walking the route's body model."""
    found = field_errors(exc.errors(), _body_model(request), under=("body",))
    return [FieldError(field=e.field or "body", message=e.message) for e in found]


def _body_model(request: Request) -> type[BaseModel] | None:
    """The model the matched route reads its JSON body into, if it reads one."""
    body = getattr(request.scope.get("route"), "body_field", None)
    model = body.field_info.annotation if body is not None else None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """The one handler: every exception that reaches the app boundary becomes ErrorResponse."""
    if isinstance(exc, RequestValidationError):
        errors = _validation_errors(request, exc)
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        return _response(422, f"invalid input: {summary}", errors)
    if isinstance(exc, ApiError):
        # `errors` holds each field's own message, as for validation errors; the summary
        # ("invalid input: <field>: ...") is `message`'s alone
        detail = str(exc).removeprefix(f"invalid input: {exc.field}: ")
        errors = [FieldError(field=exc.field, message=detail)] if exc.field else None
        return _response(exc.status, str(exc), errors, headers=exc.headers)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 400:  # the framework could not parse the body (not UTF-8 JSON)
            return body_error(422, f"{exc.detail} (expected UTF-8 JSON)")
        if exc.status_code == 413:  # itrack.api.limits: the body grew past the limit
            return body_error(413, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not just one route's
            headers["Allow"] = ", ".join(allowed_methods(request.scope))
        return _response(exc.status_code, str(exc.detail), headers=headers)
    status = http_status_of(exc)
    if status is None:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _response(500, f"unexpected {type(exc).__name__}; the server log has the details")
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return _response(status, _one_line(exc), headers=headers)


def _api_statuses() -> tuple[tuple[type[BaseException], int], ...]:
    """Where HTTP says more than the exit code can: refusals that are about rights (403) or an
    unknown name (404); a warehouse not published yet (503). Everything else: itrack.errors."""
    from feedback.analytics import UnknownNameError

    return ((UnknownNameError, 404), (NotAllowed, 403), (WarehouseMissing, 503))


def http_status_of(exc: BaseException) -> int | None:
    """The HTTP status of a domain error (None: not a domain error, a bug)."""
    for kind, status in _api_statuses():
        if isinstance(exc, kind):
            return status
    status = http_status(exc)
    return None if status == 500 else status


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def install(app: FastAPI) -> None:
    """Route every exception to `handle_error`. Domain errors are registered by class (handled
    inside the app); `Exception` last, for bugs: a 500 in the same shape, logged."""
    domain = (NotFoundError, Refused, StoreBusyError, StoreError, UserError, OSError, duckdb.Error)
    for kind in (RequestValidationError, StarletteHTTPException, ApiError, *domain):
        app.add_exception_handler(kind, handle_error)
    app.add_exception_handler(Exception, handle_error)


# OpenAPI `responses=` for the error statuses a route can return.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "Missing or invalid bearer token",
        403: "The token's role may not do this",
        404: "Unknown id",
        409: "Refused by a business rule (the message names the rule)",
        415: "A body sent without Content-Type: application/json (field header.content-type)",
        422: "Invalid input (the error names the field)",
        503: "The store is busy (another writer or a build); retry after Retry-After seconds",
    }
    return {s: {"model": ErrorResponse, "description": described[s]} for s in statuses}

"""Bearer tokens: HS256 JWTs with Supabase-compatible claims.

    {"sub": "<user uuid>", "role": "authenticated", "aud": "authenticated", "exp": 1767225600,
     "app_metadata": {"org_id": "<org uuid>", "itrack_role": "recruiter" | "lead"}}

`role` is the database role (Supabase: anon, authenticated, service_role); `itrack_role` says what
the user may do: a recruiter changes only the processes assigned to them, a lead any process of
the organization; anon (or a token without an app role) reads and changes nothing. On
PostgreSQL the claims go into each transaction (`request.jwt.claims`) and row-level security
decides; on DuckDB the API enforces the same rules (itrack.api.access).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from fastapi import Request

from itrack.api.errors import ApiError

AppRole = Literal["recruiter", "lead"]
AUDIENCE = "authenticated"
ALGORITHM = "HS256"
# app_metadata keys, as the row-level security policies read them (supabase/migrations)
ORG_CLAIM = "org_id"
ROLE_CLAIM = "itrack_role"
# Verified tokens kept (token and secret -> principal, expiry) so a client's every request is not
# a signature check again; an entry is used only before its `exp` (a token never outlives
# itself); bounded, emptied when full.
_VERIFIED: dict[tuple[str, str], tuple[Principal, float]] = {}
_VERIFIED_MAX = 4096


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's claims, or the local user under --no-auth."""

    sub: str | None
    role: str  # the database role: anon, authenticated, service_role
    organization_id: str | None
    app_role: AppRole | None
    claims: dict[str, Any] = field(default_factory=dict)
    local: bool = False  # --no-auth on loopback: full access, no organization

    @property
    def is_service(self) -> bool:
        """The server key (service_role) or the local user: every row, every organization."""
        return self.local or self.role == "service_role"

    @property
    def can_read(self) -> bool:
        return self.is_service or (self.role == "authenticated" and self.app_role is not None)

    @property
    def is_lead(self) -> bool:
        return self.is_service or (self.role == "authenticated" and self.app_role == "lead")


LOCAL_USER = Principal(
    sub=None, role="service_role", organization_id=None, app_role="lead", local=True
)


def make_token(
    secret: str,
    sub: str | None = None,
    organization_id: str | None = None,
    app_role: AppRole | None = "lead",
    role: str = "authenticated",
    expires_in: dt.timedelta = dt.timedelta(hours=1),
    **extra: Any,
) -> str:
    """A token the API accepts (tests, the README's walk-through, `itrack serve --token`)."""
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {
        "sub": sub or str(uuid.uuid4()),
        "role": role,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + expires_in).timestamp()),
        "app_metadata": {
            k: v for k, v in ((ORG_CLAIM, organization_id), (ROLE_CLAIM, app_role)) if v is not None
        },
        **extra,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode(token: str, secret: str) -> Principal:
    """The principal of a token signed with `secret` (401 if it is not valid now)."""
    known = _VERIFIED.get((token, secret))
    if known is not None and time.time() < known[1]:
        return known[0]
    principal = _verify(token, secret)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(token, secret)] = (principal, float(principal.claims["exp"]))
    return principal


def _verify(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            # `iat` only says when it was issued (RFC 7519): PyJWT refuses one in the future,
            # so a token from an auth server whose clock is a second ahead failed until ours
            # caught up. Its validity is `exp` (and `nbf` if given), checked as before.
            options={"require": ["exp", "sub", "role"], "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("the bearer token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise _unauthorized(f"invalid bearer token: {exc}") from None
    meta = claims.get("app_metadata") or {}
    if not isinstance(meta, dict):
        raise _unauthorized("invalid bearer token: app_metadata must be an object")
    app_role = meta.get(ROLE_CLAIM)
    if app_role not in (None, "recruiter", "lead"):
        raise _unauthorized(f"invalid bearer token: unknown {ROLE_CLAIM} '{app_role}'")
    org = meta.get(ORG_CLAIM)
    return Principal(
        sub=_uuid_claim(claims["sub"], "sub"),
        role=str(claims["role"]),
        organization_id=_uuid_claim(org, f"app_metadata.{ORG_CLAIM}") if org is not None else None,
        app_role=app_role,
        claims=claims,
    )


def _uuid_claim(value: Any, name: str) -> str:
    """A user or organization claim, canonical. PostgreSQL holds them as uuid (auth.uid(),
    organization_id) and refused anything else with its own 422, while DuckDB compared them as
    text (201 or 403): checked here, both stores answer 401."""
    canonical = canonical_uuid(value)
    if canonical is None:
        raise _unauthorized(f"invalid bearer token: {name} must be a UUID")
    return canonical


def canonical_uuid(value: Any) -> str | None:
    """A user or organization id in the one form both stores compare (lower case), or None if
    it is not one: only the hyphenated form Supabase writes, in either case (UUID() alone also
    takes braces and `urn:uuid:`). The rule of tokens and of the ids `itrack` puts in them."""
    text = value if isinstance(value, str) else ""
    try:
        canonical = str(uuid.UUID(text))
    except ValueError:
        return None
    return canonical if canonical == text.lower() else None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, {"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, from the Authorization header. A coroutine although it
    blocks on nothing (a signature check, microseconds): FastAPI runs a sync dependency in the
    thread pool, a hop per request that costs more than the check."""
    config = request.app.state.config
    given = request.headers.getlist("authorization")
    if len(given) > 1:  # the first was taken and the others ignored: which one is meant?
        raise _unauthorized(
            f"the Authorization header was given {len(given)} times (which token is meant?)"
        )
    header = given[0] if given else None
    if header is None:
        if config.no_auth:
            return LOCAL_USER
        raise ApiError(
            401,
            "authentication required: send 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <token>'")
    if not config.jwt_secret:
        raise ApiError(401, "this server has no JWT secret configured (ITRACK_JWT_SECRET)")
    principal = decode(token.strip(), config.jwt_secret)
    if not principal.can_read:
        raise ApiError(403, f"role '{principal.role}' without an app role may not use the API")
    return principal


def require_writer(principal: Principal) -> None:
    if not (principal.is_service or principal.app_role in ("recruiter", "lead")):
        raise ApiError(403, "only recruiters and leads may change interview processes")

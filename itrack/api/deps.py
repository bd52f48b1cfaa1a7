"""Per-request dependencies: the caller's session on the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request

from itrack.api.auth import Principal, require_writer


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

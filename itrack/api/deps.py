"""Per-request dependencies: the caller's session on the store, and what runs after it commits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import Request

from ingest.service import FeedbackStatus
from itrack.api.auth import Principal, require_writer
from itrack.api.backend import run_feedback


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

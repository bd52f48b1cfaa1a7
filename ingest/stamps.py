"""The clock and the run ids stamped on what runs write: the contract's naive UTC timestamps.

A module of its own, importing nothing heavy, so that commands that only stamp (a no-op
`itrack build`) need not import the contract's models.
"""

from __future__ import annotations

import datetime as dt
import uuid


def utc_now() -> dt.datetime:
    """Now as naive UTC, the way the contract stores every timestamp."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_run_id(prefix: str = "run") -> str:
    """Run id stamped on the rows a run writes (`_run_id`): `<prefix>-<UTC time>-<random>`."""
    return f"{prefix}-{utc_now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"

"""One file lock for every writer: `flock(LOCK_EX)` on a lock file that names its holder's PID.

The raw store's writer lock, the build lock and feeders.json's advisory lock are all this lock
on different files; only what they say when busy differs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def pid_lock(
    lock_file: Path,
    wait_seconds: float | None,
    busy: Callable[[str], Exception],
    cannot_open: Callable[[OSError], Exception],
) -> Iterator[None]:
    """Hold `lock_file` for the block; the holder's PID is written into it.

    Waits up to `wait_seconds` (None: as long as it takes), then raises `busy(holder_pid)`.
    A lock file that cannot be created raises `cannot_open(error)`. Closing the file releases
    the lock, so a killed holder never leaves it taken."""
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_file, "a+")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise cannot_open(exc) from exc
    with handle:
        deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    handle.seek(0)
                    raise busy(handle.read().strip() or "unknown") from None
                time.sleep(0.05)
        with contextlib.suppress(OSError):  # the PID is a courtesy for the busy message
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
        yield

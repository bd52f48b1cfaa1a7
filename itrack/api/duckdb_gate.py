"""Sharing the embedded DuckDB raw store between the server's requests and other processes.

DuckDB lets one process open a database file for writing, and the project serialises writers
with the store lock (`store_lock`, a file lock naming its holder's PID) that `itrack ingest`,
`itrack build` and `itrack interview` take too. The server therefore:

- opens the raw store once for all requests in flight (one connection, one cursor per
  request): readers never wait for each other nor for a writer (DuckDB's MVCC);
- serialises its writes with an in-process lock (one write transaction at a time: no
  write-write conflicts, nothing retried);
- lets go of the store lock as soon as no request is in flight (after `linger` seconds), and
  under continuous load every `hold` seconds for `gap` seconds (longer than the store lock's
  0.1 s polling), so an ingest or build waiting for the lock gets it between requests;
- while another process holds the lock, requests wait up to `wait` seconds, then get 503 with
  Retry-After (StoreBusyError). Nothing acknowledged is lost: a request either committed its
  transaction before its response or got an error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import duckdb

from ingest.errors import StoreBusyError
from ingest.store.duckdb.store import open_store, raw_store_path


class DuckDBGate:
    def __init__(
        self,
        db: Path,
        wait: float = 2.0,
        linger: float = 0.05,
        hold: float = 1.0,
        gap: float = 0.15,
    ) -> None:
        self.db = Path(db)
        self.path = raw_store_path(self.db)
        self.wait, self.linger, self.hold, self.gap = wait, linger, hold, gap
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._stack: ExitStack | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._users = 0
        self._opened_at = 0.0
        self._last_release = 0.0
        self._gap_until = 0.0
        self._draining = False
        self._paused = False
        self._stopped = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="duckdb-gate", daemon=True)
        self._reaper.start()

    # -- public ---------------------------------------------------------------------------------

    @contextmanager
    def session(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the raw store for one request; writes hold the server's write lock."""
        deadline = time.monotonic() + self.wait
        con = self._enter(deadline)
        try:
            cursor = con.cursor()
            try:
                if write:
                    if not self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                        raise StoreBusyError(
                            f"database is busy (writes queued for {self.wait:g}s): {self.path}"
                        )
                    try:
                        yield cursor
                    finally:
                        self._write_lock.release()
                else:
                    yield cursor
            finally:
                cursor.close()
        finally:
            self._leave()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Let go of the store (waiting for requests in flight) while another component of this
        process opens it itself (the feedback step); requests meanwhile wait or get 503."""
        deadline = time.monotonic() + self.wait
        with self._cond:
            while self._paused:
                if time.monotonic() >= deadline:
                    raise StoreBusyError(f"database is busy: {self.path}; retry shortly")
                self._cond.wait(timeout=0.02)
            self._paused = True
            self._draining = True
            try:
                while self._users:
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(f"database is busy: {self.path}; retry shortly")
                    self._cond.wait(timeout=0.02)
                self._close()
                self._draining = True  # keep new requests waiting
            except BaseException:
                self._paused = self._draining = False
                self._cond.notify_all()
                raise
        try:
            yield
        finally:
            with self._cond:
                self._paused = self._draining = False
                self._cond.notify_all()

    def close(self) -> None:
        self._stopped.set()
        self._reaper.join(timeout=2)
        with self._cond:
            self._close()

    def reachable(self) -> tuple[bool, str]:
        """Can a request use the store right now (health endpoint)?"""
        try:
            with self.session(write=False) as con:
                con.execute("select 1").fetchone()
            return True, str(self.path)
        except Exception as exc:  # health reports, never raises
            return False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    # -- internals ------------------------------------------------------------------------------

    def _enter(self, deadline: float) -> duckdb.DuckDBPyConnection:
        with self._cond:
            while True:
                now = time.monotonic()
                if not (self._draining or now < self._gap_until):
                    break
                # letting go of the store for a moment, so that a waiting ingest/build gets it
                if now >= deadline:
                    raise StoreBusyError(f"database is busy: {self.path}; retry shortly")
                pause = 0.02 if self._draining else self._gap_until - now
                self._cond.wait(timeout=max(0.001, min(pause, deadline - now)))
            if self._con is None:
                self._open(deadline)
            self._users += 1
            assert self._con is not None
            return self._con

    def _open(self, deadline: float) -> None:
        stack = ExitStack()
        try:
            # open_store applies pending migrations (api_process_assignments among them)
            con = stack.enter_context(
                open_store(self.db, wait_seconds=max(0.0, deadline - time.monotonic()))
            )
        except BaseException:
            stack.close()
            raise
        self._stack, self._con = stack, con
        self._opened_at = time.monotonic()

    def _leave(self) -> None:
        with self._cond:
            self._users -= 1
            self._last_release = time.monotonic()
            if self._users == 0 and self._draining and not self._paused:
                self._close(gap=True)
            self._cond.notify_all()

    def _close(self, gap: bool = False) -> None:
        if self._stack is not None:
            stack, self._stack, self._con = self._stack, None, None
            stack.close()  # closes the connection, then releases the store lock
            if gap:
                self._gap_until = time.monotonic() + self.gap
        self._draining = False
        self._cond.notify_all()

    def _reap(self) -> None:
        while not self._stopped.wait(0.01):
            with self._cond:
                if self._con is None or self._paused:
                    continue
                now = time.monotonic()
                if self._users == 0 and now - self._last_release >= self.linger:
                    self._close()
                elif now - self._opened_at >= self.hold:
                    self._draining = True
                    if self._users == 0:
                        self._close(gap=True)

"""Ctrl-C during a DuckDB query: the query stops at once, and the stop is recognised.

DuckDB's Python client checks for signals only between result chunks: a query that returns
one row (an aggregate over a big table, a `copy`, a `create table as`) ran to its end after
Ctrl-C, for minutes, before the command said "interrupted". `ctrl_c_stops_queries` (every
`itrack` command runs inside it, itrack.errors.HandledGroup) starts a watcher thread that the
signal itself wakes: the interpreter's C-level handler writes the signal's number to the
`signal.set_wakeup_fd` socket even while the main thread is inside DuckDB. The watcher calls
`interrupt()` on every connection opened through `interruptible`; DuckDB then raises its
InterruptException in the main thread, and Python's KeyboardInterrupt follows.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

Connection = TypeVar("Connection")

_open: weakref.WeakSet[Any] = weakref.WeakSet()  # a closed connection leaves when collected
_lock = threading.Lock()  # the watcher reads `_open` while the main thread adds to it
_stopped = threading.Event()  # set once Ctrl-C interrupted the queries of this command
_watching = False  # a watcher runs (only the main thread, which starts it, reads this)
_left_alone = 0  # > 0: a command that stops gracefully by itself (`itrack serve`) runs


def interruptible(con: Connection) -> Connection:
    """`con` (a DuckDB connection or cursor), stopped by Ctrl-C mid-query from now on; every
    connection a command opens goes through here. Also without DuckDB's own progress bar: it
    printed `97% ▕████▏` lines with carriage returns on stdout during any query over 2 s (a 1M
    ingest's scans), into cron logs, pipes and `--format json` output (people get the
    command's own bar on stderr)."""
    con.execute("set enable_progress_bar = false")
    with _lock:
        _open.add(con)
    return con


def interrupted(exc: BaseException) -> bool:
    """Whether `exc` ended a command because of Ctrl-C during a query: DuckDB's Python client
    raises `RuntimeError('Query interrupted')` on SIGINT and `InterruptException` after an
    `interrupt()`, not KeyboardInterrupt, so handlers took it for a failure or a bug; and a
    handler that wraps DuckDB's errors in its own (`cannot export ...`) still ended because of
    the interrupt once the watcher stopped the queries."""
    duckdb = sys.modules.get("duckdb")  # not loaded: no query ran, so no DuckDB interrupt
    if duckdb is None:
        return False
    return (
        isinstance(exc, duckdb.InterruptException)
        or (type(exc) is RuntimeError and str(exc) == "Query interrupted")
        or _stopped.is_set()
    )


@contextlib.contextmanager
def ctrl_c_stops_queries() -> Iterator[None]:
    """Within: Ctrl-C interrupts every query of the `interruptible` connections at once.
    Only the main thread receives signals (elsewhere, and when nested, nothing is added)."""
    global _watching
    if _watching or threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)  # set_wakeup_fd requires it: a signal handler never blocks
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    _stopped.clear()
    watcher = threading.Thread(target=_watch, args=(reader,), name="ctrl-c-watcher", daemon=True)
    watcher.start()
    _watching = True
    try:
        yield
    finally:
        _watching = False
        signal.set_wakeup_fd(previous)
        _stopped.clear()  # what runs next in this process (a test's next command) starts afresh
        writer.close()  # the watcher reads the end of the stream and returns
        watcher.join()
        reader.close()


@contextlib.contextmanager
def ctrl_c_noticed() -> Iterator[Callable[[], bool]]:
    """Within: a function telling whether Ctrl-C was pressed, true before the KeyboardInterrupt
    it raises reaches any handler (dbt catches it and prints a traceback of it, which
    `itrack.dbt_runner` then holds back). Only the main thread receives signals: elsewhere it
    stays false, and the signal's handling is left as it was."""
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed.is_set
        return
    previous = signal.getsignal(signal.SIGINT)

    def notice(signum: int, frame: Any) -> None:
        pressed.set()
        if callable(previous):
            previous(signum, frame)  # Python's default handler raises KeyboardInterrupt
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, notice)
    try:
        yield pressed.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def ctrl_c_left_alone() -> Iterator[None]:
    """Within: Ctrl-C interrupts no query; for `itrack serve`, whose server stops gracefully,
    letting the requests in flight finish (their queries are not failed under them)."""
    global _left_alone
    _left_alone += 1
    try:
        yield
    finally:
        _left_alone -= 1


def _watch(reader: socket.socket) -> None:
    while data := reader.recv(64):
        if signal.SIGINT in data and not _left_alone:
            _stopped.set()
            _interrupt_all()


def _interrupt_all() -> None:
    with _lock:
        connections = list(_open)
    for con in connections:
        # a connection closed since it was opened raises ConnectionException: nothing runs there
        with contextlib.suppress(Exception):
            con.interrupt()

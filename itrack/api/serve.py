"""`itrack serve`: the HTTP API under uvicorn."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ingest.store.duckdb.store import raw_store_path, require_store
from itrack.api.app import ApiConfig, create_app, is_loopback

# How `run` hands the configuration to its worker processes (they start afresh and build the
# app with `app_from_environment`); set by `run` only, never by users.
CONFIG_VARIABLE = "ITRACK_API_CONFIG"


# On SIGINT/SIGTERM, how long requests in flight may take to finish before they are cancelled:
# a client that stalls mid-request (a body never completed) held the server up for as long as
# it liked. A request waits at most `wait_seconds` for the store; this leaves room for its work.
SHUTDOWN_GRACE_SECONDS = 10


def _uvicorn_config(app: Any, **where: Any) -> Any:
    """The one uvicorn configuration of every server process (`where`: host and port)."""
    import uvicorn

    return uvicorn.Config(
        app,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        **where,
    )


class ServeError(ValueError):
    """The server cannot start as asked (one line for the CLI)."""


def check(config: ApiConfig, host: str, workers: int) -> None:
    if config.no_auth and not is_loopback(host):
        raise ServeError(
            f"--no-auth is only allowed on a loopback address (127.0.0.1, ::1, localhost), "
            f"not {host}: anyone on the network could change every interview"
        )
    if not config.no_auth and not config.jwt_secret:
        raise ServeError(
            "no JWT secret: set ITRACK_JWT_SECRET (HS256, the Supabase project's JWT secret), "
            "or pass --no-auth for local use on 127.0.0.1"
        )
    if config.store == "postgres" and config.pg_dsn:
        from ingest.migrate import check_dsn

        check_dsn(config.pg_dsn)  # exit 2 before any process starts, the password never shown
    if workers > 1 and config.store != "postgres":
        raise ServeError(
            f"--workers {workers} needs the PostgreSQL store (ITRACK_STORE=postgres): the "
            "embedded DuckDB store has one writing process, so it is served by one"
        )
    if config.store == "duckdb":  # a mistyped --db: refused, not served as a new empty store
        require_store(
            raw_store_path(config.db),
            "or make it first (`itrack build PATH` loads data, `itrack db upgrade --create` "
            "makes an empty one)",
        )


def run(config: ApiConfig, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve until interrupted. One process by default (the embedded store is shared by its
    threads); on PostgreSQL `workers` processes, so the server's Python runs on more than one
    core (one interpreter lock per process), each with its own pool (`_serve_processes`)."""
    import uvicorn

    check(config, host, workers)
    if workers > 1:
        _serve_processes(config, host, port, workers)
        return
    app = create_app(config)
    sockets = _listening_sockets(host, port)
    server = uvicorn.Server(_uvicorn_config(app, host=host, port=port))
    # uvicorn says where it listens only for the sockets it bound itself
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit)",
        shown,
        sockets[0].getsockname()[1],
    )
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it stopped for, as uvicorn.run
        pass


def _listening_sockets(host: str, port: int) -> list[socket.socket]:
    """The sockets uvicorn would listen on, bound as it binds them (asyncio's `create_server`:
    every address the host resolves to, an IPv6 one for IPv6 only), but here: a port in use or
    a host that does not resolve is one line (exit 2), where uvicorn logs it and exits 3."""
    sockets: list[socket.socket] = []
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(2048)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sockets


def _serve_processes(config: ApiConfig, host: str, port: int, workers: int) -> None:
    """`workers` server processes, each accepting on its own socket bound to host:port with
    SO_REUSEPORT, so the kernel spreads new connections evenly over them (uvicorn's own
    `--workers` share one socket: whichever process wakes first accepts, and a burst of
    keep-alive clients all land on one). The sockets are bound here, before the processes
    start, so from the first connection on every one of them gets its share (a connection
    waits in its socket's backlog until its process is up). Stopped together: SIGINT or
    SIGTERM is passed on to every process; one that exits early stops the others."""
    try:
        sockets = [_reuse_port_socket(host, port) for _ in range(workers)]
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    env = {**os.environ, CONFIG_VARIABLE: json.dumps(dataclasses.asdict(config), default=str)}
    command = [sys.executable, "-m", "itrack.api.serve", "--parent-pid", str(os.getpid())]
    # own sessions: a Ctrl-C in the terminal reaches them once, passed on by `stop`
    children = [
        subprocess.Popen(
            [*command, "--socket-fd", str(sock.fileno())],
            env=env,
            pass_fds=[sock.fileno()],
            start_new_session=True,
        )
        for sock in sockets
    ]
    for sock in sockets:
        sock.close()  # the processes hold them

    def stop(signum: int, _frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    if any(_failed(child.returncode) for child in children):
        # one failed (mostly at its start: a store it cannot open): the others, starting beside it,
        # may be about to say why they fail too: their lines, not a SIGTERM cutting them short
        deadline = time.monotonic() + config.wait_seconds + START_MARGIN_SECONDS
        while time.monotonic() < deadline and any(c.poll() is None for c in children):
            time.sleep(0.2)
    stop(signal.SIGTERM, None)  # one ended (stopped, or failed to start): end them all
    codes = [child.wait() for child in children]
    failed = [code for code in codes if _failed(code)]
    if failed:
        raise ServeError(f"a server process exited with code {failed[0]}; see its lines above")


# Once one process failed to start, the others get the store's wait (a process starting waits
# that long for it) and this much more (their own start on a loaded machine) to end by themselves
START_MARGIN_SECONDS = 8.0


def _failed(code: int | None) -> bool:
    """An exit code that is not a clean end nor a stop by SIGINT or SIGTERM (None: running)."""
    return code not in (None, 0, -signal.SIGINT, -signal.SIGTERM)


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve_worker(fd: int, parent: int) -> None:
    """One of `_serve_processes`'s processes: the app from the environment, accepting on the
    socket it was handed (bound already: uvicorn's host and port go unused). A store it cannot
    open is one line and exit 2, as `itrack serve`."""
    import uvicorn

    from ingest.errors import UserError

    # first: the server may be killed while this process still starts
    threading.Thread(target=_stop_when_orphaned, args=(parent,), daemon=True).start()
    try:
        app = app_from_environment()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        uvicorn.Server(_uvicorn_config(app)).run(sockets=[socket.socket(fileno=fd)])
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it stopped for, as uvicorn.run
        pass


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM to this process once its parent is gone (killed, so it could not pass the signal
    on): a worker never keeps serving, and holding the port, on its own."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def app_from_environment():
    """The app of one worker process, from the configuration `run` left in the environment."""
    values = json.loads(os.environ[CONFIG_VARIABLE])
    for name in ("db", "feeders_path"):
        if values[name] is not None:
            values[name] = Path(values[name])
    return create_app(ApiConfig(**values))


def main(argv: list[str] | None = None) -> None:  # python -m itrack.api.serve (tests, bench)
    import argparse

    parser = argparse.ArgumentParser(prog="python -m itrack.api.serve")
    parser.add_argument("--db", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--store", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--pg-dsn")
    parser.add_argument("--jwt-secret")
    parser.add_argument("--org")
    parser.add_argument("--no-auth", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=ApiConfig.threads)
    # one of the processes of `--workers N`: its socket and the server that started it
    parser.add_argument("--socket-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.socket_fd is not None:
        _serve_worker(args.socket_fd, args.parent_pid)
        return
    if args.db is None:
        parser.error("--db is required")
    run(
        ApiConfig(
            db=args.db,
            store=args.store,
            pg_dsn=args.pg_dsn,
            jwt_secret=args.jwt_secret,
            organization_id=args.org,
            no_auth=args.no_auth,
            threads=args.threads,
        ),
        args.host,
        args.port,
        args.workers,
    )


if __name__ == "__main__":
    main()

"""`itrack serve` and `itrack token`: a real server process on loopback, and the refusals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api_server import free_port
from tests.api_support import ORG, SECRET, seed_candidates

ITRACK = str(Path(sys.executable).with_name("itrack"))


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ITRACK_")}
    return {**base, **extra}


def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ITRACK, *args], capture_output=True, text=True, env=env(**extra), timeout=60
    )


def test_no_auth_is_refused_off_loopback():
    done = run("serve", "--no-auth", "--host", "0.0.0.0", ITRACK_JWT_SECRET=SECRET)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --no-auth is only allowed on a loopback address (127.0.0.1, ::1, localhost), "
        "not 0.0.0.0: anyone on the network could change every interview"
    )


def test_a_server_without_secret_is_refused():
    done = run("serve")
    assert done.returncode == 2
    assert done.stderr.startswith("error: no JWT secret: set ITRACK_JWT_SECRET")


def test_token_needs_the_secret_and_a_known_role():
    assert run("token").returncode == 2
    bad = run("token", "--role", "admin", ITRACK_JWT_SECRET=SECRET)
    assert (bad.returncode, bad.stderr.strip()) == (
        2,
        "error: --role: 'admin' is not recruiter or lead",
    )


def test_token_with_an_empty_secret_is_refused_not_a_crash():
    """`ITRACK_JWT_SECRET=` (set, empty) reached PyJWT: "unexpected InvalidKeyError", exit 3.
    Empty is unset, as `itrack serve` already read it."""
    done = run("token", ITRACK_JWT_SECRET="")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: no ITRACK_JWT_SECRET set: the token must be signed with the server's\n"
    )


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["token", "--org", "another-org"], {}, "error: --org: 'another-org' is not a UUID"),
        (["token", "--sub", "bob"], {}, "error: --sub: 'bob' is not a UUID"),
        (["token"], {"ITRACK_ORG_ID": "acme"}, "error: ITRACK_ORG_ID: 'acme' is not a UUID"),
        # an unset shell variable (`--org "$ORG"`) made a token of no organization, or of
        # ITRACK_ORG_ID's, and `--sub ""` one of a new user, without a word
        (["token", "--org", ""], {"ITRACK_ORG_ID": ORG}, "error: --org: '' is not a UUID"),
        (["token", "--sub", ""], {}, "error: --sub: '' is not a UUID"),
        (["serve"], {"ITRACK_ORG_ID": "acme"}, "error: ITRACK_ORG_ID: 'acme' is not a UUID"),
    ],
)
def test_organization_and_user_ids_that_are_not_uuids_are_refused(args, extra, message):
    """The server answers 401 to a token whose org_id or sub is not a UUID (PostgreSQL holds
    them as uuid): `itrack token` printed such tokens, and a DuckDB store of a non-UUID
    organization would have refused every token."""
    done = run(*args, ITRACK_JWT_SECRET=SECRET, **extra)
    assert (done.returncode, done.stderr, done.stdout) == (2, message + "\n", "")


@pytest.mark.parametrize("hours", ["1e10", "inf", "8785"])
def test_a_token_valid_longer_than_a_year_is_refused_not_a_crash(hours):
    """`itrack token --hours 1e10` (or inf) overflowed the expiry date: "unexpected
    OverflowError", exit 3, which no input may cause. Now a usage error, exit 2."""
    done = run("token", "--org", ORG, "--hours", hours, ITRACK_JWT_SECRET=SECRET)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--hours': Input should be less than or equal to 8784"
    )
    year = run("token", "--org", ORG, "--hours", "8784", ITRACK_JWT_SECRET=SECRET)
    assert (year.returncode, year.stderr, year.stdout.count(".")) == (0, "", 2)


def test_token_ids_are_written_canonical():
    from itrack.api.auth import decode

    upper = "0D9C3F5E-1111-4AAA-8BBB-000000000001"
    done = run("token", "--org", upper, "--sub", upper, ITRACK_JWT_SECRET=SECRET)
    principal = decode(done.stdout.strip(), SECRET)
    assert (principal.organization_id, principal.sub) == (upper.lower(), upper.lower())


def serve(db: Path, *args: str, **extra: str):
    port = free_port()
    proc = subprocess.Popen(
        [ITRACK, "serve", "--port", str(port), "--db", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env(**extra),
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{base}/health", timeout=1)
            return proc, base
        except httpx.TransportError:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("itrack serve did not start")


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out


def test_itrack_serve_with_tokens_from_itrack_token(tmp_path: Path):
    db = tmp_path / "warehouse.duckdb"
    seed_candidates(db)
    proc, base = serve(db, ITRACK_JWT_SECRET=SECRET, ITRACK_ORG_ID=ORG)
    try:
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "interview-tracking API"
        docs = httpx.get(f"{base}/docs")
        assert docs.status_code == 200 and "swagger-ui" in docs.text
        assert httpx.get(f"{base}/interviews").status_code == 401
        token = run(
            "token", "--role", "lead", "--org", ORG, ITRACK_JWT_SECRET=SECRET
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        made = httpx.post(
            f"{base}/interviews",
            headers=headers,
            json={"candidate_id": "cand-1", "company_name": "Acme", "role_title": "SWE"},
        )
        assert made.status_code == 201, made.text
        got = httpx.get(f"{base}{made.headers['location']}", headers=headers)
        assert got.json()["id"] == made.json()["id"]
        other_org = "0d9c3f5e-2222-4aaa-8bbb-000000000002"
        other = run("token", "--org", other_org, ITRACK_JWT_SECRET=SECRET).stdout.strip()
        assert (
            httpx.get(
                f"{base}/interviews", headers={"Authorization": f"Bearer {other}"}
            ).status_code
            == 403
        )
    finally:
        code, out = stop(proc)
    assert code == 0, out
    assert "Traceback" not in out


def test_itrack_serve_no_auth_on_loopback(tmp_path: Path):
    db = tmp_path / "warehouse.duckdb"
    seed_candidates(db)
    proc, base = serve(db, "--no-auth")
    try:
        made = httpx.post(
            f"{base}/interviews",
            json={"candidate_id": "cand-1", "company_name": "Acme", "role_title": "SWE"},
        )
        assert made.status_code == 201, made.text
    finally:
        code, out = stop(proc)
    assert code == 0, out


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_addresses(host):
    from itrack.api.app import is_loopback

    assert is_loopback(host)
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")


def test_workers_need_the_postgres_store():
    done = run("serve", "--workers", "2", ITRACK_JWT_SECRET=SECRET)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --workers 2 needs the PostgreSQL store (ITRACK_STORE=postgres): the embedded "
        "DuckDB store has one writing process, so it is served by one"
    )


def _served_by(server_pid: int, port: int) -> dict[int, int]:
    """Established connections to `port` held by each process of the server (its children),
    from /proc: the sockets in ESTABLISHED state (01) whose local port is `port`."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                established.add(f"socket:[{fields[9]}]")
    return {
        child: sum(
            os.readlink(f"/proc/{child}/fd/{fd}") in established
            for fd in os.listdir(f"/proc/{child}/fd")
        )
        for child in _children(server_pid)
    }


def _on(dsn: str) -> dict[str, str]:
    return {"ITRACK_STORE": "postgres", "ITRACK_PG_DSN": dsn, "ITRACK_JWT_SECRET": SECRET}


def _running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie waiting to be reaped has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_itrack_serve_workers_on_postgres_share_the_connections(tmp_path: Path, pg_fresh: str):
    """`itrack serve --workers 2`: two processes, each on its own SO_REUSEPORT socket bound
    before they start, so a burst of keep-alive clients right after the first answer is spread
    over both (uvicorn's shared socket gives one all of them); both serve the same database,
    and SIGINT stops both cleanly."""
    from tests.api_support import lead, seed_pg_candidates

    seed_pg_candidates(pg_fresh, {"cand-1": "referral"})
    proc, base = serve(tmp_path / "warehouse.duckdb", "--workers", "2", **_on(pg_fresh))
    try:
        port = int(base.rsplit(":", 1)[1])
        clients = [httpx.Client(base_url=base, headers=lead()) for _ in range(40)]
        made = [
            c.post(
                "/interviews",
                json={"candidate_id": "cand-1", "company_name": "Acme", "role_title": "SWE"},
            )
            for c in clients
        ]
        assert [r.status_code for r in made] == [201] * 40
        served = _served_by(proc.pid, port)
        assert len(served) == 2
        assert sum(served.values()) == 40
        assert min(served.values()) >= 5, served  # 40 hashed over 2: never (nearly) all on one
        # every process reads what any of them wrote
        assert {c.get(made[0].headers["location"]).status_code for c in clients} == {200}
        for c in clients:
            c.close()
    finally:
        code, out = stop(proc)
    assert code == 0, out
    assert "Traceback" not in out
    assert out.count("Application startup complete") == 2


def test_the_processes_of_a_killed_server_stop_by_themselves(tmp_path: Path, pg_fresh: str):
    """Killed outright, the server cannot pass a signal on: its processes notice and stop,
    whether they were still starting or serving, and the port is free again."""
    db = str(tmp_path / "warehouse.duckdb")
    for serving in (False, True):
        port = free_port()
        proc = subprocess.Popen(
            [ITRACK, "serve", "--port", str(port), "--db", db, "--workers", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env(**_on(pg_fresh)),
        )
        deadline = time.monotonic() + 30
        while len(children := _children(proc.pid)) < 2:
            assert time.monotonic() < deadline, "the server did not start its processes"
            time.sleep(0.05)
        if serving:  # both answer before the kill (each health check may reach either)
            for _ in range(20):
                assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        proc.kill()
        proc.wait(timeout=30)
        while any(_running(child) for child in children):
            assert time.monotonic() < deadline + 30, f"a worker outlived the server ({serving=})"
            time.sleep(0.2)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_workers_that_cannot_listen_or_connect_exit_2_in_one_line_each(pg_fresh: str):
    """A port already taken: one line, exit 2. A database nobody answers at: each process says
    so in one line, then the server exits 2 naming it; no traceback."""
    pg = _on(pg_fresh)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--workers", "2", "--port", str(port), **pg)
    assert (done.returncode, done.stderr.strip()) == (
        2,
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use",
    )
    # a database nobody answers at: each process says so in one line, then the server exits
    nobody = {**pg, "ITRACK_PG_DSN": f"postgresql://postgres@127.0.0.1:{port}/x"}
    done = run("serve", "--workers", "2", "--port", str(free_port()), **nobody)
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert (done.returncode, lines) == (
        2,
        [
            f"error: cannot connect to PostgreSQL within 2 s: postgresql://postgres@127.0.0.1:{port}"
            f'/x: connection failed: connection to server at "127.0.0.1", port {port} failed: '
            "Connection refused"
        ]
        * 2
        + ["error: a server process exited with code 2; see its lines above"],
    )
    assert "Traceback" not in done.stderr
    assert "error connecting" not in done.stderr  # the pool's attempts are in the one line


def test_one_process_on_a_taken_port_exits_2_in_one_line(tmp_path: Path):
    """`itrack serve` in one process (the embedded store): a port already taken is one line and
    exit 2, as with --workers; uvicorn alone would log it and exit 3 (a bug, by the CLI's
    codes)."""
    db = tmp_path / "warehouse.duckdb"
    seed_candidates(db)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--port", str(port), "--db", str(db), ITRACK_JWT_SECRET=SECRET)
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n",
    )


def test_one_process_says_where_it_listens(tmp_path: Path):
    """The address line uvicorn prints for the sockets it binds, printed for the ones bound
    here, with the host as given (`localhost` resolves to 127.0.0.1, where `serve` asks)."""
    db = tmp_path / "warehouse.duckdb"
    seed_candidates(db)
    proc, base = serve(db, "--no-auth", "--host", "localhost")
    port = int(base.rsplit(":", 1)[1])
    try:
        assert httpx.get(f"{base}/health").status_code == 200
    finally:
        code, out = stop(proc)
    assert code == 0, out
    assert f"INFO:     Uvicorn running on http://localhost:{port} (Press CTRL+C to quit)\n" in out


def test_sigterm_stops_the_server_while_a_client_stalls_mid_request(tmp_path: Path):
    """A request whose body never completes held `itrack serve` up after SIGTERM for as long as
    its client kept the connection open; now it is answered 503 after the grace period, and the
    server exits while the client still holds the connection."""
    db = tmp_path / "warehouse.duckdb"
    seed_candidates(db)  # `itrack serve` refuses a missing raw store
    proc, base = serve(db, ITRACK_JWT_SECRET=SECRET, ITRACK_ORG_ID=ORG)
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as stalled:
        stalled.sendall(
            b"POST /interviews HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        assert httpx.get(f"{base}/health").status_code == 200  # up, the stalled one read
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=40)
        finally:
            proc.kill()  # a server that did not stop (nothing once it has exited)
        answer = stalled.recv(65536)
    assert proc.returncode == -signal.SIGTERM, out  # uvicorn ends by the signal it stopped for
    assert "Traceback" not in out
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
    assert json.loads(body)["error"] == {
        "status": 503,
        "code": "busy",
        "message": "the server is stopping; retry in a moment",
        "field": None,
        "errors": [],
    }

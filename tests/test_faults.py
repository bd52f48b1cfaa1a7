"""Faults real operations meet: kill -9 mid-run, a full disk, a read-only folder, two writers
at once. Each must leave the raw store exactly as before, with one clear line and exit 2."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ingest.load import ingest_paths
from ingest.store.duckdb.store import raw_store_path
from itrack.generate import generate

ITRACK = str(Path(sys.executable).parent / "itrack")
TABLES = (
    "candidates",
    "interview_processes",
    "interview_stages",
    "interview_status_history",
    "quarantine",
    "ingest_runs",
    "ingest_files",
)


def fingerprint(db: Path) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of the sorted rows of every raw-store table."""
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    try:
        out = {}
        for table in TABLES:
            rows = sorted(map(repr, con.execute(f"select * from {table}").fetchall()))
            out[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
        return out
    finally:
        con.close()


def itrack(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ITRACK, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        **kw,
    )


# `itrack` in a child process that SIGKILLs itself when the ingest run reaches `step`.
KILL_AT_STEP = """
import os, signal, sys
from ingest import load
step = sys.argv.pop(1)
load.STEP_HOOKS.append(lambda reached: reached == step and os.kill(os.getpid(), signal.SIGKILL))
from itrack.cli.main import app
app(prog_name="itrack")
"""


def itrack_killed_at(step: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", KILL_AT_STEP, step, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("faults")
    generate(root / "day1", 300, seed=8)
    generate(root / "day2", 2000, seed=9, invalid_share=0.02)
    return {"day1": root / "day1", "day2": root / "day2"}


# Every step is covered; two run in the slow tier (`make test-all`) to keep `make test` short.
STEPS = [
    "validate",
    "history",
    "commit",
    pytest.param("read", marks=pytest.mark.slow),
    pytest.param("load", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_each_step_leaves_the_store_as_before(tmp_path, data, step):
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([data["day1"]], db=db)
    before = fingerprint(db)
    killed = itrack_killed_at(step, "ingest", str(data["day2"]), "--db", str(db))
    assert killed.returncode == -9
    assert fingerprint(db) == before
    again = itrack("ingest", str(data["day2"]), "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert fingerprint(db)["interview_processes"][0] > before["interview_processes"][0]


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.2, 0.5, 0.9, 1.4, 2.0, 3.0])
def test_kill_at_random_times_leaves_the_store_as_before(tmp_path, data, delay):
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([data["day1"]], db=db)
    before = fingerprint(db)
    proc = subprocess.Popen(
        [ITRACK, "ingest", str(data["day2"]), "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.kill()
    proc.wait()
    after = fingerprint(db)
    finished = after["ingest_runs"][0] == before["ingest_runs"][0] + 1
    assert after == before or finished  # all or nothing
    assert itrack("ingest", str(data["day2"]), "--db", str(db)).returncode == 0


def test_second_writer_exits_2_naming_the_holder_or_waits(tmp_path, data):
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([data["day1"]], db=db)
    # The holder keeps the store until told to let go (stdin), however slow the machine is.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from ingest.store.duckdb.store import open_store\n"
            f"with open_store({str(db)!r}):\n    print('held', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    busy = itrack("ingest", str(data["day2"]), "--db", str(db), "--wait", "0")
    assert busy.returncode == 2
    assert f"database is busy (held by PID {holder.pid})" in busy.stderr
    assert "Traceback" not in busy.stderr
    waiter = subprocess.Popen(
        [ITRACK, "ingest", str(data["day2"]), "--db", str(db), "--wait", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)  # the waiter is starting or already waiting; it must not give up
    assert waiter.poll() is None
    holder.communicate("go\n", timeout=30)
    _out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err


@pytest.fixture
def small_mount(tmp_path):
    """A 32 MB tmpfs: a disk that can really fill up or turn read-only (needs root)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.fail("cannot mount a tmpfs here: the full-disk tests need root (as in CI)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_gives_one_clear_error_and_changes_nothing(small_mount, data):
    db = small_mount / "warehouse.duckdb"
    ingest_paths([data["day1"]], db=db)
    before = fingerprint(db)
    filler = small_mount / "filler"
    free = os.statvfs(small_mount).f_bavail * os.statvfs(small_mount).f_frsize
    filler.write_bytes(b"\0" * max(free - 64 * 1024, 0))
    full = itrack("ingest", str(data["day2"]), "--db", str(db))
    assert full.returncode == 2, full.stderr
    assert full.stderr.count("\n") <= 2 and "Traceback" not in full.stderr
    filler.unlink()
    assert fingerprint(db) == before
    assert itrack("ingest", str(data["day2"]), "--db", str(db)).returncode == 0


def test_read_only_folder_gives_one_clear_error_and_changes_nothing(small_mount, data):
    db = small_mount / "warehouse.duckdb"
    ingest_paths([data["day1"]], db=db)
    before = fingerprint(db)
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    try:
        denied = itrack("ingest", str(data["day2"]), "--db", str(db))
        assert denied.returncode == 2, denied.stderr
        assert "Traceback" not in denied.stderr
        assert "read-only" in denied.stderr.lower() or "cannot" in denied.stderr.lower()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_mount)], check=True)
    assert fingerprint(db) == before

"""Issue #13, items 3-4: the nightly build and the service's writers, coordinated; killed and
failed builds leave nothing that keeps the pipeline down; feeders.json only for what is
published. Real processes, a real full disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ingest.store.duckdb.store import raw_store_path
from itrack.generate import generate
from itrack.pipeline import build_dir, run_build
from tests.conftest import ctrl_c_reaches_children
from tests.test_faults import itrack
from tests.test_robust_store import hold_lock, release, wait_until_waiting, writer_lock

QUIET = {"take_backup": False, "write_html": False, "note": lambda _m: None}
NO_EXTRAS = ("--no-backup", "--no-html")

# A service writer that keeps writing for `seconds`: takes the writer lock (waiting for it),
# inserts a status-history row, holds the store open a moment, releases, again.
WRITER = """
import sys, time, uuid
from ingest.store.duckdb.store import open_store
end = time.monotonic() + float(sys.argv[2]); n = 0
print('writing', flush=True)
while time.monotonic() < end:
    with open_store(sys.argv[1], wait_seconds=120) as con:
        con.execute("insert into feedback_state values (?, 'w', now())", [f'w-{uuid.uuid4()}'])
        n += 1
        time.sleep(0.3)
    time.sleep(0.02)
print(n, flush=True)
"""


# `itrack` in a child process that SIGKILLs itself when the build reaches its publish step.
KILL_AT_PUBLISH = """
import os, signal
from itrack import pipeline
pipeline.STEP_HOOKS.append(lambda step: step == "publish" and os.kill(os.getpid(), signal.SIGKILL))
from itrack.cli.main import app
app(prog_name="itrack")
"""


# `itrack` in a child process that presses Ctrl-C (SIGINT to itself) when dbt starts its first
# node: inside dbt's own run, on dbt-duckdb's connections (a dbt event callback: the hook dbt
# offers, added to every dbtRunner the build makes).
CTRL_C_IN_DBT = """
import os, signal
from dbt.cli import main as dbt_main
runner_init, sent = dbt_main.dbtRunner.__init__, []
def ctrl_c_at_the_first_node(event):
    if event.info.name == "NodeStart" and not sent:
        sent.append(event)
        os.kill(os.getpid(), signal.SIGINT)
def init(self, manifest=None, callbacks=None):
    runner_init(self, manifest, [*(callbacks or []), ctrl_c_at_the_first_node])
dbt_main.dbtRunner.__init__ = init
from itrack.cli.main import app
app(prog_name="itrack")
"""


def state_of(db: Path) -> dict[str, str]:
    """Digests of the published outputs."""
    files = [db, db.parent / "feeders.json", db.parent / "candidate_placements.json"]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.exists()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("build_inputs")
    generate(root / "day1", 150, seed=21)
    generate(root / "day2", 200, seed=21)
    return {"day1": root / "day1", "day2": root / "day2"}


@pytest.mark.slow  # ~30-50 s on the shared machine: `make test-all`
def test_build_with_a_busy_writer_reads_a_snapshot_and_never_fails_on_the_lock(
    tmp_path, inputs, shared_plans
):
    db = tmp_path / "warehouse.duckdb"
    run_build([inputs["day1"]], db=db, **QUIET, plan_cache=shared_plans)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), "25"], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "writing"
    built = itrack("build", str(inputs["day2"]), "--db", str(db), "--wait", "120", *NO_EXTRAS)
    assert built.returncode == 0, built.stderr + built.stdout
    assert "published" in built.stdout
    writes = int(writer.stdout.readline())
    assert writer.wait() == 0 and writes > 10  # the writer was never blocked for long
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("select count(*) from fct_interview_processes").fetchone() == (200,)
    con.close()
    # nothing of the build is left behind: no build copy, no snapshot
    assert sorted(p.name for p in build_dir(db).iterdir() if "build-" in p.name) == []


def test_busy_store_exits_2_naming_the_holder_and_wait_waits(tmp_path, inputs, shared_plans):
    db = tmp_path / "warehouse.duckdb"
    run_build([inputs["day1"]], db=db, **QUIET, plan_cache=shared_plans)
    before = state_of(db)
    holder = hold_lock(db)
    busy = itrack("build", str(inputs["day2"]), "--db", str(db), "--wait", "0", *NO_EXTRAS)
    assert busy.returncode == 2, busy.stderr
    assert f"database is busy (held by PID {holder.pid})" in busy.stderr
    assert "Traceback" not in busy.stderr and busy.stderr.count("\n") == 1
    assert state_of(db) == before
    waiter = background("build", str(inputs["day2"]), "--db", str(db), "--wait", "300", *NO_EXTRAS)
    wait_until_waiting(waiter, writer_lock(db))
    release(holder)
    _out, err = waiter.communicate(timeout=600)
    assert waiter.returncode == 0, err


def test_feedback_honours_wait(tmp_path, inputs, shared_plans):
    db = tmp_path / "warehouse.duckdb"
    run_build([inputs["day1"]], db=db, **QUIET, plan_cache=shared_plans)
    holder = hold_lock(db)
    busy = itrack("feedback", "--db", str(db), "--full", "--wait", "0")
    assert busy.returncode == 2, busy.stderr
    assert f"database is busy (held by PID {holder.pid})" in busy.stderr
    waiter = background("feedback", "--db", str(db), "--full", "--wait", "300")
    wait_until_waiting(waiter, writer_lock(db))
    release(holder)
    _out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err


def background(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "itrack"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow  # ~30-50 s on the shared machine: `make test-all`
def test_second_build_is_busy_exit_2_naming_the_first(tmp_path, inputs, shared_plans):
    db = tmp_path / "warehouse.duckdb"
    run_build([inputs["day1"]], db=db, **QUIET, plan_cache=shared_plans)
    first = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "itrack"),
            "build",
            str(inputs["day2"]),
            "--db",
            str(db),
            *NO_EXTRAS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = build_dir(db) / "warehouse.build.lock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        not lock.exists() or lock.read_text().strip() != str(first.pid)
    ):
        time.sleep(0.02)
    second = itrack("build", str(inputs["day2"]), "--db", str(db), "--wait", "0", *NO_EXTRAS)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2, second.stderr
    assert f"build is busy (held by PID {first.pid})" in second.stderr


@pytest.mark.slow  # ~30-50 s on the shared machine: `make test-all`
def test_kill_at_publish_writes_no_feedback_for_an_unpublished_warehouse(
    tmp_path, inputs, shared_plans
):
    db = tmp_path / "warehouse.duckdb"
    run_build([inputs["day1"]], db=db, **QUIET, plan_cache=shared_plans)
    before = state_of(db)
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    log_before = con.execute("select count(*) from feedback_runs").fetchone()
    state_before = con.execute("select * from feedback_state order by key").fetchall()
    con.close()
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILL_AT_PUBLISH,
            "build",
            str(inputs["day2"]),
            "--db",
            str(db),
            *NO_EXTRAS,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9
    assert state_of(db) == before  # neither the warehouse nor feeders.json nor placements
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    assert con.execute("select count(*) from feedback_runs").fetchone() == log_before
    assert con.execute("select * from feedback_state order by key").fetchall() == state_before
    con.close()
    leftovers = sorted(
        p.name for p in build_dir(db).iterdir() if "build-" in p.name or "snapshot" in p.name
    )
    assert leftovers  # the killed run left its build copy and snapshot ...
    again = itrack("build", str(inputs["day2"]), "--db", str(db), *NO_EXTRAS)
    assert again.returncode == 0, again.stderr
    # ... which the next build swept
    assert (
        sorted(
            p.name for p in build_dir(db).iterdir() if "build-" in p.name or "snapshot" in p.name
        )
        == []
    )
    assert state_of(db)["feeders.json"] != before["feeders.json"]


@pytest.fixture
def disk(tmp_path):
    """A 160 MB tmpfs: big enough for a small build, small enough to fill (needs root)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)], capture_output=True
    )
    assert done.returncode == 0, done.stderr  # the fault tests need root, as in test_faults
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(mount: Path, leave: int) -> Path:
    filler = mount / "filler"
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    filler.write_bytes(b"\0" * max(free - leave, 0))
    return filler


def test_full_disk_build_fails_cleanly_and_the_next_one_works(disk, inputs, shared_plans):
    db = disk / "warehouse.duckdb"
    run_build([inputs["day1"]], db=db, **QUIET, plan_cache=shared_plans)
    before = state_of(db)
    for leave in (2 << 20, 64 << 10):  # fails while copying the build file, or earlier
        filler = fill(disk, leave)
        full = itrack("build", str(inputs["day2"]), "--db", str(disk / "warehouse.duckdb"))
        assert full.returncode == 2, full.stdout + full.stderr
        assert "Traceback" not in full.stderr and full.stderr.count("\n") == 1
        assert state_of(db) == before
        assert [p.name for p in build_dir(db).iterdir() if "build-" in p.name] == []
        assert [p.name for p in (disk / "backups").glob("*.partial")] == []
        filler.unlink()
    ok = itrack("build", str(inputs["day2"]), "--db", str(db), "--no-html")
    assert ok.returncode == 0, ok.stderr
    assert state_of(db)["feeders.json"] != before["feeders.json"]


@pytest.mark.slow  # fault injection, a first build running dbt itself (~12 s): `make test-all`
def test_ctrl_c_while_dbt_runs_a_first_build_is_one_line_exit_130(tmp_path, inputs):
    """Found by pressing Ctrl-C while a first build's dbt ran (dbt itself, no plan to replay):
    dbt caught the KeyboardInterrupt and printed "Encountered an error:" and its traceback on
    stdout, and the build said "dbt build failed, nothing published and no feedback written:
    dbt failed; see ..." (exit 1). Now exit 130, one line saying the ingest run committed before
    stays, no traceback; nothing is published, no build file is left, and the next build
    publishes. Fails before the fix (exit 1 and the traceback)."""
    db = tmp_path / "warehouse.duckdb"
    build = ["build", str(inputs["day1"]), "--db", str(db), "--no-replay", *NO_EXTRAS]
    with ctrl_c_reaches_children():
        stopped = subprocess.run(
            [sys.executable, "-c", CTRL_C_IN_DBT, *build],
            capture_output=True,
            text=True,
            timeout=300,
        )
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    runs = con.execute("select run_id, accepted, status from ingest_runs").fetchall()
    con.close()
    [(run_id, accepted, status)] = runs
    assert status == "completed"
    assert (stopped.returncode, stopped.stderr) == (
        130,
        f"error: interrupted; ingest run {run_id} ({accepted} accepted) is in the raw store and "
        "stays: run the build again to publish it\n",
    )
    # the ingest step's line, then nothing of dbt's
    [ingest_line] = stopped.stdout.splitlines()
    assert ingest_line[9:].startswith(f"ingest: run {run_id}: {accepted} accepted, 0 rejected (")
    assert not db.exists()
    assert sorted(p.name for p in build_dir(db).iterdir()) == ["dbt", "warehouse.build.lock"]
    again = itrack(*build)
    assert again.returncode == 0, again.stderr
    assert db.exists()

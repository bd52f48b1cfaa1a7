"""Issue #13, the raw store: every writer takes the one lock (restore included), backups
survive full disks and killed runs, and restore never runs SQL taken from a backup."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ingest.checksum import sha256_of
from ingest.load import ingest_paths
from ingest.migrate import discover
from ingest.store.duckdb.backup import MANIFEST, backup
from ingest.store.duckdb.store import MIGRATIONS, raw_store_path
from itrack.generate import generate
from tests.conftest import ctrl_c_reaches_children
from tests.test_faults import ITRACK, fingerprint, itrack, small_mount  # noqa: F401 - fixture

HOLD = (
    "import sys; from ingest.store.duckdb.store import open_store\n"
    "with open_store(sys.argv[1]) as con:\n"
    "    con.execute(\"insert into feedback_state values ('held', 'x', now())\")\n"
    "    print('held', flush=True); sys.stdin.readline()\n"
)


def hold_lock(db: Path) -> subprocess.Popen:
    """A real second process holding the writer lock (and writing) until `release(holder)`,
    however slow the machine is."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.communicate("go\n", timeout=120)
    assert holder.returncode == 0


def writer_lock(db: Path) -> Path:
    return raw_store_path(db).with_name(raw_store_path(db).name + ".lock")


def wait_until_waiting(proc: subprocess.Popen, lock: Path) -> None:
    """Return once `proc` has `lock` open: with the lock still held elsewhere, it is waiting in
    the lock's loop (no guessing with sleeps on a loaded machine)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        with contextlib.suppress(OSError):  # an fd closed while we looked
            for fd in Path(f"/proc/{proc.pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == str(lock):
                        return
        time.sleep(0.02)
    raise AssertionError(f"{proc.args} never waited for {lock}")


def test_restore_takes_the_writer_lock_busy_exit_2_or_wait(tmp_path):
    generate(tmp_path / "in", 40, seed=3)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    snapshot = backup(db, tmp_path / "bk")
    holder = hold_lock(db)
    busy = itrack("restore", str(snapshot), "--db", str(db), "--overwrite", "--wait", "0")
    assert busy.returncode == 2, busy.stderr
    assert f"database is busy (held by PID {holder.pid})" in busy.stderr
    assert "Traceback" not in busy.stderr
    waiter = subprocess.Popen(
        [ITRACK, "restore", str(snapshot), "--db", str(db), "--overwrite", "--wait", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_waiting(waiter, writer_lock(db))  # it queued behind the holder ...
    release(holder)
    _out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err  # ... and restored once the holder let go
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    # the restore ran after the writer committed, so it replaced a store nobody was writing
    assert con.execute("select count(*) from feedback_state where key = 'held'").fetchone() == (0,)
    con.close()


def test_db_upgrade_waits_for_a_writer_as_every_writer_does(tmp_path):
    """Found by reading `itrack db upgrade --help`: its --wait defaulted to 0, so an upgrade
    started during a nightly build failed at once (exit 2, busy) where the README says writers
    wait up to 30 s. Without --wait it now queues behind the holder and applies once it lets go."""
    db = tmp_path / "warehouse.duckdb"
    holder = hold_lock(db)
    waiter = subprocess.Popen(
        [ITRACK, "db", "upgrade", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_waiting(waiter, writer_lock(db))
    release(holder)
    out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err
    total = len(discover(MIGRATIONS))
    assert out == f"{raw_store_path(db)}: nothing to apply; {total} migration(s) in place\n"


def test_a_restore_checks_the_snapshot_once_it_holds_the_lock(tmp_path):
    """Found by reading restore against the lock: it checked the snapshot's files, then waited
    for the writer lock, then read them. A file changed while it waited (a table swapped for
    rows of someone's choosing, same row count) was restored unchecked, exit 0. Now it is
    checked under the lock: exit 2 naming the file, the raw store untouched."""
    generate(tmp_path / "in", 40, seed=3)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    snapshot = backup(db, tmp_path / "bk")
    holder = hold_lock(db)
    waiter = subprocess.Popen(
        [ITRACK, "restore", str(snapshot), "--db", str(db), "--overwrite", "--wait", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_waiting(waiter, writer_lock(db))
    table = snapshot / "candidates.parquet"
    con = duckdb.connect()
    con.execute(
        f"copy (select * replace ('Mallory' as full_name) from read_parquet('{table}'))"
        f" to '{tmp_path / 'swapped.parquet'}' (format parquet)"
    )
    con.close()
    table.write_bytes((tmp_path / "swapped.parquet").read_bytes())
    release(holder)
    out, err = waiter.communicate(timeout=300)
    assert (waiter.returncode, out) == (2, "")
    assert err == f"error: {snapshot}: candidates.parquet does not match the manifest checksum\n"
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    names = con.execute("select count(*) from candidates where full_name = 'Mallory'").fetchone()
    held = con.execute("select count(*) from feedback_state where key = 'held'").fetchone()
    con.close()
    assert (names, held) == ((0,), (1,))  # the holder's write stands; nothing was restored


READ = (
    "import sys, duckdb\n"
    "con = duckdb.connect(sys.argv[1], read_only=True)\n"
    "print('reading', flush=True); sys.stdin.readline()\n"
)


def wait_until_retrying(proc: subprocess.Popen, lock: Path) -> None:
    """Return once `proc` holds the writer `lock` (its PID is in it) and sleeps: after taking
    the lock, the only sleep is between two tries to open the store, so one try has failed
    (or once it has exited). No guessing with sleeps on a loaded machine."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            held = lock.read_text().strip() == str(proc.pid)
            if held and Path(f"/proc/{proc.pid}/wchan").read_text() == "hrtimer_nanosleep":
                return
        time.sleep(0.01)
    raise AssertionError(f"{proc.args} never retried opening the store")


def test_a_writer_waits_for_a_reader_that_has_the_store_open(tmp_path):
    """Found by exploratory testing: `itrack backup --wait 10` while another process read the
    raw store (`itrack rejects`, `itrack interview list`, the API) failed at once, "database is
    busy (held by PID <the reader>)", exit 2: writers waited for the writer lock only, and DuckDB
    lets no process write a file another one has open. Now a writer waits for the file too, as
    readers wait for a writer, up to --wait."""
    generate(tmp_path / "in", 40, seed=3)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    reader = subprocess.Popen(
        [sys.executable, "-c", READ, str(raw_store_path(db))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline().strip() == "reading"
    waiter = subprocess.Popen(
        [ITRACK, "backup", "--db", str(db), "--to", str(tmp_path / "bk"), "--wait", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_retrying(waiter, writer_lock(db))
    reader.communicate("go\n", timeout=120)
    out, err = waiter.communicate(timeout=300)
    assert (waiter.returncode, err) == (0, ""), out
    [snapshot] = (tmp_path / "bk").iterdir()
    assert out == f"backup written: {snapshot}\n"


def test_restore_started_during_an_ingest_never_loses_its_rows(tmp_path):
    """The reported loss: an ingest started 0.2 s before a restore said `accepted` and its rows
    were gone. Now the restore finds the store busy (exit 2, the ingest's PID named) and the
    ingest's run is in the store afterwards."""
    generate(tmp_path / "day1", 300, seed=3)
    generate(tmp_path / "day2", 20000, seed=31)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "day1"], db=db)
    snapshot = backup(db, tmp_path / "bk")
    ingest = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "itrack"),
            "ingest",
            str(tmp_path / "day2"),
            "--db",
            str(db),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = writer_lock(db)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and lock.read_text().strip() != str(ingest.pid):
        time.sleep(0.05)
    restore_run = itrack("restore", str(snapshot), "--db", str(db), "--overwrite", "--wait", "0")
    out, err = ingest.communicate(timeout=300)
    assert restore_run.returncode == 2, restore_run.stderr
    assert f"database is busy (held by PID {ingest.pid})" in restore_run.stderr
    assert ingest.returncode == 0, err
    run_id = json.loads(out)["run_id"]
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    assert con.execute(
        "select count(*) from ingest_runs where run_id = ?", [run_id]
    ).fetchone() == (1,)
    con.close()


def test_killed_and_failed_backups_are_swept_and_ignored(tmp_path):
    generate(tmp_path / "in", 40, seed=3)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    root = tmp_path / "bk"
    good = backup(db, root)
    # what a full disk used to leave: an empty manifest in a partial folder, and a folder whose
    # manifest is truncated; both sort after the good one by name
    (root / "backup-99991231T000000-aaaaaaaa.partial").mkdir()
    (root / "backup-99991231T000000-aaaaaaaa.partial" / MANIFEST).write_text("")
    (root / "backup-99991231T000000-bbbbbbbb").mkdir()
    (root / "backup-99991231T000000-bbbbbbbb" / MANIFEST).write_text('{"created_at": "99')
    restored = itrack("restore", str(root), "--db", str(tmp_path / "other.duckdb"))
    assert restored.returncode == 0, restored.stderr
    assert f"restored {good} ->" in restored.stdout
    again = itrack("backup", "--to", str(root), "--db", str(db), "--keep", "1")
    assert again.returncode == 0, again.stderr
    names = sorted(p.name for p in root.iterdir())
    assert not any(n.endswith(".partial") for n in names)  # swept under the lock
    assert "backup-99991231T000000-bbbbbbbb" in names  # unreadable: ignored, never deleted
    assert good.name not in names  # retention counted only complete snapshots (keep 1)
    partial = itrack(
        "restore", str(root / "backup-99991231T000000-bbbbbbbb"), "--db", str(db), "--overwrite"
    )
    assert partial.returncode == 2 and "unreadable or incomplete" in partial.stderr


def test_backup_on_a_full_disk_leaves_nothing_and_later_backups_work(small_mount):  # noqa: F811
    generate(small_mount.parent / "in", 300, seed=5)
    db = small_mount / "warehouse.duckdb"
    ingest_paths([small_mount.parent / "in"], db=db)
    root = small_mount / "bk"
    filler = small_mount / "filler"
    free = os.statvfs(small_mount).f_bavail * os.statvfs(small_mount).f_frsize
    filler.write_bytes(b"\0" * max(free - 16 * 1024, 0))
    full = itrack("backup", "--to", str(root), "--db", str(db))
    assert full.returncode == 2, full.stderr
    assert "no snapshot was written" in full.stderr and "Traceback" not in full.stderr
    assert list(root.iterdir()) == []
    filler.unlink()
    ok = itrack("backup", "--to", str(root), "--db", str(db))
    assert ok.returncode == 0, ok.stderr
    restored = itrack("restore", str(root), "--db", str(small_mount / "copy.duckdb"))
    assert restored.returncode == 0, restored.stderr


def _pwn(snapshot: Path, marker: Path) -> None:
    """An attacker who can edit the backup folder: SQL files that write a file, and a manifest
    whose checksums are recomputed so that they match."""
    sql = f"COPY (SELECT 42 AS pwned) TO '{marker}' (FORMAT csv);\n"
    for name in ("schema.sql", "load.sql"):
        (snapshot / name).write_text(sql)
    manifest = json.loads((snapshot / MANIFEST).read_text())
    manifest["files"].update({n: sha256_of(snapshot / n) for n in ("schema.sql", "load.sql")})
    (snapshot / MANIFEST).write_text(json.dumps(manifest))


def test_restore_never_executes_sql_from_the_backup(tmp_path):
    generate(tmp_path / "in", 40, seed=3)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    before = fingerprint(db)
    snapshot = backup(db, tmp_path / "bk")
    marker = tmp_path / "pwned.csv"
    _pwn(snapshot, marker)
    other = tmp_path / "other.duckdb"
    restored = itrack("restore", str(snapshot), "--db", str(other))
    assert restored.returncode == 0, restored.stderr
    assert not marker.exists()
    assert fingerprint(other) == before  # the data came back all the same


def test_signed_manifest_detects_tampering(tmp_path):
    generate(tmp_path / "in", 40, seed=3)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    key = tmp_path / "keys" / "backup.key"
    key.parent.mkdir()
    key.write_text("s3cret-outside-the-backup-folder\n")
    made = itrack("backup", "--to", str(tmp_path / "bk"), "--db", str(db), "--key-file", str(key))
    assert made.returncode == 0, made.stderr
    snapshot = Path(made.stdout.split("backup written: ")[1].strip())
    args = ("restore", str(snapshot), "--key-file", str(key))
    assert itrack(*args, "--db", str(tmp_path / "a.duckdb")).returncode == 0
    # rewrite a table and recompute its checksum: the sha256 manifest alone would accept it
    table = snapshot / "candidates.parquet"
    con = duckdb.connect()
    con.execute(
        f"copy (select * from read_parquet('{table}') limit 1) to '{tmp_path / 't.parquet'}'"
        " (format parquet)"
    )
    con.close()
    table.write_bytes((tmp_path / "t.parquet").read_bytes())
    manifest = json.loads((snapshot / MANIFEST).read_text())
    manifest["files"]["candidates.parquet"] = sha256_of(table)
    manifest["row_counts"]["candidates"] = 1
    (snapshot / MANIFEST).write_text(json.dumps(manifest))
    refused = itrack(*args, "--db", str(tmp_path / "b.duckdb"))
    assert refused.returncode == 2
    assert "signature does not match" in refused.stderr
    assert not raw_store_path(tmp_path / "b.duckdb").exists()


def test_a_key_given_for_an_unsigned_backup_says_it_is_unsigned(tmp_path):
    """Found by exploratory testing: restoring a backup taken without --key-file, with one,
    said "the manifest's signature does not match the key", sending the operator after another
    key; the manifest has no signature at all."""
    generate(tmp_path / "in", 40, seed=3)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    snapshot = backup(db, tmp_path / "bk")
    key = tmp_path / "backup.key"
    key.write_text("s3cret\n")
    target = tmp_path / "b.duckdb"
    refused = itrack("restore", str(snapshot), "--db", str(target), "--key-file", str(key))
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"error: {snapshot}: the manifest is not signed (backed up without --key-file), "
        "so the key cannot vouch for it; not restored\n"
    )
    assert not raw_store_path(target).exists()


def _has_open(proc: subprocess.Popen, path: Path) -> bool:
    with contextlib.suppress(OSError):  # an fd closed while we looked
        for fd in Path(f"/proc/{proc.pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == str(path):
                    return True
    return False


def test_ctrl_c_during_a_restore_is_an_interrupt_not_a_bad_backup(tmp_path):
    """Found by exploratory testing: Ctrl-C while a restore read a table said "<backup>:
    quarantine.parquet does not fit table quarantine: Query interrupted", exit 2, blaming a
    sound backup (DuckDB raises its own error for it). Now: interrupted, exit 130, and
    nothing of the restore is left."""
    db = tmp_path / "warehouse.duckdb"
    assert itrack("db", "upgrade", "--db", str(db), "--create").returncode == 0
    con = duckdb.connect(str(raw_store_path(db)))  # a table that takes a while to read back
    con.execute(
        "insert into quarantine select 'run', 'f', i, 'candidates', md5(i::varchar),"
        " md5(i::varchar) || md5((i + 1)::varchar), 'malformed_json', null, 'm', false, null,"
        " now() from range(500000) t(i)"
    )
    con.close()
    snapshot = backup(db, tmp_path / "bk")
    target = tmp_path / "restored" / "warehouse.duckdb"
    with ctrl_c_reaches_children():
        restoring = subprocess.Popen(
            [ITRACK, "restore", str(snapshot), "--db", str(target)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    staging = tmp_path / "restored" / "warehouse.raw.duckdb.restoring"
    deadline = time.monotonic() + 240
    # filling the staging file and reading the table (not hashing it, before): inside DuckDB
    while not (staging.exists() and _has_open(restoring, snapshot / "quarantine.parquet")):
        assert restoring.poll() is None and time.monotonic() < deadline, restoring.communicate()
        time.sleep(0.005)
    restoring.send_signal(signal.SIGINT)
    out, err = restoring.communicate(timeout=120)
    assert (restoring.returncode, out, err) == (
        130,
        "",
        "error: interrupted; nothing of this run was written\n",
    )
    assert sorted(p.name for p in target.parent.iterdir()) == ["warehouse.raw.duckdb.lock"]


def _cpu_ticks(proc: subprocess.Popen) -> int:
    """CPU time `proc` has used (user + system, in clock ticks)."""
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.parametrize(
    "query",
    [
        "select count(*) from range(3000000000) a, range(10) b",
        "select sum(i) from range(10000000000000) t(i)",
    ],
    ids=["rows_in_chunks", "one_row"],
)
def test_ctrl_c_during_a_query_stops_it_as_an_interrupt(tmp_path, query):
    """Found by exploratory testing: Ctrl-C during a DuckDB query outside backup and restore
    (an ingest's load, `itrack sql -c` here) ended in "unexpected RuntimeError: Query
    interrupted (set ITRACK_DEBUG=1 ...)", exit 3, the code of a bug: the one handler of every
    command now says interrupted, exit 130. And a query whose answer is one row (`sum` over a
    big table) was noticed only when it returned, minutes later: DuckDB's Python client checks
    for signals only between result chunks. A watcher woken by the signal now interrupts the
    command's DuckDB connections (ingest.interrupts). Both queries would run for minutes to
    hours; the 60 s bound only catches the old behaviour (they stop within a second)."""
    db = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db)).close()
    with ctrl_c_reaches_children():
        querying = subprocess.Popen(
            [ITRACK, "sql", "--db", str(db), "-c", f"select 41 + 1 as answer; {query}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        printed = [querying.stdout.readline() for _ in range(3)]
        assert printed == ["1 row(s):\n", "answer\n", "    42\n"]  # the long query runs next
        start = _cpu_ticks(querying)
        while _cpu_ticks(querying) < start + 50:  # half a CPU second: inside the long query
            assert querying.poll() is None, querying.communicate()
            time.sleep(0.01)
        querying.send_signal(signal.SIGINT)
        out, err = querying.communicate(timeout=60)
    finally:
        querying.kill()  # the old code still running (the timeout failed the test): stop it
    assert (querying.returncode, out, err) == (
        130,
        "",
        "error: interrupted; nothing of this run was written\n",
    )


# `itrack` in a child process that SIGKILLs itself when a restore reaches `step`.
KILL_AT_RESTORE_STEP = """
import os, signal, sys
from ingest.store.duckdb import backup
step = sys.argv.pop(1)
backup.STEP_HOOKS.append(lambda reached: reached == step and os.kill(os.getpid(), signal.SIGKILL))
from itrack.cli.main import app
app(prog_name="itrack")
"""


def test_a_killed_restore_keeps_the_raw_store_and_the_next_writer_removes_its_staging_file(
    tmp_path,
):
    """Found by an exploratory run: a restore killed with its staging file filled left
    `warehouse.raw.duckdb.restoring` behind until a later restore got as far as filling one
    (one without --overwrite refused first). The next command taking the writer lock, a
    restore or a build, removes it; the raw store is the one from before the kill."""
    generate(tmp_path / "in", 40, seed=3)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    snapshot = backup(db, tmp_path / "bk")
    counts = json.loads((snapshot / MANIFEST).read_text())["row_counts"]
    generate(tmp_path / "more", 20, seed=4)
    ingest_paths([tmp_path / "more"], db=db)  # the raw store now differs from the backup
    before = fingerprint(db)
    raw = raw_store_path(db)
    staging = tmp_path / "warehouse.raw.duckdb.restoring"
    for args, code, stderr in (
        (["restore", str(snapshot)], 2, f"error: {raw} exists; pass --overwrite to replace it\n"),
        (["build", "--no-backup", "--no-html"], 0, None),
    ):
        killed = subprocess.run(
            [sys.executable, "-c", KILL_AT_RESTORE_STEP, "staged", "restore", str(snapshot)]
            + ["--db", str(db), "--overwrite"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert killed.returncode == -9, killed.stderr
        assert _row_counts(staging, counts) == counts  # killed with the backup staged
        assert fingerprint(db) == before
        after = itrack(*args, "--db", str(db))
        assert after.returncode == code, after.stderr
        if stderr is not None:
            assert after.stderr == stderr
        assert sorted(p.name for p in tmp_path.iterdir() if ".restoring" in p.name) == []
        assert fingerprint(db) == before


def _row_counts(path: Path, tables: dict) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()

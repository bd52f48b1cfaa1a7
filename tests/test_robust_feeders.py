# ruff: noqa: F811 - pytest fixtures imported from other test modules
"""Issue #13: feeders.json is the scoring job's file. Its concurrent edits are never lost, links
are written through, what is not a regular writable JSON file is refused, and foreign values
round-trip exactly. Real files, symlinks, FIFOs and processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feedback.feeders import FeedersUpdate, merge_metrics
from itrack.cli.main import app
from tests.test_faults import small_mount  # noqa: F401 - fixture
from tests.test_feedback import NOW, built_once, feed, wh  # noqa: F401 - fixtures
from tests.test_robust_store import wait_until_waiting

FOREIGN = (
    b'{\n  "version": 1E2,\n  "threshold": 0.30000000000000004,\n  "huge": 1e400,\n'
    b'  "precise": 12345678901234567890.123456789012345678901234567890,\n'
    b'  "int": 123456789012345678901234567890,\n  "surrogate": "\\ud800 lone",\n'
    b'  "feeders": {\n    "referral": {\n      "weight": 1.50\n    }\n  }\n}\n'
)


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def feedback_cli(db: Path, *extra: str):
    return invoke(
        "feedback",
        "--db",
        str(db),
        "--feeders",
        str(db.parent / "feeders.json"),
        "--placements",
        str(db.parent / "placements.json"),
        *extra,
    )


def test_foreign_values_round_trip_exactly(wh):
    feeders = wh.parent / "feeders.json"
    feeders.write_bytes(FOREIGN)
    assert feedback_cli(wh).exit_code == 0
    text = feeders.read_text(encoding="utf-8")
    for spelling in (
        '"version": 1E2,',
        '"threshold": 0.30000000000000004,',
        '"huge": 1e400,',
        '"precise": 12345678901234567890.123456789012345678901234567890,',
        '"int": 123456789012345678901234567890,',
        '"surrogate": "\\ud800 lone",',
        '"weight": 1.50,',
    ):
        assert spelling in text
    assert "Infinity" not in text
    first = feeders.read_bytes()
    assert feedback_cli(wh).exit_code == 0
    assert feeders.read_bytes() == first  # stable: updated_at did not move


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"feeders": {}, "a": 1, "a": 2}', 'duplicate key "a"'),
        (b'{"feeders": {"x": {"weight": NaN}}}', "NaN is not a JSON number"),
        (b'{"feeders": {"x": {"weight": -Infinity}}}', "-Infinity is not a JSON number"),
        (b'{"feeders": {}, "deep": ' + b"[" * 50000 + b"]" * 50000 + b"}", "nested too deeply"),
        (b'{"feeders": {}, "bad": "\xff"}', "not valid UTF-8 (byte 24)"),
    ],
)
def test_invalid_json_is_refused_with_the_reason(wh, content, reason):
    feeders = wh.parent / "feeders.json"
    feeders.write_bytes(content)
    result = feedback_cli(wh)
    assert result.exit_code == 2, result.output
    assert reason in result.stderr and "left untouched" in result.stderr
    assert feeders.read_bytes() == content


@pytest.mark.parametrize(
    ("content", "where", "message"),
    [  # each message as jsonschema.validate words it (its best match)
        (b'{"feeders": []}', "feeders", "[] is not of type 'object'"),
        (b"{}", "(top level)", "'feeders' is a required property"),
        (
            b'{"feeders": {"x": {"metrics": {"placements": -1}}}}',
            "feeders/x/metrics",
            "'candidates_sourced' is a required property",
        ),
        (
            b'{"feeders": {"x": {"metrics": null}}}',
            "feeders/x/metrics",
            "None is not of type 'object'",
        ),
    ],
)
def test_a_file_against_the_schema_is_refused_naming_where(wh, content, where, message):
    feeders = wh.parent / "feeders.json"
    feeders.write_bytes(content)
    for _ in range(2):  # the schema's validator is built once per process: the same answer again
        result = feedback_cli(wh)
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: {feeders}: does not match feedback/feeders.schema.json at {where}: "
            f"{message}; left untouched\n"
        )
        assert feeders.read_bytes() == content


def test_bom_is_accepted_and_dropped(wh):
    feeders = wh.parent / "feeders.json"
    feeders.write_bytes(b"\xef\xbb\xbf" + json.dumps({"feeders": {}, "keep": "me"}).encode())
    assert feedback_cli(wh).exit_code == 0
    data = feeders.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert json.loads(data)["keep"] == "me"
    assert feedback_cli(wh).exit_code == 0  # and accepted again on every run


def test_symlink_is_written_through(wh):
    real = wh.parent / "scoring" / "feeders.json"
    real.parent.mkdir()
    real.write_text(json.dumps({"feeders": {}, "owner": "scoring"}))
    link = wh.parent / "feeders.json"
    link.symlink_to(real)
    assert feedback_cli(wh).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    written = json.loads(real.read_text())
    assert written["owner"] == "scoring" and written["feeders"]  # metrics landed in the target
    assert (real.parent / "feeders.json.bak").exists()


def test_read_only_file_is_refused(wh):
    feeders = wh.parent / "feeders.json"
    feeders.write_text(json.dumps({"feeders": {}}))
    feeders.chmod(0o444)
    result = feedback_cli(wh)
    assert result.exit_code == 2, result.output
    assert f"{feeders}: the file is read-only; not overwritten" in result.stderr
    assert json.loads(feeders.read_text()) == {"feeders": {}}
    assert stat.S_IMODE(feeders.stat().st_mode) == 0o444


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_non_regular_file_is_refused_without_hanging(wh, kind):
    feeders = wh.parent / "feeders.json"
    os.mkfifo(feeders) if kind == "fifo" else feeders.mkdir()
    started = time.monotonic()
    result = feedback_cli(wh)
    assert result.exit_code == 2, result.output
    assert "not a regular file" in result.stderr
    assert time.monotonic() - started < 60


def test_stale_temp_files_of_a_killed_run_are_swept(wh):
    feeders = wh.parent / "feeders.json"
    stale = [wh.parent / ".feeders.json.abc123.tmp", wh.parent / ".feeders.json.bak.xyz.tmp"]
    for path in stale:
        path.write_text("half")
    assert feedback_cli(wh).exit_code == 0
    assert not any(p.exists() for p in stale)
    assert json.loads(feeders.read_text())["feeders"]


SCORING_JOB = """
import json, sys
path = sys.argv[1]
document = json.load(open(path))
document["feeders"].setdefault("referral", {})["weight"] = 9.5
document["scored_at"] = "2026-11-25T03:00:00Z"
open(path, "w").write(json.dumps(document))
"""


def test_scoring_job_edit_between_read_and_write_is_merged_not_lost(wh):
    feeders = wh.parent / "feeders.json"
    feeders.write_text(json.dumps({"feeders": {"referral": {"weight": 1.0}}}))
    update = FeedersUpdate(
        feeders, lambda doc: merge_metrics(doc, {"referral": {"m": 1}}, {"referral"}, NOW)
    )
    # the scoring job (a real second process) writes the file after feedback read it
    subprocess.run([sys.executable, "-c", SCORING_JOB, str(feeders)], check=True)
    assert update.commit() is True
    document = json.loads(feeders.read_text())
    assert document["scored_at"] == "2026-11-25T03:00:00Z"  # their edit kept
    assert document["feeders"]["referral"] == {
        "weight": 9.5,
        "metrics": {"m": 1, "updated_at": NOW},
    }


LOCK_HOLDER = """
import fcntl, os, sys
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.seek(0); handle.truncate(); handle.write(str(os.getpid())); handle.flush()
print("locked", flush=True)
sys.stdin.readline()
"""


def test_documented_advisory_lock_is_honoured(wh):
    """The scoring job holds `flock` on `.feeders.json.lock`: feedback waits or exits 2."""
    feeders = wh.parent / "feeders.json"
    feeders.write_text(json.dumps({"feeders": {}}))
    lock = wh.parent / ".feeders.json.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    busy = feedback_cli(wh, "--wait", "0")
    assert busy.exit_code == 2, busy.output
    assert f"is busy (locked by PID {holder.pid} via .feeders.json.lock)" in busy.stderr
    assert json.loads(feeders.read_text()) == {"feeders": {}}
    waiter = subprocess.Popen(
        [str(Path(sys.executable).parent / "itrack"), "feedback", "--db", str(wh)]
        + ["--feeders", str(feeders), "--placements", str(wh.parent / "placements.json")]
        + ["--wait", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_waiting(waiter, lock)  # it queued behind the scoring job ...
    holder.communicate("go\n", timeout=60)
    _out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err  # ... and wrote once it let go
    assert json.loads(feeders.read_text())["feeders"]


def test_full_disk_never_truncates_the_backup_copy(small_mount):  # noqa: F811
    from feedback.atomic import write_atomic
    from ingest.errors import UserError

    feeders = small_mount / "feeders.json"
    big = b'{"feeders": {}, "pad": "' + b"x" * (4 << 20) + b'"}\n'
    feeders.write_bytes(big)
    write_atomic(feeders, big.replace(b"xxxx", b"yyyy", 1))  # .bak = the first version
    bak = feeders.with_name("feeders.json.bak").read_bytes()
    assert bak == big
    current = feeders.read_bytes()
    filler = small_mount / "filler"
    free = os.statvfs(small_mount).f_bavail * os.statvfs(small_mount).f_frsize
    filler.write_bytes(b"\0" * max(free - (1 << 20), 0))  # room for neither copy
    with pytest.raises(UserError, match="No space left on device; the previous file is intact"):
        write_atomic(feeders, big.replace(b"xxxx", b"zzzz", 1))
    assert feeders.read_bytes() == current
    assert feeders.with_name("feeders.json.bak").read_bytes() == bak  # whole, never truncated
    assert [p.name for p in small_mount.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "not a regular file (a FIFO, device or folder); not touched"),
        (b"\xff[]", "not valid UTF-8 (byte 0); left untouched"),
        (
            b'[{"id": "cand-1", "n": ' + b"9" * 5000 + b"}]",
            "not valid JSON (a number of 5000 digits (at most 4300 are read)); left untouched",
        ),
    ],
)
def test_candidates_file_that_cannot_be_read_is_refused_not_a_crash(wh, content, reason):
    """`feedback --candidates`: a FIFO used to hang, bad UTF-8 and long numbers exit 3."""
    path = wh.parent / "people.json"
    path.unlink(missing_ok=True)
    os.mkfifo(path) if content is None else path.write_bytes(content)
    result = subprocess.run(  # a child process with a timeout: the FIFO used to hang
        [str(Path(sys.executable).parent / "itrack"), "feedback", "--db", str(wh), "--full"]
        + ["--feeders", str(wh.parent / "feeders.json"), "--candidates", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stdout
    assert result.stderr == f"error: {path}: {reason}\n"
    assert content is None or path.read_bytes() == content

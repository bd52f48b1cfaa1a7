"""Load on a real server on loopback: concurrent lifecycles, an ingest running beside them.

Afterwards, read directly from the store: every acknowledged write is there exactly once and
every process's status history is complete. Bounded (clients, seconds); `make bench` runs the
longer version and reports the latencies (bench/api_load.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from ingest.load import ingest_paths
from ingest.store import raw_store_path
from itrack.api.loadtest import check_stored, run_load
from tests.api_server import free_port
from tests.api_support import ORG, SECRET, lead

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def start_server(db: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "itrack.api.serve",
            "--db",
            str(db),
            "--port",
            str(port),
            "--jwt-secret",
            SECRET,
            "--org",
            ORG,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read()}")
        try:
            httpx.get(f"{base}/health", timeout=1)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return out


def stored(db: Path) -> tuple[dict, dict, set, dict]:
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    try:
        processes = dict(
            con.execute(
                "select id::varchar, count(*) from interview_processes group by all"
            ).fetchall()
        )
        stages = dict(
            con.execute(
                "select id::varchar, count(*) from interview_stages group by all"
            ).fetchall()
        )
        passed = {
            r[0]
            for r in con.execute(
                "select id::varchar from interview_stages where outcome = 'passed'"
            ).fetchall()
        }
        histories: dict[str, list] = {}
        for pid, frm, to in con.execute(
            "select interview_process_id::varchar, from_status, to_status "
            "from interview_status_history order by interview_process_id, changed_at"
        ).fetchall():
            histories.setdefault(pid, []).append((frm, to))
        return processes, stages, passed, histories
    finally:
        con.close()


def candidate_ids(db: Path) -> list[str]:
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    try:
        return [r[0] for r in con.execute("select id from candidates order by id").fetchall()]
    finally:
        con.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    ingest_paths([SAMPLE / "candidates.jsonl"], db=path)
    return path


def test_concurrent_lifecycles_with_an_ingest_beside_lose_nothing(db: Path):
    candidates = candidate_ids(db)[:50]
    proc, base = start_server(db)
    ingest_result: dict = {}

    def ingest_beside() -> None:
        time.sleep(1.0)  # while the clients are busy
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("itrack")),
                "ingest",
                str(SAMPLE),
                "--db",
                str(db),
                "--wait",
                "30",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "ITRACK_DB": str(db)},
        )
        ingest_result.update(code=done.returncode, out=done.stdout + done.stderr)

    side = threading.Thread(target=ingest_beside)
    side.start()
    try:
        result = run_load(base, lead(), candidates, clients=8, seconds=5)
    finally:
        side.join()
        log = stop_server(proc)
    assert ingest_result["code"] == 0, ingest_result["out"]
    print(result.summary())
    assert result.errors == [], result.errors[:5]
    assert "Traceback" not in log, log
    assert len(result.processes) >= 8  # every client completed at least one creation
    complete = [p for p in result.processes if len(p.statuses) == 3]
    assert complete, "no lifecycle completed"
    problems = check_stored(result, *stored(db))
    assert problems == []
    # what the ingest loaded is there too (sample processes beside the API's)
    processes, _, _, _ = stored(db)
    assert len(processes) >= len(result.processes) + 1

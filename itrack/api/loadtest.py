"""A bounded load test of a running API server: concurrent interview lifecycles.

Each client starts lifecycles until the time is up (and finishes the one it is in): create a
process, read it, add two stages recording a passed outcome on each (reading the process
between), extend an offer and have it accepted. Every acknowledged write (2xx) is remembered
so that `check_stored` can check, afterwards and directly in the store, that each is there
exactly once and that the status history of each process is complete. 503 answers are retried
after their Retry-After; any other non-2xx answer is an error.

Each client is a coroutine with one keep-alive HTTP/1.1 connection, all of them on one asyncio
event loop in one thread: the clients run on the same cores as the server, so they must cost
little (20 threads with `http.client` cost 0.41 ms of CPU per request, mostly handing the GIL
between them; these 0.21 ms, measured side by side; httpx more). The few lines of HTTP/1.1
they need are here: a request with Content-Length, an answer with Content-Length or chunked.
A request's latency is measured from before it is sent until its whole answer is read; a
client sends its next request only then (a closed loop, no think time).

Used by tests/test_api_load.py (short, in `make test`) and by bench/api_load.py (`make bench`).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

OFFER = {"base_salary": 150000, "currency": "USD", "offer_date": "2026-03-01"}
FULL_HISTORY = [
    (None, "in_progress"),
    ("in_progress", "offer_extended"),
    ("offer_extended", "offer_accepted"),
]


@dataclass
class Acked:
    """What the server acknowledged for one process."""

    process_id: str
    stage_ids: list[str] = field(default_factory=list)
    outcomes: int = 0
    statuses: list[str] = field(default_factory=lambda: ["in_progress"])


@dataclass
class LoadResult:
    clients: int
    seconds: float
    latencies: dict[str, list[float]]  # kind ("read" / "write") -> seconds
    processes: list[Acked]
    retried_503: int
    errors: list[str]

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "clients": self.clients,
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "processes": len(self.processes),
            "retried_503": self.retried_503,
            "errors": len(self.errors),
        }
        for kind, values in sorted(self.latencies.items()):
            out[kind] = percentiles(values)
        return out


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else []
    pick = (lambda q: cuts[q - 1]) if cuts else (lambda q: values[0])
    return {
        "count": len(values),
        "p50_ms": round(pick(50) * 1000, 2),
        "p95_ms": round(pick(95) * 1000, 2),
        "p99_ms": round(pick(99) * 1000, 2),
    }


class _Client:
    """One client: a keep-alive HTTP/1.1 connection, one request at a time (a closed loop)."""

    def __init__(self, base_url: str, headers: dict[str, str], deadline: float, candidates):
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        fixed = {**headers, "Content-Type": "application/json", "Host": url.netloc}
        self.head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self.deadline = deadline
        self.candidates = candidates
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.processes: list[Acked] = []
        self.retried = 0
        self.errors: list[str] = []
        self.stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _exchange(self, method: str, url: str, body: bytes) -> tuple[int, dict, bytes]:
        """Send one request and read its whole answer: (status, headers, body)."""
        if self.stream is None:
            self.stream = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.stream
        writer.write(
            f"{method} {url} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = dict(line.lower().split(": ", 1) for line in lines if ": " in line)
        if fields.get("transfer-encoding") == "chunked":
            data = b""
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                data += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
        else:
            data = await reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection") == "close":
            self._close()
        return status, fields, data

    def _close(self) -> None:
        if self.stream is not None:
            self.stream[1].close()
            self.stream = None

    async def call(
        self, kind: str, method: str, url: str, expect: int, json_body: Any = None
    ) -> dict | None:
        body = json.dumps(json_body).encode() if json_body is not None else b""
        while True:
            start = time.perf_counter()
            try:
                status, fields, data = await asyncio.wait_for(
                    self._exchange(method, url, body), timeout=30
                )
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                self.errors.append(f"{method} {url}: {type(exc).__name__}: {exc}")
                self._close()  # the next request opens a new connection
                return None
            self.latencies[kind].append(time.perf_counter() - start)
            if status == 503:
                self.retried += 1
                await asyncio.sleep(min(float(fields.get("retry-after", "1")), 0.5))
                continue
            if status != expect:
                text = data.decode(errors="replace")[:300]
                self.errors.append(f"{method} {url}: {status} {text}")
                return None
            return json.loads(data)

    async def lifecycle(self, n: int) -> None:
        candidate = self.candidates[n % len(self.candidates)]
        body = {"candidate_id": candidate, "company_name": f"Load Co {n % 7}", "role_title": "SWE"}
        made = await self.call("write", "POST", "/interviews", 201, body)
        if made is None:
            return
        acked = Acked(made["id"])
        self.processes.append(acked)
        pid = made["id"]
        for order, name in ((1, "Phone Screen"), (2, "Technical Interview")):
            if await self.call("read", "GET", f"/interviews/{pid}", 200) is None:
                return
            stage = await self.call(
                "write",
                "POST",
                f"/interviews/{pid}/stages",
                201,
                {"stage_name": name, "stage_order": order},
            )
            if stage is None:
                return
            acked.stage_ids.append(stage["id"])
            outcome = {"outcome": "passed", "overall_rating": 4, "interviewer_names": ["Load"]}
            path = f"/interviews/stages/{stage['id']}/outcome"
            if await self.call("write", "PUT", path, 200, outcome) is None:
                return
            acked.outcomes += 1
        for status, extra in (("offer_extended", {"offer_details": OFFER}), ("offer_accepted", {})):
            change = {"status": status, **extra}
            if await self.call("write", "PUT", f"/interviews/{pid}", 200, change) is None:
                return
            acked.statuses.append(status)

    async def run(self, offset: int) -> None:
        n = offset
        while time.monotonic() < self.deadline:
            await self.lifecycle(n)
            n += 1000
        self._close()


def run_load(
    base_url: str,
    headers: dict[str, str],
    candidates: list[str],
    clients: int = 20,
    seconds: float = 10.0,
) -> LoadResult:
    """`clients` concurrent clients, each starting lifecycles for `seconds` (and finishing the
    one it is in: every client completes at least one unless a request fails)."""
    deadline = time.monotonic() + seconds
    workers = [_Client(base_url, headers, deadline, candidates) for _ in range(clients)]

    async def all_clients() -> None:
        await asyncio.gather(*(w.run(i) for i, w in enumerate(workers)))

    start = time.perf_counter()
    asyncio.run(all_clients())
    elapsed = time.perf_counter() - start
    latencies: dict[str, list[float]] = defaultdict(list)
    for w in workers:
        for kind, values in w.latencies.items():
            latencies[kind] += values
    return LoadResult(
        clients=clients,
        seconds=elapsed,
        latencies=dict(latencies),
        processes=[p for w in workers for p in w.processes],
        retried_503=sum(w.retried for w in workers),
        errors=[e for w in workers for e in w.errors],
    )


def check_stored(
    result: LoadResult,
    process_counts: dict[str, int],
    stage_counts: dict[str, int],
    passed_stages: set[str],
    histories: dict[str, list[tuple[str | None, str]]],
) -> list[str]:
    """Problems found comparing what was acknowledged with what the store holds (empty: ok).

    `process_counts` / `stage_counts`: rows per id in the store; `passed_stages`: ids of stages
    stored with outcome passed; `histories`: each process's status history in order."""
    problems = []
    for acked in result.processes:
        pid = acked.process_id
        if process_counts.get(pid) != 1:
            problems.append(f"process {pid}: {process_counts.get(pid, 0)} rows, expected 1")
        for sid in acked.stage_ids:
            if stage_counts.get(sid) != 1:
                problems.append(f"stage {sid}: {stage_counts.get(sid, 0)} rows, expected 1")
        for sid in acked.stage_ids[: acked.outcomes]:
            if sid not in passed_stages:
                problems.append(f"stage {sid}: acknowledged outcome 'passed' not stored")
        expected = FULL_HISTORY[: len(acked.statuses)]
        got = histories.get(pid, [])
        # an unacknowledged last move may have committed (the answer was lost): allowed extra
        if got[: len(expected)] != expected or len(got) > len(FULL_HISTORY):
            problems.append(f"process {pid}: history {got}, acknowledged {expected}")
        elif got != FULL_HISTORY[: len(got)]:
            problems.append(f"process {pid}: history {got} is not a prefix of the lifecycle")
    return problems

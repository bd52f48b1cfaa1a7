"""HTTP API load benchmark (the API helper's part of `make bench`): requests/s and p50/p95/p99
latency of single-record reads and writes at 20 concurrent clients, per store, against the
target p95 < 50 ms on PostgreSQL. Each run also checks that every acknowledged write is stored
exactly once with its complete status history (a failed check fails the run: exit 1).

    python bench/api_load.py [--clients 20] [--seconds 20] [--store duckdb|postgres|both]
                             [--workers 2] [--history 5000]
                             [--pg-dsn DSN] [--out bench/api_results.json]

The server is a real `itrack serve`-equivalent process (`python -m itrack.api.serve`) on
127.0.0.1 with its default threads; the clients are coroutines in this process. PostgreSQL:
`--pg-dsn` (an admin DSN: a throw-away database is created, migrated and dropped), default the
local server; the server runs `--workers` processes (`itrack serve --workers 2`: one per core
here) over an organization with `--history` past processes, analyzed (a database in use).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tests.api_load_support as support  # noqa: E402
from itrack.api.loadtest import check_stored, run_load  # noqa: E402

TARGET_P95_MS = 50.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--store", choices=["duckdb", "postgres", "both"], default="both")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workers", type=int, default=2, help="PostgreSQL server processes")
    parser.add_argument("--threads", type=int, default=None, help="server threads per process")
    parser.add_argument("--history", type=int, default=5000, help="past processes (PostgreSQL)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "api_results.json")
    args = parser.parse_args()
    stores = ["duckdb", "postgres"] if args.store == "both" else [args.store]
    results, failed = {}, False
    for store in stores:
        with tempfile.TemporaryDirectory(prefix="itrack-api-bench-") as tmp:
            target = (
                support.postgres_target(
                    Path(tmp), args.pg_dsn, args.workers, args.history, args.threads
                )
                if store == "postgres"
                else support.duckdb_target(Path(tmp))
            )
            with target as (base, headers, candidates, read_back):
                load = run_load(base, headers, candidates, args.clients, args.seconds)
            problems = check_stored(load, *read_back())
        summary = load.summary()
        if store == "postgres":
            summary["server"] = {
                "workers": args.workers,
                "threads": args.threads or "default",
                "history_processes": args.history,
            }
        summary["lost_or_duplicated"] = problems[:10]
        for kind in ("read", "write"):
            p95 = summary.get(kind, {}).get("p95_ms")
            summary.setdefault("target", {})[kind] = (
                None
                if store != "postgres" or p95 is None
                else ("met" if p95 < TARGET_P95_MS else "missed")
            )
        results[store] = summary
        failed |= bool(problems or load.errors)
        print(_line(store, summary))
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.out}")
    return 1 if failed else 0


def _line(store: str, s: dict) -> str:
    def part(kind: str) -> str:
        k = s.get(kind, {})
        return (
            f"{kind} p50 {k.get('p50_ms')} / p95 {k.get('p95_ms')} / p99 {k.get('p99_ms')} ms"
            f" ({k.get('count', 0)})"
        )

    target = (
        ""
        if store != "postgres"
        else (
            f"; target p95 < {TARGET_P95_MS:g} ms: reads {s['target']['read']}, "
            f"writes {s['target']['write']}"
        )
    )
    return (
        f"api {store}: {s['clients']} clients, {s['requests_per_s']} req/s; {part('read')}; "
        f"{part('write')}; 503 retried {s['retried_503']}, errors {s['errors']}, "
        f"lost/duplicated {len(s['lost_or_duplicated'])}{target}"
    )


if __name__ == "__main__":
    raise SystemExit(main())

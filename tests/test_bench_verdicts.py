"""bench/run.py judges issue #17's targets on the measured seconds, never on a rounded number:
a no-op of 0.59 s after an 11.88 s build is 4.97% (met), an ingest 2.004 times its floor is
over 2x (missed), though both round to the limit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SPEC = importlib.util.spec_from_file_location(
    "bench_run", Path(__file__).resolve().parent.parent / "bench" / "run.py"
)
assert SPEC is not None and SPEC.loader is not None
bench_run = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench_run)


def step(seconds: float, rss_mb: int = 100) -> dict:
    return {"seconds": seconds, "cpu_seconds": seconds, "rss_mb": rss_mb, "runs": 1}


def ingest(ours: float, floor: float) -> dict:
    return {"itrack": step(ours), "floor": step(floor), "ratio": round(ours / floor, 2)}


def test_targets_are_judged_on_unrounded_seconds() -> None:
    big = {
        "ingest_jsonl": ingest(10.0, 4.0),  # 2.5x: met (within 2.5x)
        "ingest_csv": ingest(12.03, 4.0),  # 3.0075x, shown as 3.01x: missed
        "ingest_parquet": ingest(8.016, 4.0),  # 2.004x, its stored ratio 2.0: missed
        "build_full": step(11.88, 939),
        "build_delta": step(4.75),  # 39.98%: met
        "build_noop": step(0.59),  # 4.97%, its stored share 0.05: met
        "delta_share": round(4.75 / 11.88, 3),
        "noop_share": round(0.59 / 11.88, 3),
    }
    assert [(measured, met) for _, measured, met in bench_run.verdicts({"1M": big})] == [
        ("2.50x", True),
        ("3.01x", False),
        ("2.00x", False),
        ("100 MB", True),
        ("11.9 s", True),
        ("939 MB", True),
        ("40%", True),
        ("4.97%", True),
    ]

"""Feeder conversion report: live from the raw store, and from the marts after a build.

ITRACK_DB=/tmp/demo/warehouse.duckdb python examples/generate_conversion_report.py
"""

from __future__ import annotations

import duckdb

from ingest.service import InterviewService
from ingest.store import warehouse_path


def main() -> None:
    service = InterviewService()
    feeders = sorted({p.feeder_source for p in service.list_interviews() if p.feeder_source})
    print("live (raw store, before the nightly build):")
    for feeder in feeders:
        rates = service.calculate_conversion_rates(feeder)
        print(
            f"  {feeder:<20} sourced {rates.candidates_sourced:>4}  placements "
            f"{rates.placements:>4}  conversion {rates.conversion_rate:.1%}"
        )
    warehouse = warehouse_path()
    if not warehouse.exists():
        print("no published warehouse yet: run `itrack build` for the full marts")
        return
    con = duckdb.connect(str(warehouse), read_only=True)
    print("marts (last build):")
    for feeder, n, k, rate, low, high in con.execute(
        "select feeder_source, candidates_sourced, placements, conversion_rate, "
        "wilson_lower, wilson_upper from mart_feeder_conversion "
        "order by conversion_rate desc"
    ).fetchall():
        print(
            f"  {feeder:<20} sourced {n:>4}  placements {k:>4}  conversion {rate:.1%} "
            f"(95% CI {low:.1%}-{high:.1%})"
        )
    con.close()


if __name__ == "__main__":
    main()

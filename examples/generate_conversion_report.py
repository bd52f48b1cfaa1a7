"""Feeder conversion report from the marts, after rebuilding them from the raw store.

ITRACK_DB=/tmp/demo/warehouse.duckdb python examples/generate_conversion_report.py
"""

from __future__ import annotations

import duckdb

from itrack.pipeline import run_build
from itrack.settings import get_settings


def main() -> None:
    # Conversion is defined once, by the marts: rebuild them from the raw store first.
    warehouse = get_settings().warehouse()
    run_build([], db=warehouse, take_backup=False, write_html=False, note=lambda _m: None)
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

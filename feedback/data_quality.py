"""The data-quality lines of the `itrack build` summary, read from the built warehouse.

mart_data_quality holds one row per check (every check, 0 when clean); only the checks that
found something are reported. Unmapped stage names are named, most frequent first, so they
can be added to dbt_project/seeds/stage_types.csv.
"""

from __future__ import annotations

import json
from pathlib import Path

from feedback.marts import open_read_only

SHOWN_NAMES = 10  # unmapped stage names named in the summary; the mart keeps them all


def data_quality_lines(warehouse: Path) -> list[str]:
    """One line per check that found something, e.g.
    `unmapped stage names (3 stages, counted as other): 'Take-home Project' (2), 'Chat' (1)`."""
    con = open_read_only(Path(warehouse))
    try:
        rows = con.execute(
            "select check_name, description, unit, affected, examples from mart_data_quality "
            "where affected > 0 order by check_name"
        ).fetchall()
    finally:
        con.close()
    lines = []
    for check, description, unit, affected, examples in rows:
        if check == "unmapped_stage_names":
            names = json.loads(examples) if examples else []
            shown = ", ".join(f"'{n['value']}' ({n['count']})" for n in names[:SHOWN_NAMES])
            more = f", and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
            lines.append(
                f"unmapped stage names ({affected} {unit}, counted as other; add them to "
                f"dbt_project/seeds/stage_types.csv): {shown}{more}"
            )
        else:
            lines.append(f"data quality: {affected} {unit}: {description}")
    return lines

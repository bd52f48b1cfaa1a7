"""`itrack export --anonymize`: the marts without personal data, for sharing outside the team.

Names and free text never leave: candidate, recruiter and interviewer names, feedback notes,
next steps and anything derived from free text (final outcomes, reasons, top terms) are dropped;
candidate ids and interviewer names become keyed hashes (a random key per export, so they still
join within one export but cannot be looked up by guessing).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from feedback.marts import open_marts
from ingest.errors import UserError

# table -> (columns dropped, columns pseudonymised). Every other column is copied as is.
POLICY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fct_interview_processes": (
        ("recruiter_name", "final_outcome", "offer_details"),
        ("candidate_id",),
    ),
    "fct_interview_stages": (
        ("feedback_notes", "next_steps", "interviewer_names"),
        ("candidate_id",),
    ),
    "fct_process_status_history": ((), ()),
    "mart_conversion_funnel": ((), ()),
    "mart_stage_performance": (("top_terms_passed", "top_terms_failed"), ()),
    "mart_company_insights": (("rejection_reasons",), ()),
    "mart_feeder_conversion": (("top_rejection_reasons",), ()),
    "mart_interviewer_calibration": ((), ("interviewer_name",)),
}


def export_anonymized(out: Path, db: Path | str) -> dict[str, int]:
    """Write one Parquet file per mart into `out` plus a manifest; returns rows per table."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror}") from None
    key = secrets.token_hex(16)
    counts: dict[str, int] = {}
    with open_marts(db) as con:
        for table, (dropped, hashed) in POLICY.items():
            columns = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns where table_name = ? "
                    "and table_schema = 'main' order by ordinal_position",
                    [table],
                ).fetchall()
            ]
            select = ", ".join(
                f"md5(? || {c}::varchar) as {c}" if c in hashed else c
                for c in columns
                if c not in dropped
            )
            target = str(out / f"{table}.parquet").replace("'", "''")
            con.execute(
                f"copy (select {select} from {table}) to '{target}' (format parquet)",
                [key] * sum(c in hashed for c in columns if c not in dropped),
            )
            counts[table] = con.execute(f"select count(*) from {table}").fetchone()[0]
    manifest = {
        "anonymized": True,
        "tables": counts,
        "removed": {t: list(d) for t, (d, _) in POLICY.items() if d},
        "pseudonymised": {t: list(h) for t, (_, h) in POLICY.items() if h},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return counts

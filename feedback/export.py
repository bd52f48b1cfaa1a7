"""`itrack export --anonymize`: the marts without personal data, for sharing outside the team.

An allow-list, so a column added later never leaks by default:
- numbers, dates, timestamps and booleans are copied;
- text is copied as is only in closed vocabularies (statuses, outcomes, the normalized stage
  type, grains, how a status was recorded) and in `group_key` when its grain is one of those;
- every other text column (candidate ids, company, feeder, role, interviewer, surrogate keys
  derived from them, other group keys) becomes a keyed pseudonym: md5 of a random key per export
  and the value, so the same value gets the same pseudonym in every table of
  one export (they still join) but cannot be looked up by guessing;
- free text and structured text are dropped: stage names as typed, notes, next steps, final
  outcomes, recruiter names, offer details, lists of names, top terms and reasons (JSON).

`--format csv` writes CSV instead of Parquet; its text cells are neutralized the OWASP way (a
cell starting with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'`), as `itrack report
--format csv` does.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import duckdb

from feedback.marts import open_marts, require_marts
from ingest.errors import UserError, make_folder
from ingest.sqltext import sql_text

TABLES = (
    "fct_interview_processes",
    "fct_interview_stages",
    "fct_process_status_history",
    "mart_conversion_funnel",
    "mart_stage_performance",
    "mart_company_insights",
    "mart_feeder_conversion",
    "mart_interviewer_calibration",
)
# Text columns whose values come from a closed set defined by the contract or the models.
CLOSED_VOCABULARIES = frozenset(
    {
        "status",
        "previous_status",
        "from_status",
        "to_status",
        "outcome",
        "stage_type",
        "furthest_stage_reached",
        "grain",
        "recorded_by",
    }
)
# `group_key` is a closed value for these grains; otherwise it is a name and is pseudonymized.
CLOSED_GRAINS = ("overall", "stage_type", "cohort_month", "status", "outcome")
# Free text (or derived from it) that no pseudonym makes safe to share: dropped.
FREE_TEXT = frozenset(
    {
        "recruiter_name",
        "final_outcome",
        "feedback_notes",
        "next_steps",
        "stage_name",
        "stage_name_clean",
        "stage_name_normalized",
        "stage_name_key",
    }
)
KEPT_TYPES = (
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "HUGEINT",
    "UBIGINT",
    "UINTEGER",
    "DOUBLE",
    "FLOAT",
    "REAL",
    "BOOLEAN",
    "DATE",
    "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE",
    "INTERVAL",
)
FORMULA_START = r"^[=+\-@\t\r]"
MANIFEST = "manifest.json"
FORMATS = ("parquet", "csv")
STAGING_PREFIX = ".export-"  # the staging folder inside --out (hidden)


def column_policy(name: str, data_type: str) -> str:
    """keep, group, pseudonymize or drop: the allow-list above, by name and type."""
    base = data_type.upper()
    if base == "UUID":
        return "pseudonymize"  # record ids: the same pseudonym in every table, so they join
    if base.startswith(KEPT_TYPES) or base.startswith("DECIMAL"):
        return "keep"
    if base != "VARCHAR" or name in FREE_TEXT:
        return "drop"  # JSON, lists, structs, free text
    if name in CLOSED_VOCABULARIES:
        return "keep"
    if name == "group_key":
        return "group"
    return "pseudonymize"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def export_anonymized(out: Path, db: Path | str, fmt: str = "parquet") -> dict[str, int]:
    """Write one Parquet (or CSV) file per mart into `out` plus a manifest; rows per table.

    All or nothing: the files are written into a hidden staging folder inside `out` and moved
    into place only once every one is complete, the manifest last (an earlier export's manifest
    is removed first, so no manifest ever describes a mix of two exports), and the files an
    earlier export listed in its manifest that this one does not write (the other format's) are
    removed with it: nothing else in `out` is touched. A failure leaves `out` as it was (it used
    to leave the tables before the failing one written over an earlier export's, and say
    "nothing of this run was written")."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be parquet or csv, not '{fmt}'")
    if not Path(db).exists():  # before creating anything: a wrong --db leaves no folder behind
        raise UserError(f"{db}: no warehouse yet; run `itrack build` first")
    names = [f"{table}.{fmt}" for table in TABLES] + [MANIFEST]
    with open_marts(db) as con:
        # a file that is not a built warehouse (the raw store, an empty file) exported nothing
        # and said "exported 0 tables", exit 0; refused before the folder is created
        require_marts(con, db, TABLES)
        make_folder(out, "--out")
        for name in names:  # what the export replaces must be a file (or nothing)
            target = out / name
            if target.is_symlink() or (target.exists() and not target.is_file()):
                raise UserError(f"cannot export to {target}: not a regular file; nothing exported")
        earlier = _earlier_files(out / MANIFEST)
        for leftover in out.glob(f"{STAGING_PREFIX}*"):  # a killed export's staging folder
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
        except OSError as exc:
            raise UserError(f"cannot write in {out}: {exc.strerror}; nothing exported") from None
        try:
            counts, policies = _write_tables(con, stage, fmt)
            manifest = {"anonymized": True, "format": fmt, "tables": counts, "columns": policies}
            (stage / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        except BaseException as exc:  # Ctrl-C between two tables too: no staging folder stays
            shutil.rmtree(stage, ignore_errors=True)
            if not isinstance(exc, (OSError, duckdb.Error)):
                raise
            detail = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
            raise UserError(f"cannot export to {out}: {detail}; nothing exported") from None
    try:
        (out / MANIFEST).unlink(missing_ok=True)
        # a Parquet export over a CSV one left both sets, so readers of `out` saw stale tables
        _remove_files(out, earlier - set(names))
        for name in names:  # the manifest last
            os.replace(stage / name, out / name)
    except OSError as exc:
        raise UserError(f"cannot export to {out}: {exc.strerror}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return counts


def _earlier_files(path: Path) -> set[str]:
    """The table files an earlier export wrote beside its manifest `path` (none without one).
    An export replaces only an export's manifest: `--out` naming a folder that holds some
    other `manifest.json` (a web app's, dbt's target/) replaced it, without a backup."""
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return set()
    except (OSError, ValueError):
        document = None  # unreadable or not JSON: not an export's
    if not (isinstance(document, dict) and document.get("anonymized") is True):
        raise UserError(f"{path} exists and is not an export's manifest; nothing exported (--out)")
    return _table_files(document)


def _table_files(manifest: dict) -> set[str]:
    """`<table>.<format>` for each table a manifest counts. Plain names of a format an export
    writes only: an edited manifest cannot name a file elsewhere (`../x`) for removal."""
    fmt, tables = manifest.get("format"), manifest.get("tables")
    if fmt not in FORMATS or not isinstance(tables, dict):
        return set()
    return {f"{t}.{fmt}" for t in tables if isinstance(t, str) and t and Path(t).name == t}


def _remove_files(out: Path, names: set[str]) -> None:
    """The regular files `names` in `out`, where there (a link or a folder is never followed)."""
    for name in sorted(names):
        path = out / name
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)


def _write_tables(
    con: duckdb.DuckDBPyConnection, folder: Path, fmt: str
) -> tuple[dict[str, int], dict[str, dict[str, list[str]]]]:
    """Each table of TABLES by the allow-list into `folder`: (rows, column policy) per table."""
    key = secrets.token_hex(16)
    counts: dict[str, int] = {}
    policies: dict[str, dict[str, list[str]]] = {}
    for table in TABLES:
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_name = ? and table_schema = 'main' order by ordinal_position",
            [table],
        ).fetchall()
        grains = ", ".join(f"'{g}'" for g in CLOSED_GRAINS)
        select = []
        policy: dict[str, list[str]] = {"kept": [], "pseudonymized": [], "dropped": []}
        for name, data_type in columns:
            rule = column_policy(name, data_type)
            col = _quote(name)
            if rule == "drop":
                policy["dropped"].append(name)
                continue
            if rule == "keep":
                expr = col
                policy["kept"].append(name)
            elif rule == "group":
                expr = f"case when grain in ({grains}) then {col} else md5(? || {col}) end"
                policy["pseudonymized"].append(f"{name} (unless grain is closed)")
            else:
                expr = f"md5(? || {col}::varchar)"
                policy["pseudonymized"].append(name)
            if fmt == "csv" and (rule != "keep" or data_type.upper() == "VARCHAR"):
                expr = (
                    f"case when regexp_matches({expr}, '{FORMULA_START}') "
                    f"then '''' || {expr} else {expr} end"
                )
            select.append(f"{expr} as {col}")
        target = sql_text(str(folder / f"{table}.{fmt}"))
        options = "format parquet" if fmt == "parquet" else "format csv, header true"
        query = f"select {', '.join(select)} from {table}"
        con.execute(f"copy ({query}) to {target} ({options})", _params(query, key))
        counts[table] = con.execute(f"select count(*) from {table}").fetchone()[0]
        policies[table] = policy
    return counts, policies


def _params(query: str, key: str) -> list[str]:
    """The export key for every `?` of the query (each one is a pseudonym's key)."""
    return [key] * query.count("?")

"""The contract as data: the dbt project's seeds, vars, accepted values and sources agree with
ingest/contract.py and the raw store's DDL, column by column (no dbt run needed)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import typing

import duckdb
import pydantic
import pytest
import yaml

from ingest import contract
from ingest.load import ingest_paths
from ingest.store.duckdb.store import SCHEMA
from itrack.dbt_runner import PROJECT_DIR
from tests.reference_model import normalize_name

SEEDS = PROJECT_DIR / "seeds"
SOURCES = PROJECT_DIR / "models" / "staging" / "itrack" / "_itrack__sources.yml"
STAGING = PROJECT_DIR / "models" / "staging" / "itrack" / "_itrack__models.yml"
BOOL = {"true": True, "false": False}
# columns every raw record table has beyond the contract's fields
LOAD_COLUMNS = ["_run_id", "_loaded_at"]


def seed(name: str) -> list[dict[str, str]]:
    with open(SEEDS / f"{name}.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def project() -> dict:
    return yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))


def test_interview_statuses_seed_is_the_contract_state_machine():
    rows = {r["status"]: r for r in seed("interview_statuses")}
    assert list(rows) == [s.value for s in contract.InterviewStatus]
    for status in contract.InterviewStatus:
        row = rows[status.value]
        assert BOOL[row["is_terminal"]] == (status in contract.TERMINAL_STATUSES), status
        assert BOOL[row["is_offer"]] == (status in contract.OFFER_STATUSES), status
        assert BOOL[row["triggers_feedback"]] == (status in contract.FEEDBACK_TRIGGER_STATUSES), (
            status
        )


def test_stage_type_list_is_the_contract_list():
    types = [s.value for s in contract.STAGE_TYPES]
    canonical = seed("canonical_stage_types")
    assert [r["stage_type"] for r in canonical] == types
    assert [int(r["funnel_position"]) for r in canonical] == list(range(1, len(types) + 1))
    variables = project()["vars"]
    assert variables["stage_types"] == types
    assert variables["unmapped_stage_type"] == contract.UNMAPPED_STAGE_TYPE
    assert {r["stage_type"] for r in seed("stage_types")} <= set(types)


def test_stage_name_seed_keys_are_normalised_and_canonical_names_map_to_themselves():
    mapping = {r["stage_name_normalized"]: r["stage_type"] for r in seed("stage_types")}
    for key in mapping:
        assert normalize_name(key, fold_separators=True) == key, key
    for stage_type in contract.STAGE_TYPES:
        assert mapping[normalize_name(stage_type.value, fold_separators=True)] == stage_type


def _accepted_values(model: str, column: str) -> list:
    document = yaml.safe_load(STAGING.read_text(encoding="utf-8"))
    [entry] = [m for m in document["models"] if m["name"] == model]
    [test] = [t["invariants"] for t in entry["data_tests"] if "config" not in t["invariants"]]
    return test["arguments"]["accepted_values"][column]


def test_stage_outcomes_and_ratings_are_the_contract_values():
    assert _accepted_values("stg_itrack__interview_stages", "outcome") == [
        o.value for o in contract.StageOutcome
    ]
    rating = typing.get_args(contract.Rating)[1]
    assert _accepted_values("stg_itrack__interview_stages", "overall_rating") == list(
        range(rating.metadata[1].ge, rating.metadata[2].le + 1)
    )


def _ddl_columns() -> dict[str, list[tuple[str, str]]]:
    con = duckdb.connect()
    try:
        con.execute(SCHEMA)
        rows = con.execute(
            "select table_name, column_name, lower(data_type) from information_schema.columns "
            "order by table_name, ordinal_position"
        ).fetchall()
    finally:
        con.close()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        tables.setdefault(table, []).append((column, data_type))
    return tables


def _source_columns() -> dict[str, list[tuple[str, str]]]:
    document = yaml.safe_load(SOURCES.read_text(encoding="utf-8"))
    [source] = document["sources"]
    return {
        t["name"]: [(c["name"], c["data_type"]) for c in t["columns"]] for t in source["tables"]
    }


def test_dbt_sources_declare_the_raw_tables_column_by_column():
    ddl, sources = _ddl_columns(), _source_columns()
    assert set(sources) <= set(ddl)
    for table, columns in sources.items():
        assert columns == ddl[table], table


@pytest.mark.parametrize("kind", contract.LOAD_ORDER)
def test_raw_tables_hold_the_contract_fields_in_order(kind):
    table = contract.TABLES[kind]
    ddl = [name for name, _ in _ddl_columns()[table]]
    assert ddl == [*contract.MODELS[kind].model_fields, *LOAD_COLUMNS]
    assert [name for name, _ in _source_columns()[table]] == ddl


# ---- a created_at in the future is refused at ingest (beyond a small tolerance) -------------


def _candidate(created_at: str) -> str:
    return json.dumps({"id": "c1", "full_name": "Ann Lee", "created_at": created_at})


@pytest.mark.parametrize(
    ("ahead", "accepted"),
    [(dt.timedelta(days=1), False), (dt.timedelta(minutes=1), True), (-dt.timedelta(days=3), True)],
)
def test_created_at_in_the_future_is_refused_beyond_the_tolerance(tmp_path, ahead, accepted):
    created = (dt.datetime.now(dt.UTC) + ahead).strftime("%Y-%m-%dT%H:%M:%SZ")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "candidates.jsonl").write_text(_candidate(created) + "\n", encoding="utf-8")
    summary = ingest_paths([folder], db=tmp_path / "w.duckdb")
    assert (summary.accepted, summary.rejected) == ((1, 0) if accepted else (0, 1))
    if not accepted:
        assert summary.rejects_by_code == {"future_date": 1}
        with pytest.raises(pydantic.ValidationError, match="is in the future"):
            contract.Candidate.model_validate_json(_candidate(created))
        # a stored row read back is never refused by the rule (it was accepted in its day)
        contract.Candidate.model_validate_json(_candidate(created), context={"stored": True})


# ---- engine-specific SQL stays behind the dispatched macros ---------------------------------

ENGINE_SPECIFIC = {
    "group by all": "group_by()",
    "::": "as_double() / as_json() / cast()",
    "struct_pack": "json_objects_agg()",
    "to_json(": "json_objects_agg()",
    "list(": "json_objects_agg()",
    "strftime(": "format_month()",
    "median(": "median() macro",
    "regexp_": "the text macros (split_phrases, extract_words, normalize_name)",
    "epoch": "elapsed_days()",
    "exclude (": "an explicit column list",
    "[1:": "a row_number() filter",
}


def test_models_and_tests_use_no_engine_specific_sql_outside_macros():
    """So the project can run on dbt-postgres: such SQL lives in macros/ behind
    adapter.dispatch (DuckDB `default__`, PostgreSQL `postgres__`)."""
    found = []
    for folder in ("models", "tests"):
        for path in sorted((PROJECT_DIR / folder).rglob("*.sql")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("--")[0].lower()
                code = code.replace("{{ median(", "{{ median_macro(")
                for pattern, use in ENGINE_SPECIFIC.items():
                    if pattern in code:
                        found.append(f"{path.relative_to(PROJECT_DIR)}:{number}: {pattern} ({use})")
    assert found == []


def test_every_engine_specific_macro_has_a_postgres_version():
    text = "\n".join(p.read_text(encoding="utf-8") for p in (PROJECT_DIR / "macros").glob("*.sql"))
    dispatched = set(re.findall(r"adapter\.dispatch\('(\w+)'", text))
    assert dispatched >= {
        "group_by",
        "as_double",
        "median",
        "format_month",
        "elapsed_days",
        "json_objects_agg",
        "normalize_name",
        "clean_text",
        "split_phrases",
        "extract_words",
    }
    for name in dispatched:
        assert f"macro default__{name}(" in text, name
        if name != "as_json":  # `cast(x as json)` is the same on PostgreSQL
            assert f"macro postgres__{name}(" in text, name

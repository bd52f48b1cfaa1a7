"""The marts recover the signal `itrack generate` plants: the feeder planted best converts
best, the worst worst, the stage pass rates follow the planted per-feeder pass chances, and a
company's favoured feeder tops its `preferred_feeders`. Generate -> ingest -> dbt build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.load import ingest_paths
from ingest.store.duckdb.store import raw_store_path
from itrack.dbt_runner import run_dbt
from itrack.generate import PLANTED, STAGES, generate
from tests.dbt_helpers import query


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    generate(root / "in", 2500, seed=2024)
    db = root / "warehouse.duckdb"
    ingest_paths([root / "in"], db=db, kind=None)
    outcome = run_dbt(["build", "--exclude-resource-type", "unit_test"], db, raw_store_path(db))
    assert outcome.ok, outcome.failures
    return db


def test_best_and_worst_feeders_are_recovered(warehouse):
    ranked = [
        r["feeder_source"]
        for r in query(
            warehouse,
            "select feeder_source from mart_feeder_conversion "
            "where feeder_source <> 'unattributed' order by conversion_rate desc",
        )
    ]
    assert ranked[0] == PLANTED.best_feeder
    assert ranked[-1] == PLANTED.worst_feeder


def test_stage_pass_rates_follow_the_planted_order(warehouse):
    rates = {
        r["feeder_source"]: r["technical_pass_rate"]
        for r in query(
            warehouse, "select feeder_source, technical_pass_rate from mart_feeder_conversion"
        )
    }
    best, worst = PLANTED.best_feeder, PLANTED.worst_feeder
    assert rates[best] > rates[worst]


def test_company_preferred_feeder_tops_preferred_feeders(warehouse):
    for company, feeder in PLANTED.company_preference.items():
        [row] = query(
            warehouse,
            f"select preferred_feeders from mart_company_insights where company_name = '{company}'",
        )
        assert json.loads(row["preferred_feeders"])[0]["feeder_source"] == feeder, company


def test_every_exported_spelling_maps_to_its_canonical_type(warehouse):
    mapped = {
        (r["stage_name"], r["stage_type"])
        for r in query(
            warehouse, "select distinct stage_name, stage_type from fct_interview_stages"
        )
    }
    for stage_type, spellings in STAGES:
        for spelling in spellings:
            assert all(t == stage_type for name, t in mapped if name == spelling), spelling

"""Analytics from the published warehouse (read-only): `/interviews/analytics/...`.

Every response carries `build`: which published build the numbers come from. The numbers are
the marts' (dbt is the one definition), read through the analytics library
(feedback/analytics.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from feedback.analytics import (
    CompanyHiringInsights,
    ConversionFunnel,
    StagePerformance,
    get_company_hiring_insights,
    get_conversion_funnel,
    get_stage_performances,
    resolve_feeder,
    rows,
)
from ingest.contract import MAX_NAME
from itrack.api.deps import Caller, reads
from itrack.api.models import with_example
from itrack.api.warehouse import BuildInfo, open_warehouse

router = APIRouter(prefix="/interviews/analytics", tags=["analytics"])
get = reads(router)
BUILD_EXAMPLE = BuildInfo.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
# Real results on the hand-computed test warehouse (tests/lib_data.py), for the docs.
EXAMPLES = json.loads(resources.files("itrack.api").joinpath("analytics_examples.json").read_text())


class FeederConversion(BaseModel):
    """One feeder's conversion (mart_feeder_conversion)."""

    model_config = ConfigDict(extra="forbid")
    feeder_source: str
    candidates_sourced: int = Field(description="Processes started with this feeder.")
    placements: int = Field(description="Of those, processes with status offer_accepted.")
    conversion_rate: float | None = Field(description="placements / candidates_sourced.")
    decided_processes: int = Field(description="Processes in a terminal status.")
    decided_conversion_rate: float | None = Field(description="placements / decided_processes.")
    wilson_lower: float | None = Field(description="95% Wilson interval, lower bound.")
    wilson_upper: float | None = Field(description="95% Wilson interval, upper bound.")
    smoothed_conversion_rate: float | None = Field(
        description="Conversion shrunk toward the overall rate (empirical-Bayes prior)."
    )


FEEDER_COLUMNS = tuple(FeederConversion.model_fields)


class ConversionRates(BaseModel):
    model_config = with_example(
        {
            "build": BUILD_EXAMPLE,
            "feeders": [
                {
                    "feeder_source": "ex-amazon",
                    "candidates_sourced": 40,
                    "placements": 6,
                    "conversion_rate": 0.15,
                    "decided_processes": 31,
                    "decided_conversion_rate": 0.1935,
                    "wilson_lower": 0.0706,
                    "wilson_upper": 0.2916,
                    "smoothed_conversion_rate": 0.1421,
                }
            ],
        }
    )
    build: BuildInfo
    feeders: list[FeederConversion]


class StageSuccessRates(BaseModel):
    model_config = with_example({"build": BUILD_EXAMPLE, "stage_types": [EXAMPLES["stage"]]})
    build: BuildInfo
    stage_types: list[StagePerformance]


class CompanyStats(BaseModel):
    model_config = with_example({"build": BUILD_EXAMPLE, "company": EXAMPLES["company"]})
    build: BuildInfo
    company: CompanyHiringInsights


class Funnel(BaseModel):
    model_config = with_example({"build": BUILD_EXAMPLE, "funnel": EXAMPLES["funnel"]})
    build: BuildInfo
    funnel: ConversionFunnel


def _answer(request: Request, key: str, read: Callable[[Any], Any]) -> dict[str, Any]:
    """`{"build": <the published build>, key: read(connection)}`: the numbers and the build
    they come from, read on one connection."""
    with open_warehouse(request.app.state.config.db) as (con, build):
        return {"build": build.model_dump(), key: read(con)}


@get(
    "/conversion-rates",
    ConversionRates,
    "Conversion per feeder, with its 95% interval and smoothed rate",
)
def conversion_rates(
    request: Request,
    caller: Caller,
    feeder: Annotated[str | None, Query(min_length=1, max_length=MAX_NAME)] = None,
) -> dict[str, Any]:
    def read(con: Any) -> list[dict[str, Any]]:
        name = resolve_feeder(con, feeder) if feeder is not None else None
        where, params = ("where feeder_source = ?", [name]) if name else ("", [])
        sql = f"select {', '.join(FEEDER_COLUMNS)} from mart_feeder_conversion {where}"
        return rows(con, f"{sql} order by feeder_source", params)

    return _answer(request, "feeders", read)


@get(
    "/stage-success-rates",
    StageSuccessRates,
    "Pass rates, ratings and feedback themes per stage type",
)
def stage_success_rates(request: Request, caller: Caller) -> dict[str, Any]:
    return _answer(
        request, "stage_types", lambda con: [s.to_dict() for s in get_stage_performances(db=con)]
    )


# `:path`: a company name may hold "/" (decoded from %2F before routing), as on
# /interviews/company/{name}.
@get("/company-stats/{company:path}", CompanyStats, "A company's hiring insights")
def company_stats(
    request: Request,
    company: Annotated[str, Path(min_length=1, max_length=MAX_NAME)],
    caller: Caller,
) -> dict[str, Any]:
    return _answer(
        request, "company", lambda con: get_company_hiring_insights(company, db=con).to_dict()
    )


@get("/funnel", Funnel, "The conversion funnel, overall or for a feeder and/or company")
def funnel(
    request: Request,
    caller: Caller,
    feeder: Annotated[str | None, Query(min_length=1, max_length=MAX_NAME)] = None,
    company: Annotated[str | None, Query(min_length=1, max_length=MAX_NAME)] = None,
) -> dict[str, Any]:
    return _answer(
        request,
        "funnel",
        lambda con: get_conversion_funnel(feeder_source=feeder, company=company, db=con).to_dict(),
    )

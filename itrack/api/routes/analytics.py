"""Analytics from the published warehouse (read-only): `/interviews/analytics/...`.

Every response carries `build`: which published build the numbers come from. The numbers are
the marts' (dbt is the one definition), read through the analytics library
(feedback/analytics.py).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from feedback.analytics import (
    CompanyHiringInsights,
    ConversionFunnel,
    StagePerformance,
    get_company_hiring_insights,
    get_conversion_funnel,
    get_stage_performances,
    rows,
)
from itrack.api.auth import Principal, current_principal
from itrack.api.errors import error_responses
from itrack.api.warehouse import BuildInfo, open_warehouse

router = APIRouter(prefix="/interviews/analytics", tags=["analytics"])
Caller = Annotated[Principal, Depends(current_principal)]
ERRORS = error_responses(401, 403, 404, 422, 503)
BUILD_EXAMPLE = BuildInfo.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
# Real results on the hand-computed test warehouse (tests/lib_data.py), for the docs.
EXAMPLES = json.loads(resources.files("itrack.api").joinpath("analytics_examples.json").read_text())


def _example(**body: Any) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [body]})


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
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
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
            ]
        },
    )
    build: BuildInfo
    feeders: list[FeederConversion]


class StageSuccessRates(BaseModel):
    model_config = _example(build=BUILD_EXAMPLE, stage_types=[EXAMPLES["stage"]])
    build: BuildInfo
    stage_types: list[StagePerformance]


class CompanyStats(BaseModel):
    model_config = _example(build=BUILD_EXAMPLE, company=EXAMPLES["company"])
    build: BuildInfo
    company: CompanyHiringInsights


class Funnel(BaseModel):
    model_config = _example(build=BUILD_EXAMPLE, funnel=EXAMPLES["funnel"])
    build: BuildInfo
    funnel: ConversionFunnel


def _warehouse(request: Request):
    return open_warehouse(request.app.state.config.db)


@router.get(
    "/conversion-rates",
    response_model=ConversionRates,
    responses=ERRORS,
    summary="Conversion per feeder, with its 95% interval and smoothed rate",
)
def conversion_rates(
    request: Request,
    caller: Caller,
    feeder: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
) -> dict[str, Any]:
    with _warehouse(request) as (con, build):
        if feeder is not None:
            from feedback.analytics import resolve_feeder

            feeder = resolve_feeder(con, feeder)
        where, params = ("where feeder_source = ?", [feeder]) if feeder else ("", [])
        found = rows(
            con,
            f"select {', '.join(FEEDER_COLUMNS)} from mart_feeder_conversion {where} "
            "order by feeder_source",
            params,
        )
    return {"build": build.model_dump(), "feeders": found}


@router.get(
    "/stage-success-rates",
    response_model=StageSuccessRates,
    responses=ERRORS,
    summary="Pass rates, ratings and feedback themes per stage type",
)
def stage_success_rates(request: Request, caller: Caller) -> dict[str, Any]:
    with _warehouse(request) as (con, build):
        found = [s.to_dict() for s in get_stage_performances(db=con)]
    return {"build": build.model_dump(), "stage_types": found}


@router.get(
    "/company-stats/{company}",
    response_model=CompanyStats,
    responses=ERRORS,
    summary="A company's hiring insights",
)
def company_stats(request: Request, company: str, caller: Caller) -> dict[str, Any]:
    with _warehouse(request) as (con, build):
        insights = get_company_hiring_insights(company, db=con)
    return {"build": build.model_dump(), "company": insights.to_dict()}


@router.get(
    "/funnel",
    response_model=Funnel,
    responses=ERRORS,
    summary="The conversion funnel, overall or for a feeder and/or company",
)
def funnel(
    request: Request,
    caller: Caller,
    feeder: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
    company: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
) -> dict[str, Any]:
    with _warehouse(request) as (con, build):
        result = get_conversion_funnel(feeder_source=feeder, company=company, db=con)
    return {"build": build.model_dump(), "funnel": result.to_dict()}

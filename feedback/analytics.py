"""The analytics API: conversion funnel, stage performance and company insights as Python calls.

Read from the published warehouse (the marts of the last `itrack build`), never recomputed in
Python: the marts' SQL is the one definition, and every field below carries the dbt docs' own
text as its description (copied by `python -m feedback.gen_definitions` into
`feedback/mart_definitions.json`; a test fails when the copy is stale).

    from feedback.analytics import get_conversion_funnel
    funnel = get_conversion_funnel(feeder_source="referral", db="data/warehouse.duckdb")
    funnel["offer_accepted_rate"], funnel.offers_accepted, funnel.to_dict()

`db` is a warehouse path or an open DuckDB connection on one (then it is used as is and left
open). Results are pydantic models: attribute or item access, `to_dict()` (JSON-ready),
`to_polars()`. Names are matched as people type them (case, spaces; for stages also `-` and `_`
and any spelling the stage-type seed knows); an unknown one raises `UnknownNameError`, which
names the closest known ones.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from feedback.marts import open_marts
from ingest.contract import STAGE_TYPES
from ingest.errors import NotFoundError, UserError

Db = Path | str | duckdb.DuckDBPyConnection
FUNNEL = "mart_conversion_funnel"
STAGES = "mart_stage_performance"
COMPANIES = "mart_company_insights"
FEEDERS = "mart_feeder_conversion"


# ---- definitions (one source: the dbt YAML) -------------------------------------------------


@cache
def definitions() -> dict[str, Any]:
    """model -> {"description", "columns": {column: text}}, the marts' dbt docs."""
    text = resources.files("feedback").joinpath("mart_definitions.json").read_text("utf-8")
    return json.loads(text)


def definition(model: str, column: str | None = None) -> str:
    """The dbt docs' text for a mart (or one of its columns)."""
    entry = definitions()[model]
    return entry["description"] if column is None else entry["columns"][column]


def _doc(model: str, column: str) -> Any:
    return Field(description=definition(model, column))


def _with_definitions(model: str, columns: tuple[str, ...], intro: str) -> str:
    lines = [intro, "", f"Definitions (dbt docs of `{model}`):", definition(model), ""]
    lines += [f"- {c}: {definition(model, c)}" for c in columns]
    return "\n".join(lines)


# ---- errors and names ------------------------------------------------------------------------


class UnknownNameError(NotFoundError):
    """A feeder, company or stage the warehouse does not know; `closest` names the nearest
    known ones (a NotFoundError: exit 1 in the CLI, 404 from the HTTP API)."""

    def __init__(self, kind: str, name: str, closest: list[str], known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.closest = closest
        if closest:
            hint = f"; closest: {', '.join(closest)}"
        elif known:
            hint = f"; known: {', '.join(sorted(known)[:8])}"
        else:
            hint = f"; the warehouse has no {kind} yet"
        super().__init__(f"no such {kind} '{name}'{hint}")


class AmbiguousNameError(UnknownNameError):
    """A name that matches several known ones only as people type names (`name_key`): the
    marts keep them apart (their key is lower-cased and in NFC, not case-folded or in NFKC:
    `Straße` and `STRASSE`; `ﬁle` and `file`), so none of them is meant more than another."""

    def __init__(self, kind: str, name: str, matches: list[str]) -> None:
        listed = ", ".join(matches)
        NotFoundError.__init__(
            self, f"{kind} '{name}' matches {len(matches)}: {listed}; give one as spelled"
        )
        self.kind, self.name, self.closest = kind, name, matches


def name_key(value: str) -> str:
    """How names are compared: Unicode-normalized, case-folded, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", value)
    return re.sub(r"\s+", " ", text).strip().casefold()


def stage_key(value: str) -> str:
    """Stage names also treat `-` and `_` as spaces (`Phone-Screen` = `phone_screen`)."""
    return name_key(re.sub(r"[-_]", " ", value))


def resolve_name(name: str, known: list[str], kind: str, key=name_key) -> str:
    """The known spelling of `name` (exact first, then by `key`, which must find one), else
    `UnknownNameError` (`AmbiguousNameError` when `key` finds several)."""
    if name in known:
        return name
    matches = sorted(k for k in known if key(k) == key(name))
    if len(matches) > 1:  # the first of them was taken, silently: the others' figures hidden
        raise AmbiguousNameError(kind, name, matches)
    if matches:
        return matches[0]
    by_key = {key(k): k for k in sorted(known, reverse=True)}
    close = difflib.get_close_matches(key(name), list(by_key), n=3, cutoff=0.4)
    raise UnknownNameError(kind, name, [by_key[c] for c in close], known)


# ---- connections ------------------------------------------------------------------------------


@contextmanager
def connect(db: Db) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection on a warehouse path, or the caller's connection as is."""
    if isinstance(db, duckdb.DuckDBPyConnection):
        yield db
        return
    with open_marts(Path(db)) as con:
        yield con


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict]:
    """Rows as dicts; a missing mart is a clear error, not a traceback."""
    try:
        cursor = con.execute(sql, params or [])
    except duckdb.CatalogException as exc:
        raise UserError(
            f"{_file_of(con)}the warehouse has no marts yet ({str(exc).splitlines()[0]}); "
            "run `itrack build`"
        ) from None
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _file_of(con: duckdb.DuckDBPyConnection) -> str:
    """`PATH: ` of the database `con` reads (empty in memory): a `--db` naming a DuckDB file
    that is not a warehouse was refused without saying which file."""
    [(path,)] = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()
    return f"{path}: " if path else ""


def _column(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list:
    return [next(iter(r.values())) for r in rows(con, sql, params)]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or [])


# ---- results ------------------------------------------------------------------------------------


class Result(BaseModel):
    """A JSON-serializable result: `r.field`, `r["field"]` (the seed's dict style), `dict(r)`."""

    model_config = ConfigDict(frozen=True)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (what `json.dumps` and the HTTP API return)."""
        return self.model_dump(mode="json")

    def to_polars(self):
        """One row as a polars DataFrame (nested lists stay list/struct columns)."""
        import polars as pl

        return pl.DataFrame([self.to_dict()])


class Item(BaseModel):
    """An element of a JSON list column; keeps any extra key the mart adds."""

    model_config = ConfigDict(extra="allow", frozen=True)


# ---- conversion funnel --------------------------------------------------------------------------

FUNNEL_RATES = (
    "phone_screen_pass_rate",
    "technical_pass_rate",
    "onsite_pass_rate",
    "offer_extended_rate",
    "offer_accepted_rate",
)
# The one name per concept across marts (#14), beside the seed's names above.
FUNNEL_UNIFIED_RATES = ("offer_rate", "offer_rate_after_interviews")
FUNNEL_COUNTS = (
    "phone_screen_entered",
    "phone_screen_passed",
    "phone_screen_failed",
    "technical_entered",
    "technical_passed",
    "technical_failed",
    "onsite_entered",
    "onsite_passed",
    "onsite_failed",
    "offers_extended",
    "cleared_interviewing",
    "offers_accepted",
    "offers_declined",
    "offers_withdrawn",
    "offers_rescinded",
    "offers_pending",
    "in_flight",
)


class ConversionFunnel(Result):
    """The seed's funnel shape plus the counts behind each rate."""

    feeder_source: str | None = Field(description="The feeder asked for (null: every feeder).")
    company: str | None = Field(description="The company asked for (null: every company).")
    cohort_month: str | None = Field(
        default=None, description="The start month asked for, YYYY-MM (null: every month)."
    )
    grain: str = _doc(FUNNEL, "grain")
    group_key: str = _doc(FUNNEL, "group_key")
    total_started: int = _doc(FUNNEL, "total_started")
    processes_started: int = _doc(FUNNEL, "processes_started")
    offer_rate: float | None = _doc(FUNNEL, "offer_rate")
    offer_rate_after_interviews: float | None = _doc(FUNNEL, "offer_rate_after_interviews")
    phone_screen_pass_rate: float | None = _doc(FUNNEL, "phone_screen_pass_rate")
    technical_pass_rate: float | None = _doc(FUNNEL, "technical_pass_rate")
    onsite_pass_rate: float | None = _doc(FUNNEL, "onsite_pass_rate")
    offer_extended_rate: float | None = _doc(FUNNEL, "offer_extended_rate")
    offer_accepted_rate: float | None = _doc(FUNNEL, "offer_accepted_rate")
    phone_screen_entered: int = _doc(FUNNEL, "phone_screen_entered")
    phone_screen_passed: int = _doc(FUNNEL, "phone_screen_passed")
    phone_screen_failed: int = _doc(FUNNEL, "phone_screen_failed")
    technical_entered: int = _doc(FUNNEL, "technical_entered")
    technical_passed: int = _doc(FUNNEL, "technical_passed")
    technical_failed: int = _doc(FUNNEL, "technical_failed")
    onsite_entered: int = _doc(FUNNEL, "onsite_entered")
    onsite_passed: int = _doc(FUNNEL, "onsite_passed")
    onsite_failed: int = _doc(FUNNEL, "onsite_failed")
    offers_extended: int = _doc(FUNNEL, "offers_extended")
    cleared_interviewing: int = _doc(FUNNEL, "cleared_interviewing")
    offers_accepted: int = _doc(FUNNEL, "offers_accepted")
    offers_declined: int = _doc(FUNNEL, "offers_declined")
    offers_withdrawn: int = _doc(FUNNEL, "offers_withdrawn")
    offers_rescinded: int = _doc(FUNNEL, "offers_rescinded")
    offers_pending: int = _doc(FUNNEL, "offers_pending")
    in_flight: int = _doc(FUNNEL, "in_flight")


def known_feeders(con: duckdb.DuckDBPyConnection) -> list[str]:
    return _column(con, f"select distinct feeder_source from {FEEDERS} order by 1")


def known_companies(con: duckdb.DuckDBPyConnection) -> list[str]:
    return _column(con, f"select distinct company_name from {COMPANIES} order by 1")


def resolve_feeder(con: duckdb.DuckDBPyConnection, name: str) -> str:
    return resolve_name(name, known_feeders(con), "feeder")


def resolve_company(con: duckdb.DuckDBPyConnection, name: str) -> str:
    return resolve_name(name, known_companies(con), "company")


FUNNEL_GRAINS = ("overall", "feeder_source", "company_name", "feeder_company", "cohort_month")
FUNNEL_SELECT = (
    "grain, group_key, feeder_source, company_name as company, "
    "strftime(cohort_month, '%Y-%m') as cohort_month, total_started, processes_started, "
    + ", ".join((*FUNNEL_RATES, *FUNNEL_UNIFIED_RATES, *FUNNEL_COUNTS))
)


def get_conversion_funnel(
    feeder_source: str | None = None,
    company: str | None = None,
    *,
    cohort: str | None = None,
    db: Db,
) -> ConversionFunnel:
    if cohort is not None and (feeder_source is not None or company is not None):
        raise UserError(
            "a cohort goes alone: the funnel is grouped by feeder, company, feeder x company or "
            "start month, not by a month and a feeder or company"
        )
    with connect(db) as con:
        feeder = resolve_feeder(con, feeder_source) if feeder_source is not None else None
        firm = resolve_company(con, company) if company is not None else None
        month = None
        if cohort is not None:
            known = _column(
                con,
                f"select distinct strftime(cohort_month, '%Y-%m') from {FUNNEL} "
                "where grain = 'cohort_month' order by 1",
            )
            month = resolve_name(cohort, known, "cohort")
        if feeder is not None and firm is not None:
            grain, where, params = (
                "feeder_company",
                "feeder_source = ? and company_name = ?",
                [feeder, firm],
            )
        elif feeder is not None:
            grain, where, params = "feeder_source", "feeder_source = ?", [feeder]
        elif firm is not None:
            grain, where, params = "company_name", "company_name = ?", [firm]
        elif month is not None:
            grain, where, params = "cohort_month", "strftime(cohort_month, '%Y-%m') = ?", [month]
        else:
            grain, where, params = "overall", "true", []
        found = rows(
            con,
            f"select {FUNNEL_SELECT} from {FUNNEL} where grain = ? and {where}",
            [grain, *params],
        )
    if found:
        return ConversionFunnel(**found[0])
    # A known feeder and company that never met (or an empty warehouse): nothing started.
    return ConversionFunnel(
        feeder_source=feeder,
        company=firm,
        grain=grain,
        group_key=f"{feeder} @ {firm}" if grain == "feeder_company" else "all",
        total_started=0,
        processes_started=0,
        **dict.fromkeys(FUNNEL_COUNTS, 0),
        **dict.fromkeys((*FUNNEL_RATES, *FUNNEL_UNIFIED_RATES)),
    )


def get_conversion_funnels(by: str = "feeder_source", *, db: Db) -> list[ConversionFunnel]:
    """The funnel of every group of one grain (`feeder_source`, `company_name`,
    `feeder_company` or `cohort_month`; `overall` gives the one row), most processes first."""
    if by not in FUNNEL_GRAINS:
        raise UserError(
            f"unknown funnel grouping '{by}'; expected one of: {', '.join(FUNNEL_GRAINS)}"
        )
    with connect(db) as con:
        found = rows(
            con,
            f"select {FUNNEL_SELECT} from {FUNNEL} where grain = ? "
            "order by total_started desc, group_key",
            [by],
        )
    return [ConversionFunnel(**row) for row in found]


def frame(results: list[Result]):
    """Many results as one polars DataFrame (one row each)."""
    import polars as pl

    return pl.DataFrame([r.to_dict() for r in results])


get_conversion_funnel.__doc__ = _with_definitions(
    FUNNEL,
    ("total_started", *FUNNEL_RATES),
    """The conversion funnel overall, for one feeder, one company, or a feeder at a company.

    `get_conversion_funnel(feeder_source=None, company=None, *, cohort=None, db)` returns the
    seed's shape (`total_started`, the five rates) plus the counts behind each rate; a rate is
    null when its denominator is 0. `cohort="2025-03"` gives one start month. A known feeder and
    company with no process together give zeros. Unknown names raise `UnknownNameError` with the
    closest known names.""",
)


# ---- stage performance -------------------------------------------------------------------------

STAGE_COLUMNS = (
    "stages",
    "passed",
    "failed",
    "pending",
    "cancelled",
    "no_show",
    "pass_rate",
    "avg_overall_rating",
    "avg_technical_rating",
    "avg_culture_fit_rating",
    "avg_communication_rating",
    "median_days_scheduled_to_completed",
)


class Term(Item):
    term: str
    count: int


class FeedbackThemes(BaseModel):
    model_config = ConfigDict(frozen=True)

    passed: list[Term] = _doc(STAGES, "top_terms_passed")
    failed: list[Term] = _doc(STAGES, "top_terms_failed")


class StageNameRow(Result):
    """One raw stage name (as exported) within a stage type."""

    stage_name: str = _doc(STAGES, "group_key")
    stages: int = _doc(STAGES, "stages")
    passed: int = _doc(STAGES, "passed")
    failed: int = _doc(STAGES, "failed")
    pass_rate: float | None = _doc(STAGES, "pass_rate")


class StagePerformance(Result):
    """Pass/fail rates, average ratings and common feedback themes of one stage type (or of
    one raw stage name that maps to no canonical type)."""

    stage_type: str = _doc(STAGES, "stage_type")
    grain: str = _doc(STAGES, "grain")
    name: str = _doc(STAGES, "group_key")
    stages: int = _doc(STAGES, "stages")
    passed: int = _doc(STAGES, "passed")
    failed: int = _doc(STAGES, "failed")
    pending: int = _doc(STAGES, "pending")
    cancelled: int = _doc(STAGES, "cancelled")
    no_show: int = _doc(STAGES, "no_show")
    pass_rate: float | None = _doc(STAGES, "pass_rate")
    fail_rate: float | None = Field(
        description="failed / (passed + failed); null when no stage is decided."
    )
    avg_overall_rating: float | None = _doc(STAGES, "avg_overall_rating")
    avg_technical_rating: float | None = _doc(STAGES, "avg_technical_rating")
    avg_culture_fit_rating: float | None = _doc(STAGES, "avg_culture_fit_rating")
    avg_communication_rating: float | None = _doc(STAGES, "avg_communication_rating")
    median_days_scheduled_to_completed: float | None = _doc(
        STAGES, "median_days_scheduled_to_completed"
    )
    common_feedback_themes: FeedbackThemes
    stage_names: list[StageNameRow] = Field(
        description="The raw stage names of this type, most stages first (empty for a name)."
    )


def _seed_stage_types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The stage-type seed (normalized name -> type) if the warehouse carries it."""
    found = rows(
        con,
        "select table_schema from information_schema.tables where table_name = 'stage_types' "
        "order by table_schema limit 1",
    )
    if not found:
        return {}
    schema = found[0]["table_schema"].replace('"', '""')
    pairs = rows(con, f'select stage_name_normalized, stage_type from "{schema}".stage_types')
    return {stage_key(p["stage_name_normalized"]): p["stage_type"] for p in pairs}


def resolve_stage(con: duckdb.DuckDBPyConnection, name: str) -> tuple[str, str]:
    """(grain, group_key) of a stage type or any spelling of one; a raw name of no canonical
    type resolves to its own stage_name row."""
    groups = rows(con, f"select grain, group_key, stage_type from {STAGES}")
    # a canonical type with no stage yet is still a stage type (zero stages), never unknown
    types = {g["group_key"] for g in groups if g["grain"] == "stage_type"} | set(STAGE_TYPES)
    key = stage_key(name)
    for stage_type in sorted(types):
        if key == stage_key(stage_type):
            return "stage_type", stage_type
    mapped = _seed_stage_types(con).get(key)
    if mapped in types and mapped != "other":
        return "stage_type", mapped
    names = [g for g in groups if g["grain"] == "stage_name"]
    for group in sorted(names, key=lambda g: g["group_key"]):
        if stage_key(group["group_key"]) == key:
            if group["stage_type"] in types and group["stage_type"] != "other":
                return "stage_type", group["stage_type"]
            return "stage_name", group["group_key"]
    known = sorted(types | {g["group_key"] for g in names})
    resolve_name(name, known, "stage", key=stage_key)  # raises with the closest names
    raise AssertionError("unreachable")  # pragma: no cover


def _stage(con: duckdb.DuckDBPyConnection, grain: str, group_key: str) -> StagePerformance:
    found = rows(
        con,
        f"select stage_type, {', '.join(STAGE_COLUMNS)}, top_terms_passed, top_terms_failed "
        f"from {STAGES} where grain = ? and group_key = ?",
        [grain, group_key],
    )
    # a canonical stage type no process reached yet: its counts are zero, its rates unknown
    (row,) = found or [_no_stages(group_key)]
    by_name = []
    if grain == "stage_type":
        by_name = rows(
            con,
            f"select group_key as stage_name, stages, passed, failed, pass_rate from {STAGES} "
            "where grain = 'stage_name' and stage_type = ? order by stages desc, group_key",
            [group_key],
        )
    decided = row["passed"] + row["failed"]
    return StagePerformance(
        grain=grain,
        name=group_key,
        fail_rate=row["failed"] / decided if decided else None,
        common_feedback_themes=FeedbackThemes(
            passed=_json(row.pop("top_terms_passed")), failed=_json(row.pop("top_terms_failed"))
        ),
        stage_names=by_name,
        **row,
    )


def _no_stages(stage_type: str) -> dict[str, Any]:
    """The mart row of a stage type without stages (the mart has none): counts 0, the rest
    null, no feedback terms."""
    counts = {"stages", "passed", "failed", "pending", "cancelled", "no_show"}
    row: dict[str, Any] = {c: 0 if c in counts else None for c in STAGE_COLUMNS}
    return row | {"stage_type": stage_type, "top_terms_passed": [], "top_terms_failed": []}


def get_stage_performance(stage_name: str, *, db: Db) -> StagePerformance:
    with connect(db) as con:
        return _stage(con, *resolve_stage(con, stage_name))


def get_stage_performances(*, db: Db) -> list[StagePerformance]:
    """Every stage type, in funnel order (phone screen, technical, onsite, then the rest)."""
    order = {"phone_screen": 0, "technical": 1, "onsite": 2}
    with connect(db) as con:
        types = _column(con, f"select group_key from {STAGES} where grain = 'stage_type'")
        return [
            _stage(con, "stage_type", t) for t in sorted(types, key=lambda t: (order.get(t, 9), t))
        ]


get_stage_performance.__doc__ = _with_definitions(
    STAGES,
    ("pass_rate", "avg_overall_rating", "top_terms_passed", "top_terms_failed"),
    """Performance of one stage: a stage type (`technical`) or any spelling of one (`Coding`,
    `Technical-Interview`, `phone_screen`), which gives the whole type with a breakdown by raw
    name; a raw name of no canonical type gives that name's own row. Unknown names raise
    `UnknownNameError`.""",
)


# ---- company insights ----------------------------------------------------------------------------

COMPANY_COLUMNS = (
    "total_candidates_sent",
    "processes_started",
    "processes",
    "interview_rate",
    "offer_rate",
    "offer_accepted_rate",
    "acceptance_rate",
    "avg_days_to_decision",
    "median_days_to_decision",
)


class PreferredFeeder(Item):
    feeder_source: str
    processes: int
    offer_rate: float | None


class RejectionReason(Item):
    reason: str
    count: int


class CompanyHiringInsights(Result):
    """The seed's company shape; `avg_time_to_decision` is text ("14 days"), the number is
    `avg_days_to_decision`."""

    company_name: str = _doc(COMPANIES, "company_name")
    total_candidates_sent: int = _doc(COMPANIES, "total_candidates_sent")
    processes_started: int = _doc(COMPANIES, "processes_started")
    processes: int = _doc(COMPANIES, "processes")
    interview_rate: float | None = _doc(COMPANIES, "interview_rate")
    offer_rate: float | None = _doc(COMPANIES, "offer_rate")
    offer_accepted_rate: float | None = _doc(COMPANIES, "offer_accepted_rate")
    acceptance_rate: float | None = _doc(COMPANIES, "acceptance_rate")
    avg_time_to_decision: str | None = Field(
        description="avg_days_to_decision rounded to whole days, as text: '14 days' (null when "
        "nothing is decided)."
    )
    avg_days_to_decision: float | None = _doc(COMPANIES, "avg_days_to_decision")
    median_days_to_decision: float | None = _doc(COMPANIES, "median_days_to_decision")
    preferred_feeders: list[PreferredFeeder] = _doc(COMPANIES, "preferred_feeders")
    rejection_reasons: list[RejectionReason] = _doc(COMPANIES, "rejection_reasons")


def days_text(days: float | None) -> str | None:
    """14.2 -> '14 days', 1 -> '1 day' (half up); None stays None."""
    if days is None:
        return None
    whole = math.floor(days + 0.5)
    return f"{whole} day" if whole == 1 else f"{whole} days"


def get_company_hiring_insights(company_name: str, *, db: Db) -> CompanyHiringInsights:
    with connect(db) as con:
        company = resolve_company(con, company_name)
        [row] = rows(
            con,
            f"select {', '.join(COMPANY_COLUMNS)}, preferred_feeders, rejection_reasons "
            f"from {COMPANIES} where company_name = ?",
            [company],
        )
    return CompanyHiringInsights(
        company_name=company,
        avg_time_to_decision=days_text(row["avg_days_to_decision"]),
        preferred_feeders=_json(row.pop("preferred_feeders")),
        rejection_reasons=_json(row.pop("rejection_reasons")),
        **row,
    )


get_company_hiring_insights.__doc__ = _with_definitions(
    COMPANIES,
    COMPANY_COLUMNS + ("preferred_feeders", "rejection_reasons"),
    """How candidates fare at one company: the seed's `total_candidates_sent`,
    `interview_rate`, `offer_rate`, `avg_time_to_decision` ("14 days", and the number as
    `avg_days_to_decision`), `preferred_feeders`, `rejection_reasons`. Unknown names raise
    `UnknownNameError`.""",
)

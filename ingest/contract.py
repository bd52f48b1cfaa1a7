"""The record contract: the one definition of every rule a record must satisfy.

Ingest (bulk SQL checks are generated from these models, pydantic explains the failures),
the service layer and the tests all import from here. Change a rule here and every path follows.

A field is absent when a JSON record has no key for it, or when a columnar file (CSV, Parquet:
every row has every column) has an empty or null cell for it (`ingest/readers.py` lands such a
cell as a missing key); an absent field takes its default, and a required one is
`missing_field`. An explicit JSON `null` is a value these models judge.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, ClassVar, Self, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ingest.text import CONTROL


class InterviewStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    OFFER_EXTENDED = "offer_extended"
    OFFER_ACCEPTED = "offer_accepted"
    OFFER_DECLINED = "offer_declined"
    REJECTED_BY_COMPANY = "rejected_by_company"
    CANDIDATE_WITHDREW = "candidate_withdrew"


class StageOutcome(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


S = InterviewStatus

# Direct moves of the status state machine; every status not listed as a key is terminal.
TRANSITIONS: dict[InterviewStatus, frozenset[InterviewStatus]] = {
    S.IN_PROGRESS: frozenset(
        {S.ON_HOLD, S.OFFER_EXTENDED, S.REJECTED_BY_COMPANY, S.CANDIDATE_WITHDREW}
    ),
    S.ON_HOLD: frozenset({S.IN_PROGRESS, S.REJECTED_BY_COMPANY, S.CANDIDATE_WITHDREW}),
    S.OFFER_EXTENDED: frozenset(
        {S.OFFER_ACCEPTED, S.OFFER_DECLINED, S.CANDIDATE_WITHDREW, S.REJECTED_BY_COMPANY}
    ),
}
TERMINAL_STATUSES: frozenset[InterviewStatus] = frozenset(set(S) - set(TRANSITIONS))
# Reaching one of these marks the process's feeder for the feedback step.
FEEDBACK_TRIGGER_STATUSES: frozenset[InterviewStatus] = frozenset(
    {S.OFFER_ACCEPTED, S.REJECTED_BY_COMPANY, S.CANDIDATE_WITHDREW}
)
# A process has an offer on the table (or had one) in these statuses.
OFFER_STATUSES: frozenset[InterviewStatus] = frozenset(
    {S.OFFER_EXTENDED, S.OFFER_ACCEPTED, S.OFFER_DECLINED}
)


class StageType(StrEnum):
    """Canonical stage types, in funnel order. Free-text stage names map onto them through
    dbt_project/seeds/stage_types.csv; a name that maps to none is type `other`."""

    PHONE_SCREEN = "phone_screen"
    TECHNICAL = "technical"
    ONSITE = "onsite"


STAGE_TYPES: tuple[StageType, ...] = tuple(StageType)
UNMAPPED_STAGE_TYPE = "other"


@cache
def reachable(status: InterviewStatus) -> frozenset[InterviewStatus]:
    """Statuses reachable from `status` in one or more moves (nightly snapshots may skip one)."""
    seen: set[InterviewStatus] = set()
    todo = list(TRANSITIONS.get(status, ()))
    while todo:
        nxt = todo.pop()
        if nxt not in seen:
            seen.add(nxt)
            todo.extend(TRANSITIONS.get(nxt, ()))
    return frozenset(seen)


def is_valid_move(current: InterviewStatus | str, new: InterviewStatus | str) -> bool:
    """A single explicit change (service API): only the direct moves of the state machine."""
    return InterviewStatus(new) in TRANSITIONS.get(InterviewStatus(current), frozenset())


# ISO 4217 active currency codes.
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL""".split()
)

MAX_TEXT = 2_000_000  # characters; 1 MB notes are legitimate, 2M+ is a broken export

NUL_MESSAGE = "contains control characters: NUL (U+0000), which PostgreSQL text cannot hold"


def _no_nul(value: str, info: ValidationInfo) -> str:
    """Free text may hold line breaks and tabs, but not NUL: the team's store (PostgreSQL)
    cannot hold it, and both stores take the same records."""
    if not stored(info) and "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


NonEmptyStr = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TEXT), AfterValidator(_no_nul)
]
# The longest name (company, role, feeder, person) and candidate id; the API bounds its filters by
# them too.
MAX_NAME = 500
MAX_CANDIDATE_ID = 64
ShortStr = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
Rating = Annotated[int, Field(strict=True, ge=1, le=5)]


# Rows read back from a store were accepted under the rules of their day: reading them never
# fails on a rule added since (`model_validate(row, context=STORED)`).
STORED: dict[str, Any] = {"stored": True}


def stored(info: ValidationInfo | None) -> bool:
    """Whether the value is being read back from a store (`STORED`)."""
    return bool(info is not None and info.context and info.context.get("stored"))


# The largest offer amount, in any currency: the exact-integer range of a double (2**53) rounded
# down to a power of ten, so every amount reads back exactly in any JSON reader (JavaScript's,
# DuckDB's double). Far above a year's pay in the weakest currency (a million US dollars is
# about 2.6e10 Vietnamese dong); what lies above is a broken export (1e22, 10**30, 1e300).
MAX_AMOUNT = 10**15
AMOUNT_MESSAGE = f"is more than {MAX_AMOUNT:,} (an amount in the currency's units)"


def _amount_bound(value: float, info: ValidationInfo) -> float:
    if not stored(info) and value > MAX_AMOUNT:
        raise ValueError(f"{value} {AMOUNT_MESSAGE}")
    # -0.0 is 0.0: PostgreSQL's jsonb (numeric) has no negative zero, so the two stores gave
    # back -0.0 and 0.0 for one offer
    return 0.0 if value == 0 and isinstance(value, float) else value


# Amounts keep their JSON spelling (150000 stays an integer) so offer details round-trip exactly.
Amount = Annotated[
    Annotated[int, Field(strict=True)] | Annotated[float, Field(strict=True, allow_inf_nan=False)],
    Field(ge=0),
    AfterValidator(_amount_bound),
]


def _no_control_chars(value: str, info: ValidationInfo) -> str:
    if not stored(info) and CONTROL.search(value):
        raise ValueError("contains control characters or bidirectional overrides")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# ISO 8601 timestamps only: a date, or a date and time with optional seconds, fraction and zone.
# Numbers and numeric strings (which pydantic would read as Unix time) are refused.
# Hours 00-23, minutes and seconds 00-59, zone offsets below 24 hours: what pydantic accepts
# (DuckDB's cast would also take 24:00:00, +24:00 or +23:60, which pydantic refuses). A
# fraction may have any number of digits (.NET writes 7, Java and Go 9): pydantic and DuckDB
# both keep the microseconds and drop the rest (truncated, never rounded).
ISO_DATETIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)
_ISO_DATETIME = re.compile(ISO_DATETIME_PATTERN)


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if not isinstance(value, str) or not _ISO_DATETIME.fullmatch(value):
        raise ValueError("must be an ISO 8601 date or timestamp, e.g. 2025-03-01T10:00:00Z")
    return value


def _iso_date(value: Any) -> Any:
    """A date is ISO 8601 text too (a timestamp of midnight is that date): pydantic alone would
    read a number, or a numeric string, as Unix time (0 is 1970-01-01)."""
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.fullmatch(value):
        raise ValueError("must be an ISO 8601 date, e.g. 2025-03-01")
    return value


# Business dates: a recruiting process happens between these (naive UTC, end exclusive). Far
# tighter than what Python, DuckDB and PostgreSQL can hold, so no arithmetic on a stored
# timestamp (one microsecond later, a zone shift) can ever overflow.
EARLIEST = dt.datetime(1970, 1, 1)
LATEST = dt.datetime(2100, 1, 1)
RANGE_MESSAGE = "is outside the business date range 1970-01-01 to 2099-12-31 (UTC)"


def _business_date(value: dt.date, info: ValidationInfo) -> dt.date:
    """An offer's dates lie in the business date range too (year 1 and 9999 were taken)."""
    if not stored(info) and not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"{value.isoformat()} {RANGE_MESSAGE.removesuffix(' (UTC)')}")
    return value


Date = Annotated[dt.date, BeforeValidator(_iso_date), AfterValidator(_business_date)]


def naive_utc(value: dt.datetime) -> dt.datetime:
    """Store timestamps as naive UTC: aware inputs are converted, naive ones taken as UTC."""
    if value.tzinfo is not None:
        try:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:  # 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
            raise ValueError(f"{value.isoformat()} {RANGE_MESSAGE}") from None
    return value


def _business_range(value: dt.datetime, info: ValidationInfo) -> dt.datetime:
    if not stored(info) and not EARLIEST <= value < LATEST:
        raise ValueError(f"{value.isoformat()} {RANGE_MESSAGE}")
    return value


# Every timestamp is held as naive UTC once validated, so comparisons never mix zones.
Timestamp = Annotated[
    dt.datetime,
    BeforeValidator(_iso_datetime),
    AfterValidator(naive_utc),
    AfterValidator(_business_range),
]

# A record cannot have been created after it is ingested: a created_at later than the clock of
# the validating process by more than FUTURE_TOLERANCE (clock skew between systems) is refused
# (error code `future_date`). Within the tolerance it is kept, and counted by the warehouse's
# data-quality checks.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
FUTURE_MESSAGE = "is in the future (more than 5 minutes after now, UTC)"


def _not_in_future(value: dt.datetime, info: ValidationInfo) -> dt.datetime:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if not stored(info) and value > now + FUTURE_TOLERANCE:
        raise ValueError(f"{value.isoformat()} {FUTURE_MESSAGE}")
    return value


# When something happened (a record's creation, a stage's completion): never in the future.
PastTimestamp = Annotated[Timestamp, AfterValidator(_not_in_future)]
CreatedAt = PastTimestamp

# Names and ids: no control characters, not blank. Free text (notes) may hold any printable text.
Name = Annotated[ShortStr, AfterValidator(_not_blank), AfterValidator(_no_control_chars)]
CandidateId = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=MAX_CANDIDATE_ID, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
    ),
]
RATING_FIELDS: tuple[str, ...] = (
    "overall_rating",
    "technical_rating",
    "culture_fit_rating",
    "communication_rating",
)


class Record(BaseModel):
    """Base of every record: unknown fields are refused (a frozen contract), never ignored.

    `sql_checks` mirror the model validators for the bulk path (ingest/validate.py): each is a
    SQL boolean over the typed fields (`{field}`), a null result passing. The property test in
    tests/test_contract_sql.py proves the two agree.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=False)
    sql_checks: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_store(cls, row: Any) -> Self:
        """A row read back from a store (either repository, the feedback step): validated
        under the rules of its day (`STORED`), never failing on a rule added since."""
        return cls.model_validate(row, context=STORED)

    @model_validator(mode="after")
    def _default_updated_at(self) -> Record:
        """`updated_at` defaults to `created_at` and never precedes it (records that have both)."""
        if "updated_at" in type(self).model_fields:
            _check_updated_at(self)
        return self


_R = TypeVar("_R", bound=Record)


class OfferDetails(Record):
    base_salary: Amount
    currency: Annotated[str, StringConstraints(min_length=3, max_length=3)]
    bonus: Amount | None = None
    equity: Amount | None = None
    sign_on_bonus: Amount | None = None
    offer_date: Date | None = None
    start_date: Date | None = None
    expiry_date: Date | None = None

    # How long after the offer its start and its expiry may be (an offer accepted a year ahead
    # for a graduate's start; anything further is a mistyped year)
    START_WITHIN_DAYS: ClassVar[int] = 731  # two years
    EXPIRY_WITHIN_DAYS: ClassVar[int] = 366  # one year

    sql_checks: ClassVar[tuple[str, ...]] = (
        "{start_date} >= {offer_date}",
        "{expiry_date} >= {offer_date}",
        f"{{start_date}} - {{offer_date}} <= {START_WITHIN_DAYS}",
        f"{{expiry_date}} - {{offer_date}} <= {EXPIRY_WITHIN_DAYS}",
    )

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if value not in ISO_4217:
            raise ValueError(f"'{value}' is not an ISO 4217 currency code")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self, info: ValidationInfo) -> OfferDetails:
        windows = (("start_date", self.START_WITHIN_DAYS), ("expiry_date", self.EXPIRY_WITHIN_DAYS))
        for name, within in windows:
            value = getattr(self, name)
            if not (self.offer_date and value):
                continue
            if value < self.offer_date:
                raise ValueError(f"{name} is before offer_date")
            if not stored(info) and (value - self.offer_date).days > within:
                raise ValueError(f"{name} is more than {within} days after offer_date")
        return self


class Candidate(Record):
    id: CandidateId
    full_name: Name
    feeder_source: Name | None = None
    current_company: Name | None = None
    linkedin_url: ShortStr | None = None
    created_at: CreatedAt
    updated_at: Timestamp | None = None

    sql_checks: ClassVar[tuple[str, ...]] = ("{updated_at} >= {created_at}",)


class InterviewProcess(Record):
    id: UUID
    candidate_id: CandidateId
    company_name: Name
    role_title: Name
    status: InterviewStatus = InterviewStatus.IN_PROGRESS
    feeder_source: Name | None = None
    recruiter_name: Name | None = None
    final_outcome: NonEmptyStr | None = None
    offer_details: OfferDetails | None = None
    created_at: CreatedAt
    updated_at: Timestamp | None = None

    sql_checks: ClassVar[tuple[str, ...]] = ("{updated_at} >= {created_at}",)


class InterviewStage(Record):
    id: UUID
    interview_process_id: UUID
    stage_name: Name
    stage_order: Annotated[int, Field(strict=True, ge=1, le=1000)]
    scheduled_date: Timestamp | None = None
    completed_date: PastTimestamp | None = None
    outcome: StageOutcome = StageOutcome.PENDING
    overall_rating: Rating | None = None
    technical_rating: Rating | None = None
    culture_fit_rating: Rating | None = None
    communication_rating: Rating | None = None
    feedback_notes: NonEmptyStr | None = None
    interviewer_names: list[Name] = Field(default_factory=list)
    next_steps: NonEmptyStr | None = None
    created_at: CreatedAt
    updated_at: Timestamp | None = None

    sql_checks: ClassVar[tuple[str, ...]] = (
        "{completed_date} >= {scheduled_date}",
        "{updated_at} >= {created_at}",
    )

    @model_validator(mode="after")
    def _dates_in_order(self) -> InterviewStage:
        scheduled, completed = self.scheduled_date, self.completed_date
        if scheduled and completed and completed < scheduled:
            raise ValueError("completed_date is before scheduled_date")
        return self


def _check_updated_at(record: _R) -> _R:
    """`updated_at` defaults to `created_at` and never precedes it."""
    if record.updated_at is None:
        record.updated_at = record.created_at
    elif record.updated_at < record.created_at:
        raise ValueError("updated_at is before created_at")
    return record


def stage_date_error(stage: InterviewStage, process_created_at: dt.datetime) -> str | None:
    """Cross-record date rule: no stage date before its process was created."""
    created = naive_utc(process_created_at)
    for field in ("scheduled_date", "completed_date"):
        value = getattr(stage, field)
        if value is not None and value < created:
            return f"{field} {value.isoformat()} is before the process was created ({created})"
    return None


class PlacementRecord(BaseModel):
    """One placement in a candidate's history (written by the feedback step)."""

    company: str
    role: str
    placement_date: Timestamp
    offer_details: OfferDetails | None = None


MODELS: dict[str, type[Record]] = {
    "candidates": Candidate,
    "processes": InterviewProcess,
    "stages": InterviewStage,
}
TABLES: dict[str, str] = {
    "candidates": "candidates",
    "processes": "interview_processes",
    "stages": "interview_stages",
}
LOAD_ORDER: tuple[str, ...] = ("candidates", "processes", "stages")


def to_row(record: Record) -> dict[str, Any]:
    """A validated record as the column values of its table (JSON-ready, naive UTC)."""
    row = record.model_dump(mode="python")
    for key, value in row.items():
        if isinstance(value, UUID):
            row[key] = str(value)
        elif isinstance(value, StrEnum):
            row[key] = value.value
    if isinstance(record, InterviewProcess):
        row["offer_details"] = offer_json(record.offer_details)
    return row


def offer_json(offer: OfferDetails | None) -> str | None:
    """Offer details as the stores hold them (and the corrections audit writes them): compact
    JSON of the fields given, in the contract's order."""
    return offer.model_dump_json(exclude_none=True) if offer else None

"""The bulk SQL checks compiled from the contract agree with pydantic, record by record.

Hypothesis mixes valid values with near-misses for every field (blank and unicode-space
strings, control characters, numeric strings, floats, bools, impossible dates, odd UUID
spellings, unknown keys). For each record: pydantic's verdict decides; the bulk path must load
exactly the valid ones, with exactly pydantic's values, and quarantine the others: never both,
never neither.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.contract import MODELS, to_row
from ingest.load import validate_lines
from tests.factories import candidate, offer, process, stage

MISSING = object()
# The business date range [1970-01-01, 2100-01-01) UTC at its edges, zone offsets included; and
# the ends of what Python can hold, where a zone offset overflows (issue #13).
DATE_RANGE_EDGES = {
    "1970-01-01T00:00:00Z": True,
    "1970-01-01": True,
    "1970-01-01T01:00:00+01:00": True,
    "1970-01-01T00:59:59.999999+01:00": False,
    "1969-12-31T23:59:59.999999Z": False,
    "1969-12-31T23:30:00-01:00": True,
    "2099-12-31T23:59:59.999999Z": True,
    "2099-12-31T23:59:59.999999": True,
    "2100-01-01T00:00:00Z": False,
    "2100-01-01T00:30:00+01:00": True,
    "2099-12-31T23:30:00-01:00": False,
    "9999-12-31T23:59:59-01:00": False,
    "9999-12-31T23:59:59.999999": False,
    "0001-01-01T00:00:00+01:00": False,
    "0001-01-01": False,
}
# Clock and zone edges: DuckDB's cast takes 24:00:00 and offsets of 24 hours or 60 minutes,
# which the contract refuses; the bulk checks must refuse them too (and keep what it accepts).
CLOCK_EDGES = {
    "2025-06-01T23:59:59+23:59": True,
    "2025-06-01T00:00:00-23:59": True,
    "2025-06-01T10:00:00-00:00": True,
    "2025-06-01 10:00+05:30": True,
    "2025-06-01T00:00:00+24:00": False,
    "2025-06-01T00:00:00-24:00": False,
    "2025-06-01T00:00:00+23:60": False,
    "2025-06-01T00:00:00+99:99": False,
    "2025-06-01T24:00:00Z": False,
    "2025-06-01T23:60:00Z": False,
    "2025-06-01T23:59:60Z": False,
}
TEXTS = st.sampled_from(
    [
        "Ann",
        "",
        " ",
        "\u00a0",
        "\u2003x",
        "a\x07b",
        "tab\there",
        "李明",
        '=HYPERLINK("x")',
        "'); drop table t; --",
        "x" * 501,
        "ok\n",
        "\u202eevil",
        "a\u2066b\u2069",
        "x\u0085y",
        "line\u2028sep",
        "cr\r",
    ]
)
TIMES = st.sampled_from(
    [
        "2025-01-06T10:00:00Z",
        "2025-01-06",
        "2025-01-06 10:00",
        "2025-01-06T10:00:00.123456+05:30",
        "2025-02-30T00:00:00Z",
        "2025-01-06T25:00:00Z",
        "20250106",
        "2025-1-6",
        "2025-01-06T10:00:00z",
        "2024-12-31T23:59:59-01:00",
        "2025-01-06T10:00:00.1234567Z",
        *DATE_RANGE_EDGES,
        *CLOCK_EDGES,
    ]
)
NUMBERS = st.sampled_from([0, 1, 3, 5, 6, -1, 3.5, 5.0, "5", True, None, 10**20])
UUIDS = st.sampled_from(
    [
        "aaaaaaaa-0000-4000-8000-000000000001",
        "AAAAAAAA-0000-4000-8000-000000000001",
        "aaaaaaaa000040008000000000000001",
        "not-a-uuid",
        7,
    ]
)
ANY = st.one_of(TEXTS, TIMES, NUMBERS, UUIDS, st.just([]), st.just(["Dana", ""]), st.just({"x": 1}))


def _field_values(name: str):
    if name.endswith("_rating") or name == "stage_order":
        return NUMBERS
    if name.endswith(("_at", "_date")):
        return TIMES
    if name == "id" or name.endswith("process_id"):
        return UUIDS
    if name == "interviewer_names":  # elements of every JSON type, null among them
        return st.lists(
            st.one_of(TEXTS, st.sampled_from([None, 5, 2.5, True, ["x"], {}])), max_size=3
        )
    if name in ("outcome", "status"):
        return st.sampled_from(["passed", "pending", "failed", "in_progress", "PASSED", "x"])
    return TEXTS


def mutated(base: dict, model) -> st.SearchStrategy[dict]:
    """Keep most fields valid; replace a few with near-misses, drop some, add unknown keys."""
    names = list(model.model_fields)

    @st.composite
    def build(draw):
        record = dict(base)
        for name in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
            choice = draw(st.one_of(_field_values(name), ANY, st.just(MISSING)))
            if choice is MISSING:
                record.pop(name, None)
            else:
                record[name] = choice
        if draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans()):
            record["unexpected"] = 1
        return record

    return build()


def run_bulk(kind: str, records: list[dict]) -> tuple[dict[int, dict], set[int]]:
    """Validate records through the bulk path: (loaded rows by line, rejected lines)."""
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    loaded, rejected = validate_lines(kind, lines)
    return loaded, set(rejected)


def pydantic_row(kind: str, record: dict) -> dict | None:
    try:
        return to_row(MODELS[kind].model_validate(record))
    except ValidationError:  # anything else (an OverflowError) is a bug and fails the test
        return None


def _normal(value):
    return str(value) if value is not None and not isinstance(value, (list, int)) else value


def check_agreement(kind: str, records: list[dict]) -> None:
    loaded, rejected = run_bulk(kind, records)
    for line_no, record in enumerate(records, start=1):
        expected = pydantic_row(kind, record)
        assert (line_no in loaded) != (line_no in rejected), record  # never both, never neither
        if expected is None:
            assert line_no in rejected, f"bulk path accepted an invalid record: {record}"
        else:
            assert line_no in loaded, f"valid record rejected: {record}"
            got = loaded[line_no]
            for key, value in expected.items():
                if key == "offer_details" and value is not None:
                    assert str(got[key]) == value  # pydantic's own spelling, byte for byte
                else:
                    assert _normal(got[key]) == _normal(value), (key, record)


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(mutated(stage(), MODELS["stages"]), min_size=1, max_size=25))
def test_stage_records_agree(records):
    check_agreement("stages", records)


@SETTINGS
@given(st.lists(mutated(process(), MODELS["processes"]), min_size=1, max_size=25))
def test_process_records_agree(records):
    check_agreement("processes", records)


@SETTINGS
@given(st.lists(mutated(candidate(), MODELS["candidates"]), min_size=1, max_size=25))
def test_candidate_records_agree(records):
    check_agreement("candidates", records)


AMOUNTS = st.sampled_from(
    [0, 7, 150000, 1.5, 2.5, 1000.0, 1e-5, 1e20, 10**20, -1, -0.5, "5", True, None, 1234.5678]
    + [10**15, 10**15 + 1, 999999999999999.9, 1e300]
)
DATES = st.sampled_from(
    [
        "2025-02-01",
        "2025-03-01",
        "2025-2-1",
        "0000-01-01",
        "2025-02-30",
        "2025-02-01T00:00:00",
        20250201,
        None,
        "1969-12-31",
        "2100-01-01",
        "2027-02-01",
    ]
)
OFFER_FIELDS = {
    "base_salary": AMOUNTS,
    "currency": st.sampled_from(["USD", "EUR", "usd", "XXX", "EURO", 5, None]),
    "bonus": AMOUNTS,
    "equity": AMOUNTS,
    "sign_on_bonus": AMOUNTS,
    "offer_date": DATES,
    "start_date": DATES,
    "expiry_date": DATES,
    "perks": st.just("gym"),
}


@st.composite
def offers(draw):
    """Offer details checked in SQL (no longer sent to pydantic wholesale) must agree too."""
    names = draw(st.lists(st.sampled_from(list(OFFER_FIELDS)), max_size=6, unique=True))
    details = {"base_salary": 100, "currency": "USD"}
    for name in names:
        value = draw(OFFER_FIELDS[name])
        if value is None and draw(st.booleans()):
            details.pop(name, None)
        else:
            details[name] = value
    return draw(st.sampled_from([details, details, details, None, "x", [1]]))


@SETTINGS
@given(st.lists(offers(), min_size=1, max_size=25))
def test_offer_details_agree(details):
    check_agreement("processes", [process(offer_details=d) for d in details])


@pytest.mark.parametrize(("value", "valid"), DATE_RANGE_EDGES.items())
@pytest.mark.parametrize("field", ["created_at", "updated_at"])
def test_date_range_edges_agree_and_are_exact(value, valid, field):
    """Each edge by hand: both paths accept exactly the values inside the range."""
    record = candidate(**{"created_at": "1970-01-01T00:00:00Z", field: value})
    if field == "created_at":
        record.pop("updated_at", None)
        if not value.startswith("19"):  # also refused as a created_at in the future
            valid = False
    assert (pydantic_row("candidates", record) is not None) == valid
    loaded, rejected = run_bulk("candidates", [record])
    assert (1 in loaded, 1 in rejected) == (valid, not valid)


# The bounds of an offer (amounts, its dates' range, how long after the offer its start and
# expiry may be) and of a stage's completion (not in the future), at their edges.
OFFER_EDGES = [
    (offer(base_salary=10**15), None),
    (offer(base_salary=10**15 + 1), "1000000000000001 is more than 1,000,000,000,000,000"),
    (offer(bonus=1e300), "1e+300 is more than 1,000,000,000,000,000"),
    (offer(offer_date="1970-01-01"), None),
    (offer(offer_date="1969-12-31"), "1969-12-31 is outside the business date range"),
    (offer(offer_date=None, start_date="2099-12-31"), None),
    (offer(offer_date=None, expiry_date="2100-01-01"), "2100-01-01 is outside the business"),
    (offer(offer_date="2025-01-01", start_date="2027-01-02"), None),
    (offer(offer_date="2025-01-01", start_date="2027-01-03"), "start_date is more than 731 days"),
    (offer(offer_date="2025-01-01", expiry_date="2026-01-02"), None),
    (offer(offer_date="2025-01-01", expiry_date="2026-01-03"), "expiry_date is more than 366 days"),
]


@pytest.mark.parametrize(("details", "refused"), OFFER_EDGES)
def test_offer_bounds_agree_and_are_exact(details, refused):
    """Offer amounts and dates had no bounds: 1e300, a start in 2090, an offer dated year 1
    were all stored (found by an exploratory run). Both paths refuse exactly past the edges."""
    from ingest.validate import explain

    record = process(status="offer_extended", offer_details=details)
    assert (pydantic_row("processes", record) is None) == (refused is not None)
    loaded, rejected = run_bulk("processes", [record])
    assert (1 in loaded, 1 in rejected) == (refused is None, refused is not None)
    if refused:
        _, why = explain(MODELS["processes"], json.dumps(record))
        assert why is not None and why.code == "invalid_offer"
        assert refused in why.message


@pytest.mark.parametrize(
    ("completed", "code"), [("2025-01-06T11:00:00Z", None), ("2099-01-01T00:00:00Z", "future_date")]
)
def test_a_completed_date_in_the_future_is_refused_by_both_paths(completed, code):
    """A stage could be completed in 2099 (found by an exploratory run): a completion happened,
    so it is never in the future, as a record's created_at (5 minutes' tolerance)."""
    from ingest.validate import explain

    record = stage(completed_date=completed)
    assert (pydantic_row("stages", record) is None) == (code is not None)
    loaded, rejected = run_bulk("stages", [record])
    assert (1 in loaded, 1 in rejected) == (code is None, code is not None)
    _, why = explain(MODELS["stages"], json.dumps(record))
    if code is None:
        assert why is None
        return
    assert why is not None
    assert (why.code, why.field, why.message) == (
        code,
        "completed_date",
        "field 'completed_date': 2099-01-01T00:00:00 is in the future (more than 5 minutes "
        'after now, UTC) (got "2099-01-01T00:00:00Z")',
    )


@pytest.mark.parametrize(("value", "valid"), CLOCK_EDGES.items())
def test_clock_and_zone_edges_agree(value, valid):
    """An hour of 24, a minute of 60 or an offset of a day: refused by both paths."""
    record = candidate(created_at="2025-01-01T00:00:00Z", updated_at=value)
    assert (pydantic_row("candidates", record) is not None) == valid
    loaded, rejected = run_bulk("candidates", [record])
    assert (1 in loaded, 1 in rejected) == (valid, not valid)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2025-01-06T10:00:00.1234567Z", dt.datetime(2025, 1, 6, 10, 0, 0, 123456)),  # .NET "o"
        ("2025-01-06T10:00:00.123456789+01:00", dt.datetime(2025, 1, 6, 9, 0, 0, 123456)),
        ("2025-01-06 10:00:00.9999999", dt.datetime(2025, 1, 6, 10, 0, 0, 999999)),
        ("2025-01-06T10:00:00.0000000Z", dt.datetime(2025, 1, 6, 10, 0, 0)),
    ],
)
def test_a_fraction_finer_than_a_microsecond_is_kept_to_the_microsecond(value, stored):
    """A timestamp with 7 (.NET's round-trip format) or 9 (Java's Instant, Go) digits of a
    second is ISO 8601, yet both paths refused it: "must be an ISO 8601 date or timestamp"
    (found by ingesting such an export). Both now keep the microseconds and drop the rest,
    never rounding (.9999999 stays in its second)."""
    record = candidate(created_at="2025-01-01T00:00:00Z", updated_at=value)
    check_agreement("candidates", [record])
    assert (pydantic_row("candidates", record) or {}).get("updated_at") == stored
    loaded, _ = run_bulk("candidates", [record])
    assert loaded.get(1, {}).get("updated_at") == stored


@pytest.mark.parametrize("element", [None, 5, 2.5, True, ["x"], {}, "", " ", "a\x07b", "Ann"])
def test_every_kind_of_list_element_agrees(element):
    """A list field's elements are each judged as pydantic judges them: a JSON null among the
    interviewers was once read as SQL null by the bulk check, passed it and was stored."""
    check_agreement("stages", [stage(interviewer_names=["Dana", element])])

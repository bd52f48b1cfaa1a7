"""feeders.json and candidate_placements.json go through orjson now: the bytes must be exactly
what the standard library wrote (files are compared byte for byte to skip unchanged writes, and
the scoring job and people diff them), and an unchanged document is not written again."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback.atomic import dumps_indented, write_atomic
from ingest.errors import UserError

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.1, 1e20, 1e-7, 150000.0, 2.5, -0.0]),
    st.text(),
    st.sampled_from(["Zoë", "李明", "tab\there", 'quote"back\\slash', "\u2028", "\x00"]),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


def reference(document, sort_keys: bool) -> bytes:
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=sort_keys)
    return (text + "\n").encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS, st.booleans())
def test_same_bytes_as_the_standard_library(document, sort_keys):
    assert dumps_indented(document, sort_keys) == reference(document, sort_keys)


FINITE_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [0.1, 1e20, 1e-7, 1e16, 9999999999999998.0, 0.0001, 0.00001, -0.00002, 150000.0, -0.0]
    ),
    st.text(),
    st.sampled_from(["1e5", '"1e5"', 'k": 1e5', "\\", "line\n2e3"]),
)
FINITE_DOCUMENTS = st.recursive(
    FINITE_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(FINITE_DOCUMENTS, st.booleans())
def test_finite_documents_skip_the_walk_and_keep_the_bytes(document, sort_keys):
    """`finite=True` (no NaN, no infinity) trades the safety walk for orjson's own refusals and
    a look for exponents in its output: the bytes stay the standard library's."""
    assert dumps_indented(document, sort_keys, finite=True) == reference(document, sort_keys)


def test_finite_floats_at_the_spelling_boundaries_by_hand():
    """Where orjson and `repr` part ways (1e-4 and 1e16: `repr` turns to exponents, orjson
    later), as a bare document, in a list and in an object."""
    for value in (0.0001, 0.00009, 0.00001, 1e-6, 1e-7, 9999999999999998.0, 1e16, 1e20, 1e21):
        for number in (value, -value):
            for document in (number, [number], {"k": number}, {"a": [{"b": number}]}):
                assert dumps_indented(document, finite=True) == reference(document, False), document


def test_placements_read_and_written_back_byte_for_byte(tmp_path):
    """The live path reads the placements file with the standard library, learning on the way
    whether every float is finite; then it writes through orjson (`finite`), and the bytes are
    what the standard library writes, big integers, NaN and infinity included."""
    from feedback.placements import read_placements, write_placements

    cases = {
        '{"c1": [{"company": "Zoë", "n": 1.5e-7, "m": 150000.0}]}': True,
        '{"c1": [{"n": 123456789012345678901234}]}': True,
        '{"c1": [{"n": NaN, "m": Infinity}]}': False,
        '{"c1": [{"n": -Infinity}]}': False,
        '{"c1": [{"n": 1e400}]}': False,
        '{"c1": [{"s": "\\ud800"}], "c2": []}': True,  # (can be read, not written as UTF-8)
        '{"c1": [{"a": 1, "a": 2}], "c0": [{"z": -0, "y": -0.0}]}': True,
    }
    for text, finite in cases.items():
        path = tmp_path / "placements.json"
        path.write_text(text, encoding="utf-8")
        history, found = read_placements(path)
        assert repr(history) == repr(json.loads(text)) and found is finite, text
        if "ud800" in text:
            continue
        write_placements(path, history, found)
        assert path.read_bytes() == reference(json.loads(text), True), text
    path.write_bytes(b'\xef\xbb\xbf{"c1": []}')  # a BOM, as utf-8-sig reads it
    assert read_placements(path) == ({"c1": []}, True)
    path.write_bytes(b'{"c1": ["\xff"]}')
    with pytest.raises(UserError, match=r"placements.json: not valid UTF-8 \(byte 9\); left"):
        read_placements(path)


def test_by_hand():
    document = {"b": [{"x": 1.5, "y": None}], "a": {}, "n": math.nan, "big": 2**64}
    assert dumps_indented(document) == reference(document, False)
    assert dumps_indented({"b": 1, "a": [1e20]}, sort_keys=True) == (
        b'{\n  "a": [\n    1e+20\n  ],\n  "b": 1\n}\n'
    )


def test_unchanged_output_is_not_rewritten(tmp_path):
    path = tmp_path / "feeders.json"
    data = dumps_indented({"feeders": {}})
    assert write_atomic(path, data) is True
    before = path.stat().st_mtime_ns
    assert write_atomic(path, data) is False
    assert path.stat().st_mtime_ns == before
    assert not (tmp_path / "feeders.json.bak").exists()

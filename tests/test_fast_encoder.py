"""feeders.json and candidate_placements.json go through orjson now: the bytes must be exactly
what the standard library wrote (files are compared byte for byte to skip unchanged writes, and
the scoring job and people diff them), and an unchanged document is not written again."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from feedback.atomic import dumps_indented, write_atomic

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

"""Text rules every layer shares: which characters names may not hold, and how text that holds
them (or lone surrogates) is shown and stored. The contract's validators use them
(`ingest.contract`), so do every output and error message; a module of its own, importing
nothing heavy, so that printing an error or a no-op build's lines needs no model.
"""

from __future__ import annotations

import json
import re

# Names reach terminals, CSV files and reports: no control characters at all (TAB, LF and CR
# included; C0, DEL and C1) and no bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE and its
# kin, which reorder what a terminal shows), nor line/paragraph separators. Free text (notes)
# may hold line breaks. NAME_FORBIDDEN_SQL is the same class for
# DuckDB's RE2 (the bulk checks in ingest/validate.py).
NAME_FORBIDDEN_SQL = (
    r"[\x00-\x1f\x7f-\x{9f}\x{61c}\x{200e}\x{200f}\x{2028}\x{2029}\x{202a}-\x{202e}"
    r"\x{2066}-\x{2069}]"
)
_CONTROL_CLASS = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_SURROGATE_CLASS = r"\ud800-\udfff"
CONTROL = re.compile(f"[{_CONTROL_CLASS}]")
_SURROGATES = re.compile(f"[{_SURROGATE_CLASS}]")
_UNPRINTABLE = re.compile(f"[{_CONTROL_CLASS}{_SURROGATE_CLASS}]")  # what `printable` escapes


def _escape(match: re.Match[str]) -> str:
    return json.dumps(match.group())[1:-1]  # \t, \u001b, \u202e, \ud800


def storable(text: str) -> str:
    """Lone surrogates (a JSON `\\ud800` escape with no pair) as their escape text: no UTF-8
    store can hold them. Used for what a store keeps about refused input (ids, messages)."""
    return _SURROGATES.sub(_escape, text) if _SURROGATES.search(text) else text


def printable(text: str) -> str:
    """Text for a terminal: the characters names may not hold (controls, bidi overrides,
    separators) and lone surrogates shown as escapes (`\\t`, `\\u202e`), the rest as is. Data
    that predates a rule, file names and refused values are shown this way, never raw."""
    return _UNPRINTABLE.sub(_escape, text) if _UNPRINTABLE.search(text) else text

"""Text rules every layer shares: which characters names may not hold, and how text that holds
them (or lone surrogates) is shown and stored. The contract's validators use them
(`ingest.contract`), so do every output and error message; a module of its own, importing
nothing heavy, so that printing an error or a no-op build's lines needs no model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

# Names reach terminals, CSV files and reports: no control characters at all (TAB, LF and CR
# included; C0, DEL and C1) and no bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE and its
# kin, which reorder what a terminal shows), nor line/paragraph separators. Free text (notes)
# may hold line breaks. The code point ranges, written once; the Python class and DuckDB's
# (RE2, the bulk checks in ingest/validate.py) are spelled from them.
NAME_FORBIDDEN = (
    (0x00, 0x1F),  # C0: TAB, LF, CR, ESC, ...
    (0x7F, 0x9F),  # DEL and C1
    (0x61C, 0x61C),  # ARABIC LETTER MARK
    (0x200E, 0x200F),  # LEFT-TO-RIGHT and RIGHT-TO-LEFT MARK
    (0x2028, 0x202E),  # line and paragraph separators, the embeddings and overrides
    (0x2066, 0x2069),  # the isolates
)


def _char_class(spell: Callable[[int], str]) -> str:
    return "".join(spell(a) if a == b else f"{spell(a)}-{spell(b)}" for a, b in NAME_FORBIDDEN)


NAME_FORBIDDEN_SQL = "[" + _char_class(lambda c: f"\\x{{{c:x}}}") + "]"
_CONTROL_CLASS = _char_class(lambda c: f"\\u{c:04x}")
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


def clip(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters, ending in '...' when cut: a value a message echoes
    (a refused cell, an argument) keeps its line readable however long the value is."""
    return text if len(text) <= limit else text[: limit - 3] + "..."

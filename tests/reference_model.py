"""A plain-Python reference of every mart metric, written from the documented definitions
(README "dbt project" and the model YAML), never from the SQL.

Input: the raw store's rows (what ingest and the service API leave). Output: the marts'
rows as dicts, keyed like the marts. tests/test_dbt_reference.py requires dbt's marts and the
feedback step's feeders.json to equal these exactly.
"""

from __future__ import annotations

import re

# Unicode whitespace: what str.split() splits on (the contract refuses the control characters
# among them in names, so this agrees with the SQL class [\s\x{85}\p{Z}])
_SPACES = re.compile(r"[\s\u0085]+")
_SPACES_AND_SEPARATORS = re.compile(r"[\s\u0085_-]+")


def clean_text(value: str) -> str:
    """Runs of Unicode whitespace -> one space, trimmed; case kept (the display spelling)."""
    return _SPACES.sub(" ", value).strip(" ")


def normalize_name(value: str, fold_separators: bool = False) -> str:
    """The grouping key: clean_text, lower case; for stage names `_` and `-` are spaces too."""
    if fold_separators:
        return _SPACES_AND_SEPARATORS.sub(" ", value).strip(" ").lower()
    return clean_text(value).lower()

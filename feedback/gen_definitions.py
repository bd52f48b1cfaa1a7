"""Regenerate `feedback/mart_definitions.json` from the marts' YAML docs (the one source).

    python -m feedback.gen_definitions dbt_project/models/marts/_marts__models.yml

The metric definitions the Python API states in its docstrings and field descriptions are the
dbt docs' own text: this script copies them; `tests/test_analytics.py` fails when the copy is
stale (edit the YAML, then run this).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

TARGET = Path(__file__).with_name("mart_definitions.json")
NOTE = (
    "GENERATED from the dbt marts' YAML by `python -m feedback.gen_definitions "
    "dbt_project/models/marts/_marts__models.yml`; do not edit by hand."
)


def definitions_from_yml(path: Path) -> dict[str, dict[str, Any]]:
    """model -> {"description": text, "columns": {column: text}} for every mart model."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    out: dict[str, dict[str, Any]] = {}
    for model in document.get("models", []):
        out[model["name"]] = {
            "description": _clean(model.get("description", "")),
            "columns": {
                c["name"]: _clean(c.get("description", "")) for c in model.get("columns", [])
            },
        }
    return out


def _clean(text: str) -> str:
    return "\n".join(line.rstrip() for line in str(text).strip().splitlines())


def render(definitions: dict[str, dict[str, Any]]) -> str:
    return json.dumps({"_note": NOTE, **definitions}, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    TARGET.write_text(render(definitions_from_yml(Path(argv[0]))), encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

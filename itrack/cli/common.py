"""Options and consoles shared by every `itrack` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from itrack.settings import get_settings

console = Console(soft_wrap=True, markup=False)  # data is never markup; one line per path

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Warehouse path (default: $ITRACK_DB or data/warehouse.duckdb); "
        "the raw store lives beside it.",
    ),
]
WaitOption = Annotated[
    float,
    typer.Option("--wait", min=0, help="Seconds to wait for a busy store before giving up."),
]


def warehouse(db: Path | None) -> Path:
    """The warehouse a command works on: `--db`, else the settings."""
    return get_settings().warehouse(db)

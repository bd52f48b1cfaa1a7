"""Run dbt in-process against a given warehouse file and raw store.

In-process saves dbt's interpreter start-up on every nightly build; the price is that
dbt-duckdb keeps its DuckDB connection open after the invocation, so we close it ourselves:
the build file must be closed before it is atomically published.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"


@dataclass
class DbtOutcome:
    ok: bool
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@contextmanager
def _env(warehouse: Path, raw_store: Path) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("ITRACK_DB", "ITRACK_RAW_DB")}
    os.environ["ITRACK_DB"] = str(Path(warehouse).absolute())
    os.environ["ITRACK_RAW_DB"] = str(Path(raw_store).absolute())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def close_dbt_connections() -> None:
    """dbt-duckdb keeps one DuckDB connection per process open by default: close it."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    if env is not None:
        env.close()
    DuckDBConnectionManager.close_all_connections()


def run_dbt(args: list[str], warehouse: Path, raw_store: Path, quiet: bool = True) -> DbtOutcome:
    """`dbt <args>` on `warehouse`, reading raw tables from `raw_store`; failing nodes named."""
    from dbt.cli.main import dbtRunner

    flags = ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    if quiet:
        flags = ["--quiet", "--log-level-file", "info", *flags]
    log_dir = ["--log-path", str(PROJECT_DIR / "logs")]
    with _env(warehouse, raw_store):
        try:
            result = dbtRunner().invoke([*args[:1], *flags, *log_dir, *args[1:]])
        finally:
            close_dbt_connections()
    outcome = DbtOutcome(ok=result.success)
    for node in getattr(result.result, "results", None) or []:
        status = str(getattr(node, "status", "")).lower()
        name = getattr(getattr(node, "node", None), "name", "?")
        message = (getattr(node, "message", "") or "").splitlines()[0:1]
        text = f"{name} ({status}{': ' + message[0] if message else ''})"
        if status in ("fail", "error", "runtime error"):
            outcome.failures.append(text)
        elif status == "warn":
            outcome.warnings.append(text)
    if not outcome.ok and not outcome.failures:
        error = result.exception or "see dbt_project/logs/dbt.log"
        outcome.failures.append(str(error).splitlines()[0])
    return outcome


def docs_generate(warehouse: Path, raw_store: Path) -> Path:
    """`dbt docs generate` (static site with the lineage of every model); returns target/."""
    from ingest.errors import UserError

    # On a private copy: the published warehouse may be held open by analysts (read-only).
    scratch = warehouse.parent / ".build" / "docs.duckdb"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    if warehouse.exists():
        shutil.copy2(warehouse, scratch)
    try:
        outcome = run_dbt(["docs", "generate", "--static"], scratch, raw_store)
    finally:
        scratch.unlink(missing_ok=True)
    if not outcome.ok:
        raise UserError("dbt docs generate failed: " + "; ".join(outcome.failures))
    return PROJECT_DIR / "target"

"""Settings, read once from the environment (prefix `ITRACK_`) by the application shell.

Nothing below `itrack/` reads the environment: `ingest` and `feedback` take explicit paths and
values, so a long-running server and the tests can hold several configurations at once.

| variable | default | what |
|---|---|---|
| `ITRACK_DB` | `data/warehouse.duckdb` | the published warehouse; the raw store lives beside it |
| `ITRACK_MEMORY_LIMIT` | `1GB` | DuckDB memory limit for ingest (it spills to disk beyond) |
| `ITRACK_STORE` | `duckdb` | operational store: `duckdb` (embedded) or `postgres` |
| `ITRACK_PG_DSN` | none | PostgreSQL/Supabase connection string when the store is `postgres` |
| `ITRACK_DEBUG` | off | show tracebacks of unexpected errors |
| `ITRACK_JWT_SECRET` | none | HTTP API: HS256 secret of bearer tokens (Supabase's JWT secret) |
| `ITRACK_ORG_ID` | none | HTTP API: the organization an embedded (DuckDB) store belongs to |
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.store.duckdb.store import raw_store_path

DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ITRACK_", extra="ignore")

    db: Path = DEFAULT_WAREHOUSE
    memory_limit: str = "1GB"
    store: Literal["duckdb", "postgres"] = "duckdb"
    pg_dsn: str | None = None
    debug: bool = False
    jwt_secret: SecretStr | None = None
    org_id: str | None = None

    def warehouse(self, override: Path | str | None = None) -> Path:
        """The warehouse path: the command's `--db` if given, else `ITRACK_DB`, else the default."""
        return Path(override) if override else self.db

    def raw_store(self, override: Path | str | None = None) -> Path:
        return raw_store_path(self.warehouse(override))


@cache
def get_settings() -> Settings:
    """The settings of this process, read from the environment the first time they are needed."""
    return Settings()

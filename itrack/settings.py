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
| `ITRACK_ORG_ID` | none | HTTP API: the organization (UUID) an embedded (DuckDB) store belongs to |
| `ITRACK_PLAN_CACHE` | none | a folder where builds of other locations share their dbt plans |
| `ITRACK_BACKUP_KEY_FILE` | none | the key build backups are signed with; `--key-file` default |

A path or size setting set but blank (`ITRACK_DB=`, `ITRACK_PLAN_CACHE=`,
`ITRACK_MEMORY_LIMIT=`, `ITRACK_BACKUP_KEY_FILE=`) is unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ingest.errors import UserError
from ingest.field_errors import field_errors
from ingest.store.duckdb.store import (
    RAW_SUFFIX,
    RESTORING_SUFFIX,
    location,
    raw_store_path,
    warehouse_beside,
)

DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
ENV_PREFIX = "ITRACK_"
# blank: unset (`_blank_is_unset`)
_BLANK_IS_UNSET = frozenset({"db", "plan_cache", "memory_limit", "backup_key_file"})


class Settings(BaseModel):
    """Validated by pydantic from `ITRACK_<FIELD>` variables (`from_environment`). Not a
    pydantic-settings class: importing that library (its env, dotenv, cloud and CLI sources,
    asyncio) took about 0.1 s of every `itrack` command's start, a quarter of a no-op nightly
    run, for seven flat variables (README, "Rules that follow from it")."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    db: Path = DEFAULT_WAREHOUSE
    memory_limit: str = "1GB"
    store: Literal["duckdb", "postgres"] = "duckdb"
    pg_dsn: str | None = None
    debug: bool = False
    jwt_secret: SecretStr | None = None
    org_id: str | None = None
    plan_cache: str | None = None
    backup_key_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, given: Any) -> Any:
        """A path or size setting set but blank (`ITRACK_DB=`, a script's empty variable) is
        unset: the default warehouse, no shared plans, the default memory limit. Pydantic read
        `ITRACK_DB=""` as `.`, the working folder, and DuckDB an empty memory limit as none at
        all; the closed settings (`ITRACK_STORE`, `ITRACK_DEBUG`) refuse a blank."""
        if not isinstance(given, dict):
            return given
        return {
            name: value
            for name, value in given.items()
            if not (name in _BLANK_IS_UNSET and isinstance(value, str) and not value.strip())
        }

    @field_validator("db", mode="before")
    @classmethod
    def _a_file(cls, value: Any) -> Any:
        """`ITRACK_DB=data/warehouse.duckdb/` is refused as `--db` is (`folder_spelling`): a
        `Path` drops the trailing '/', and a new warehouse file was made there."""
        why = folder_spelling(value) if isinstance(value, str) else None
        if why:
            raise ValueError(why)
        return value

    def warehouse(self, override: Path | str | None = None) -> Path:
        """The warehouse path: the command's `--db` if given, else `ITRACK_DB`, else the default;
        a location dbt or DuckDB would misread is refused here, before anything is written.
        A leading `~` is the home folder, as in ITRACK_PLAN_CACHE: no shell expands it in a
        crontab's or a unit file's variables nor in `--db=~/...`, and taken as written it made
        a folder named `~` in the working folder."""
        if override:
            return check_location(Path(override).expanduser(), "--db")
        source = "ITRACK_DB" if "db" in self.model_fields_set else "the default warehouse"
        return check_location(self.db.expanduser(), source)

    def raw_store(self, override: Path | str | None = None) -> Path:
        return raw_store_path(self.warehouse(override))

    def postgres_dsn(self) -> str:
        """`ITRACK_PG_DSN`, which `ITRACK_STORE=postgres` needs: unset or blank, a UserError
        naming it (the commands would else fall back to the DuckDB store or fail in libpq)."""
        if not self.pg_dsn or not self.pg_dsn.strip():
            raise UserError("ITRACK_STORE=postgres needs ITRACK_PG_DSN (a postgresql:// URL)")
        return self.pg_dsn

    def jwt_key(self) -> str | None:
        """The value of `ITRACK_JWT_SECRET`, None when it is unset or empty: an empty key signs
        nothing (PyJWT refuses it) and verifies nothing."""
        key = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        return key or None

    def plan_cache_dir(self) -> Path | None:
        """The folder where builds of different warehouse locations share dbt plans
        (itrack/dbt_plan.py), `ITRACK_PLAN_CACHE`; None (unset or blank): each location
        records its own."""
        if self.plan_cache is None:
            return None
        return Path(self.plan_cache).expanduser()

    def backup_key_path(self) -> Path | None:
        """The key file that signs the build's backups and is the default `--key-file` of
        `itrack backup` and `itrack restore`, `ITRACK_BACKUP_KEY_FILE`; None: unset or blank."""
        if self.backup_key_file is None:
            return None
        return Path(self.backup_key_file).expanduser()


def folder_spelling(value: str) -> str | None:
    """Why the path `value`, as spelled, names a folder and cannot name a file (a trailing
    separator, or `.` or `..` as its last part); None when it can. `Path` drops a trailing '/'
    and a last '.', so `report.html/` became report.html, where the shell and every other tool
    take a folder: every option and variable naming a file refuses it (`cli.common.file_value`,
    `Settings.db`)."""
    last = value.rsplit(os.sep, 1)[-1]
    if not last:
        return f"ends with '{os.sep}', so it names a folder, not a file"
    if last in (os.curdir, os.pardir):
        return f"names a folder ('{last}'), not a file"
    return None


# What a warehouse location may not hold, anywhere in its absolute path: dbt-duckdb reads the
# path with urlparse (`#` starts a fragment, `?` a query: the rest is lost), DuckDB cuts a path at
# `?` and reads `\` as a separator, and dbt renders the paths it is given as Jinja (`{{`, `{%`,
# `{#` open a tag). Spaces, `%`, quotes in a folder name and non-ASCII letters work.
_BREAKING_ANYWHERE = ("#", "?", "\\", "{{", "{%", "{#")
# ...and in its file name, which DuckDB makes the catalog name: urlparse also cuts it at `;`,
# and dbt-duckdb quotes that name in its SQL without escaping `'` and `"`.
_BREAKING_IN_NAME = (";", "'", '"')


def check_location(warehouse: Path, source: str = "the warehouse") -> Path:
    """`warehouse`, unless its absolute path, or its `location` (the build's spelling), holds
    characters dbt or DuckDB misread (`_BREAKING_ANYWHERE`, `_BREAKING_IN_NAME`), or it is no
    warehouse file (`_not_a_warehouse`): then a UserError naming `source` (the option or
    variable that gave it), the path and why."""
    path = Path(warehouse).absolute()  # a relative path: the working folder's name counts too
    _check_characters(path, source)
    reason = _not_a_warehouse(path)
    if reason is not None:
        raise UserError(f"{source}: {path} {reason}")
    return warehouse


def _check_characters(path: Path, source: str) -> None:
    """Refuse what dbt or DuckDB misread, in `path` (absolute) or in its `location`."""
    spellings = (str(path), str(location(path)))
    found = {c for c in _BREAKING_ANYWHERE for spelled in spellings if c in spelled}
    found |= {c for c in _BREAKING_IN_NAME if c in path.name}
    if found:
        shown = " ".join(f"`{c}`" for c in sorted(found))  # backticks: `'` is one of them
        raise UserError(
            f"{source}: {path} holds {shown}, which dbt and DuckDB misread "
            "in a warehouse location; choose another folder or file name"
        )


# Files kept beside a store, never a warehouse whatever their folder.
_SIDE_FILES = {
    ".wal": "a DuckDB write-ahead log",
    ".lock": "a lock file",
    RESTORING_SUFFIX: "the staging file of a restore",
}


def _not_a_warehouse(path: Path) -> str | None:
    """Why `path` (absolute) cannot be a warehouse file, None when it can. A folder (`data/`,
    a backup), the raw store beside a warehouse or a file kept beside a store, taken as a
    warehouse, had writers make a raw store of its own beside it (`data.raw.duckdb`,
    `warehouse.raw.raw.duckdb`) and readers open the wrong file; by name, as nothing exists
    yet before a first write."""
    if path.is_dir():
        from ingest.store.duckdb.backup import MANIFEST  # only here: not on every command's start

        if (path / MANIFEST).is_file():
            return f"is a backup folder, not a warehouse; restore it with `itrack restore {path}`"
        example = path / DEFAULT_WAREHOUSE.name
        return f"is a folder, not a warehouse file; give a file such as {example}"
    if path.name.endswith(RAW_SUFFIX):
        return f"is a raw store, not a warehouse; give its warehouse ({warehouse_beside(path)})"
    if path.suffix in _SIDE_FILES:
        return f"is {_SIDE_FILES[path.suffix]}, not a warehouse; give the warehouse file"
    return None


def from_environment(environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings given by `environ`: `ITRACK_<FIELD>`, the name in any case; other variables
    are ignored. A value pydantic refuses is a UserError naming the variable, one line."""
    named = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in environ.items()
        if key.upper().startswith(ENV_PREFIX)
    }
    given = {name: value for name, value in named.items() if name in Settings.model_fields}
    try:
        return Settings.model_validate(given)
    except ValidationError as exc:
        first = field_errors(exc.errors(include_url=False), Settings)[0]
        field = first.field.split(".")[0]  # a variable: a flat field
        message = f"{ENV_PREFIX}{field.upper()}={given[field]!r} is not valid: {first.message}"
        raise UserError(message) from None


@cache
def get_settings() -> Settings:
    """The settings of this process, read from the environment the first time they are needed."""
    return from_environment()


def check_memory_limit(limit: str) -> None:
    """Refuse an `ITRACK_MEMORY_LIMIT` DuckDB cannot read, naming it: DuckDB refuses it when
    the raw store opens, which read as the store's fault ("cannot open ...warehouse.raw.duckdb:
    Parser Error: Memory must have a number"). Checked only after a failure: no cost else."""
    import duckdb

    try:
        duckdb.connect(config={"memory_limit": limit}).close()
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0].removeprefix("Parser Error: ")
        raise UserError(f"ITRACK_MEMORY_LIMIT={limit!r} is not a memory size: {reason}") from None

"""A small hand-written raw store for the dbt tests, and a reader for the built warehouse.

Rows go straight into the raw tables (ingest.store.duckdb.store.SCHEMA), the way ingest leaves
them, so the tests pin what dbt computes from raw data and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from feedback.service import FeedbackResult, run_feedback
from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog
from ingest.store.duckdb.store import SCHEMA, raw_store_path

LOADED = dt.datetime(2025, 4, 1)


def ts(day: str) -> dt.datetime:
    """'2025-01-25' or '2025-01-25 10:00' as a naive UTC datetime."""
    return dt.datetime.fromisoformat(day)


def pid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@dataclass
class Stage:
    name: str
    outcome: str
    rating: int | None = None
    notes: str | None = None
    interviewers: list[str] = field(default_factory=lambda: ["Dana"])
    scheduled: str | None = None
    completed: str | None = None


@dataclass
class Process:
    n: int
    candidate: str
    company: str
    feeder: str | None
    status: str
    created: str
    updated: str
    stages: list[Stage] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)  # (to_status, changed_at)
    final_outcome: str | None = None
    offer: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return pid(self.n)


@dataclass
class RawData:
    candidates: dict[str, str | None]  # id -> feeder
    processes: list[Process]


def write_raw_store(path: Path, data: RawData) -> Path:
    """Create the raw store at `path` with the project schema and `data`'s rows."""
    con = duckdb.connect(str(path))
    try:
        con.execute(SCHEMA)
        for cid, feeder in data.candidates.items():
            con.execute(
                "insert into candidates values (?, ?, ?, null, null, ?, ?, 'r1', ?)",
                [cid, f"Name {cid}", feeder, ts("2024-12-01"), ts("2024-12-01"), LOADED],
            )
        for p in data.processes:
            _insert_process(con, p)
    finally:
        con.close()
    return path


def add_process(path: Path, p: Process) -> None:
    """Add process `p` (its stages and history) to the raw store at `path`."""
    con = duckdb.connect(str(path))
    try:
        _insert_process(con, p)
    finally:
        con.close()


def _insert_process(con: duckdb.DuckDBPyConnection, p: Process) -> None:
    con.execute(
        "insert into interview_processes values (?, ?, ?, 'Engineer', ?, ?, 'Rae', ?, ?, ?, ?, "
        "'r1', ?)",
        [
            p.id,
            p.candidate,
            p.company,
            p.status,
            p.feeder,
            p.final_outcome,
            json.dumps(p.offer) if p.offer else None,
            ts(p.created),
            ts(p.updated),
            LOADED,
        ],
    )
    for order, s in enumerate(p.stages, start=1):
        con.execute(
            "insert into interview_stages values (?, ?, ?, ?, ?, ?, ?, ?, null, null, null, ?, ?,"
            " null, ?, ?, 'r1', ?)",
            [
                f"00000000-0000-4100-8{p.n:03d}-{order:012d}",
                p.id,
                s.name,
                order,
                ts(s.scheduled) if s.scheduled else None,
                ts(s.completed) if s.completed else None,
                s.outcome,
                s.rating,
                s.notes,
                s.interviewers,
                ts(p.created),
                ts(p.created),
                LOADED,
            ],
        )
    previous = None
    for to_status, changed in p.history:
        con.execute(
            "insert into interview_status_history values (?, ?, ?, ?, 'r1', 'ingest', ?)",
            [p.id, previous, to_status, ts(changed), LOADED],
        )
        previous = to_status


def run_feedback_into(db: Path, out: Path, now: str, **options: Any) -> FeedbackResult:
    """The feedback step on warehouse `db`, writing feeders.json and placements.json into
    folder `out` (created), logging to `db`'s raw store; `options` go to run_feedback."""
    out.mkdir(parents=True, exist_ok=True)
    return run_feedback(
        warehouse=db,
        log=DuckDBFeedbackLog(db),
        feeders_path=out / "feeders.json",
        placements_path=out / "placements.json",
        now=now,
        **options,
    )


def private_copy(built: Path, folder: Path) -> Path:
    """A copy of warehouse `built` and its raw store in `folder`, for a test to change."""
    copy = folder / "warehouse.duckdb"
    shutil.copy2(built, copy)
    shutil.copy2(raw_store_path(built), raw_store_path(copy))
    return copy


def query(db: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of `sql` on the built warehouse as dicts (read-only connection)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


# ---- the compiled project, run without dbt (cheap property-test examples) ---------------------


@dataclass(frozen=True)
class CompiledModel:
    name: str
    relation: str  # fully qualified and quoted, as dbt writes it: "warehouse"."main"."x"
    sql: str  # the compiled select dbt itself runs


@dataclass(frozen=True)
class CompiledProject:
    """The dbt project compiled once: its models' SQL in DAG order and a warehouse file holding
    only the seeds. `build` runs that SQL on a warehouse the way `dbt run` does, without dbt's
    start-up, parsing and per-node overhead (milliseconds instead of seconds), so property tests
    can afford many examples. One real `dbt build` per session checks it against dbt
    (tests/test_dbt_reference.py), so the two cannot drift apart.

    Every model is created as a table: materialization (view, table, incremental) does not
    change a model's rows, and the SQL is compiled with `--full-refresh` on an empty warehouse,
    so incremental models take their `is_incremental()`-false (full) path."""

    folder: Path  # where it was compiled: dbt's location (target folder, parse state)
    seeds: Path
    database: str  # the catalog name in the compiled SQL: the warehouse file's stem
    models: tuple[CompiledModel, ...]
    variables: dict[str, Any]

    def build(self, warehouse: Path, raw_store: Path) -> None:
        """Run every model on `warehouse` (created from the seeds when missing), reading the raw
        tables from `raw_store`, as the dbt profile attaches it."""
        assert warehouse.stem == self.database, f"the warehouse must be named {self.database}"
        if not warehouse.exists():
            shutil.copyfile(self.seeds, warehouse)
        con = duckdb.connect(str(warehouse))
        try:
            con.execute(f"attach '{raw_store}' as raw_store (read_only)")
            self.run_models(con)
        finally:
            con.close()

    def in_memory(self) -> duckdb.DuckDBPyConnection:
        """A connection to an in-memory warehouse (named like the compiled one, holding the
        seeds, the default catalog) and an empty in-memory raw store `raw_store` (the raw
        schema): nothing touches the disk, so no file syncs. Fill the raw store, then
        `run_models`."""
        con = duckdb.connect()
        con.execute(f"attach '{self.seeds}' as seeds (read_only)")
        con.execute(f"attach ':memory:' as {self.database}")
        con.execute(f"copy from database seeds to {self.database}")
        con.execute("detach seeds")
        con.execute("attach ':memory:' as raw_store")
        con.execute("use raw_store")
        con.execute(SCHEMA)
        con.execute(f"use {self.database}")
        return con

    def run_models(self, con: duckdb.DuckDBPyConnection) -> None:
        """Every model's compiled SQL, in DAG order, as a table, on `con` (its raw store
        attached as `raw_store`)."""
        con.execute("set TimeZone = 'UTC'")  # the profile's setting
        con.execute("set threads = 1")  # tiny tables: threads cost more than they save
        for model in self.models:
            con.execute(f"create or replace table {model.relation} as (\n{model.sql}\n)")

    def dbt_build(self, raw_store: Path) -> Path:
        """A real `dbt build` (models, seeds, data tests) of a copy of `raw_store`, in the
        compile folder: the same paths and vars as the compile, so dbt's partial parsing saves
        the project parse. Returns the fresh warehouse it built."""
        from itrack.dbt_runner import run_dbt

        warehouse, raw = self.folder / "warehouse.duckdb", self.folder / "warehouse.raw.duckdb"
        warehouse.unlink(missing_ok=True)  # a fresh warehouse: incremental models build in full
        shutil.copyfile(raw_store, raw)
        outcome = run_dbt(
            ["build", "--exclude-resource-type", "unit_test"],
            warehouse,
            raw,
            variables=self.variables,
            target_path=self.folder / "target",
        )
        assert outcome.ok, outcome.failures
        return warehouse


def compile_project(folder: Path, variables: dict[str, Any]) -> CompiledProject:
    """`dbt seed` and `dbt compile --full-refresh` on an empty warehouse in `folder` (named
    warehouse.duckdb, beside an empty raw store), read back from dbt's manifest."""
    from graphlib import TopologicalSorter

    from itrack.dbt_runner import run_dbt

    folder.mkdir(parents=True, exist_ok=True)
    warehouse, raw = folder / "warehouse.duckdb", folder / "warehouse.raw.duckdb"
    write_raw_store(raw, RawData(candidates={}, processes=[]))
    target = folder / "target"
    for args in (["seed"], ["compile", "--full-refresh", "--select", "resource_type:model"]):
        outcome = run_dbt(args, warehouse, raw, variables=variables, target_path=target)
        assert outcome.ok, outcome.failures
    seeds = shutil.copyfile(warehouse, folder / "seeds.duckdb")
    nodes = json.loads((target / "manifest.json").read_text(encoding="utf-8"))["nodes"]
    models = {uid: n for uid, n in nodes.items() if n["resource_type"] == "model"}
    graph = {
        u: sorted(d for d in n["depends_on"]["nodes"] if d in models) for u, n in models.items()
    }
    order = TopologicalSorter(graph).static_order()
    compiled = tuple(
        CompiledModel(models[u]["name"], models[u]["relation_name"], models[u]["compiled_code"])
        for u in order
    )
    return CompiledProject(folder, Path(seeds), warehouse.stem, compiled, dict(variables))


def catalog(path: Path, leave_out: frozenset[str] = frozenset()) -> dict[str, object]:
    """Every table and view of a DuckDB file: columns (name, type, nullable), rows (sorted),
    and the constraints; without the columns named in `leave_out`."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        relations = con.execute(
            "select schema_name, table_name from duckdb_tables() union all "
            "select schema_name, view_name from duckdb_views() where not internal order by all"
        ).fetchall()
        found: dict[str, object] = {}
        for schema, name in relations:
            columns = con.execute(
                "select column_name, data_type, is_nullable from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
            columns = [c for c in columns if c[0] not in leave_out]
            listed = ", ".join(f'"{c[0]}"' for c in columns)
            rows = con.execute(f'select {listed} from "{schema}"."{name}"').fetchall()
            found[f"{schema}.{name}"] = (columns, sorted(rows, key=repr))
        found["constraints"] = con.execute(
            "select table_name, constraint_type, constraint_column_names from duckdb_constraints() "
            "order by all"
        ).fetchall()
        return found
    finally:
        con.close()

"""Replay dbt's compiled build without starting dbt: the nightly build's fast path.

Why: importing dbt, registering the adapter and loading the parsed project cost about 3 s before
the first model runs (measured on the shipped sample, where the whole SQL takes 0.3 s), plus
~30 ms per node; issue #17 asks for a nightly build under 3 s. dbt stays the engine that
compiles and checks the project: every build whose project differs from the last one's runs
`dbt build` itself, and from that run's results this module records the *plan* - per model and
data test, in dbt's order, the compiled SQL and what dbt does with it (view, table, table with
an enforced contract; a test's severity and thresholds) - and the seed tables it loaded. Later
builds with the same project (same files, same dbt, dbt-duckdb and DuckDB versions) replay the
plan in one DuckDB connection: the same SQL, the same tables, the same test verdicts and
messages as dbt's (tests/test_dbt_plan.py builds both ways and compares every table).

The one run-specific value in the compiled SQL is the build time (macro `as_of()`, when var
`as_of` is not given): it carries a marker, and a replay puts its own start in its place.
A node the plan cannot replay exactly (another materialisation, hooks, other constraints than
not-null, stored failures) means no plan: dbt runs every time, as before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb

from ingest.interrupts import interruptible
from ingest.sqltext import sql_text
from itrack.dbt_runner import (
    DbtOutcome,
    FailedNode,
    is_invariants,
    name_failed_checks,
    work_dir,
)

PLAN_VERSION = 1
# what macro as_of() writes after the run's start (dbt_project/macros/cross_db.sql)
RUN_START_MARKER = "/* itrack:run_started_at */"
RUN_START = re.compile(r"cast\('[^']*' as timestamp\) " + re.escape(RUN_START_MARKER))
RUN_START_TOKEN = "__itrack_run_started_at__"
REPLAYABLE = {"view", "table"}
WORKERS = 2  # nodes run at once, as dbt's threads in dbt_project/profiles.yml
MEMORY_LIMIT = "1GB"  # DuckDB's buffers during a replay


@dataclass(frozen=True)
class PlanNode:
    """One model or data test as dbt ran it."""

    unique_id: str
    name: str
    kind: str  # "model" or "test"
    sql: str  # compiled, with RUN_START_TOKEN for the build time
    depends_on: list[str]
    database: str = ""
    schema: str = ""
    relation: str = ""  # models: "database"."schema"."alias"
    materialized: str = ""  # models: view or table
    contract: list[list[Any]] | None = None  # enforced contract: [name, data_type, not_null]
    severity: str = "error"  # tests
    warn_if: str = "!= 0"
    error_if: str = "!= 0"
    fail_calc: str = "count(*)"
    limit: int | None = None
    invariants: bool = False  # a batched `invariants` test: its failures are named by check


@dataclass
class Plan:
    key: str
    nodes: list[PlanNode] = field(default_factory=list)

    def sql_of(self, model: str, as_of: dt.datetime) -> str | None:
        """A model's SQL as `replay` runs it, with the build time `as_of`."""
        return next((stamped(n.sql, as_of) for n in self.nodes if n.name == model), None)


def stamped(sql: str, as_of: dt.datetime) -> str:
    """Recorded SQL with the build time `as_of` (UTC) where dbt's run used its start, to the
    microsecond as the raw timestamps: cut to the second, changes recorded earlier in the
    build's first second looked later than the build."""
    return sql.replace(
        RUN_START_TOKEN, f"cast('{as_of:%Y-%m-%d %H:%M:%S.%f}' as timestamp) {RUN_START_MARKER}"
    )


def plan_key(project_state: str, database: str) -> str:
    """What a plan is valid for: the project's files, the versions that compile and run it,
    and the catalog name its SQL uses."""
    versions = [version("dbt-core"), version("dbt-duckdb"), duckdb.__version__]
    text = json.dumps([PLAN_VERSION, project_state, versions, database])
    return hashlib.sha256(text.encode()).hexdigest()


def plan_path(location: Path) -> Path:
    """Per warehouse: `<data>/.build/dbt/<name>.plan.json` (the work folder is per data folder)."""
    return work_dir(location) / f"{catalog_of(location)}.plan.json"


def seeds_path(location: Path) -> Path:
    """The seed tables dbt loaded for the plan's project, beside the plan."""
    return work_dir(location) / f"{catalog_of(location)}.plan-seeds.duckdb"


def catalog_of(location: Path) -> str:
    """The catalog name DuckDB gives a warehouse file, and the build files named after it (the
    file name up to the first dot): the one the compiled SQL names."""
    return Path(location).name.split(".")[0] or "warehouse"


def record(results: list[Any], key: str) -> Plan | None:
    """The plan of a successful `dbt build` from its node results (seeds aside: `save` keeps
    their tables); None when a node cannot be replayed exactly (a unit test among them)."""
    nodes = []
    for node_result in results:
        node = node_result.node
        kind = str(node.resource_type).lower().split(".")[-1]
        if kind == "seed":
            continue
        if kind not in ("model", "test"):
            return None
        planned = _plan_node(node, kind)
        if planned is None:
            return None
        nodes.append(planned)
    return Plan(key, _ordered(nodes))


def _plan_node(node: Any, kind: str) -> PlanNode | None:
    config = node.config
    sql = RUN_START.sub(RUN_START_TOKEN, node.compiled_code or "")
    common = {
        "unique_id": node.unique_id,
        "name": node.name,
        "kind": kind,
        "sql": sql,
        "depends_on": [n for n in node.depends_on.nodes if n.split(".")[0] in ("model", "seed")],
        "database": node.database,
        "schema": node.schema,
    }
    if kind == "test":
        if getattr(config, "store_failures", None) or getattr(config, "where", None):
            return None
        return PlanNode(
            **common,
            severity=str(config.severity).lower(),
            warn_if=config.warn_if,
            error_if=config.error_if,
            fail_calc=config.fail_calc,
            limit=config.limit,
            invariants=is_invariants(node),
        )
    if config.materialized not in REPLAYABLE or config.pre_hook or config.post_hook:
        return None
    if getattr(node, "constraints", None):  # model-level constraints
        return None
    contract = None
    if config.contract.enforced:
        contract = []
        for column in node.columns.values():
            types = {str(c.type).lower().split(".")[-1] for c in column.constraints}
            if types - {"not_null"}:
                return None
            contract.append([column.name, column.data_type, "not_null" in types])
    return PlanNode(
        **common,
        relation=node.relation_name,
        materialized=config.materialized,
        contract=contract,
    )


def _ordered(nodes: list[PlanNode]) -> list[PlanNode]:
    """dbt build's order (`_waits`); ties by unique id."""
    by_id = {n.unique_id: n for n in nodes}
    waits = _waits(nodes)
    order: list[PlanNode] = []
    done: set[str] = set()
    while len(order) < len(nodes):
        ready = sorted(u for u, deps in waits.items() if u not in done and deps <= done)
        if not ready:
            raise RuntimeError("dbt plan: the nodes' dependencies form a cycle")
        for unique_id in ready:
            done.add(unique_id)
            order.append(by_id[unique_id])
    return order


def _waits(nodes: list[PlanNode]) -> dict[str, set[str]]:
    """Per node, what runs before it: its parents among `nodes`, and for a model the tests
    gating it (`_gates`), whose failure skips it as dbt build does."""
    known = {n.unique_id for n in nodes}
    gates = _gates(nodes)
    return {n.unique_id: (set(n.depends_on) | gates.get(n.unique_id, set())) & known for n in nodes}


def _gates(nodes: list[PlanNode]) -> dict[str, set[str]]:
    """Per model, the tests dbt build runs before it, and whose failure skips it: those whose
    every tested node is upstream of the model (as dbt adds its test edges)."""
    parents = {n.unique_id: set(n.depends_on) for n in nodes if n.kind == "model"}
    upstream: dict[str, set[str]] = {}

    def ancestors(unique_id: str) -> set[str]:
        if unique_id not in upstream:
            found: set[str] = set()
            for parent in parents.get(unique_id, ()):
                found |= {parent} | ancestors(parent)
            upstream[unique_id] = found
        return upstream[unique_id]

    tests = [n for n in nodes if n.kind == "test"]
    return {
        model: {
            t.unique_id for t in tests if t.depends_on and set(t.depends_on) <= ancestors(model)
        }
        for model in parents
    }


def save(plan: Plan, location: Path, building: Path) -> None:
    """Write the plan and a copy of the build file's seed tables (`_replace_pair`)."""
    plan_path(location).parent.mkdir(parents=True, exist_ok=True)

    def write_seeds(staged: Path) -> None:
        con = interruptible(duckdb.connect(str(staged)))
        try:
            con.execute(f"attach {sql_text(str(Path(building).absolute()))} as built (read_only)")
            copy_seed_tables(con, "built")
        finally:
            con.close()

    def write_plan(staged: Path) -> None:
        document = {"key": plan.key, "nodes": [asdict(n) for n in plan.nodes]}
        staged.write_text(json.dumps(document, indent=1), encoding="utf-8")

    _replace_pair((seeds_path(location), write_seeds), (plan_path(location), write_plan))


def _replace_pair(
    seeds: tuple[Path, Callable[[Path], object]], plan: tuple[Path, Callable[[Path], object]]
) -> None:
    """Replace a plan file and its seed file, each whole: both are written first, each under a
    name of this process beside its target (two builds sharing a folder never write one file),
    then the seeds replace theirs before the plan does (a plan file means its seeds are there).
    A failed write leaves nothing staged behind and the targets as they were."""
    staged = [(t.with_name(f"{t.name}.{os.getpid()}.new"), t, w) for t, w in (seeds, plan)]
    try:
        for path, _target, write in staged:
            path.unlink(missing_ok=True)
            write(path)
        for path, target, _write in staged:
            os.replace(path, target)
    finally:
        for path, _target, _write in staged:
            path.unlink(missing_ok=True)


def load(location: Path, key: str) -> Plan | None:
    """The location's plan when it is valid for `key` and its seeds are there, else None."""
    path = plan_path(location)
    if not path.exists() or not seeds_path(location).exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("key") != key:
            return None
        return Plan(key, [PlanNode(**n) for n in document["nodes"]])
    except (ValueError, TypeError, KeyError):  # damaged or from another version: dbt runs
        return None


# Plans shared between warehouse locations (`ITRACK_PLAN_CACHE`): a plan holds no path of its
# location (its SQL names the catalog, which its key holds, and the attached raw store by its
# alias), so a plan recorded at one location is valid at any other with the same key.
SHARED_PLANS_KEPT = 8  # the newest keys kept (one per project state and catalog)


def _shared_files(cache: Path, key: str) -> tuple[Path, Path]:
    return cache / f"{key}.plan.json", cache / f"{key}.seeds.duckdb"


def share(location: Path, key: str, cache: Path) -> str | None:
    """Copy the location's plan (valid for `key`) into the shared folder `cache`, the seeds
    first (a shared plan file means its seeds are there), each atomically; then keep only the
    newest SHARED_PLANS_KEPT. None, or why the folder could not be written: the build goes on
    (it has its own plan), and says so."""
    plan, seeds = _shared_files(cache, key)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        _replace_pair(
            (seeds, functools.partial(shutil.copyfile, seeds_path(location))),
            (plan, functools.partial(shutil.copyfile, plan_path(location))),
        )
        _prune(cache)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def adopt(cache: Path, key: str, location: Path) -> bool:
    """Copy the shared plan of `key`, with its seeds, to the location (where `load` finds it);
    whether there was one. Should a copy fail, the location is left with no plan (dbt runs):
    never a plan beside another plan's seeds."""
    plan, seeds = _shared_files(cache, key)
    if not (plan.exists() and seeds.exists()):
        return False
    try:
        plan_path(location).parent.mkdir(parents=True, exist_ok=True)
        _replace_pair(
            (seeds_path(location), functools.partial(shutil.copyfile, seeds)),
            (plan_path(location), functools.partial(shutil.copyfile, plan)),
        )
    except OSError:
        plan_path(location).unlink(missing_ok=True)
        return False
    with contextlib.suppress(OSError):  # a folder this user may only read is still used
        os.utime(plan)  # recently used: kept longest by `_prune`
    return True


def _prune(cache: Path) -> None:
    plans = sorted(cache.glob("*.plan.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in plans[SHARED_PLANS_KEPT:]:
        key = old.name.removesuffix(".plan.json")
        for path in _shared_files(cache, key):
            path.unlink(missing_ok=True)


def copy_seed_tables(con: duckdb.DuckDBPyConnection, source: str) -> int:
    """Copy every table of attached `source` outside the models' schema `main` (the seeds)
    into the connection's own database."""
    seeds = con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where database_name = ? and schema_name <> 'main' order by all",
        [source],
    ).fetchall()
    for schema, table in seeds:
        con.execute(f'create schema if not exists "{schema}"')
        con.execute(f'create table "{schema}"."{table}" as from {source}."{schema}"."{table}"')
    return len(seeds)


def replay(
    plan: Plan,
    building: Path,
    raw_store: Path,
    location: Path,
    as_of: dt.datetime,
) -> DbtOutcome | None:
    """Run the plan on the (new, empty) build file `building`, reading `raw_store` (attached
    read-only as `raw_store`, as the profile does): its seeds first, then every model and data
    test in order. `as_of`: the build time (UTC) where the SQL used the run's start. None
    when the file's catalog is not the one the plan's SQL names, or the plan's seed file cannot
    be read (nothing was run)."""
    sqls = {n.unique_id: stamped(n.sql, as_of) for n in plan.nodes}
    outcome = DbtOutcome(ok=True)
    con = interruptible(duckdb.connect(str(building)))
    try:
        (catalog,) = con.execute("select current_database()").fetchone()
        if {n.database for n in plan.nodes} != {catalog}:
            return None  # the SQL names another catalog than this file's: dbt runs
        con.execute("set TimeZone = 'UTC'")  # as the profile sets it
        # two statements at once hold more buffers: bounded (DuckDB spills beyond it), so the
        # build's peak stays under 1.5 GB at 1M records (issue #17)
        con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
        con.execute(f"attach {sql_text(str(Path(raw_store).absolute()))} as raw_store (read_only)")
        try:
            con.execute(f"attach {sql_text(str(seeds_path(location)))} as plan_seeds (read_only)")
            copy_seed_tables(con, "plan_seeds")
            con.execute("detach plan_seeds")
        except duckdb.Error:
            return None  # the plan's seed file is damaged: dbt runs (and records them anew)
        for database, schema in sorted({(n.database, n.schema) for n in plan.nodes if n.relation}):
            con.execute(f'create schema if not exists "{database}"."{schema}"')
        results = _run_all(con, plan, sqls)
    finally:
        con.close()
    for node in plan.nodes:  # reported in the plan's order, whichever finished first
        if node.unique_id not in results:
            continue  # skipped: something it is built on failed
        outcome.nodes.append(node.unique_id)
        status, message = results[node.unique_id]
        if status in ("fail", "error"):
            outcome.ok = False
            outcome.failed.append(FailedNode(node.name, node.kind, status, message))
        elif status == "warn":
            outcome.warned.append(FailedNode(node.name, node.kind, status, message))
    compiled = {n.name: sqls[n.unique_id] for n in plan.nodes if n.invariants}
    name_failed_checks(outcome, compiled, building, raw_store)
    return outcome


def _run_all(
    con: duckdb.DuckDBPyConnection, plan: Plan, sqls: dict[str, str]
) -> dict[str, tuple[str, str]]:
    """Every node whose parents and gating tests passed, two at a time (as dbt's two threads),
    each on its own cursor, running `sqls[unique id]`: (status, message) by unique id; the
    others are skipped (absent). Two at a time, not one: DuckDB keeps both cores busy within
    most statements, not all (a window's sort, a table's compression), and overlapping them
    took 0.4 s off 8.4 s at 1M."""
    waits = _waits(plan.nodes)
    pending = list(plan.nodes)
    results: dict[str, tuple[str, str]] = {}
    finished: set[str] = set()
    blocked: set[str] = set()  # failed or skipped: what waits for them is skipped
    cursors = [interruptible(con.cursor()) for _ in range(WORKERS)]  # their own queries
    try:
        for cursor in cursors:
            cursor.execute("set TimeZone = 'UTC'")  # a connection setting: on each cursor
        running: dict[Future[tuple[str, str]], tuple[PlanNode, duckdb.DuckDBPyConnection]] = {}
        with ThreadPoolExecutor(WORKERS) as pool:
            while pending or running:
                decided = False
                for node in [n for n in pending if waits[n.unique_id] <= finished]:
                    if waits[node.unique_id] & blocked:
                        pending.remove(node)
                        blocked.add(node.unique_id)
                        finished.add(node.unique_id)
                        decided = True
                    elif len(running) < len(cursors):
                        pending.remove(node)
                        cursor = _free(cursors, running)
                        job = pool.submit(_run, cursor, node, sqls[node.unique_id])
                        running[job] = (node, cursor)
                if not running:
                    if not decided:
                        raise RuntimeError("dbt plan: the nodes' dependencies form a cycle")
                    continue  # only skips were decided: look again
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    node, _cursor = running.pop(future)
                    results[node.unique_id] = future.result()
                    finished.add(node.unique_id)
                    if results[node.unique_id][0] in ("fail", "error"):
                        blocked.add(node.unique_id)
    finally:
        for cursor in cursors:
            cursor.close()
    return results


def _free(
    cursors: list[duckdb.DuckDBPyConnection],
    running: dict[Future[tuple[str, str]], tuple[PlanNode, duckdb.DuckDBPyConnection]],
) -> duckdb.DuckDBPyConnection:
    busy = {id(cursor) for _node, cursor in running.values()}
    return next(c for c in cursors if id(c) not in busy)


def _run(con: duckdb.DuckDBPyConnection, node: PlanNode, sql: str) -> tuple[str, str]:
    """One node on its own cursor: (status, message) as dbt reports them."""
    try:
        if node.kind == "model":
            _materialize(con, node, sql)
            return "success", "OK"
        return _verdict(con, node, sql)
    except duckdb.Error as error:
        if node.kind == "model":
            con.execute("rollback")
        return "error", (str(error).splitlines() or [""])[0]


def _materialize(con: duckdb.DuckDBPyConnection, node: PlanNode, sql: str) -> None:
    """What dbt-duckdb's view and table materialisations leave, in one transaction."""
    con.execute("begin")  # (its schema was created before any node ran)
    if node.materialized == "view":
        con.execute(f"create or replace view {node.relation} as (\n{sql}\n)")
    elif node.contract is None:
        con.execute(f"create or replace table {node.relation} as (\n{sql}\n)")
    else:
        _contracted_table(con, node, sql)
    con.execute("commit")


def _contracted_table(con: duckdb.DuckDBPyConnection, node: PlanNode, sql: str) -> None:
    """An enforced contract: the query's columns must have the declared types (dbt refuses the
    model otherwise), the table is created with them and its not-null constraints, then
    filled."""
    assert node.contract is not None
    columns = ", ".join(
        f"{name} {data_type}{' not null' if not_null else ''}"
        for name, data_type, not_null in node.contract
    )
    con.execute(f"create or replace table {node.relation} ({columns})")
    declared = dict(
        con.execute(f"select column_name, column_type from (describe {node.relation})").fetchall()
    )
    built = dict(
        con.execute(f"select column_name, column_type from (describe (\n{sql}\n))").fetchall()
    )
    wrong = [
        f"{name} is {built.get(name, 'missing')}, the contract says {declared[name]}"
        for name in declared
        if built.get(name) != declared[name]
    ]
    extra = sorted(set(built) - set(declared))
    if wrong or extra:
        raise duckdb.Error(
            f"{node.name}: the enforced contract failed: "
            + "; ".join(wrong + [f"{name} is not in the contract" for name in extra])
        )
    names = ", ".join(name for name, _type, _null in node.contract)
    con.execute(
        f"insert into {node.relation} ({names}) (select {names} from (\n{sql}\n) as model_subq)"
    )


def _verdict(con: duckdb.DuckDBPyConnection, node: PlanNode, sql: str) -> tuple[str, str]:
    """A data test as dbt evaluates it: its failures, then fail, warn or pass by severity."""
    limit = f"\nlimit {node.limit}" if node.limit is not None else ""
    failures, should_warn, should_error = con.execute(
        f"select {node.fail_calc} as failures, {node.fail_calc} {node.warn_if} as should_warn, "
        f"{node.fail_calc} {node.error_if} as should_error "
        f"from (\n{sql}{limit}\n) dbt_internal_test"
    ).fetchone()
    results = f"{failures} result{'' if failures == 1 else 's'}"
    if should_error and node.severity == "error":
        return "fail", f"Got {results}, configured to fail if {node.error_if}"
    if should_warn:
        return "warn", f"Got {results}, configured to warn if {node.warn_if}"
    return "pass", ""

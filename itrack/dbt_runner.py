"""Run dbt in-process against a given warehouse file and raw store.

In-process saves a second interpreter start-up on every nightly build. Three things make it
safe and fast:
- dbt-duckdb keeps its DuckDB connection open after the invocation (`keep_open` defaults to
  true), so we close it ourselves: the build file must be closed before it is published.
- Paths reach dbt as `--vars` (`warehouse_path`, `raw_store_path`) that dbt_project/profiles.yml
  reads with `var()`: no environment variable is touched, so a long-running process (the HTTP
  API) can run dbt safely.
- dbt re-parses the whole project when the profile or the vars change, and the warehouse path
  is a fresh build file every night (about 7 s of parsing). dbt therefore sees a stable symlink
  per warehouse location (`<data>/.build/dbt/<name>.duckdb`) pointing at the file of the day,
  and the raw store's absolute path, which is fixed per location: the vars are the same
  strings every night, so partial parsing keeps working between builds.
- Runs for one warehouse location are serialised by a lock file: the link, dbt's target
  folder and its partial-parse state are per location and not safe to share concurrently.
- That state holds absolute paths (each seed's CSV file), and dbt reuses it while the files'
  contents are unchanged, even when the project now lives elsewhere (a checkout moved, a
  virtualenv rebuilt at another path): it is dropped when the project's folder is not the one
  it was parsed from (`_parsed_here`).
"""

from __future__ import annotations

import fcntl
import io
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedback.publish import build_dir
from ingest.errors import UserError
from ingest.interrupts import ctrl_c_noticed, interrupted, interruptible
from ingest.sqltext import sql_text
from ingest.store.duckdb.store import warehouse_beside

if TYPE_CHECKING:  # imported where a connection is opened: a no-op build opens none
    import duckdb


def _project_dir() -> Path:
    """`dbt_project/`: installed inside the package (`itrack/dbt_project`, see pyproject.toml),
    else the checkout's top-level folder (editable installs and the source tree)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "dbt_project", here.parent / "dbt_project"):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    raise RuntimeError(f"no dbt project beside {here}: reinstall interview-tracking")


PROJECT_DIR = _project_dir()


def project_var(name: str) -> Any:
    """A var as dbt_project.yml sets it: what every build runs with (itrack passes no --vars)."""
    import yaml  # here: most commands never read the project

    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return project["vars"][name]


FAILED_STATUSES = ("fail", "error", "runtime error")


@dataclass(frozen=True)
class FailedNode:
    """One dbt node that did not pass: `kind` is test, unit_test, model, seed, ..."""

    name: str
    kind: str
    status: str
    message: str

    def __str__(self) -> str:
        return f"{self.name} ({self.status}{': ' + self.message if self.message else ''})"


@dataclass
class DbtOutcome:
    ok: bool
    failed: list[FailedNode] = field(default_factory=list)
    warned: list[FailedNode] = field(default_factory=list)
    error: str | None = None  # dbt itself failed (compile error, bad profile, ...)
    log_path: Path | None = None
    nodes: list[str] = field(default_factory=list)  # unique ids of the nodes that ran
    results: list[Any] = field(default_factory=list, repr=False)  # dbt's node results

    @property
    def failures(self) -> list[str]:
        """One line per failing node (or the dbt error), for people."""
        lines = [str(node) for node in self.failed]
        if self.error and not lines:
            lines.append(self.error)
        return lines

    @property
    def warnings(self) -> list[str]:
        return [str(node) for node in self.warned]


def work_dir(raw_store: Path) -> Path:
    """Per warehouse location: dbt's link, target folder, logs and lock."""
    return build_dir(Path(raw_store).absolute()) / "dbt"


def _link_name(raw_store: Path) -> str:
    return warehouse_beside(Path(raw_store)).name


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # waits: dbt runs on one location take turns
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _stable_path(warehouse: Path, folder: Path, name: str) -> Iterator[Path]:
    """A symlink with a fixed path to `warehouse`, removed afterwards."""
    link = folder / name
    wal = link.with_name(link.name + ".wal")
    for stale in (link, wal):  # a crashed run's WAL must never replay onto another file
        stale.unlink(missing_ok=True)
    link.symlink_to(Path(warehouse).absolute())
    try:
        yield link
    finally:
        if wal.exists():  # not checkpointed: fold it into the file before the link goes
            import duckdb

            duckdb.connect(str(link)).close()
        link.unlink(missing_ok=True)


def dbt_vars(warehouse: Path, raw_store: Path, extra: dict[str, Any] | None = None) -> str:
    """The `--vars` document: the two paths the profile reads with `var()`, then `extra`."""
    paths = {
        "warehouse_path": str(warehouse),
        "raw_store_path": str(Path(raw_store).absolute()),
    }
    return json.dumps({**(extra or {}), **paths})


def _split_vars(
    args: list[str], variables: dict[str, Any] | None
) -> tuple[list[str], dict[str, Any]]:
    """`args` without a `--vars` option, and its YAML document merged over `variables`."""
    merged = dict(variables or {})
    if "--vars" in args:
        import yaml

        at = args.index("--vars")
        merged |= yaml.safe_load(args[at + 1]) or {}
        args = args[:at] + args[at + 2 :]
    return args, merged


def close_dbt_connections() -> None:
    """dbt-duckdb keeps one DuckDB connection per process open by default: close it."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    if env is not None:
        env.close()
    DuckDBConnectionManager.close_all_connections()


def run_dbt(
    args: list[str],
    warehouse: Path,
    raw_store: Path,
    quiet: bool = True,
    target_path: Path | None = None,
    variables: dict[str, Any] | None = None,
    location: Path | None = None,
) -> DbtOutcome:
    """`dbt <args>` on `warehouse`, reading raw tables from `raw_store`; failing nodes named.

    Works from any current directory. `target_path` defaults to the location's work folder.
    `variables` are passed to dbt as `--vars` together with the two paths (a `--vars` given
    in `args` is merged into them the same way). `location`: the live raw store whose work
    folder to use when `raw_store` is a snapshot of it (the build's).
    """
    from dbt.cli.main import dbtRunner

    args, variables = _split_vars(list(args), variables)
    location = location or raw_store
    folder = work_dir(location)
    target = Path(target_path or folder / "target").absolute()
    flags = [
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(folder / "logs"),
        "--no-use-colors",  # plain text in logs and in cron mail: no ANSI codes
        "--no-use-colors-file",
    ]
    if quiet:
        flags = ["--quiet", "--log-level-file", "info", *flags]
    with _locked(folder), _stable_path(warehouse, folder, _link_name(location)) as link:
        _parsed_here(target)
        flags += ["--vars", dbt_vars(link, raw_store, variables)]
        try:
            with _console_until_ctrl_c():
                result = dbtRunner().invoke([*args, *flags])  # options after the subcommand
        finally:
            close_dbt_connections()
        _reraise_interrupt(getattr(result, "exception", None))
        outcome = _outcome(result, folder / "logs" / "dbt.log")
        name_failed_checks(outcome, _invariants_sql(outcome.results), link, raw_store)
    return outcome


class _UntilCtrlC(io.TextIOBase):
    """dbt's console: what dbt prints goes to stdout as it comes, until Ctrl-C; after it, dbt's
    cancel notices and its "Encountered an error" with a traceback of the KeyboardInterrupt
    are held back (the command says "interrupted" in one line, exit 130)."""

    def __init__(self, pressed: Callable[[], bool]) -> None:
        super().__init__()
        self.pressed = pressed

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not self.pressed():
            sys.stdout.write(text)
        return len(text)

    def flush(self) -> None:
        if not self.pressed():
            sys.stdout.flush()


@contextmanager
def _console_until_ctrl_c() -> Iterator[None]:
    """Within: dbt prints through `_UntilCtrlC` (dbt's own hook for where its console goes)."""
    from dbt_common.events.functions import capture_stdout_logs, stop_capture_stdout_logs

    with ctrl_c_noticed() as pressed:
        capture_stdout_logs(_UntilCtrlC(pressed))
        try:
            yield
        finally:
            stop_capture_stdout_logs()


def _reraise_interrupt(exception: BaseException | None) -> None:
    """Ctrl-C while dbt runs is the interrupt it is (exit 130, "interrupted"): dbt's runner
    catches the KeyboardInterrupt (or its DuckDB query's interrupt) and returns it as a failed
    invocation, which the build reported as a failed dbt build (exit 1, "dbt failed")."""
    if exception is not None and (
        isinstance(exception, KeyboardInterrupt) or interrupted(exception)
    ):
        raise KeyboardInterrupt from None


PARSED_FROM = "itrack-project-dir"  # beside dbt's partial_parse.msgpack: the folder it parsed


def _parsed_here(target: Path) -> None:
    """Drop dbt's partial-parse state in `target` unless it was parsed from PROJECT_DIR (dbt
    then parses the whole project once, about 7 s), and note the folder it will parse."""
    marker, here = target / PARSED_FROM, str(PROJECT_DIR.resolve())
    if marker.exists() and marker.read_text(encoding="utf-8") == here:
        return
    (target / "partial_parse.msgpack").unlink(missing_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    marker.write_text(here, encoding="utf-8")


def is_invariants(node: Any) -> bool:
    """Whether a dbt node is a batched `invariants` test (tests/generic/invariants.sql)."""
    return getattr(getattr(node, "test_metadata", None), "name", None) == "invariants"


def _invariants_sql(results: list[Any]) -> dict[str, str]:
    """The compiled SQL of every batched `invariants` test among dbt's node results, by name."""
    nodes = [getattr(node_result, "node", None) for node_result in results]
    return {n.name: n.compiled_code for n in nodes if is_invariants(n) and n.compiled_code}


def name_failed_checks(
    outcome: DbtOutcome, compiled: dict[str, str], link: Path, raw_store: Path
) -> None:
    """A failed or warning `invariants` test batches many checks: its message becomes which
    ones failed and on what values (its failing rows, read back), not only a row count.
    `compiled`: the SQL of those tests by name."""
    failing = [n for n in [*outcome.failed, *outcome.warned] if n.name in compiled]
    if not failing:
        return
    import duckdb

    con = interruptible(duckdb.connect(str(link), read_only=True))
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach {sql_text(str(Path(raw_store).absolute()))} as raw_store (read_only)")
        for index, node in enumerate(outcome.failed):
            if node.name in compiled:
                outcome.failed[index] = _with_checks(con, node, compiled[node.name])
        for index, node in enumerate(outcome.warned):
            if node.name in compiled:
                outcome.warned[index] = _with_checks(con, node, compiled[node.name])
    finally:
        con.close()


def _with_checks(con: duckdb.DuckDBPyConnection, node: FailedNode, sql: str) -> FailedNode:
    """`node` with its message listing each failed check, its rows and up to 3 values."""
    import duckdb

    try:
        rows = con.execute(
            "select failed_check, count(*), (list(distinct failing_value order by failing_value) "
            f"filter (where failing_value is not null))[1:3] from ({sql}) "
            "group by failed_check order by failed_check"
        ).fetchall()
    except duckdb.Error:  # the message stays dbt's
        return node
    checks = "; ".join(
        f"{check}: {count} row(s)"
        + (f", e.g. {', '.join(repr(v) for v in values)}" if values else "")
        for check, count, values in rows
    )
    return FailedNode(node.name, node.kind, node.status, checks or node.message)


def _outcome(result: object, log_path: Path) -> DbtOutcome:
    outcome = DbtOutcome(ok=bool(getattr(result, "success", False)), log_path=log_path)
    outcome.results = list(getattr(getattr(result, "result", None), "results", None) or [])
    for node_result in outcome.results:
        status = str(getattr(node_result, "status", "")).lower()
        node = getattr(node_result, "node", None)
        outcome.nodes.append(str(getattr(node, "unique_id", "?")))
        failed = FailedNode(
            name=getattr(node, "name", "?"),
            kind=str(getattr(node, "resource_type", "?")).lower(),
            status=status,
            message=((getattr(node_result, "message", "") or "").splitlines() or [""])[0],
        )
        if status in FAILED_STATUSES:
            outcome.failed.append(failed)
        elif status == "warn":
            outcome.warned.append(failed)
    exception = getattr(result, "exception", None)
    if not outcome.ok and not outcome.failed:
        text = str(exception).strip().splitlines() if exception else []
        outcome.error = text[0] if text else f"dbt failed; see {log_path}"
    return outcome


def rebuild_table(
    model: str, warehouse: Path, raw_store: Path, location: Path, sql: str | None = None
) -> None:
    """Rebuild table model `model` in `warehouse` from `raw_store` with `sql`, by default the
    SQL dbt compiled for it in the last run on `location` (what dbt's table materialisation
    runs, in one transaction), without a dbt invocation. Only for models that read sources
    alone."""
    if sql is None:
        target = work_dir(location) / "target" / "compiled"
        found = sorted(target.glob(f"*/models/**/{model}.sql"))
        if len(found) != 1:
            raise UserError(f"no compiled SQL for {model} under {target}: run the dbt build first")
        sql = found[0].read_text(encoding="utf-8")
    import duckdb

    con = interruptible(duckdb.connect(str(warehouse)))
    try:
        con.execute("set TimeZone = 'UTC'")  # as the profile sets it
        con.execute(f"attach {sql_text(str(Path(raw_store).absolute()))} as raw_store (read_only)")
        con.execute("begin")
        con.execute(f'create or replace table main."{model}" as ({sql})')
        con.execute("commit")
    finally:
        con.close()


def _require_built(warehouse: Path) -> None:
    """Refuse a file that is no built warehouse, in one line, before dbt runs: an empty
    DuckDB file gave a catalog of no model (exit 0), a file DuckDB cannot open dbt's
    tracebacks. The marks of a build are those the feedback step requires."""
    from feedback.marts import open_read_only, require_marts
    from feedback.service import REQUIRED_MARTS

    con = open_read_only(warehouse)
    try:
        require_marts(con, warehouse, REQUIRED_MARTS, " (the catalog describes the built tables)")
    finally:
        con.close()


def docs_generate(warehouse: Path, raw_store: Path) -> Path:
    """`dbt docs generate --static` (one self-contained index.html with the lineage of every
    model) into dbt_project/target/; returns that folder."""

    # On a private copy: the published warehouse may be held open by analysts (read-only).
    # DuckDB names a database after the file behind the symlink, and dbt's catalog query looks
    # for the name of the link: the copy must have the link's name, or the catalog is empty.
    if not Path(raw_store).exists():  # a wrong --db: say so, create nothing
        raise UserError(
            f"no raw store at {raw_store}: check --db, or build first (`itrack build PATH`)"
        )
    if not Path(warehouse).exists():  # a catalog without the built tables has no models
        raise UserError(
            f"{warehouse}: no warehouse yet; the catalog describes the built tables: run "
            "`itrack build` first"
        )
    _require_built(warehouse)
    scratch = work_dir(raw_store) / "docs" / _link_name(raw_store)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    scratch.unlink(missing_ok=True)
    shutil.copy2(warehouse, scratch)
    target = PROJECT_DIR / "target"
    try:
        outcome = run_dbt(["docs", "generate", "--static"], scratch, raw_store, target_path=target)
    finally:
        scratch.unlink(missing_ok=True)
        scratch.with_name(scratch.name + ".wal").unlink(missing_ok=True)
    if not outcome.ok:
        raise UserError("dbt docs generate failed: " + "; ".join(outcome.failures))
    return target

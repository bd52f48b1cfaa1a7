from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from ingest.store.duckdb.store import raw_store_path
from tests import pg

# One folder of shared dbt plans for the whole run (`ITRACK_PLAN_CACHE`: every xdist worker,
# started with the controller's environment, and every `itrack` a test starts): the first build
# of the project runs dbt, the first build of any other location replays its plan
# (itrack/dbt_plan.py; tests/test_dbt_plan.py proves a replay builds what dbt builds) instead
# of running dbt again (about 6 s each). Never the user's own folder; removed by the process
# that made it. A test that checks a first build's dbt run clears it (test_daily_build.py).
_PLANS_VARIABLE = "TESTS_SHARED_PLANS"
_MADE_HERE = _PLANS_VARIABLE not in os.environ
# named here, made by the first build that shares a plan (a run that stops before its session
# starts, a usage error, leaves no folder behind)
SHARED_PLANS = Path(
    os.environ.get(_PLANS_VARIABLE)
    or Path(tempfile.gettempdir()) / f"itrack-test-plans-{os.getpid()}"
)
os.environ[_PLANS_VARIABLE] = str(SHARED_PLANS)
os.environ["ITRACK_PLAN_CACHE"] = str(SHARED_PLANS)


def pytest_sessionfinish(session) -> None:
    if _MADE_HERE:  # the run's controller, after its workers (or the only process)
        shutil.rmtree(SHARED_PLANS, ignore_errors=True)


# The charts of the HTML report, in page order (their figure ids are chart-<name>).
CHARTS = (
    "funnel",
    "feeder-conversion",
    "company-feeder-heatmap",
    "time-to-decision",
    "stage-pass-rates",
    "feeder-trend",
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A warehouse path in a temporary folder (its raw store lives beside it)."""
    return tmp_path / "warehouse.duckdb"


def read(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of `sql` on the DuckDB file `path` (a warehouse or a raw store), read-only."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Read the raw store of warehouse `db` with a short-lived read-only connection."""
    return read(raw_store_path(db), sql, params)


@pytest.fixture(scope="session")
def published_300(tmp_path_factory, shared_plans: Path) -> Path:
    """A warehouse built from `itrack generate` (300 processes, seed 5), shared read-only by the
    report and analytics tests."""
    from itrack.generate import generate
    from itrack.pipeline import run_build

    root = tmp_path_factory.mktemp("published_300")
    generate(root / "in", 300, seed=5)
    run_build(
        [root / "in"],
        db=root / "warehouse.duckdb",
        take_backup=False,
        note=lambda _m: None,
        plan_cache=shared_plans,
    )
    return root / "warehouse.duckdb"


@pytest.fixture(scope="session")
def shared_plans() -> Path:
    """The run's folder of shared dbt plans (SHARED_PLANS), for `run_build(plan_cache=...)` in
    tests that check what a build leaves, not whether dbt ran."""
    return SHARED_PLANS


def assert_exit(result, code: int) -> None:
    """A CliRunner result ended with exactly `code` and no exception escaped the command
    (CliRunner keeps an escaped exception in `result.exception`, not in the output)."""
    assert result.exit_code == code, result.output
    if code == 0:
        assert result.exception is None, repr(result.exception)
    else:
        assert type(result.exception) is SystemExit, repr(result.exception)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Admin DSN of a real PostgreSQL server (tests/pg.py): never skipped when none runs."""
    try:
        with pg.server() as dsn:
            yield dsn
    except pg.NoServer as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> Iterator[str]:
    """The name of a migrated database to copy (`pg.database(server, template=...)`): a fresh
    migrated database per test costs a file copy, not the migrations."""
    with pg.database(pg_server) as dsn:
        yield dsn.rsplit("/", 1)[1]


@pytest.fixture
def pg_fresh(pg_server: str, pg_template: str) -> Iterator[str]:
    """A migrated throw-away database for one test (a copy of the template), dropped after."""
    with pg.database(pg_server, template=pg_template) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A migrated throw-away database for one test module, dropped afterwards."""
    with pg.database(pg_server) as dsn:
        yield dsn


@contextmanager
def ctrl_c_reaches_children() -> Iterator[None]:
    """Children started inside get SIGINT as a shell starts a command: handled, not ignored or
    blocked, whatever the test worker's own state (a child inherits an ignored or blocked
    signal through exec). Once, in one pytest-xdist worker, every Ctrl-C test's child ran on
    untouched (a restore to its end, exit 0; a query until the test's 60 s timeout), as if its
    SIGINT were ignored, while the same tests passed in the other worker and in every other
    run: the tests of Ctrl-C must not depend on what ran before them in the worker."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if previous is not None:  # None: a handler not set from Python, left as it is
            signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

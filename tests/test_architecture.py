"""The layout's promises: dependencies run one way, every command shares one error handler,
and an installed `itrack` works outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ingest.migrate import discover
from ingest.service import InterviewService
from ingest.store.duckdb.store import MIGRATIONS, open_store
from itrack.cli.main import app
from itrack.settings import Settings, from_environment, get_settings
from tests.conftest import assert_exit

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"


def test_import_contracts_are_kept():
    """import-linter (pyproject.toml [tool.importlinter]): itrack -> feedback -> ingest, feedback
    sees only ingest's contract, errors, file lock and file checksum, the service sees ports
    only."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_a_bug_in_any_command_is_one_line_and_exit_3(monkeypatch, tmp_path):
    def broken(*_args, **_kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(InterviewService, "list_interviews", broken)
    result = CliRunner().invoke(app, ["interview", "list", "--db", str(tmp_path / "w.duckdb")])
    assert_exit(result, 3)
    assert result.stderr == (
        "error: unexpected RuntimeError: boom (set ITRACK_DEBUG=1 for the traceback)\n"
    )


@pytest.fixture
def fresh_settings():
    """The settings read again from the environment the test sets, and again after it."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_settings_are_the_itrack_variables_in_any_case():
    settings = from_environment(
        {
            "ITRACK_DB": "/srv/x/warehouse.duckdb",
            "itrack_store": "postgres",
            "Itrack_Debug": "1",
            "ITRACK_JWT_SECRET": "s3cret",
            "ITRACK_UNKNOWN": "ignored",
            "HOME": "/root",
        }
    )
    assert settings.model_dump() == {
        "db": Path("/srv/x/warehouse.duckdb"),
        "memory_limit": "1GB",
        "store": "postgres",
        "pg_dsn": None,
        "debug": True,
        "jwt_secret": settings.jwt_secret,
        "org_id": None,
        "plan_cache": None,
        "backup_key_file": None,
    }
    assert settings.jwt_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert from_environment({}) == Settings()


def test_plans_are_shared_only_in_the_folder_itrack_plan_cache_names():
    assert from_environment({}).plan_cache_dir() is None
    assert from_environment({"ITRACK_PLAN_CACHE": ""}).plan_cache_dir() is None
    assert from_environment({"ITRACK_PLAN_CACHE": "  "}).plan_cache_dir() is None
    given = from_environment({"ITRACK_PLAN_CACHE": "~/plans"})
    assert given.plan_cache_dir() == Path.home() / "plans"
    assert from_environment({"itrack_plan_cache": "/srv/plans"}).plan_cache_dir() == Path(
        "/srv/plans"
    )


def test_an_empty_itrack_db_is_unset_the_default_warehouse(monkeypatch, fresh_settings, tmp_path):
    """Found by an exploratory run: `ITRACK_DB=""` was the working folder (`.`). Blank, like a
    blank ITRACK_PLAN_CACHE, it is unset: the default warehouse, named as the default."""
    for blank in ("", "  "):
        assert from_environment({"ITRACK_DB": blank}) == Settings()
        assert "db" not in from_environment({"ITRACK_DB": blank}).model_fields_set
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ITRACK_DB", "")
    result = CliRunner().invoke(app, ["db", "upgrade", "--create"])
    assert_exit(result, 0)
    count = len(discover(MIGRATIONS))
    last = f"data/warehouse.raw.duckdb: applied {count}; {count} migration(s) in place"
    assert result.stdout.splitlines()[-1] == last
    assert (tmp_path / "data" / "warehouse.raw.duckdb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


@pytest.mark.parametrize("given", ["ITRACK_DB", "--db=~/wh/warehouse.duckdb"])
def test_a_warehouse_under_tilde_is_in_the_home_folder(
    monkeypatch, fresh_settings, tmp_path, given
):
    """Found by exploratory testing of the variables: `ITRACK_DB=~/wh/warehouse.duckdb` as a
    crontab sets it (no shell expands `~` there, nor in `--db=~/...`) made a folder named `~`
    in the working folder and a store in it; ITRACK_PLAN_CACHE expanded `~`."""
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    args = ["db", "upgrade", "--create"]
    if given == "ITRACK_DB":
        monkeypatch.setenv("ITRACK_DB", "~/wh/warehouse.duckdb")
    else:
        args.append(given)
    result = CliRunner().invoke(app, args)
    assert_exit(result, 0)
    count = len(discover(MIGRATIONS))
    raw = home / "wh" / "warehouse.raw.duckdb"
    assert (
        result.stdout.splitlines()[-1] == f"{raw}: applied {count}; {count} migration(s) in place"
    )
    assert raw.is_file()
    assert list(work.iterdir()) == []


def test_an_empty_memory_limit_is_unset_the_default_bound():
    """Found by exploratory testing: `ITRACK_MEMORY_LIMIT=` reached DuckDB as no limit at all
    (ingest ran unbounded, exit 0) while `ITRACK_MEMORY_LIMIT=' '` was refused. Blank, like a
    blank ITRACK_DB, it is unset: the documented 1GB."""
    for blank in ("", "  "):
        settings = from_environment({"ITRACK_MEMORY_LIMIT": blank})
        assert (settings.memory_limit, "memory_limit" in settings.model_fields_set) == (
            "1GB",
            False,
        )


@pytest.mark.parametrize(
    "variable, value, why",
    [
        ("ITRACK_STORE", "mysql", "Input should be 'duckdb' or 'postgres'"),
        ("ITRACK_DEBUG", "maybe", "Input should be a valid boolean, unable to interpret input"),
    ],
)
def test_a_setting_pydantic_refuses_is_one_line_naming_the_variable(
    monkeypatch, fresh_settings, variable, value, why
):
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["rejects"])  # no --db: the settings name the file
    assert_exit(result, 2)
    assert result.stderr == f"error: {variable}='{value}' is not valid: {why}\n"


def test_a_bug_while_the_settings_are_not_valid_is_still_one_line(
    monkeypatch, fresh_settings, tmp_path
):
    """The handler asks ITRACK_DEBUG only for an unexpected error; settings it cannot read
    mean no traceback, not a second error."""

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("itrack.generate.generate", broken)
    monkeypatch.setenv("ITRACK_DEBUG", "maybe")
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "out")])
    assert_exit(result, 3)
    assert result.stderr == (
        "error: unexpected RuntimeError: boom (set ITRACK_DEBUG=1 for the traceback)\n"
    )


def test_data_is_never_read_as_markup_in_errors(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    with open_store(db):  # an empty store: the name is simply not there
        pass
    result = CliRunner().invoke(app, ["interview", "history", "[bold]x[/]", "--db", str(db)])
    assert_exit(result, 1)
    assert result.stderr == "error: candidate '[bold]x[/]' not found\n"


def test_reading_rejects_never_creates_a_store(tmp_path):
    db = tmp_path / "nowhere" / "warehouse.duckdb"
    result = CliRunner().invoke(app, ["rejects", "--db", str(db)])
    assert_exit(result, 2)
    raw = tmp_path / "nowhere" / "warehouse.raw.duckdb"
    assert result.stderr == (
        f"error: no raw store at {raw}: check --db (or $ITRACK_DB), or load data first with "
        "`itrack ingest` / `itrack build PATH`\n"
    )
    assert not (tmp_path / "nowhere").exists()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install .` (not editable) into a folder of its own; dependencies from this venv."""
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / "interview-tracking"  # setuptools builds in-tree
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "*.egg-info", "*.duckdb*", ".build", "backups", "target"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_installed_itrack_builds_in_an_empty_folder(installed, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(installed), sysconfig.get_paths()["purelib"]]),
    }
    env.pop("ITRACK_DB", None)
    work = tmp_path / "empty"
    work.mkdir()
    where = subprocess.run(
        [sys.executable, "-c", "import itrack.dbt_runner as r; print(r.PROJECT_DIR)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(installed / "itrack" / "dbt_project")
    build = subprocess.run(
        [
            sys.executable,
            "-c",
            "from itrack.cli.main import app; app(prog_name='itrack')",
            "build",
            str(SAMPLE),
            "--no-backup",
            "--no-html",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    con = duckdb.connect(str(work / "data" / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from fct_interview_processes").fetchone()[0] > 0
    finally:
        con.close()
    assert (work / "data" / "feeders.json").is_file()

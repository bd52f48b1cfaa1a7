"""`itrack build` end to end on what real nights bring: data quality that never blocks
publishing (a created_at corrected after the decision, unmapped stage names) but is named in the
build summary, and an empty input folder, which is a normal night."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from ingest.load import ingest_paths
from ingest.store.duckdb.store import raw_store_path
from itrack import dbt_runner
from itrack.cli.main import app
from tests.dbt_helpers import query

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"

PID = "00000000-0000-4000-8000-000000000001"


def write(folder: Path, processes: list[dict], stages: list[dict] = ()) -> Path:
    folder.mkdir(parents=True)
    candidate = {"id": "c1", "full_name": "Ann Lee", "created_at": "2024-12-01T00:00:00Z"}
    files = {"candidates": [candidate], "processes": processes, "stages": list(stages)}
    for kind, records in files.items():
        if records:
            (folder / f"{kind}.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
            )
    return folder


def process(created: str, updated: str) -> dict:
    return {
        "id": PID,
        "candidate_id": "c1",
        "company_name": "Acme",
        "role_title": "Engineer",
        "status": "rejected_by_company",
        "final_outcome": "Failed Node.js exercise",
        "created_at": created,
        "updated_at": updated,
    }


def stage(n: int, name: str) -> dict:
    return {
        "id": f"00000000-0000-4100-8000-{n:012d}",
        "interview_process_id": PID,
        "stage_name": name,
        "stage_order": n,
        "outcome": "failed" if n == 2 else "passed",
        "created_at": "2025-01-01T00:00:00Z",
    }


def build(*args: str):
    result = CliRunner().invoke(app, ["build", *args, "--no-backup", "--no-html"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def colliding(n: int, feeder: str, company: str) -> dict:
    """Feeder `a @ b` x company `c` and feeder `a` x company `b @ c` share the label
    `a @ b @ c`; their funnel keys must not collide (a unique test would stop the build)."""
    return {
        **process("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"),
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "status": "in_progress",
        "feeder_source": feeder,
        "company_name": company,
    }


def test_data_quality_never_blocks_publishing_and_is_named_in_the_summary(tmp_path):
    db = str(tmp_path / "warehouse.duckdb")
    first = write(
        tmp_path / "night1",
        [
            process("2025-01-01T00:00:00Z", "2025-01-10T00:00:00Z"),
            colliding(2, "a @ b", "c"),
            colliding(3, "a", "b @ c"),
        ],
        [stage(1, "phone_screen"), stage(2, "Hiring Manager Chat")],
    )
    assert build(str(first), "--db", db).exit_code == 0
    # the next export corrects created_at to after the decision: contract-valid, so it is kept
    second = write(tmp_path / "night2", [process("2025-01-12T00:00:00Z", "2025-01-12T00:00:00Z")])
    result = build(str(second), "--db", db)
    assert result.exit_code == 0, result.output
    assert (
        "unmapped stage names (1 stages, counted as other; add them to "
        "dbt_project/seeds/stage_types.csv): 'Hiring Manager Chat' (1)"
    ) in result.output
    assert (
        "data quality: 1 processes: processes decided before they started (created_at "
        "corrected after the decision); days_to_decision left null"
    ) in result.output
    [row] = query(
        tmp_path / "warehouse.duckdb",
        "select days_to_decision, is_decided_before_start from fct_interview_processes "
        f"where interview_process_id = '{PID}'",
    )
    pair = query(
        tmp_path / "warehouse.duckdb",
        "select funnel_row_id, feeder_source, company_name from mart_conversion_funnel "
        "where group_key = 'a @ b @ c' order by feeder_source",
    )
    assert [(r["feeder_source"], r["company_name"]) for r in pair] == [
        ("a", "b @ c"),
        ("a @ b", "c"),
    ]
    assert pair[0]["funnel_row_id"] != pair[1]["funnel_row_id"]
    assert row == {"days_to_decision": None, "is_decided_before_start": True}
    types = query(
        tmp_path / "warehouse.duckdb",
        "select stage_name, stage_type from fct_interview_stages order by stage_order",
    )
    assert [r["stage_type"] for r in types] == ["phone_screen", "other"]
    # the reason is split at sentence ends only: "Node.js" stays whole
    [acme] = query(
        tmp_path / "warehouse.duckdb",
        "select rejection_reasons from mart_company_insights where company_name = 'Acme'",
    )
    assert json.loads(acme["rejection_reasons"]) == [
        {"reason": "Failed Node.js exercise", "count": 1}
    ]


def test_empty_input_is_a_normal_night(tmp_path):
    empty = tmp_path / "in"
    empty.mkdir()
    db = tmp_path / "warehouse.duckdb"
    result = build(str(empty), "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "no new records" in result.output
    assert db.exists()
    assert query(db, "select count(*) as n from fct_interview_processes") == [{"n": 0}]
    assert query(db, "select count(*) as n from mart_conversion_funnel") == [{"n": 0}]
    report = CliRunner().invoke(
        app, ["report", "html", "--db", str(db), "--out", str(tmp_path / "r.html")]
    )
    assert report.exit_code == 0 and report.exception is None, report.output
    assert (tmp_path / "r.html").exists()


def test_a_project_moved_elsewhere_is_parsed_from_where_it_is(tmp_path, monkeypatch):
    """dbt's partial-parse state holds each seed's absolute path and is reused while the files
    are unchanged: after the project moved (the same files in another folder, the old one
    gone), dbt must read the seeds where they are now."""
    db = tmp_path / "data" / "warehouse.duckdb"
    ingest_paths([SAMPLE], db)
    args, files = ["build", "--exclude-resource-type", "unit_test"], dbt_runner.PROJECT_DIR
    for checkout in ("one", "two"):
        project = tmp_path / checkout / "dbt_project"
        shutil.copytree(files, project, ignore=shutil.ignore_patterns("target", "logs"))
        monkeypatch.setattr(dbt_runner, "PROJECT_DIR", project)
        outcome = dbt_runner.run_dbt(args, db, raw_store_path(db))
        assert outcome.ok, outcome.failures
        assert len([n for n in outcome.nodes if n.startswith("seed.")]) == 4
        shutil.rmtree(project)  # the old checkout is gone

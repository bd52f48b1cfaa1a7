"""`itrack generate`: deterministic, contract-valid records with the planted signal visible."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import polars as pl
import pytest

from ingest.contract import ISO_4217, MODELS
from ingest.load import ingest_paths
from itrack.generate import CURRENCIES, PLANTED, build_records, generate
from tests.conftest import query
from tests.test_faults import small_mount  # noqa: F401 - fixture


def test_same_seed_same_bytes(tmp_path):
    generate(tmp_path / "a", 200, seed=3, invalid_share=0.05)
    generate(tmp_path / "b", 200, seed=3, invalid_share=0.05)
    for name in ("candidates.jsonl", "processes.jsonl", "stages.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_the_offers_currencies_are_iso_4217_codes():
    assert set(CURRENCIES) == {"USD", "EUR", "GBP"}
    assert set(CURRENCIES) <= ISO_4217


def test_valid_records_follow_the_contract_and_the_state_machine():
    data = build_records(400, seed=5)
    for kind, records in data.items():
        for record in records:
            MODELS[kind].model_validate(record)
    stages_by_process: dict[str, list[dict]] = {}
    for stage in data["stages"]:
        stages_by_process.setdefault(stage["interview_process_id"], []).append(stage)
    for process in data["processes"]:
        stages = stages_by_process.get(process["id"], [])  # an offer may come without stages
        assert [s["stage_order"] for s in stages] == list(range(1, len(stages) + 1))
        decided = [s for s in stages if s["outcome"] in ("passed", "failed")]
        if decided and decided[-1]["outcome"] == "failed":  # a failure not retaken
            assert process["status"] == "rejected_by_company"
            assert process["final_outcome"].startswith("Failed ")
        if process["status"] in ("offer_extended", "offer_accepted", "offer_declined"):
            assert all(s["outcome"] != "pending" for s in stages)
            assert not decided or decided[-1]["outcome"] == "passed"
            assert process["offer_details"]["base_salary"] > 0


def test_records_carry_the_messiness_of_real_exports():
    """Issue #12: every stage-name spelling (the canonical names included), retakes, no-shows,
    cancellations, offers without stages, name variants, double-listed interviewers, zone
    offsets and near-midnight times."""
    data = build_records(3000, seed=7)
    names = {s["stage_name"] for s in data["stages"]}
    assert {"phone_screen", "technical", "onsite", "Phone-Screen", "Technical_Interview"} <= names
    assert "Onsite\u00a0Interview" in names
    outcomes = Counter(s["outcome"] for s in data["stages"])
    assert outcomes["no_show"] > 0 and outcomes["cancelled"] > 0
    by_process: dict[str, list[dict]] = {}
    for stage in data["stages"]:
        by_process.setdefault(stage["interview_process_id"], []).append(stage)
    retaken = [
        p
        for p in by_process.values()
        if any(
            (a["outcome"], b["outcome"]) == ("failed", "passed") for a, b in itertools.pairwise(p)
        )
    ]
    assert retaken
    assert any(p["id"] not in by_process for p in data["processes"])
    companies = {p["company_name"] for p in data["processes"]}
    assert "stripe" in {c.strip().lower() for c in companies} and len(companies) > len(
        PLANTED.companies
    )
    assert any(
        len({n.lower() for n in s.get("interviewer_names", [])})
        < len(s.get("interviewer_names", []))
        for s in data["stages"]
    )
    created = [p["created_at"] for p in data["processes"]]
    assert any(c.endswith("+02:00") for c in created)
    assert any("T23:30" in c or "T01:30:00+02:00" in c for c in created)


def test_invalid_share_is_respected_and_those_records_fail():
    data = build_records(1000, seed=9, invalid_share=0.05)
    bad = 0
    total = 0
    for kind, records in data.items():
        for record in records:
            total += 1
            if isinstance(record, str):
                bad += 1
                with pytest.raises(json.JSONDecodeError):
                    json.loads(record)
                continue
            try:
                MODELS[kind].model_validate(record)
            except Exception:
                bad += 1
    assert 0.03 < bad / total < 0.07  # the orphan-stage spoil is valid on its own


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_other_formats_are_readable(tmp_path, fmt):
    counts = generate(tmp_path, 50, seed=1, fmt=fmt)
    reader = {"json": pl.read_json, "csv": pl.read_csv, "parquet": pl.read_parquet}[fmt]
    for name, n in counts.items():
        assert reader(tmp_path / name).height == n


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_generated_files_of_every_format_load_whole(tmp_path, fmt):
    """Valid generated records load as they are in every format: in CSV and Parquet a stage
    without interviewers is an empty or null cell, which is an absent field (default []), not a
    null the contract refuses (it once quarantined ~4% of Parquet stages)."""
    counts = generate(tmp_path / "data", 300, seed=7, fmt=fmt)
    if fmt == "parquet":  # the case at stake is in the file
        stages = pl.read_parquet(tmp_path / "data" / "stages.parquet")
        assert stages["interviewer_names"].null_count() > 0
    summary = ingest_paths([tmp_path / "data"], db=tmp_path / "w" / "warehouse.duckdb")
    assert summary.rejected == 0
    db = tmp_path / "w" / "warehouse.duckdb"
    for kind, table in (
        ("candidates", "candidates"),
        ("processes", "interview_processes"),
        ("stages", "interview_stages"),
    ):
        assert query(db, f"select count(*) from {table}") == [(counts[f"{kind}.{fmt}"],)]
    assert query(db, "select count(*) from quarantine") == [(0,)]


def test_planted_feeder_ordering_is_visible_in_raw_placement_rates():
    data = build_records(3000, seed=11)
    started, placed = Counter(), Counter()
    for process in data["processes"]:
        feeder = process["feeder_source"].strip().lower()  # spelling variants: one feeder
        started[feeder] += 1
        placed[feeder] += process["status"] == "offer_accepted"
    rate = {f: placed[f] / started[f] for f in started}
    assert rate[PLANTED.best_feeder] > rate[PLANTED.worst_feeder] + 0.2
    assert max(rate, key=rate.get) == PLANTED.best_feeder


def test_generate_refuses_what_it_cannot_hold_or_a_share_of_one(tmp_path):
    """A huge --processes ran until memory ran out (leaving an empty folder); --invalid-share 1
    was refused by "must be between 0 and 1" (found by an exploratory run)."""
    from typer.testing import CliRunner

    from itrack.cli.main import app
    from tests.conftest import assert_exit

    runner = CliRunner()
    out = tmp_path / "g"
    huge = runner.invoke(app, ["generate", "--out", str(out), "--processes", "99999999999"])
    assert_exit(huge, 2)
    assert "Invalid value for '--processes': Input should be less than or equal to 2000000" in (
        huge.output
    )
    share = runner.invoke(app, ["generate", "--out", str(out), "--invalid-share", "1"])
    assert_exit(share, 2)
    assert share.output == "error: --invalid-share must be at least 0 and below 1, not 1.0\n"
    assert not out.exists()


def test_a_generate_that_fills_the_disk_leaves_the_folder_as_it_was(small_mount):  # noqa: F811
    """Found by exploratory testing on a small disk: `itrack generate` said "nothing of this
    run was written" (exit 2) but left the new candidates and processes files and a truncated
    stages file, mixed with the files of the earlier run in the folder."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = small_mount / "gen"
    generate(out, 10, seed=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    stat = os.statvfs(small_mount)
    (small_mount / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - (1 << 20)))
    itrack = Path(sys.executable).parent / "itrack"
    full = subprocess.run(
        [itrack, "generate", "--out", str(out), "--processes", "3000"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (full.returncode, full.stdout) == (2, "")
    assert full.stderr == (
        "error: cannot write: [Errno 28] No space left on device; nothing of this run was written\n"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_out_under_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    """Found by exploratory testing: `itrack generate --out=~/demo` (no shell expands `~`
    after `--out=`) wrote ./~/demo/ in the working folder."""
    from typer.testing import CliRunner

    from itrack.cli.main import app
    from tests.conftest import assert_exit

    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    made = CliRunner().invoke(app, ["generate", "--out=~/demo", "--processes", "2", "--seed", "1"])
    assert_exit(made, 0)
    assert made.output == (
        f"candidates.jsonl: 2, processes.jsonl: 2, stages.jsonl: 3 -> {home / 'demo'}\n"
    )
    assert sorted(p.name for p in (home / "demo").iterdir()) == [
        "candidates.jsonl",
        "processes.jsonl",
        "stages.jsonl",
    ]
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_the_summary_counts_what_the_files_hold(tmp_path, fmt):
    """Found by exploratory testing: `itrack generate --format json --invalid-share 0.1` said
    "processes.json: 50, stages.json: 115" while the files held 49 and 112: the counts included
    the malformed lines only JSONL can hold."""
    counts = generate(tmp_path, 50, seed=7, invalid_share=0.1, fmt=fmt)
    assert counts == {f"candidates.{fmt}": 37, f"processes.{fmt}": 49, f"stages.{fmt}": 112}
    held = {
        name: len(json.loads((tmp_path / name).read_text()))
        if fmt == "json"
        else pl.read_csv(tmp_path / name, infer_schema_length=0).height
        if fmt == "csv"
        else pl.read_parquet(tmp_path / name).height
        for name in counts
    }
    assert held == counts


def test_a_folder_holding_another_formats_run_is_refused(tmp_path):
    """Found by exploratory testing: `itrack generate --format csv` into a folder holding an
    earlier JSONL run wrote beside it, and `itrack ingest` of the folder loaded both runs (20
    processes instead of 10; the runs' candidate ids overlap, so one's candidates replaced the
    other's). Now refused before anything is written; the same format is replaced as before."""
    from typer.testing import CliRunner

    from itrack.cli.main import app
    from tests.conftest import assert_exit

    out = tmp_path / "g"
    generate(out, 5, seed=1)
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    runner = CliRunner()
    other = runner.invoke(app, ["generate", "--out", str(out), "--format", "csv", "--seed", "2"])
    assert_exit(other, 2)
    assert other.output == (
        f"error: {out} holds candidates.jsonl, processes.jsonl, stages.jsonl of another "
        "--format; ingesting the folder would load both: remove them or choose another --out\n"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    same = runner.invoke(app, ["generate", "--out", str(out), "--processes", "5", "--seed", "2"])
    assert_exit(same, 0)
    assert sorted(p.name for p in out.iterdir()) == sorted(before)


def test_an_out_that_is_a_file_is_refused_naming_it(tmp_path):
    """Found by an exploratory run: `itrack generate --out FILE` said "cannot write: [Errno 17]
    File exists: 'FILE'; nothing of this run was written" (and under a file "[Errno 20] Not a
    directory"): now one line naming the path and what is wrong, exit 2, the file untouched."""
    from typer.testing import CliRunner

    from itrack.cli.main import app
    from tests.conftest import assert_exit

    runner = CliRunner()
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    for out, message in (
        (file, f"error: --out: {file} is a file, not a folder; nothing was written\n"),
        (
            file / "g",
            f"error: --out: {file / 'g'} cannot be made: {file} is a file, not a folder; "
            "nothing was written\n",
        ),
    ):
        result = runner.invoke(app, ["generate", "--out", str(out), "--processes", "2"])
        assert_exit(result, 2)
        assert result.output == message
    assert [(p.name, p.read_text()) for p in tmp_path.iterdir()] == [("notes.txt", "mine")]

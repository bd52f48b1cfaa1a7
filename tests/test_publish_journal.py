"""One run's outputs as a set: a build killed (SIGKILL, real processes) at each step of its
publish leaves a journal, and the next command that writes the outputs completes it (roll
forward) to exactly what an uninterrupted build publishes; a staged file that is missing or
damaged is said in one line and the previous outputs are kept."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from feedback import publish
from feedback.service import locked_outputs
from ingest.errors import UserError
from ingest.store.duckdb.store import raw_store_path
from itrack.generate import generate
from itrack.pipeline import build_dir, run_build
from tests.test_faults import itrack

QUIET = {"take_backup": False, "note": lambda _m: None}
NO_BACKUP = "--no-backup"
OUTPUTS = ("warehouse.duckdb", "report.html", "feeders.json", "candidate_placements.json")

# `itrack` in a child process that SIGKILLs itself when the build reaches `step` of its publish.
KILL_AT = """
import os, signal, sys
from itrack import pipeline
step = sys.argv.pop(1)
pipeline.STEP_HOOKS.append(lambda reached: reached == step and os.kill(os.getpid(), signal.SIGKILL))
from itrack.cli.main import app
app(prog_name="itrack")
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("publish_inputs")
    generate(root / "day1", 150, seed=21)
    generate(root / "day2", 200, seed=21)
    return {"day1": root / "day1", "day2": root / "day2"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, inputs, shared_plans) -> dict[str, object]:
    """What an uninterrupted build of day1, then day2, publishes."""
    db = tmp_path_factory.mktemp("reference") / "warehouse.duckdb"
    run_build([inputs["day1"]], db=db, **QUIET, plan_cache=shared_plans)
    run_build([inputs["day2"]], db=db, **QUIET, plan_cache=shared_plans)
    return published(db)


def published(db: Path) -> dict[str, object]:
    """The outputs as a complete build leaves them, run-specific stamps taken out (the report,
    whose trend chart places each feedback run at its time, is compared with what was staged)."""
    feeders = json.loads((db.parent / "feeders.json").read_text())
    for entry in feeders["feeders"].values():
        entry["metrics"].pop("updated_at")
    con = duckdb.connect(str(db), read_only=True)
    try:
        marts = con.execute("select * from mart_feeder_conversion order by all").fetchall()
    finally:
        con.close()
    return {
        "feeders": feeders,
        "placements": (db.parent / "candidate_placements.json").read_bytes(),
        "marts": marts,
    }


def killed_build(db: Path, day: Path, step: str) -> publish.Journal:
    """`itrack build day` killed at `step` of its publish; the journal it left."""
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT, step, "build", str(day), "--db", str(db), NO_BACKUP],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    return publish.read(publish.journal_path(db))


def staged_contents(journal: publish.Journal) -> dict[str, bytes | int]:
    """Per output still staged: its bytes (the warehouse: its inode, which the rename keeps)."""
    found: dict[str, bytes | int] = {}
    for output in journal.outputs:
        staged = Path(output.staged or "")
        if output.staged and staged.exists():
            name = Path(output.target).name
            found[name] = staged.stat().st_ino if name.endswith(".duckdb") else staged.read_bytes()
    return found


def current(db: Path) -> dict[str, bytes | int]:
    return {
        name: (path.stat().st_ino if name.endswith(".duckdb") else path.read_bytes())
        for name in OUTPUTS
        if (path := db.parent / name).exists()
    }


def logged_rows(db: Path, run_id: str) -> int:
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    try:
        return con.execute(
            "select count(*) from feedback_runs where run_id = ?", [run_id]
        ).fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def day1_built(tmp_path_factory, inputs, shared_plans) -> Path:
    """A location after an uninterrupted build of day1 (built once: each test takes a copy)."""
    db = tmp_path_factory.mktemp("day1") / "location" / "warehouse.duckdb"
    run_build([inputs["day1"]], db=db, **QUIET, plan_cache=shared_plans)
    assert not publish.journal_path(db).exists()  # a complete publish removes its journal
    return db


def day1_location(tmp_path: Path, day1_built: Path) -> Path:
    """A copy of the day1 location in `tmp_path` (a location holds no path of its own)."""
    shutil.copytree(day1_built.parent, tmp_path, dirs_exist_ok=True)
    return tmp_path / day1_built.name


# each step the publish passes; "journal": the journal written, nothing renamed yet
STEPS = ["journal", *(f"renamed {name}" for name in OUTPUTS), "logged"]
# every step is covered; four run in the slow tier (`make test-all`) to keep `make test` short
# (a kill after the warehouse's rename is also what the next two tests start from)
SLOW = {
    "renamed warehouse.duckdb",
    "renamed report.html",
    "renamed candidate_placements.json",
    "logged",
}


@pytest.mark.parametrize(
    "step", [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s for s in STEPS]
)
def test_a_publish_killed_at_each_step_is_completed_by_the_next_feedback_run(
    tmp_path, day1_built, inputs, reference, step
):
    db = day1_location(tmp_path, day1_built)
    before = current(db)
    journal = killed_build(db, inputs["day2"], step)
    staged = staged_contents(journal)
    # the mixed state the journal is for: the outputs renamed so far are new, the rest old
    done = OUTPUTS[: STEPS.index(step)]
    assert sorted(staged) == sorted(set(OUTPUTS) - set(done))
    assert {n: v for n, v in current(db).items() if n not in done} == {
        n: v for n, v in before.items() if n not in done
    }

    again = itrack("feedback", "--db", str(db))
    assert again.returncode == 0, again.stderr
    left = ", ".join(n for n in OUTPUTS if n in staged) or "nothing was left to replace"
    assert again.stderr == (
        f"publish: completed the unfinished publish of {journal.run_id} ({left})\n"
    )
    assert not publish.journal_path(db).exists()
    now = current(db)
    assert {name: now[name] for name in staged} == staged  # exactly what was staged
    assert published(db) == reference  # = an uninterrupted build of the same data
    assert logged_rows(db, journal.run_id) == len(journal.metrics) > 0  # logged once
    assert [p.name for p in db.parent.glob(".*.tmp")] == []


def test_the_next_build_completes_it_merging_the_scoring_jobs_edit(
    tmp_path, day1_built, inputs, reference
):
    db = day1_location(tmp_path, day1_built)
    journal = killed_build(db, inputs["day2"], "renamed warehouse.duckdb")
    staged = staged_contents(journal)
    # the scoring job writes feeders.json meanwhile (the previous night's, with its weight)
    feeders = db.parent / "feeders.json"
    edited = json.loads(feeders.read_text())
    edited["feeders"]["referral"]["weight"] = 1.5
    feeders.write_text(json.dumps(edited, indent=2) + "\n")

    again = itrack("build", str(inputs["day2"]), "--db", str(db), NO_BACKUP)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    first = again.stdout.splitlines()[0]
    assert first.endswith(
        f"publish: completed the unfinished publish of {journal.run_id} "
        "(report.html, feeders.json, candidate_placements.json)"
    )
    # the staged metrics merged into the scoring job's version: both sides kept
    expected = json.loads(staged["feeders.json"])
    expected["feeders"]["referral"]["weight"] = 1.5
    assert feeders.read_text() == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    assert (db.parent / "candidate_placements.json").read_bytes() == staged[
        "candidate_placements.json"
    ]
    assert {k: v for k, v in published(db).items() if k != "feeders"} == {
        k: v for k, v in reference.items() if k != "feeders"
    }
    assert logged_rows(db, journal.run_id) == len(journal.metrics)


@pytest.mark.parametrize("fault", ["missing warehouse", "damaged placements"])
def test_a_staged_file_missing_or_damaged_is_said_and_the_previous_outputs_kept(
    tmp_path, day1_built, inputs, reference, fault
):
    db = day1_location(tmp_path, day1_built)
    before = current(db)
    journal = killed_build(db, inputs["day2"], "journal")
    target = "warehouse.duckdb" if fault == "missing warehouse" else "candidate_placements.json"
    output = next(o for o in journal.outputs if Path(o.target).name == target)
    staged = Path(output.staged or "")
    if fault == "missing warehouse":
        staged.unlink()
        why = "is missing"
    else:
        staged.write_bytes(staged.read_bytes().replace(b"2", b"3"))  # same size, other bytes
        why = "is not what was staged"

    again = itrack("feedback", "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert again.stderr == (
        f"publish: cannot complete the unfinished publish of {journal.run_id}: {staged} "
        f"(staged for {target}) {why}; the outputs it had not replaced yet are kept as they "
        "were (the next build replaces every output)\n"
    )
    assert current(db) == before
    assert not publish.journal_path(db).exists()
    assert [o.staged for o in journal.outputs if o.staged and Path(o.staged).exists()] == []
    assert logged_rows(db, journal.run_id) == 0

    rebuilt = itrack("build", str(inputs["day2"]), "--db", str(db), NO_BACKUP)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert published(db) == reference


def test_the_live_feedback_path_completes_it_first(tmp_path, day1_built, inputs, reference):
    db = day1_location(tmp_path, day1_built)
    journal = killed_build(db, inputs["day2"], "renamed warehouse.duckdb")
    staged = staged_contents(journal)
    # `itrack interview ...` and the API run this service when a process reaches an outcome
    probe = (
        "import sys; from pathlib import Path; from itrack.services import feedback_service; "
        "print(feedback_service(Path(sys.argv[1])).update_feeder_conversion_rates('referral'))"
    )
    live = subprocess.run(
        [sys.executable, "-c", probe, str(db)], capture_output=True, text=True, timeout=300
    )
    assert live.returncode == 0, live.stderr
    assert live.stderr == (
        f"publish: completed the unfinished publish of {journal.run_id} "
        "(report.html, feeders.json, candidate_placements.json)\n"
    )
    assert live.stdout == "feeders.json already current for referral\n"
    now = current(db)
    assert {name: now[name] for name in staged} == staged
    assert published(db) == reference
    assert not publish.journal_path(db).exists()


def test_report_html_completes_it_before_rendering_the_published_warehouse(
    tmp_path, day1_built, inputs
):
    db = day1_location(tmp_path, day1_built)
    journal = killed_build(db, inputs["day2"], "journal")  # the new warehouse not renamed yet
    staged = staged_contents(journal)
    report = db.parent / "report.html"

    again = itrack("report", "html", "--db", str(db), "--out", str(report))
    assert again.returncode == 0, again.stderr
    assert again.stderr == (
        f"publish: completed the unfinished publish of {journal.run_id} ({', '.join(OUTPUTS)})\n"
    )
    assert again.stdout == f"report written: {report}\n"
    assert not publish.journal_path(db).exists()
    now = current(db)
    assert now["warehouse.duckdb"] == staged["warehouse.duckdb"]
    # rendered again from the warehouse the build published: what the build had staged, but
    # for the minute it says it was built
    built = re.compile(rb"Built \d{4}-\d\d-\d\d \d\d:\d\d UTC")
    assert built.sub(b"Built", report.read_bytes()) == built.sub(b"Built", staged["report.html"])


def test_the_journal_carries_the_fingerprint_the_build_records(tmp_path, inputs, shared_plans):
    db = tmp_path / "warehouse.duckdb"
    carried: list[str | None] = []

    def hook(step: str) -> None:  # the log's record committed, the journal not yet removed
        if step == "logged":
            carried.append(publish.read(publish.journal_path(db)).fingerprint)

    publish.STEP_HOOKS.append(hook)
    try:
        run_build([inputs["day1"]], db=db, **QUIET, plan_cache=shared_plans)
    finally:
        publish.STEP_HOOKS.remove(hook)
    assert carried == [(build_dir(db) / "warehouse.duckdb.fingerprint").read_text().strip()]


def test_after_a_roll_forward_the_next_build_of_the_same_inputs_does_nothing(
    tmp_path, day1_built, inputs
):
    db = day1_location(tmp_path, day1_built)
    journal = killed_build(db, inputs["day2"], "renamed report.html")
    rolled = itrack("report", "html", "--db", str(db), "--out", str(tmp_path / "elsewhere.html"))
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stderr == (
        f"publish: completed the unfinished publish of {journal.run_id} "
        "(feeders.json, candidate_placements.json)\n"
    )
    before = current(db)

    again = itrack("build", str(inputs["day2"]), "--db", str(db), NO_BACKUP)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    # each step's line, without its clock time and its duration
    steps = [line.split(" ", 1)[1].rsplit(" (", 1)[0] for line in again.stdout.splitlines()[:2]]
    assert steps == [
        "ingest: skipped: every file is loaded already (same path, size and mtime)",
        "dbt build: skipped: nothing changed since the last build",
    ]
    assert current(db) == before  # nothing rewritten


# `itrack interview complete` reaching an outcome runs the live feedback path, which publishes
# feeders.json and the placements (and a --candidates file) through the journal too
LIVE = ("feeders.json", "candidate_placements.json")
LIVE_STEPS = ["journal", "renamed feeders.json", "renamed candidate_placements.json"]


def offered_process(db: Path) -> str:
    """A process of the published build with an offer on the table (offer_extended)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "select interview_process_id::varchar from fct_interview_processes "
            "where status = 'offer_extended' order by 1 limit 1"
        ).fetchone()[0]
    finally:
        con.close()


def built_feeders(db: Path) -> list[str]:
    """The feeders of the published build, in name order."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("select feeder_source from mart_feeder_conversion order by 1")
        return [name for (name,) in rows.fetchall()]
    finally:
        con.close()


def feeder_of(db: Path, process: str) -> str:
    """The feeder the published build counts `process` under."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "select feeder_source from fct_interview_processes "
            "where interview_process_id::varchar = ?",
            [process],
        ).fetchone()[0]
    finally:
        con.close()


def ledger_of(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    try:
        row = con.execute("select value from feedback_state where key = 'live_outcomes'").fetchone()
    finally:
        con.close()
    return json.loads(row[0]) if row else {}


@pytest.mark.parametrize("step", LIVE_STEPS)
def test_a_live_outcome_killed_between_its_writes_is_completed_by_the_next_command(
    tmp_path, day1_built, step
):
    db = day1_location(tmp_path, day1_built)
    before = current(db)
    process = offered_process(db)
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT, step, "interview", "complete", process, "offer_accepted"]
        + ["--db", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    journal = publish.read(publish.journal_path(db))
    assert [Path(o.target).name for o in journal.outputs] == list(LIVE)
    staged = staged_contents(journal)
    # the mixed state: the outputs renamed before the kill are new, the rest as they were
    done = LIVE[: LIVE_STEPS.index(step)]
    assert sorted(staged) == sorted(set(LIVE) - set(done))
    assert {n: v for n, v in current(db).items() if n not in done} == {
        n: v for n, v in before.items() if n not in done
    }
    assert process not in ledger_of(db)  # the log's record is committed after the renames
    # every feeder's metrics: the acceptance moved the overall rate, each smoothed rate's prior
    metrics = next(o.metrics for o in journal.outputs if o.metrics is not None)
    assert sorted(metrics) == sorted(journal.metrics) == built_feeders(db)
    feeder = feeder_of(db, process)

    # the next writer of the outputs (here one feeder's rates, as the API's) completes it first
    probe = (
        "import sys; from pathlib import Path; from itrack.services import feedback_service; "
        "print(feedback_service(Path(sys.argv[1])).update_feeder_conversion_rates(sys.argv[2]))"
    )
    live = subprocess.run(
        [sys.executable, "-c", probe, str(db), feeder], capture_output=True, text=True, timeout=300
    )
    assert live.returncode == 0, live.stderr
    left = ", ".join(n for n in LIVE if n in staged) or "nothing was left to replace"
    assert (
        live.stderr == f"publish: completed the unfinished publish of {journal.run_id} ({left})\n"
    )
    assert live.stdout == f"feeders.json already current for {feeder}\n"
    assert not publish.journal_path(db).exists()
    now = current(db)
    assert {name: now[name] for name in staged} == staged  # exactly what was staged
    assert now["warehouse.duckdb"] == before["warehouse.duckdb"]
    assert logged_rows(db, journal.run_id) == len(metrics)  # each feeder's metrics, once
    assert ledger_of(db)[process][:2] == [feeder, "offer_accepted"]
    candidate = ledger_of(db)[process][3]  # after the time it was decided
    placements = json.loads((db.parent / "candidate_placements.json").read_text())
    assert ledger_of(db)[process][4] in placements[candidate]
    assert [p.name for p in db.parent.glob(".*.tmp")] == []


# `itrack` in a child process that, when its publish reaches `step`, says so in file `paused`
# and waits until file `go` exists (a writer caught mid-publish, holding its locks)
PAUSE_AT = """
import sys, time
from pathlib import Path
from itrack import pipeline
step, paused, go = sys.argv.pop(1), Path(sys.argv.pop(1)), Path(sys.argv.pop(1))

def pause(reached):
    if reached == step:
        paused.touch()
        while not go.exists():
            time.sleep(0.05)

pipeline.STEP_HOOKS.append(pause)
from itrack.cli.main import app
app(prog_name="itrack")
"""


def test_writers_of_one_journal_wait_for_each_other_whichever_feeders_file(tmp_path, day1_built):
    """`itrack feedback --feeders` elsewhere and the live path (data/feeders.json, as the API
    given its own) hold different feeders.json locks, but write one journal: the journal's lock
    (taken by `locked_outputs`, which every writer of a journal goes through) keeps the live
    writer out while the run's outputs are staged and its journal not yet written, so neither
    writes its journal over the other's (nor removes it)."""
    db = day1_location(tmp_path, day1_built)
    paused, go = tmp_path / "paused", tmp_path / "go"
    elsewhere = tmp_path / "scoring" / "feeders.json"
    elsewhere.parent.mkdir()
    run = subprocess.Popen(
        [sys.executable, "-c", PAUSE_AT, "publish", str(paused), str(go), "feedback"]
        + ["--db", str(db), "--feeders", str(elsewhere)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(6000):  # up to 5 minutes on a loaded machine
            if paused.exists() or run.poll() is not None:
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert paused.exists(), run.communicate()[1]
        journal = publish.journal_path(db)
        outputs = (db.parent / "feeders.json", db.parent / "candidate_placements.json")
        with pytest.raises(UserError) as busy:
            with locked_outputs(*outputs, wait_seconds=0, journal=journal):
                pass
        assert str(busy.value) == (
            f"{journal} is busy (locked by PID {run.pid} via .{journal.name}.lock); "
            "retry later or pass --wait SECONDS"
        )
        assert not journal.exists()  # the run's: not written yet
    finally:
        go.touch()
        _out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert not publish.journal_path(db).exists()
    with locked_outputs(*outputs, wait_seconds=0, journal=journal):
        pass  # free once the run is done
    assert (
        json.loads(elsewhere.read_text())["feeders"].keys()
        == json.loads((db.parent / "feeders.json").read_text())["feeders"].keys()
    )  # the run published its own feeders.json


def test_an_unreadable_journal_is_said_and_removed(tmp_path, day1_built):
    db = day1_location(tmp_path, day1_built)
    before = current(db)
    path = publish.journal_path(db)
    path.write_text("{not json")
    again = itrack("feedback", "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("\n") == 1
    assert again.stderr.startswith(
        f"publish: an unfinished publish was abandoned: {path} cannot be read ("
    )
    assert again.stderr.endswith("); the next build replaces every output\n")
    assert not path.exists()
    assert current(db) == before
    assert sorted(p.name for p in build_dir(db).glob("*.publish.json")) == []

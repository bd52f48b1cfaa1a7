"""The feedback step: feeders.json merged carefully, placements, triggers and the watermark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feedback import export
from ingest.store.duckdb.store import raw_store_path
from itrack.cli.main import app
from itrack.generate import generate
from itrack.pipeline import run_build
from tests.conftest import assert_exit
from tests.dbt_helpers import private_copy, run_feedback_into

NOW = "2026-01-01T00:00:00Z"
QUIET = {"take_backup": False, "write_html": False, "note": lambda _m: None}


@pytest.fixture(scope="module")
def built_once(tmp_path_factory, shared_plans: Path) -> Path:
    root = tmp_path_factory.mktemp("feedback")
    generate(root / "in", 400, seed=77)
    run_build([root / "in"], db=root / "warehouse.duckdb", **QUIET, plan_cache=shared_plans)
    for output in ("feeders.json", "candidate_placements.json"):
        (root / output).unlink(missing_ok=True)  # each test starts from its own files
    return root / "warehouse.duckdb"


@pytest.fixture
def wh(built_once, tmp_path) -> Path:
    """A private copy of the built warehouse and its raw store."""
    return private_copy(built_once, tmp_path)


def feed(db: Path, **kw):
    return run_feedback_into(db, db.parent, now=kw.pop("now", NOW), **kw)


def test_fields_of_the_scoring_job_are_preserved(wh):
    feeders = wh.parent / "feeders.json"
    feeders.write_text(
        json.dumps(
            {
                "version": 3,
                "feeders": {
                    "referral": {"weight": 1.5, "patterns": ["referred by *"], "notes": "keep me"},
                    "legacy-agency": {"weight": 0.1, "nested": {"a": [1, 2.5, None]}},
                },
                "owner": "scoring-team",
            }
        )
    )
    result = feed(wh)
    document = json.loads(feeders.read_text())
    assert list(document) == ["version", "feeders", "owner"]
    assert document["version"] == 3 and document["owner"] == "scoring-team"
    referral = document["feeders"]["referral"]
    assert (referral["weight"], referral["patterns"], referral["notes"]) == (
        1.5,
        ["referred by *"],
        "keep me",
    )
    assert referral["metrics"]["updated_at"] == NOW
    assert document["feeders"]["legacy-agency"] == {"weight": 0.1, "nested": {"a": [1, 2.5, None]}}
    names = list(document["feeders"])
    assert names[:2] == ["referral", "legacy-agency"]
    assert names[2:] == sorted(names[2:])  # new feeders appended in name order
    assert set(result.updated_feeders) == set(names) - {"legacy-agency"}


def test_metrics_match_the_mart(wh):
    import duckdb

    feed(wh)
    metrics = json.loads((wh.parent / "feeders.json").read_text())["feeders"]
    con = duckdb.connect(str(wh), read_only=True)
    for feeder, n, k, rate in con.execute(
        "select feeder_source, candidates_sourced, placements, "
        "conversion_rate from mart_feeder_conversion"
    ).fetchall():
        m = metrics[feeder]["metrics"]
        assert (m["candidates_sourced"], m["placements"]) == (n, k)
        assert m["conversion_rate"] == round(k / n, 6) == pytest.approx(rate, abs=1e-6)
    con.close()


def test_rerun_without_new_data_leaves_files_byte_identical(wh):
    feed(wh)
    before = {p: (wh.parent / p).read_bytes() for p in ("feeders.json", "placements.json")}
    again = feed(wh, now="2030-01-01T00:00:00Z")
    assert again.updated_feeders == [] and not again.feeders_written
    assert {p: (wh.parent / p).read_bytes() for p in before} == before


@pytest.mark.parametrize(
    "content", ["{not json", json.dumps({"feeders": ["a", "b"]}), json.dumps({"no_feeders": {}})]
)
def test_corrupt_or_mismatched_file_is_never_overwritten(wh, content):
    feeders = wh.parent / "feeders.json"
    feeders.write_text(content)
    result = CliRunner().invoke(app, ["feedback", "--db", str(wh), "--feeders", str(feeders)])
    assert_exit(result, 2)
    assert "left untouched" in result.output
    assert feeders.read_text() == content


def test_interrupted_write_leaves_the_old_file_intact(wh, monkeypatch):
    feeders = wh.parent / "feeders.json"
    feeders.write_text(json.dumps({"feeders": {"x": {"weight": 1}}}))
    original = feeders.read_bytes()

    def killed(*_args):
        raise KeyboardInterrupt  # the process dies between write and rename

    monkeypatch.setattr("feedback.atomic.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        feed(wh)
    assert feeders.read_bytes() == original
    assert [p.name for p in wh.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_hand_edits_between_runs_are_kept_and_a_backup_is_written(wh):
    feeders = wh.parent / "feeders.json"
    feed(wh)
    document = json.loads(feeders.read_text())
    first = next(iter(document["feeders"]))
    edited = {
        "feeders": {first: {"priority": "high", **document["feeders"][first]}},
        "added_by_hand": True,
    }
    feeders.write_text(json.dumps(edited, indent=4))
    feed(wh, full=True)
    after = json.loads(feeders.read_text())
    assert after["added_by_hand"] is True
    assert list(after["feeders"][first])[:2] == ["priority", "metrics"]
    assert json.loads((wh.parent / "feeders.json.bak").read_text()) == edited


def test_placements_merge_into_candidates_files_without_duplicates(wh):
    feed(wh)
    history = json.loads((wh.parent / "placements.json").read_text())
    placed = next(iter(history))
    assert all(
        r["placement_date"] <= s["placement_date"]
        for r, s in zip(history[placed], history[placed][1:], strict=False)
    )
    jsonl = wh.parent / "candidates.jsonl"
    jsonl.write_text(
        json.dumps({"id": placed, "score": 0.7})
        + "\n"
        + json.dumps({"id": "nobody", "score": 0.1})
        + "\n"
    )
    as_json = wh.parent / "candidates.json"
    as_json.write_text(json.dumps([{"id": placed, "tags": ["a"]}]))
    for _ in range(2):  # a re-run replaces, never appends
        feed(wh, candidates_path=jsonl)
        feed(wh, candidates_path=as_json)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert lines[0] == {"id": placed, "score": 0.7, "placement_history": history[placed]}
    assert lines[1] == {"id": "nobody", "score": 0.1}
    assert json.loads(as_json.read_text()) == [
        {"id": placed, "tags": ["a"], "placement_history": history[placed]}
    ]


def test_a_candidate_whose_history_is_unchanged_keeps_its_bytes(wh):
    """Only a line whose placement_history changes is written anew (numbers as spelled); the
    others keep their bytes, spacing included, so a nightly run over a large file reads each
    line once with the fast parser and rewrites only what changed."""
    feed(wh)
    history = json.loads((wh.parent / "placements.json").read_text())
    placed = next(iter(history))
    jsonl = wh.parent / "candidates.jsonl"
    compact = '{"id":"nobody","score":1.50,"n":1E2}'
    jsonl.write_text(f'{{"id":"{placed}","score":1.50}}\n{compact}\n')
    feed(wh, candidates_path=jsonl)
    first, second = jsonl.read_text().splitlines()
    assert json.loads(first)["placement_history"] == history[placed]
    placements = json.dumps(json.loads(first)["placement_history"], ensure_ascii=False)
    assert first == f'{{"id": "{placed}", "score": 1.50, "placement_history": {placements}}}'
    assert second == compact
    as_json = wh.parent / "candidates.json"
    document = f"[ {compact} ]\n"
    as_json.write_text(document)
    feed(wh, candidates_path=as_json)  # nobody placed: not one byte changes
    assert as_json.read_text() == document


def test_a_jsonl_candidates_file_is_split_at_line_feeds_only(wh):
    """Found by the exploratory analytics run: the JSONL candidates file was split with
    `str.splitlines`, which also cuts at U+2028, U+2029 and U+0085, characters a JSON string
    may hold unescaped (`json.dumps(ensure_ascii=False)` writes them): a valid file was refused
    as not JSON, exit 2. It is split at LF only, and a CRLF file keeps its CRs."""
    feed(wh)
    history = json.loads((wh.parent / "placements.json").read_text())
    placed = next(iter(history))
    jsonl = wh.parent / "candidates.jsonl"
    other = '{"id": "nobody", "note": "a\u2028b\u2029c\x85d"}'
    jsonl.write_text(f'{{"id": "{placed}"}}\r\n{other}\r\n', newline="")
    feed(wh, candidates_path=jsonl)
    first, second, end = jsonl.read_bytes().decode().split("\r\n")
    assert json.loads(first) == {"id": placed, "placement_history": history[placed]}
    assert (second, end) == (other, "")


def test_a_placement_no_longer_in_the_warehouse_leaves_the_candidates_file(wh):
    """A candidate an earlier run gave a placement_history whose offer_accepted process was
    since reopened or corrected has no placement now: a feedback run (which knows every
    placement) takes the stale history out, as for a candidate never placed; the placed
    candidate's history and everyone's other fields are untouched."""
    feed(wh)
    history = json.loads((wh.parent / "placements.json").read_text())
    placed = next(iter(history))
    stale = [{"company": "Gone", "role": "SWE", "placement_date": "2025-01-01T00:00:00Z"}]
    jsonl = wh.parent / "candidates.jsonl"
    jsonl.write_text(
        json.dumps({"id": placed, "score": 0.7, "placement_history": stale})
        + "\n"
        + json.dumps({"id": "nobody", "score": 0.1, "placement_history": stale})
        + "\n"
    )
    feed(wh, candidates_path=jsonl)
    assert [json.loads(line) for line in jsonl.read_text().splitlines()] == [
        {"id": placed, "score": 0.7, "placement_history": history[placed]},
        {"id": "nobody", "score": 0.1},
    ]


def test_a_candidates_file_keeps_its_fields_exactly_as_feeders_json_does(wh):
    """README: the candidates' other fields untouched, "the same careful way" as feeders.json.
    They were parsed and dumped by the json module: `1e400` came back as `Infinity` (not JSON:
    the scoring job's strict parser then failed on its own file), `0.30000000000000000001` as
    `0.3`, `1E2` as `100.0`, a lone surrogate escape failed the write (exit 3), and of a key
    given twice the first value was silently dropped. Now numbers keep their spelling, strings
    every code point, and a duplicate key or NaN is refused with the file untouched."""
    feed(wh)
    history = json.loads((wh.parent / "placements.json").read_text())
    placed = next(iter(history))
    as_json = wh.parent / "candidates.json"
    as_json.write_text(
        f'[{{"id": "{placed}", "score": 1e400, "w": 0.30000000000000000001, "s": "\\ud800"}}]'
    )
    jsonl = wh.parent / "candidates.jsonl"
    jsonl.write_text(f'{{"id": "{placed}", "score": 1E2}}\n{{"id": "nobody", "v": -0.0}}\n')
    feed(wh, candidates_path=as_json)
    feed(wh, candidates_path=jsonl)
    # the history as the merge writes it (its keys in the merge's order), checked by value
    [written] = json.loads(as_json.read_text())
    ph = written["placement_history"]
    assert ph == history[placed]
    spelled = {"score": "1e400", "w": "0.30000000000000000001", "s": '"\\ud800"'}
    expected = json.dumps(
        [{"id": placed, **{k: f"@{k}" for k in spelled}, "placement_history": ph}],
        indent=2,
        ensure_ascii=False,
    )
    for key, text in spelled.items():
        expected = expected.replace(f'"@{key}"', text)
    assert as_json.read_text() == expected + "\n"
    line = json.loads(jsonl.read_text().splitlines()[0])
    assert line["placement_history"] == history[placed]
    placements = json.dumps(line["placement_history"], ensure_ascii=False)
    assert jsonl.read_text() == (
        f'{{"id": "{placed}", "score": 1E2, "placement_history": {placements}}}\n'
        '{"id": "nobody", "v": -0.0}\n'
    )
    from ingest.errors import UserError

    for text, reason in [
        ('[{"id": "c-1", "n": "a", "n": "b"}]', 'duplicate key "n" (which value is meant?)'),
        ('[{"id": "c-1", "n": NaN}]', "NaN is not a JSON number"),
    ]:
        as_json.write_text(text)
        with pytest.raises(UserError) as refused:
            feed(wh, candidates_path=as_json)
        assert str(refused.value) == f"{as_json}: not valid JSON ({reason}); left untouched"
        assert as_json.read_text() == text


def test_a_candidates_file_that_cannot_be_merged_is_refused_before_anything_is_written(wh):
    """`itrack feedback --candidates BAD` said "left untouched" after it had written
    feeders.json and the placements and committed its run: now nothing is written."""
    import duckdb

    from ingest.errors import UserError

    def runs() -> int:
        con = duckdb.connect(str(raw_store_path(wh)), read_only=True)
        try:
            return con.execute("select count(distinct run_id) from feedback_runs").fetchone()[0]
        finally:
            con.close()

    before = runs()
    bad = wh.parent / "candidates.jsonl"
    bad.write_text('{"id": "c-1"}\n{"id": \n')
    with pytest.raises(UserError) as refused:
        feed(wh, candidates_path=bad)
    assert str(refused.value) == (
        f"{bad} line 2: not valid JSON (Expecting value at column 8); left untouched"
    )
    assert sorted(p.name for p in wh.parent.iterdir() if p.suffix == ".json") == []
    assert bad.read_text() == '{"id": "c-1"}\n{"id": \n'
    assert runs() == before


def test_temp_files_a_killed_writer_left_beside_the_outputs_are_swept(wh):
    """A build killed while renaming left `.candidate_placements.json.<pid>.tmp` (40 MB at
    1M), and no later run removed it: only feeders.json's were swept."""
    left = [
        wh.parent / ".feeders.json.123.tmp",
        wh.parent / ".placements.json.123.tmp",
        wh.parent / ".candidates.jsonl.123.tmp",
    ]
    for tmp in left:
        tmp.write_text("partial")
    candidates = wh.parent / "candidates.jsonl"
    candidates.write_text('{"id": "nobody"}\n')
    feed(wh, candidates_path=candidates)
    assert [tmp.exists() for tmp in left] == [False, False, False]


def test_feedback_runs_record_what_was_written(wh):
    import duckdb

    result = feed(wh)
    con = duckdb.connect(str(raw_store_path(wh)), read_only=True)
    rows = con.execute(
        "select feeder_source, metrics from feedback_runs where run_id = ?", [result.run_id]
    ).fetchall()
    con.close()
    assert sorted(r[0] for r in rows) == sorted(result.updated_feeders)
    assert all(json.loads(m)["updated_at"] == NOW for _, m in rows)


def test_report_command(wh):
    runner = CliRunner()
    ok = runner.invoke(app, ["feedback", "report", "referral", "--json", "--db", str(wh)])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["feeder_source"] == "referral"
    table = runner.invoke(app, ["feedback", "report", "referral", "--db", str(wh)])
    assert "candidates sourced" in table.output
    unknown = runner.invoke(app, ["feedback", "report", "refferal", "--db", str(wh)])
    assert unknown.exit_code == 1
    assert "no such feeder 'refferal'; closest: referral" in unknown.output


def test_feedback_options_given_before_report_are_used_or_refused(wh, tmp_path, monkeypatch):
    """Found by the exploratory analytics run: `itrack feedback --db X report F` dropped the
    group's --db and reported on the default warehouse ($ITRACK_DB), silently; --feeders,
    --placements, --candidates and --full before `report` were ignored as silently. The
    group's --db is now report's default; the run's own options are refused, exit 2."""
    from itrack.settings import get_settings

    monkeypatch.setenv("ITRACK_DB", str(tmp_path / "elsewhere" / "warehouse.duckdb"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        after = runner.invoke(app, ["feedback", "report", "referral", "--db", str(wh)])
        assert_exit(after, 0)
        before = runner.invoke(app, ["feedback", "--db", str(wh), "report", "referral"])
        assert_exit(before, 0)
        assert before.stdout == after.stdout
        refused = runner.invoke(
            app, ["feedback", "--full", "--feeders", "f.json", "report", "referral"]
        )
        assert_exit(refused, 2)
        assert refused.stderr == (
            "error: --feeders, --full: options of the feedback run, not of "
            "`itrack feedback report`; nothing was run\n"
        )
    finally:
        get_settings.cache_clear()


def test_accepted_offer_triggers_that_feeder_and_default_equals_full(wh, tmp_path):
    """After the service API accepts an offer, the next feedback run is triggered by exactly
    that feeder, changes exactly that candidate's placements, and writes what --full writes."""
    import duckdb

    from ingest.service import InterviewService
    from ingest.store.duckdb.repository import DuckDBInterviewStore

    feed(wh)
    placements_before = json.loads((wh.parent / "placements.json").read_text())
    con = duckdb.connect(str(raw_store_path(wh)), read_only=True)
    pid, candidate, feeder = con.execute("""
        select p.id, p.candidate_id, p.feeder_source from interview_processes p
        where p.status = 'offer_extended' and p.feeder_source is not null
        order by p.id limit 1""").fetchone()
    con.close()
    InterviewService(DuckDBInterviewStore(wh)).complete_interview_process(pid, "offer_accepted")
    _rebuild(wh)
    full_copy = tmp_path / "full"
    full_copy.mkdir()
    shutil.copy2(wh.parent / "feeders.json", full_copy / "feeders.json")
    default = feed(wh)
    assert default.triggered_feeders == [feeder]
    placements_after = json.loads((wh.parent / "placements.json").read_text())
    changed = {
        c
        for c in placements_before.keys() | placements_after.keys()
        if placements_before.get(c) != placements_after.get(c)
    }
    assert changed == {candidate}
    full = run_feedback_into(wh, full_copy, now=NOW, full=True)
    assert feeder in full.updated_feeders
    assert (full_copy / "feeders.json").read_bytes() == (wh.parent / "feeders.json").read_bytes()


def _rebuild(db: Path) -> None:
    """dbt build only (no new files to ingest), as `itrack build` would after the API write."""
    from itrack.dbt_runner import run_dbt

    outcome = run_dbt(["build"], db, raw_store_path(db))
    assert outcome.ok, outcome.failures


def test_anonymized_export_has_no_names_or_free_text(wh, tmp_path):
    import duckdb

    out = tmp_path / "share"
    result = CliRunner().invoke(app, ["export", "--anonymize", "--out", str(out), "--db", str(wh)])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(wh), read_only=True)
    secrets = {
        v
        for (v,) in con.execute(
            "select full_name from stg_itrack__candidates union select recruiter_name from "
            "stg_itrack__interview_processes union select unnest(interviewer_names) from "
            "stg_itrack__interview_stages union select feedback_notes from "
            "stg_itrack__interview_stages union select candidate_id from "
            "stg_itrack__interview_processes"
        ).fetchall()
        if v
    }
    con.close()
    share = duckdb.connect()
    for parquet in out.glob("*.parquet"):
        for row in share.execute(f"select * from '{parquet}'").fetchall():
            for value in row:
                assert str(value) not in secrets, (parquet.name, value)
    joined = share.execute(f"""
        select count(*) from '{out}/fct_interview_stages.parquet' s
        join '{out}/fct_interview_processes.parquet' p using (interview_process_id)
        where s.candidate_id = p.candidate_id""").fetchone()[0]
    assert joined > 0  # pseudonyms still join within one export
    refused = CliRunner().invoke(app, ["export", "--out", str(out), "--db", str(wh)])
    assert refused.exit_code == 2 and "--anonymize" in refused.output


def test_an_export_that_cannot_be_completed_writes_nothing(wh, tmp_path):
    """All or nothing: a folder where one file cannot be written (here a folder in its place)
    is refused before anything is written. The export wrote the tables before it over
    whatever was there, then said "nothing of this run was written"."""
    out = tmp_path / "share"
    ok = CliRunner().invoke(app, ["export", "--anonymize", "--out", str(out), "--db", str(wh)])
    assert_exit(ok, 0)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == [
        "fct_interview_processes.parquet",
        "fct_interview_stages.parquet",
        "fct_process_status_history.parquet",
        "manifest.json",
        "mart_company_insights.parquet",
        "mart_conversion_funnel.parquet",
        "mart_feeder_conversion.parquet",
        "mart_interviewer_calibration.parquet",
        "mart_stage_performance.parquet",
    ]
    blocked = out / "mart_interviewer_calibration.parquet"
    blocked.unlink()
    blocked.mkdir()
    del before[blocked.name]
    result = CliRunner().invoke(app, ["export", "--anonymize", "--out", str(out), "--db", str(wh)])
    assert_exit(result, 2)
    assert result.stderr == (
        f"error: cannot export to {blocked}: not a regular file; nothing exported\n"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir() if not p.is_file()) == [blocked.name]


def test_an_export_never_replaces_a_manifest_it_did_not_write(wh, tmp_path):
    """Found by the exploratory analytics run: `--out` naming a folder that holds some other
    `manifest.json` (a web app's, dbt's target/) replaced it with the export's, no backup.
    The export refuses, exit 2, before writing anything; an earlier export's is replaced."""
    out = tmp_path / "site"
    out.mkdir()
    theirs = out / "manifest.json"
    theirs.write_text('{"name": "app", "icons": []}\n')
    args = ["export", "--anonymize", "--out", str(out), "--db", str(wh)]
    refused = CliRunner().invoke(app, args)
    assert_exit(refused, 2)
    assert refused.stderr == (
        f"error: {theirs} exists and is not an export's manifest; nothing exported (--out)\n"
    )
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert theirs.read_text() == '{"name": "app", "icons": []}\n'
    theirs.unlink()
    assert_exit(CliRunner().invoke(app, args), 0)
    assert_exit(CliRunner().invoke(app, args), 0)  # its own manifest it replaces
    assert json.loads(theirs.read_text())["anonymized"] is True


EXPORTED = [
    "fct_interview_processes",
    "fct_interview_stages",
    "fct_process_status_history",
    "mart_company_insights",
    "mart_conversion_funnel",
    "mart_feeder_conversion",
    "mart_interviewer_calibration",
    "mart_stage_performance",
]


def test_an_export_of_the_other_format_leaves_only_its_own_files(wh, tmp_path):
    """A CSV export into a folder holding a Parquet export (or the reverse) left both sets of
    tables, so a reader of the folder saw the stale ones beside the manifest's. The files the
    earlier export's manifest lists go with it; files no export wrote stay."""
    out = tmp_path / "share"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    (out / "budget.csv").write_text("mine\n")
    args = ["export", "--anonymize", "--out", str(out), "--db", str(wh)]
    for fmt in ("parquet", "csv", "parquet"):
        assert_exit(CliRunner().invoke(app, [*args, "--format", fmt]), 0)
        assert sorted(p.name for p in out.iterdir()) == sorted(
            ["budget.csv", "manifest.json", "notes.txt", *(f"{t}.{fmt}" for t in EXPORTED)]
        ), fmt
        assert json.loads((out / "manifest.json").read_text())["format"] == fmt
    assert (out / "notes.txt").read_text() == (out / "budget.csv").read_text() == "mine\n"


def test_an_export_stopped_by_ctrl_c_leaves_no_staging_folder(wh, tmp_path, monkeypatch):
    """Found by the Ctrl-C review: an export interrupted between two tables (KeyboardInterrupt
    in Python, not a DuckDB error) said "nothing of this run was written" but left its hidden
    `.export-*` staging folder, with the tables written so far, inside --out until the next
    export."""
    out = tmp_path / "share"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    written = []

    def stop_after_one(con, stage, fmt):
        (stage / f"{EXPORTED[0]}.{fmt}").write_text("partial\n")
        written.append(stage)
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_write_tables", stop_after_one)
    result = CliRunner().invoke(app, ["export", "--anonymize", "--out", str(out), "--db", str(wh)])
    assert_exit(result, 130)
    assert result.stderr == "error: interrupted; nothing of this run was written\n"
    assert len(written) == 1 and not written[0].exists()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_feedback_never_writes_its_outputs_over_each_other_or_a_store(wh):
    """Found by the exploratory analytics run: `itrack feedback --placements` replaced whatever
    file it named: the raw store (the only copy of the interviews) and the published warehouse
    became placements JSON, exit 0, and `--placements feeders.json` (or one path for both)
    replaced the scoring job's file. Both are refused, exit 2, before anything is written."""
    feed(wh)
    raw = raw_store_path(wh)
    feeders = wh.parent / "feeders.json"
    before = {path: path.read_bytes() for path in (wh, raw, feeders)}
    runner = CliRunner()
    for target in (raw, wh):
        refused = runner.invoke(app, ["feedback", "--db", str(wh), "--placements", str(target)])
        assert_exit(refused, 2)
        assert refused.stderr == (
            f"error: {target} exists and is not a placements file; not replaced (--placements)\n"
        )
    refused = runner.invoke(
        app, ["feedback", "--db", str(wh), "--feeders", str(feeders), "--placements", str(feeders)]
    )
    assert_exit(refused, 2)
    assert refused.stderr == (
        f"error: feeders.json and the placements file are one file ({feeders}); "
        "each needs its own\n"
    )
    assert {path: path.read_bytes() for path in before} == before
    placements = wh.parent / "placements.json"
    ok = runner.invoke(
        app,
        ["feedback", "--db", str(wh), "--feeders", str(feeders), "--placements", str(placements)],
    )
    assert_exit(ok, 0)  # its own file it replaces


def test_outputs_are_readable_by_other_users(wh):
    feed(wh)
    for name in ("feeders.json", "placements.json"):
        assert (wh.parent / name).stat().st_mode & 0o044 == 0o044  # group and others read


def test_placements_are_rendered_only_when_their_rows_or_the_file_changed(
    wh, tmp_path, monkeypatch
):
    """The placements file is a function of the accepted processes' rows: with the rows'
    digest the last run logged and the file still holding the bytes it wrote, a run renders
    nothing; a file edited or deleted by hand, or a new placement, renders it again, and the
    file is then byte for byte what --full writes."""
    import duckdb

    import feedback.service as service
    from ingest.service import InterviewService
    from ingest.store.duckdb.repository import DuckDBInterviewStore

    rendered: list[int] = []
    render = service.render_placements

    def counted(con):
        rendered.append(1)
        return render(con)

    monkeypatch.setattr(service, "render_placements", counted)
    placements = wh.parent / "placements.json"
    con = duckdb.connect(str(wh), read_only=True)
    accepted = con.execute(
        "select count(*) from fct_interview_processes where status = 'offer_accepted'"
    ).fetchone()[0]
    con.close()
    first = feed(wh)
    written = placements.read_bytes()
    assert (len(rendered), first.placements_written, first.placements) == (1, True, accepted)
    again = feed(wh)
    assert (len(rendered), again.placements_written, again.placements) == (1, False, accepted)
    assert placements.read_bytes() == written

    placements.write_text("{}\n")  # by hand
    edited = feed(wh)
    assert (len(rendered), edited.placements_written) == (2, True)
    assert placements.read_bytes() == written
    placements.unlink()
    feed(wh)
    assert len(rendered) == 3 and placements.read_bytes() == written

    con = duckdb.connect(str(raw_store_path(wh)), read_only=True)
    pid = con.execute(
        "select min(id) from interview_processes where status = 'offer_extended'"
    ).fetchone()[0]
    con.close()
    InterviewService(DuckDBInterviewStore(wh)).complete_interview_process(pid, "offer_accepted")
    _rebuild(wh)
    changed = feed(wh)
    assert (len(rendered), changed.placements_written, changed.placements) == (
        4,
        True,
        accepted + 1,
    )
    run_feedback_into(wh, tmp_path / "full", now=NOW, full=True)
    assert (tmp_path / "full" / "placements.json").read_bytes() == placements.read_bytes()


# offer details as the contract stores them (compact JSON, the model's field order or any
# other, nulls for absent fields) and what each must become
OFFERS = [
    None,
    '{"base_salary":125000,"currency":"EUR","bonus":10000,"offer_date":"2025-11-19"}',
    '{"currency":"USD","base_salary":150000.5,"equity":null,"start_date":"2026-01-05"}',
    '{"base_salary":1e22,"currency":"GBP","sign_on_bonus":0.000001}',
    '{"base_salary":123456789012345678901234,"currency":"CHF","bonus":18446744073709551615}',
    '{"base_salary":0,"currency":"JPY","expiry_date":"2026-02-01","bonus":2.5}',
]


def _placement_rows(con, rows) -> None:
    con.execute(
        "create table fct_interview_processes (candidate_id varchar, company_name varchar, "
        "role_title varchar, placed_at timestamp, offer_details json, is_placement boolean)"
    )
    con.executemany("insert into fct_interview_processes values (?, ?, ?, ?, ?, ?)", rows)


def test_placements_are_what_the_contract_model_dumps():
    """The placements are built from the rows without pydantic (1.2 s at 1M): each record must
    be what PlacementRecord dumps (keys, their order, values), and the file's bytes what the
    standard library's indented encoder writes of them, numbers orjson spells differently
    (exponents, integers beyond 64 bits) included."""
    import datetime as dt

    import duckdb

    from feedback.placements import placements_from_marts, render_placements
    from ingest.contract import STORED, PlacementRecord

    at = dt.datetime(2025, 3, 1, 9, 30)
    rows = [
        (
            f"cand-{i % 4}",
            name,
            "Engineer",
            at + dt.timedelta(days=i, microseconds=i * 1000),
            offer,
            True,
        )
        for i, (name, offer) in enumerate(
            zip(
                ["Zoë & Co", "李明", 'Quote"Back\\', "Acme", "Monzo", "Tab\tCo"],
                OFFERS,
                strict=True,
            )
        )
    ] + [("cand-9", "Never", "Placed", at, None, False)]
    con = duckdb.connect()
    _placement_rows(con, rows)
    reference: dict[str, list] = {}
    for candidate, company, role, placed_at, offer, placed in sorted(
        rows, key=lambda r: (r[0], r[3])
    ):
        if placed:
            # stored offers, read as the store reads them: under the rules of their day (an
            # amount past today's MAX_AMOUNT was accepted before it was bounded)
            record = PlacementRecord.model_validate(
                {
                    "company": company,
                    "role": role,
                    "placement_date": placed_at,
                    "offer_details": json.loads(offer) if offer else None,
                },
                context=STORED,
            )
            reference.setdefault(candidate, []).append(
                record.model_dump(mode="json", exclude_none=True)
            )
    history, data = render_placements(con)
    assert json.dumps(history) == json.dumps(reference)  # key order included
    expected = json.dumps(reference, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    assert data == expected.encode("utf-8")
    assert '"base_salary": 123456789012345678901234' in data.decode()
    assert '"base_salary": 1e+22' in data.decode()
    assert placements_from_marts(con, "cand-1") == {"cand-1": reference["cand-1"]}
    assert placements_from_marts(con, "cand-9") == {}
    # with plain numbers only, the same (through orjson alone)
    plain = duckdb.connect()
    _placement_rows(
        plain, [r for r in rows if r[4] is None or "e2" not in r[4] and "1234567" not in r[4]]
    )
    history, data = render_placements(plain)
    text = json.dumps(history, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    assert sorted(history) == ["cand-0", "cand-1", "cand-2"] and data == text.encode("utf-8")


def test_a_build_renders_again_only_the_candidates_whose_placements_changed(tmp_path, shared_plans):
    """After a delta, the build's placements file is patched from the last one: only the
    candidates whose placement rows changed are rendered, and the file is byte for byte what
    a full render of the new warehouse writes. The count is checked against the candidates
    whose entries differ between the two files, found independently (parsed JSON compared)."""
    import duckdb

    from feedback.placements import render_placements
    from itrack.generate import generate_delta

    generate(tmp_path / "day1", 300, seed=5)
    db = tmp_path / "warehouse.duckdb"
    first = run_build([tmp_path / "day1"], db=db, **QUIET, plan_cache=shared_plans)
    assert first.feedback.placements_rendered is None  # no earlier file: rendered whole
    before = (tmp_path / "candidate_placements.json").read_bytes()
    generate_delta(tmp_path / "day1", tmp_path / "delta", share=0.2)
    second = run_build([tmp_path / "delta"], db=db, **QUIET)
    after = (tmp_path / "candidate_placements.json").read_bytes()
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert after == render_placements(con)[1]
    finally:
        con.close()
    old, new = json.loads(before), json.loads(after)
    differ = {c for c in old.keys() | new.keys() if old.get(c) != new.get(c)}
    assert len(differ) > 0 and len(differ) < len(new)
    assert second.feedback.placements_rendered == len(differ)
    assert f"(rendered again for {len(differ)} changed candidates)" in str(second.feedback)


def test_patched_placements_equal_a_full_render(tmp_path):
    """patch_placements on hand-made rows: a candidate's placements changed, one gone, one
    new, keys in UTF-8 (sorted by code point, as the encoder sorts them), numbers orjson
    spells differently; every time the bytes a full render writes. A key with an escape, or a
    file the renderer did not write, is not patched (None: rendered whole)."""
    import datetime as dt

    import duckdb

    from feedback.placements import patch_placements, render_placements

    at = dt.datetime(2025, 3, 1, 9, 30)

    def row(candidate, company, day, offer=None, placed=True):
        return (candidate, company, "Engineer", at + dt.timedelta(days=day), offer, placed)

    old_rows = [
        row("cand-a", "Acme", 1, OFFERS[1]),
        row("cand-é", "Zoë & Co", 2, OFFERS[3]),
        row("cand-€", "Monzo", 3),
        row("cand-😀", "李明", 4, OFFERS[5]),
        row("cand-z", "Gone Ltd", 5),
        row("cand-b", "Never", 6, placed=False),
    ]
    new_rows = [
        row("cand-a", "Acme", 1, OFFERS[1]),
        row("cand-é", "Zoë & Co", 2, OFFERS[3]),
        row("cand-é", "Second", 9, OFFERS[2]),  # changed: a second placement
        row("cand-€", "Monzo", 3),
        row("cand-😀", "李明", 4, OFFERS[5]),
        row("cand-b", "Now placed", 6),  # new, sorts between existing keys
        row("cand-y", "Tab\tCo", 7, OFFERS[1]),  # new
    ]  # cand-z: gone
    previous = duckdb.connect(str(tmp_path / "previous.duckdb"))
    _placement_rows(previous, old_rows)
    old_file = render_placements(previous)[1]
    previous.close()
    con = duckdb.connect()
    _placement_rows(con, new_rows)
    con.execute(f"attach '{tmp_path / 'previous.duckdb'}' as previous (read_only)")
    data, rendered = patch_placements(con, "previous", old_file)
    assert data == render_placements(con)[1]
    assert rendered == 4  # cand-é, cand-b, cand-y, cand-z
    assert list(json.loads(data)) == ["cand-a", "cand-b", "cand-y", "cand-é", "cand-€", "cand-😀"]
    # nothing changed: nothing rendered, the same bytes
    same = duckdb.connect()
    _placement_rows(same, old_rows)
    same.execute(f"attach '{tmp_path / 'previous.duckdb'}' as previous (read_only)")
    assert patch_placements(same, "previous", old_file) == (old_file, 0)
    # every placement gone
    empty = duckdb.connect()
    _placement_rows(empty, [row("cand-a", "Acme", 1, placed=False)])
    empty.execute(f"attach '{tmp_path / 'previous.duckdb'}' as previous (read_only)")
    assert patch_placements(empty, "previous", old_file) == (b"{}\n", 5)
    # not patched: a key with an escape (its bytes are not its text), another file's shape
    quoted = duckdb.connect()
    _placement_rows(quoted, [*old_rows, row('cand-"q"', "Acme", 8)])
    assert patch_placements(con, "previous", render_placements(quoted)[1]) is None
    assert patch_placements(con, "previous", json.dumps(json.loads(old_file)).encode()) is None


def test_itrack_feedback_waits_for_a_running_build_and_refuses_after_wait(wh):
    """`itrack feedback` beside a build computed from the warehouse before it and overwrote the
    outputs the build had just written: it now waits for the build (--wait), or refuses."""
    import os
    import threading

    from itrack.pipeline import build_lock

    runner = CliRunner()
    with build_lock(wh):  # what `itrack build` holds from start to publish
        refused = runner.invoke(app, ["feedback", "--db", str(wh), "--wait", "0"])
    assert_exit(refused, 2)
    lock = wh.parent / ".build" / "warehouse.build.lock"
    assert refused.output == (
        f"error: build is busy (held by PID {os.getpid()}): {lock.with_suffix('')}; retry later "
        "or pass --wait SECONDS\n"
    )
    assert not (wh.parent / "feeders.json").exists()
    taken, release = threading.Event(), threading.Event()
    written_while_building = []

    def build() -> None:
        with build_lock(wh):
            taken.set()
            release.wait(30)
            written_while_building.append((wh.parent / "feeders.json").exists())

    holder = threading.Thread(target=build)
    holder.start()
    taken.wait(30)
    threading.Timer(3.0, release.set).start()
    waited = runner.invoke(app, ["feedback", "--db", str(wh), "--wait", "30"])
    holder.join(30)
    assert_exit(waited, 0)
    assert written_while_building == [False]  # it ran once the build had let go
    assert (wh.parent / "feeders.json").exists()


def test_a_feeder_keeps_its_feeders_json_key_when_its_most_frequent_spelling_changes(
    tmp_path, shared_plans
):
    """Night 1: 'Referral' twice, 'referral' once: the marts and feeders.json spell the feeder
    'Referral', and the scoring job gives it a weight. Night 2 brings two more 'referral': the
    marts now spell it 'referral', and the metrics stay under the file's key 'Referral', with
    the weight (they moved to a new key 'referral', 'Referral' left with those of no process)."""
    from tests.factories import candidate, process, write_jsonl

    def night(folder: str, spellings: list[str], first: int) -> Path:
        ids = range(first, first + len(spellings))
        (tmp_path / folder).mkdir()
        write_jsonl(
            tmp_path / folder / "candidates.jsonl", [candidate(id=f"cand-{i}") for i in ids]
        )
        processes = [
            process(
                id=f"{i:08d}-1111-4111-8111-111111111111",
                candidate_id=f"cand-{i}",
                feeder_source=name,
            )
            for i, name in zip(ids, spellings, strict=True)
        ]
        write_jsonl(tmp_path / folder / "processes.jsonl", processes)
        return tmp_path / folder

    db = tmp_path / "warehouse.duckdb"
    feeders = tmp_path / "feeders.json"
    run_build(
        [night("n1", ["Referral", "Referral", "referral"], 1)],
        db=db,
        **QUIET,
        plan_cache=shared_plans,
    )
    document = json.loads(feeders.read_text())
    assert list(document["feeders"]) == ["Referral"]
    document["feeders"]["Referral"]["weight"] = 1.5
    feeders.write_text(json.dumps(document))
    run_build([night("n2", ["referral", "referral"], 4)], db=db, **QUIET, plan_cache=shared_plans)
    entries = json.loads(feeders.read_text())["feeders"]
    assert list(entries) == ["Referral"]
    assert entries["Referral"]["weight"] == 1.5
    assert entries["Referral"]["metrics"]["candidates_sourced"] == 5
    # the live path (an outcome recorded between builds) keys it as the file does too
    from itrack.services import feedback_service

    feedback_service(db).update_feeder_conversion_rates("referral")
    entries = json.loads(feeders.read_text())["feeders"]
    assert list(entries) == ["Referral"]
    assert entries["Referral"]["weight"] == 1.5
    assert entries["Referral"]["metrics"]["candidates_sourced"] == 5


def test_the_feedback_report_shows_values_as_the_report_tables_do(tmp_path, shared_plans):
    """`itrack feedback report` had its own rules: days to hire with one decimal (10.25 read
    10.2 where `itrack report feeder` reads 10.25) and reasons as "reason (count)". Its table
    now shows each value by the report tables' rule (itrack.cli.report.shown). It also left out
    three metrics its JSON gives (decided processes, decided conversion rate, pipeline depth:
    the finished processes scored 1 and 0.25)."""
    from tests.factories import candidate, process, stage, write_jsonl

    src = tmp_path / "in"
    src.mkdir()
    ids = [f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-4000-8000-00000000000{n}" for n in (1, 2, 3)]
    write_jsonl(
        src / "candidates.jsonl",
        [candidate(id=f"c{n}", feeder_source="referral") for n in (1, 2, 3)],
    )
    closed = {  # process -> status, updated_at, final_outcome
        0: ("offer_accepted", "2025-01-11T06:00:00Z", None),
        1: ("rejected_by_company", "2025-01-20T00:00:00Z", "Failed Onsite"),
        2: ("in_progress", "2025-01-01T00:00:00Z", None),
    }
    write_jsonl(
        src / "processes.jsonl",
        [
            process(
                id=ids[p],
                candidate_id=f"c{p + 1}",
                feeder_source="referral",
                status=status,
                created_at="2025-01-01T00:00:00Z",
                updated_at=updated,
                **({"final_outcome": outcome} if outcome else {}),
            )
            for p, (status, updated, outcome) in closed.items()
        ],
    )
    stages = [
        (0, 1, "Phone Screen", "passed"),
        (0, 2, "Technical Interview", "passed"),
        (0, 3, "Onsite", "passed"),
        (1, 1, "Phone Screen", "passed"),
        (1, 2, "Technical Interview", "failed"),
        (2, 1, "Phone Screen", "passed"),
    ]
    write_jsonl(
        src / "stages.jsonl",
        [
            stage(
                id=f"aaaaaaaa-0000-4000-8000-0000000000{p}{n}",
                interview_process_id=ids[p],
                stage_name=name,
                stage_order=n,
                outcome=outcome,
            )
            for p, n, name, outcome in stages
        ],
    )
    db = tmp_path / "warehouse.duckdb"
    run_build([src], db=db, **QUIET, plan_cache=shared_plans)
    result = CliRunner().invoke(app, ["feedback", "report", "referral", "--db", str(db)])
    assert_exit(result, 0)
    # by hand: 1 placement of 3 (prior 1/3: smoothed 33.3%), Wilson 1/3, phone 3/3,
    # technical 1/2, onsite 1/1, hired after 10 days 6 hours, one rejection
    assert result.stdout == (
        "feeder referral:\n"
        "  candidates sourced: 3\n"
        "  placements: 1\n"
        "  conversion rate: 33.3%\n"
        "  decided processes: 2\n"
        "  decided conversion rate: 50.0%\n"
        "  95% interval: 6.1% - 79.2%\n"
        "  smoothed rate: 33.3%\n"
        "  success rate: phone_screen: 100.0%\n"
        "  success rate: technical: 50.0%\n"
        "  success rate: onsite: 100.0%\n"
        "  average days to hire: 10.25\n"
        "  pipeline depth: 62.5%\n"
        "  rejection reasons: Failed Onsite 1\n"
    )
    feeder = CliRunner().invoke(app, ["report", "feeder", "referral", "--db", str(db)])
    assert_exit(feeder, 0)
    assert "  avg_days_to_hire: 10.25\n" in feeder.stdout
    assert "  top_rejection_reasons: Failed Onsite 1\n" in feeder.stdout

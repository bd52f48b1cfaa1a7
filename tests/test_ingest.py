"""`itrack ingest`: every validation rule with a rejected and a clean example, idempotency,
upsert semantics, status history, formats, retries of orphans and the exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ingest.contract import InterviewProcess, InterviewStage, stage_date_error
from ingest.load import ingest_paths
from itrack.cli.main import app
from tests.conftest import assert_exit, query
from tests.factories import P1, P2, S1, S2, S3, candidate, offer, process, stage, write_jsonl

runner = CliRunner()


def load(tmp_path: Path, db: Path, candidates=(), processes=(), stages=(), **kw):
    folder = tmp_path / f"in{len(list(tmp_path.glob('in*')))}"
    folder.mkdir()
    for name, records in (("candidates", candidates), ("processes", processes), ("stages", stages)):
        if records:
            write_jsonl(folder / f"{name}.jsonl", list(records))
    return ingest_paths([folder], db=db, **kw)


def quarantined(db: Path) -> list[tuple]:
    return query(
        db,
        "select kind, line_number, error_code, field, error_message "
        "from quarantine where resolved_run_id is null order by kind, line_number",
    )


# (kind, bad record, error_code, field) - each loads beside a valid candidate/process/stage.
REJECTIONS = [
    ("candidates", candidate(id="c 2"), "invalid_value", "id"),
    ("candidates", candidate(id="c2", full_name=""), "empty_value", "full_name"),
    ("candidates", candidate(id="c2", full_name="   "), "empty_value", "full_name"),
    ("candidates", candidate(id="c2", full_name="A\x07B"), "control_character", "full_name"),
    (
        "candidates",
        {k: v for k, v in candidate(id="c2").items() if k != "created_at"},
        "missing_field",
        "created_at",
    ),
    ("candidates", candidate(id="c2", created_at="yesterday"), "invalid_date", "created_at"),
    ("candidates", candidate(id="c2", created_at="20250101"), "invalid_date", "created_at"),
    ("candidates", candidate(id="c2", nickname="x"), "unknown_field", "nickname"),
    ("processes", process(id="not-a-uuid"), "invalid_uuid", "id"),
    ("processes", process(id=P2, status="hired"), "invalid_enum", "status"),
    ("processes", process(id=P2, company_name=None), "wrong_type", "company_name"),
    ("processes", process(id=P2, updated_at="2025-01-01T00:00:00Z"), "date_order", None),
    (
        "processes",
        process(id=P2, offer_details=offer(base_salary=-1)),
        "invalid_offer",
        "offer_details.base_salary",
    ),
    (
        "processes",
        process(id=P2, offer_details=offer(currency="XYZ")),
        "invalid_offer",
        "offer_details.currency",
    ),
    ("processes", process(id=P2, candidate_id="nobody"), "orphan_process", "candidate_id"),
    ("stages", stage(id=S2, stage_order=2, overall_rating=0), "invalid_rating", "overall_rating"),
    ("stages", stage(id=S2, stage_order=2, overall_rating=6), "invalid_rating", "overall_rating"),
    (
        "stages",
        stage(id=S2, stage_order=2, technical_rating=3.5),
        "invalid_rating",
        "technical_rating",
    ),
    (
        "stages",
        stage(id=S2, stage_order=2, communication_rating="5"),
        "invalid_rating",
        "communication_rating",
    ),
    ("stages", stage(id=S2, stage_order=0), "invalid_value", "stage_order"),
    ("stages", stage(id=S2, stage_order="2"), "wrong_type", "stage_order"),
    ("stages", stage(id=S2, stage_order=2, outcome="maybe"), "invalid_enum", "outcome"),
    (
        "stages",
        stage(id=S2, stage_order=2, completed_date="2025-01-05T00:00:00Z"),
        "date_order",
        None,
    ),
    (
        "stages",
        stage(id=S2, stage_order=2, scheduled_date="2025-01-01T00:00:00Z", completed_date=None),
        "date_before_process",
        "scheduled_date",
    ),
    (
        "stages",
        stage(id=S2, stage_order=2, interview_process_id=P2),
        "orphan_stage",
        "interview_process_id",
    ),
    ("stages", stage(id=S2), "duplicate_stage_order", "stage_order"),
    (
        "stages",
        stage(id=S2, stage_order=2, interviewer_names="Dana"),
        "wrong_type",
        "interviewer_names",
    ),
    ("stages", '{"id": "truncated', "malformed_json", None),
    ("stages", "[1, 2]", "not_an_object", None),
]


@pytest.mark.parametrize(
    ("kind", "bad", "code", "field"),
    REJECTIONS,
    ids=[f"{r[0]}-{r[2]}-{i}" for i, r in enumerate(REJECTIONS)],
)
def test_each_rule_rejects_with_its_code_and_the_valid_rows_load(
    tmp_path, db, kind, bad, code, field
):
    files = {"candidates": [candidate()], "processes": [process()], "stages": [stage()]}
    files[kind].append(bad)
    summary = load(tmp_path, db, **files)
    assert summary.rejects_by_code == {code: 1}
    assert summary.accepted == 3
    [(q_kind, line, q_code, q_field, message)] = quarantined(db)
    assert (q_kind, line, q_code, q_field) == (kind, 2, code, field)
    assert message
    counts = query(
        db,
        "select (select count(*) from candidates), "
        "(select count(*) from interview_processes), "
        "(select count(*) from interview_stages)",
    )
    assert counts == [(1, 1, 1)]


def test_an_amount_no_number_type_takes_names_its_field_and_the_number_rule(tmp_path, db):
    """Found by the exploratory analytics run: an amount is `int | float`, and a value neither
    takes failed once per member, so the quarantine named field `offer_details.base_salary.int`
    (no record has it) with "should be a valid integer", for `1e400` and `"abc"` alike. The
    field is the record's and the message the number rule's."""
    infinite = json.dumps(process(id=P2, offer_details=offer(base_salary=1))).replace(
        '"base_salary": 1', '"base_salary": 1e400'
    )
    text = process(id="33333333-3333-4333-8333-333333333333", offer_details=offer(bonus="abc"))
    summary = load(tmp_path, db, [candidate()], [process(), infinite, text])
    assert summary.rejects_by_code == {"invalid_offer": 2}
    assert quarantined(db) == [
        (
            "processes",
            2,
            "invalid_offer",
            "offer_details.base_salary",
            "field 'offer_details.base_salary': Input should be a finite number (got Infinity)",
        ),
        (
            "processes",
            3,
            "invalid_offer",
            "offer_details.bonus",
            "field 'offer_details.bonus': Input should be a valid number (got \"abc\")",
        ),
    ]


def test_a_stage_date_before_its_process_names_the_date_that_is(tmp_path, db):
    """Found by the exploratory analytics run: `date_before_process` always named field
    `scheduled_date` with "stage date is before its process was created", also when the
    scheduled date was absent or fine and the completed date was the early one. The field and
    the message are now the service's (`contract.stage_date_error`): the date that is early,
    its value and the process's creation."""
    early_completion = stage(
        id=S2,
        stage_order=2,
        scheduled_date=None,
        completed_date="2025-01-04T12:30:00.25Z",
        outcome="passed",
    )
    early_schedule = stage(
        id=S3,
        stage_order=3,
        scheduled_date="2025-01-01T00:00:00Z",
        completed_date="2025-01-02T00:00:00Z",
        outcome="passed",
    )
    summary = load(
        tmp_path, db, [candidate()], [process()], [stage(), early_completion, early_schedule]
    )
    assert summary.rejects_by_code == {"date_before_process": 2}
    assert quarantined(db) == [
        (
            "stages",
            2,
            "date_before_process",
            "completed_date",
            "completed_date 2025-01-04T12:30:00.250000 is before the process was created "
            "(2025-01-05 00:00:00)",
        ),
        (
            "stages",
            3,
            "date_before_process",
            "scheduled_date",
            "scheduled_date 2025-01-01T00:00:00 is before the process was created "
            "(2025-01-05 00:00:00)",
        ),
    ]
    created = InterviewProcess.model_validate(process()).created_at
    assert [
        stage_date_error(InterviewStage.model_validate(record), created)
        for record in (early_completion, early_schedule)
    ] == [message for *_, message in quarantined(db)]


def test_inline_stages_in_a_csv_process_row_load_as_in_jsonl(tmp_path):
    """Found by the exploratory analytics run: a process's inline `stages` list loaded from
    JSONL, JSON and Parquet, but a CSV `stages` cell (JSON text, as `offer_details` cells are)
    stayed text: the process was refused as `unknown_field` and its stages lost. The cell is
    read as the list, so CSV gives the same stages and quarantine (its line is the row's)."""
    from itrack.generate import write_records

    inline = [stage(id=S2, stage_order=1), "not a stage", stage(id=S3, stage_order=2)]
    for record in inline[::2]:
        del record["interview_process_id"]  # taken from the process
    stores = {}
    for fmt in ("jsonl", "csv"):
        folder = tmp_path / fmt
        folder.mkdir()
        write_records([candidate()], folder / f"candidates.{fmt}", fmt)
        write_records([process(stages=inline)], folder / f"processes.{fmt}", fmt)
        db = tmp_path / f"{fmt}.duckdb"
        ingest_paths([folder], db=db)
        stores[fmt] = (
            query(
                db,
                "select id::varchar, interview_process_id::varchar from interview_stages "
                "order by id",
            ),
            query(db, "select count(*) from interview_processes"),
            query(db, "select kind, line_number, error_code, error_message from quarantine"),
        )
    refused = "stages", "not_an_object", "expected a JSON object, got str"
    assert stores["jsonl"] == ([(S2, P1), (S3, P1)], [(1,)], [(refused[0], 1, *refused[1:])])
    assert stores["csv"] == ([(S2, P1), (S3, P1)], [(1,)], [(refused[0], 2, *refused[1:])])


def test_clean_records_load_with_exact_values(tmp_path, db):
    notes = 'Strong on \'); drop table interview_stages; -- and =HYPERLINK("x")\nline two 🚀'
    summary = load(
        tmp_path,
        db,
        [candidate(full_name='=HYPERLINK("http://x")')],
        [process(status="offer_extended", offer_details=offer(bonus=10000.5))],
        [
            stage(
                feedback_notes=notes,
                interviewer_names=["Dana", "Lee"],
                scheduled_date="2025-01-06T12:00:00+02:00",
                completed_date=None,
                outcome="pending",
            )
        ],
    )
    assert summary.rejected == 0 and summary.accepted == 3
    [(name,)] = query(db, "select full_name from candidates")
    assert name == '=HYPERLINK("http://x")'
    [(status, offer_json)] = query(db, "select status, offer_details from interview_processes")
    assert status == "offer_extended"
    assert json.loads(offer_json) == offer(bonus=10000.5)
    [(got_notes, names, scheduled, outcome, rating)] = query(
        db,
        "select feedback_notes, interviewer_names, scheduled_date::varchar, outcome, "
        "overall_rating from interview_stages",
    )
    assert got_notes == notes
    assert names == ["Dana", "Lee"]
    assert scheduled == "2025-01-06 10:00:00"  # naive UTC
    assert (outcome, rating) == ("pending", 4)


def test_defaults_apply(tmp_path, db):
    bare = {k: v for k, v in process().items() if k not in ("status", "updated_at")}
    bare_stage = {k: v for k, v in stage().items() if k not in ("outcome", "interviewer_names")}
    load(tmp_path, db, [candidate()], [bare], [bare_stage])
    assert query(db, "select status, updated_at = created_at from interview_processes") == [
        ("in_progress", True)
    ]
    assert query(db, "select outcome, interviewer_names from interview_stages") == [("pending", [])]


def snapshot(db: Path) -> dict[str, list]:
    tables = ("candidates", "interview_processes", "interview_stages", "interview_status_history")
    return {
        t: sorted(
            map(
                str,
                query(db, f"select * exclude (_run_id, _loaded_at) from {t}")
                if t != "interview_status_history"
                else query(db, f"select * exclude (run_id, recorded_at) from {t}"),
            )
        )
        for t in tables
    }


def test_same_files_twice_change_nothing(tmp_path, db):
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    write_jsonl(folder / "processes.jsonl", [process(status="rejected_by_company")])
    write_jsonl(folder / "stages.jsonl", [stage(), stage(id=S2, stage_order=2, outcome="failed")])
    first = ingest_paths([folder], db=db)
    before = snapshot(db)
    second = ingest_paths([folder], db=db)
    assert all(f.skipped for f in second.files)
    forced = ingest_paths([folder], db=db, force=True)
    assert snapshot(db) == before
    assert first.total("inserted") == 4
    assert (forced.total("unchanged"), forced.total("inserted"), forced.total("updated")) == (
        4,
        0,
        0,
    )
    assert query(db, "select count(*) from ingest_runs") == [(3,)]


def test_a_rule_over_the_whole_record_says_what_it_saw_and_no_more(tmp_path, db):
    """Dates out of order (a rule over the whole record, or the whole offer) were quarantined
    as "updated_at is before created_at (got an object)": the record itself was the input,
    and "an object" said nothing (found by an exploratory run). A value given to a field is
    still shown."""
    load(
        tmp_path,
        db,
        [candidate(), candidate(id="c2", full_name={"first": "Bo"})],
        [
            process(updated_at="2025-01-01T00:00:00Z"),
            process(id=P2, offer_details=offer(start_date="2025-01-01")),
        ],
    )
    assert query(db, "select record_id, field, error_message from quarantine order by 1") == [
        (P1, None, "updated_at is before created_at"),
        (P2, "offer_details", "field 'offer_details': start_date is before offer_date"),
        ("c2", "full_name", "field 'full_name': Input should be a valid string (got an object)"),
    ]


def test_a_file_skipped_unread_is_audited_with_its_size_and_mtime(tmp_path, db):
    """ingest_files audits every file of a run with its sha256, size and mtime: a file skipped
    because its path, size and mtime were loaded before had neither (NULL, null in the
    --format json summary), where a copy skipped by its sha256 had both."""
    folder = tmp_path / "in"
    folder.mkdir()
    path = write_jsonl(folder / "candidates.jsonl", [candidate()])
    ingest_paths([folder], db=db)
    again = ingest_paths([folder], db=db)
    stat = path.stat()
    assert [(f.skipped, f.size_bytes, f.mtime_ns) for f in again.files] == [
        (True, stat.st_size, stat.st_mtime_ns)
    ]
    assert query(db, "select skipped, size_bytes, mtime_ns from ingest_files order by skipped") == [
        (False, stat.st_size, stat.st_mtime_ns),
        (True, stat.st_size, stat.st_mtime_ns),
    ]


def test_a_copy_of_loaded_files_is_read_once_then_skipped_unread(tmp_path, db):
    """The same files under another path (a nightly job naming them differently, yesterday's
    export copied into today's folder): read once to find they are copies, loaded nothing, and
    from then on skipped by path, size and mtime without reading them."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    write_jsonl(folder / "processes.jsonl", [process()])
    ingest_paths([folder], db=db)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    before = snapshot(db)
    for expected in ("read", "skip"):
        steps: list[str] = []
        run = ingest_paths([copy], db=db, progress=lambda m, _i, _n, seen=steps: seen.append(m))
        why = " (already loaded)" if expected == "skip" else ""
        assert [m for m in steps if m.startswith(("read ", "skip "))] == [
            f"{expected} {copy / 'candidates.jsonl'}{why}",
            f"{expected} {copy / 'processes.jsonl'}{why}",
        ]
        assert [f.skipped for f in run.files] == [True, True]
        assert run.total("inserted") + run.total("updated") + run.total("unchanged") == 0
    assert snapshot(db) == before


def test_newer_record_replaces_older_is_stale_and_history_records_changes(tmp_path, db):
    load(tmp_path, db, [candidate()], [process()])
    load(
        tmp_path,
        db,
        processes=[process(status="offer_extended", updated_at="2025-02-01T00:00:00Z")],
    )
    stale = load(
        tmp_path, db, processes=[process(status="on_hold", updated_at="2025-01-20T00:00:00Z")]
    )
    assert stale.total("stale") == 1
    assert query(db, "select status from interview_processes") == [("offer_extended",)]
    assert query(
        db,
        "select from_status, to_status, changed_at::date::varchar "
        "from interview_status_history order by changed_at",
    ) == [(None, "in_progress", "2025-01-05"), ("in_progress", "offer_extended", "2025-02-01")]


def test_ids_stay_unique_without_a_key_index(tmp_path, db):
    """The raw tables have no primary-key index (migration 20261126120000): the merge alone
    keeps one row per id. Inserts, updates (an update replaces its row), unchanged and stale
    records, copies within one run and a forced re-read leave exactly one row per id, holding
    the newest record."""
    load(
        tmp_path,
        db,
        [candidate(), candidate(id="c2", full_name="Bo Ng")],
        [process()],
        [stage(), stage(id=S2, stage_order=2, outcome="failed")],
    )
    newer = "2025-02-01T00:00:00Z"
    second = load(
        tmp_path,
        db,
        [
            candidate(full_name="Ann Lee-Park", updated_at=newer),
            candidate(id="c2", full_name="Bo Ng"),
            candidate(id="c3", full_name="Cy Roe"),
            candidate(id="c3", full_name="Cy Roe-Li", updated_at=newer),
        ],
        [process(status="on_hold", updated_at=newer)],
        [stage(id=S2, stage_order=2, outcome="passed", completed_date=newer, updated_at=newer)],
    )
    assert (second.total("inserted"), second.total("updated")) == (1, 3)
    assert (second.total("unchanged"), second.total("stale")) == (1, 1)
    forced = ingest_paths([tmp_path / "in1"], db=db, force=True)
    assert (forced.total("unchanged"), forced.total("stale"), forced.changed) == (5, 1, 0)
    for table in ("candidates", "interview_processes", "interview_stages"):
        assert query(db, f"select id from {table} group by id having count(*) > 1") == []
    assert query(db, "select id, full_name from candidates order by id") == [
        ("c2", "Bo Ng"),
        ("c3", "Cy Roe-Li"),
        ("cand-1", "Ann Lee-Park"),
    ]
    assert query(db, "select id::varchar, status from interview_processes") == [(P1, "on_hold")]
    assert query(db, "select id::varchar, outcome from interview_stages order by 1") == [
        (S1, "passed"),
        (S2, "passed"),
    ]


def test_skipped_state_is_valid_but_leaving_a_terminal_state_is_not(tmp_path, db):
    load(tmp_path, db, [candidate()], [process(status="on_hold")])
    ok = load(
        tmp_path,
        db,
        processes=[process(status="offer_accepted", updated_at="2025-03-01T00:00:00Z")],
    )
    assert ok.total("updated") == 1  # on_hold -> in_progress -> offer_extended -> accepted
    bad = load(
        tmp_path, db, processes=[process(status="in_progress", updated_at="2025-04-01T00:00:00Z")]
    )
    assert bad.rejects_by_code == {"invalid_transition": 1}
    assert "from offer_accepted to in_progress" in quarantined(db)[0][4]


def test_new_process_arriving_decided_gets_two_history_rows(tmp_path, db):
    load(
        tmp_path,
        db,
        [candidate()],
        [process(status="candidate_withdrew", updated_at="2025-01-09T00:00:00Z")],
    )
    assert query(
        db, "select from_status, to_status from interview_status_history order by changed_at"
    ) == [(None, "in_progress"), ("in_progress", "candidate_withdrew")]


def test_duplicate_ids_in_one_run(tmp_path, db):
    same_time = load(tmp_path, db, [candidate(), candidate(full_name="Other")])
    assert same_time.rejects_by_code == {"duplicate_id": 2}
    newest_wins = load(
        tmp_path,
        db,
        [
            candidate(id="c3"),
            candidate(id="c3", full_name="New", updated_at="2025-02-01T00:00:00Z"),
        ],
    )
    assert newest_wins.rejected == 0 and newest_wins.total("stale") == 1
    assert query(db, "select full_name from candidates where id = 'c3'") == [("New",)]


def test_inline_stages_load_with_their_process(tmp_path, db):
    inline = process(
        stages=[
            {k: v for k, v in stage().items() if k != "interview_process_id"},
            stage(id=S2, stage_order=2, outcome="pending", completed_date=None),
        ]
    )
    summary = load(tmp_path, db, [candidate()], [inline])
    assert summary.rejected == 0
    assert query(db, "select stage_order from interview_stages order by 1") == [(1,), (2,)]


def test_orphans_are_retried_automatically_by_the_next_run(tmp_path, db):
    first = load(tmp_path, db, [candidate()], stages=[stage(interview_process_id=P1)])
    assert first.rejects_by_code == {"orphan_stage": 1}
    again = load(tmp_path, db, candidates=[candidate(id="c9")])
    assert again.retried == 1 and again.rejected == 0
    assert query(db, "select count(*) from quarantine where resolved_run_id is null") == [(1,)]
    load(tmp_path, db, processes=[process()])
    assert query(db, "select count(*) from interview_stages") == [(1,)]
    assert query(db, "select count(*) from quarantine where resolved_run_id is null") == [(0,)]


def test_a_record_with_a_key_twice_is_resolved_by_its_corrected_copy(tmp_path, db):
    """A record refused for a key given twice (`duplicate_key`) was quarantined without its
    id, so the run that loaded its corrected copy never resolved it: `itrack rejects` listed it
    for ever (found by an exploratory run). Its id is recorded when the record gives it once;
    an `id` given twice names no record."""
    twice = (
        '{"id": "c2", "full_name": "Bo", "created_at": "2025-01-01", "created_at": "2025-01-02"}'
    )
    nested = json.dumps(process()).replace(
        '"role_title"', '"offer_details": {"x": 1, "x": 2}, "role_title"'
    )
    load(
        tmp_path, db, [candidate(), twice, '{"id": "c3", "id": "c4", "full_name": "Cy"}'], [nested]
    )
    unresolved = (
        "select kind, record_id from quarantine where resolved_run_id is null order by 1, 2"
    )
    assert query(db, unresolved) == [("candidates", "c2"), ("candidates", None), ("processes", P1)]
    load(tmp_path, db, [candidate(id="c2", full_name="Bo")], [process()])
    assert query(db, unresolved) == [("candidates", None)]


def test_a_reject_of_a_uuid_spelled_without_dashes_is_resolved_by_its_corrected_copy(tmp_path, db):
    """The contract takes a UUID without dashes or in braces (stored in its canonical form),
    but a reject was resolved only by an accepted id spelled as the record spelled it, case
    aside: a process refused for its status, corrected the next day, stayed in `itrack
    rejects` for ever (found by an exploratory run)."""
    bare = P1.replace("-", "").upper()
    load(tmp_path, db, [candidate()], [process(id=bare, status="bogus")])
    load(tmp_path, db, stages=[stage(id="{" + S1 + "}", stage_order=0)])
    unresolved = "select kind, record_id from quarantine where resolved_run_id is null order by 1"
    assert query(db, unresolved) == [("processes", bare), ("stages", "{" + S1 + "}")]
    load(tmp_path, db, processes=[process(id=bare)], stages=[stage()])
    assert query(db, unresolved) == []


def test_a_reject_of_a_candidate_is_not_resolved_by_another_candidate_of_another_case(tmp_path, db):
    """Candidate ids are text and case counts (CAND-7 and cand-7 are two candidates, and a
    process naming Cand-7 is an orphan), but a reject of CAND-7 was resolved by the run that
    loaded cand-7: it left `itrack rejects` while CAND-7 was never loaded (found by an
    exploratory run). A text id resolves only the rejects of that exact id."""
    load(tmp_path, db, [candidate(id="CAND-7", full_name=" ")])
    load(tmp_path, db, [candidate(id="cand-7")])
    unresolved = "select record_id from quarantine where resolved_run_id is null"
    assert query(db, unresolved) == [("CAND-7",)]
    load(tmp_path, db, [candidate(id="CAND-7")])
    assert query(db, unresolved) == []


def test_orphans_whose_file_is_read_again_count_as_retried(tmp_path, db):
    """An orphan whose file a later run reads again (a cumulative export, --force) is settled
    with that file's lines, not queued as a retry, so it was resolved but not counted retried:
    "orphans from earlier runs: 1 retried, 2 resolved, -1 still waiting" (found by an
    exploratory run). Both kinds of second look now count as retried."""
    first = tmp_path / "a"
    first.mkdir()
    again = write_jsonl(first / "stages.jsonl", [stage()])
    load(tmp_path, db, [candidate()], stages=[stage(id=S2, stage_order=2)])
    day1 = ingest_paths([again], db=db)
    assert day1.rejects_by_code == {"orphan_stage": 1}
    write_jsonl(tmp_path / "processes.jsonl", [process()])
    day2 = ingest_paths([tmp_path / "processes.jsonl", again], db=db, force=True)
    assert (day2.retried, day2.retry_resolved) == (2, 2)
    assert query(db, "select count(*) from interview_stages") == [(2,)]


def test_an_orphan_is_settled_by_its_own_record_not_by_another_at_its_line(tmp_path, db):
    """The nightly job reads the same folder every night (/srv/exports/latest): tonight's line 1
    of stages.jsonl is another record than last night's orphan at line 1. The orphan waits, and
    loads with its process; it was marked resolved by the other record and lost."""
    exports = tmp_path / "latest"
    exports.mkdir()
    write_jsonl(exports / "candidates.jsonl", [candidate()])
    write_jsonl(exports / "processes.jsonl", [process()])
    write_jsonl(exports / "stages.jsonl", [stage(id=S2, interview_process_id=P2)])
    assert ingest_paths([exports], db=db).rejects_by_code == {"orphan_stage": 1}
    write_jsonl(exports / "stages.jsonl", [stage(id=S1)])
    second = ingest_paths([exports], db=db)
    assert (second.retried, second.retry_resolved, second.waiting) == (1, 0, 1)
    assert quarantined(db) == [
        (
            "stages",
            1,
            "orphan_stage",
            "interview_process_id",
            f"interview process {P2} is not known yet; retried on the next run",
        )
    ]
    (exports / "stages.jsonl").unlink()
    write_jsonl(exports / "processes.jsonl", [process(id=P2)])
    third = ingest_paths([exports], db=db)
    assert (third.retried, third.retry_resolved, third.waiting) == (1, 1, 0)
    assert query(db, "select id::varchar from interview_stages order by 1") == [(S1,), (S2,)]
    assert quarantined(db) == []


def test_a_retried_orphan_is_not_counted_as_a_row_of_the_file_read_again(tmp_path, db):
    """Last night's orphan stage loads tonight from the quarantine while tonight's stages.jsonl,
    at the same path, holds one other stage: the file read 1 row and inserted 1 (it said 2,
    in the summary and in ingest_files); the orphan is counted as retried and resolved."""
    exports = tmp_path / "latest"
    exports.mkdir()
    write_jsonl(exports / "candidates.jsonl", [candidate()])
    write_jsonl(exports / "processes.jsonl", [process()])
    write_jsonl(exports / "stages.jsonl", [stage(id=S2, interview_process_id=P2)])
    ingest_paths([exports], db=db)
    write_jsonl(exports / "processes.jsonl", [process(id=P2)])
    write_jsonl(exports / "stages.jsonl", [stage(id=S1)])
    run = ingest_paths([exports], db=db)
    assert [(f.rows_read, f.inserted, f.rejected) for f in run.files if not f.skipped] == [
        (1, 1, 0),
        (1, 1, 0),
    ]
    assert (run.accepted, run.retried, run.retry_resolved) == (2, 1, 1)
    assert query(
        db,
        "select rows_read, inserted from ingest_files where run_id = ? and not skipped"
        " order by kind",
        [run.run_id],
    ) == [(1, 1), (1, 1)]
    assert query(db, "select id::varchar from interview_stages order by 1") == [(S1,), (S2,)]


def test_csv_json_and_parquet_inputs(tmp_path, db):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "candidates.json").write_text(json.dumps([candidate()]))
    pl.DataFrame([process()]).write_parquet(folder / "processes.parquet")
    rows = [
        stage(),
        stage(
            id=S2,
            stage_order=2,
            overall_rating=None,
            outcome="pending",
            completed_date=None,
            feedback_notes='multi\nline, "quoted"',
        ),
        stage(id=S3, stage_order=3, overall_rating="3.5"),
    ]
    lines = [
        "id,interview_process_id,stage_name,stage_order,scheduled_date,completed_date,"
        "outcome,overall_rating,feedback_notes,interviewer_names,created_at"
    ]
    for r in rows:
        cells = [
            r["id"],
            r["interview_process_id"],
            r["stage_name"],
            str(r["stage_order"]),
            r["scheduled_date"],
            r.get("completed_date") or "",
            r["outcome"],
            "" if r["overall_rating"] is None else str(r["overall_rating"]),
            '"' + r.get("feedback_notes", "").replace('"', '""') + '"',
            "Dana;Lee",
            r["created_at"],
        ]
        lines.append(",".join(cells))
    lines.append("too,few,columns")
    (folder / "stages.csv").write_text("\n".join(lines) + "\n")
    summary = ingest_paths([folder], db=db)
    assert summary.accepted == 4
    assert summary.rejects_by_code == {"invalid_rating": 1, "csv_columns": 1}
    assert query(
        db,
        "select stage_order, overall_rating, feedback_notes, interviewer_names "
        "from interview_stages order by 1",
    ) == [(1, 4, None, ["Dana", "Lee"]), (2, None, 'multi\nline, "quoted"', ["Dana", "Lee"])]
    assert sorted(r[1] for r in quarantined(db)) == [5, 6]  # rows on physical lines 5 and 6


def test_empty_file_and_invalid_utf8_are_reported(tmp_path, db):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "candidates.jsonl").write_bytes(
        b"\xef\xbb\xbf" + json.dumps(candidate()).encode() + b"\n\xff\xfe\n"
    )
    (folder / "processes.jsonl").write_text("")
    summary = ingest_paths([folder], db=db)
    assert summary.accepted == 1
    assert summary.rejects_by_code == {"invalid_utf8": 1, "empty_file": 1}


# ---------------------------------------------------------------- exit codes


def test_exit_codes(tmp_path, db):
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate(), candidate(id="c2", full_name="")])
    ok = runner.invoke(app, ["ingest", str(folder), "--db", str(db)])
    assert ok.exit_code == 0, ok.output
    assert "empty_value" in ok.output
    strict = runner.invoke(app, ["ingest", str(folder), "--db", str(db), "--strict", "--force"])
    assert strict.exit_code == 1
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope.jsonl"), "--db", str(db)])
    assert_exit(missing, 2)
    assert "nope.jsonl: no such file or directory" in missing.output
    (tmp_path / "candidates.xml").write_text("<x/>")
    unknown = runner.invoke(app, ["ingest", str(tmp_path / "candidates.xml"), "--db", str(db)])
    assert_exit(unknown, 2)
    assert unknown.output == (
        f"error: {tmp_path / 'candidates.xml'}: unknown format '.xml'; expected .jsonl, "
        ".ndjson, .json, .csv, .parquet or .pq\n"
    )
    # a compressed export: said how to give it (the message named neither .ndjson nor .pq)
    (tmp_path / "candidates.jsonl.gz").write_bytes(b"\x1f\x8b")
    packed = runner.invoke(app, ["ingest", str(tmp_path / "candidates.jsonl.gz"), "--db", str(db)])
    assert_exit(packed, 2)
    assert packed.output == (
        f"error: {tmp_path / 'candidates.jsonl.gz'}: unknown format '.gz'; expected .jsonl, "
        ".ndjson, .json, .csv, .parquet or .pq; a compressed file is not read: decompress it "
        "first\n"
    )
    (tmp_path / "people.jsonl").write_text("{}\n")
    nokind = runner.invoke(app, ["ingest", str(tmp_path / "people.jsonl"), "--db", str(db)])
    assert nokind.exit_code == 2 and "--kind" in nokind.output


def test_busy_store_exits_2_naming_the_pid(tmp_path, db):
    import os

    from ingest.store.duckdb.store import open_store

    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    with open_store(db):
        busy = runner.invoke(app, ["ingest", str(folder), "--db", str(db), "--wait", "0"])
    assert busy.exit_code == 2
    assert f"database is busy (held by PID {os.getpid()})" in busy.output

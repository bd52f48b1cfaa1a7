"""The fast readers give exactly the store the line readers give.

A fast reader lets DuckDB parse a JSONL, CSV or Parquet file straight into one JSON token per
contract field (ingest/readers.py); the line readers land each record's raw text and parse it
again. On every fixture (the bad-input corpus, generated data with planted bad records in every
format, a delta run, and edge files written here), both must leave the same raw tables, status
history, quarantine (code, line, field, message, raw text) and audit; and the fast reader must
really have taken the files it can take (otherwise the comparison proves nothing).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from uuid import UUID

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import readers
from ingest.load import ingest_paths
from ingest.store.duckdb.store import raw_store_path
from itrack.generate import generate, generate_delta
from tests.conftest import query
from tests.factories import P1, P2, S1, S2, S3, candidate, offer, process, stage, write_jsonl

CORPUS = Path(__file__).resolve().parent / "fixtures" / "bad"
CASES = json.loads((CORPUS / "cases.json").read_text())

SNAPSHOT = {
    "candidates": "select * exclude (_run_id, _loaded_at) from candidates order by id",
    "processes": "select * exclude (_run_id, _loaded_at) from interview_processes order by id",
    "stages": "select * exclude (_run_id, _loaded_at) from interview_stages order by id",
    "history": "select * exclude (run_id, recorded_at) from interview_status_history order by all",
    "quarantine": "select * exclude (run_id, quarantined_at, resolved_run_id), "
    "resolved_run_id is null from quarantine order by all",
    "files": "select * exclude (run_id) from ingest_files order by all",
    "runs": "select status, rows_read, accepted, rejected, stale, unchanged from ingest_runs "
    "order by started_at",
}


def snapshot(db: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)  # one connection for all
    try:
        return {name: con.execute(sql).fetchall() for name, sql in SNAPSHOT.items()}
    finally:
        con.close()


def run_both(
    tmp_path: Path, steps: list[tuple[list[Path], str | None]], monkeypatch
) -> tuple[dict, dict, list[set[str]]]:
    """Run the same ingest steps with the fast readers and with the line readers only."""
    results, fast_used = {}, []
    for fast in (True, False):
        monkeypatch.setattr(readers, "FAST_READERS", fast)
        db = tmp_path / f"{'fast' if fast else 'slow'}" / "warehouse.duckdb"
        for paths, kind in steps:
            summary = ingest_paths(paths, db=db, kind=kind)
            if fast:
                fast_used.append({Path(p).name for p in summary.fast_files})
            else:
                assert not summary.fast_files
        results[fast] = snapshot(db)
    return results[True], results[False], fast_used


def assert_same(fast: dict, slow: dict) -> None:
    for name in SNAPSHOT:
        assert fast[name] == slow[name], name


@pytest.fixture(scope="module")
def corpus_base(tmp_path_factory) -> Path:
    """The corpus's clean base ingested once by each reader (fast/, slow/), for every case to
    start from a copy of: the same store the case's own first step would make."""
    root = tmp_path_factory.mktemp("corpus-base")
    with pytest.MonkeyPatch.context() as patch:
        for fast in (True, False):
            patch.setattr(readers, "FAST_READERS", fast)
            db = root / ("fast" if fast else "slow") / "warehouse.duckdb"
            summary = ingest_paths([CORPUS / "base"], db=db)
            taken = {Path(p).name for p in summary.fast_files}
            assert taken == ({"candidates.jsonl", "processes.jsonl"} if fast else set())
    return root


@pytest.mark.parametrize("case", CASES, ids=[Path(c["file"]).stem for c in CASES])
def test_every_corpus_case(tmp_path, monkeypatch, corpus_base, case):
    shutil.copytree(corpus_base, tmp_path, dirs_exist_ok=True)
    fast, slow, _ = run_both(tmp_path, [([CORPUS / case["file"]], case["kind"])], monkeypatch)
    assert_same(fast, slow)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_generated_data_with_planted_bad_records_and_a_delta(tmp_path, monkeypatch, fmt):
    data = tmp_path / "data"
    generate(data, processes=400, seed=11, invalid_share=0.08, fmt=fmt)
    clean = tmp_path / "clean"
    generate(clean, processes=300, seed=5, fmt=fmt)
    steps = [([clean], None), ([data], None)]
    if fmt == "jsonl":
        generate_delta(clean, tmp_path / "delta")
        steps.append(([tmp_path / "delta"], None))
    fast, slow, used = run_both(tmp_path, steps, monkeypatch)
    assert_same(fast, slow)
    assert len(slow["quarantine"]) > 20  # the planted records are there
    suffix = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}[fmt]
    assert used[0] == {f"{k}.{suffix}" for k in ("candidates", "processes", "stages")}


def _offer_cases() -> list[dict]:
    amounts = [0, 150000, 1.5, 2.50, 1e3, 0.00001, 1e20, 10**20, -1, "5", True, 1234.5678]
    cases = [offer(base_salary=a) for a in amounts]
    cases += [offer(bonus=a) for a in (None, 0, 3.25, -2)]
    cases += [offer(currency=c) for c in ("EUR", "usd", "XXX", "EURO", 5)]
    cases += [
        offer(offer_date=d)
        for d in ("2025-02-01", "2025-2-1", "0000-01-01", "2025-02-30", "2025-02-01T00:00:00")
    ]
    cases += [
        offer(start_date="2025-01-01"),
        offer(start_date="2025-03-01", expiry_date="2025-02-15"),
        offer(extra=1),
        {"currency": "USD"},
        "not an object",
        None,
    ]
    return cases


def test_offer_details_checked_in_sql_agree_with_pydantic(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    records = []
    for i, details in enumerate(_offer_cases()):
        record = process(id=f"11111111-1111-4111-8111-{i:012d}", status="offer_extended")
        record["offer_details"] = details
        records.append(record)
    write_jsonl(folder / "processes.jsonl", records)
    fast, slow, used = run_both(tmp_path, [([folder], None)], monkeypatch)
    assert_same(fast, slow)
    assert used == [{"candidates.jsonl", "processes.jsonl"}]
    stored = {r[0] for r in slow["processes"]}
    assert len(stored) + len(slow["quarantine"]) == len(records)
    # pydantic's own spelling, fields in model order: 2.50 -> 2.5, 1e3 -> 1000.0
    spelled = [json.loads(r[8]) for r in slow["processes"] if r[8]]
    assert {"base_salary": 2.5, "currency": "USD", "offer_date": "2025-02-01"} in spelled


def test_edge_files_fall_back_or_agree(tmp_path, monkeypatch):
    """Files a fast reader must refuse (and the line reader takes) and odd but valid cells."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate(), candidate(id="cand-2")])
    # a process file with inline stages and a duplicate key: the line reader's
    inline = process(stages=[stage(), stage(id=S2, stage_order=2)])
    (folder / "processes.jsonl").write_text(
        json.dumps(inline) + "\n" + '{"id": "x", "id": "y"}\n', encoding="utf-8"
    )
    header = "id,interview_process_id,stage_name,stage_order,interviewer_names,created_at,outcome"
    rows = [
        f'{S1},{P1},Phone Screen, 1 ,"Ana; Bo ;",2025-01-06T00:00:00Z,passed',
        f'aaaaaaaa-0000-4000-8000-000000000003,{P1},Onsite,007,"[""Jo""]",2025-01-06,',
        f"aaaaaaaa-0000-4000-8000-000000000004,{P1},Zoë,3,\tAna,2025-01-06,passed",
        f"aaaaaaaa-0000-4000-8000-000000000005,{P1},Tech,4,[broken,2025-01-06,passed",
        f"aaaaaaaa-0000-4000-8000-000000000006,{P1},Tech,5x,,2025-01-06,passed",
    ]
    (folder / "stages.csv").write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    fast, slow, used = run_both(tmp_path, [([folder], None)], monkeypatch)
    assert_same(fast, slow)
    assert used == [{"candidates.jsonl", "stages.csv"}]
    # S1 inline and in the CSV with the same updated_at: both duplicate_id (raw text read back
    # from the CSV); "[broken" and "5x" are refused; the "007", "[""Jo""]", "Ana; Bo ;" and
    # tab cells were typed exactly as the Python reader types them
    assert sorted((q[1], q[5]) for q in slow["quarantine"]) == [
        (1, "duplicate_id"),
        (2, "duplicate_id"),
        (2, "duplicate_key"),  # {"id": "x", "id": "y"}: refused (issue #13), not read as "y"
        (5, "wrong_type"),
        (6, "wrong_type"),
    ]
    assert [(r[3], r[12]) for r in slow["stages"]] == [(2, ["Dana"]), (7, ["Jo"]), (3, ["Ana"])]
    # a CSV with a blank row and a quoted newline: line numbers only the line reader knows
    (folder / "stages.csv").write_text(
        header + "\n" + rows[0] + "\n,,,,,,\n" + rows[1].replace("Onsite", '"On\nsite"') + "\n",
        encoding="utf-8",
    )
    fast, slow, used = run_both(tmp_path / "again", [([folder], None)], monkeypatch)
    assert_same(fast, slow)
    assert "stages.csv" not in used[0]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_line_numbers_of_a_file_checked_in_parallel(tmp_path, fmt):
    """The fast readers check a file in parallel and take each row's line number from its
    position in the file-ordered table: past several of DuckDB's row groups (122,880 rows) the
    numbers must still be the file's. Blank names planted far apart are quarantined at exactly
    their lines (CSV: one more, the header is line 1)."""
    rows, bad = 300_000, [7, 122_881, 150_001, 299_998]
    names = ["Ann Lee"] * rows
    for position in bad:
        names[position - 1] = " "
    ids = [f"cand-{i}" for i in range(1, rows + 1)]
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / f"candidates.{fmt}"
    if fmt == "jsonl":
        path.write_text(
            "".join(
                f'{{"id": "{i}", "full_name": "{n}", "created_at": "2025-01-01T00:00:00Z"}}\n'
                for i, n in zip(ids, names, strict=True)
            ),
            encoding="utf-8",
        )
    elif fmt == "csv":
        path.write_text(
            "id,full_name,created_at\n"
            + "".join(f"{i},{n},2025-01-01T00:00:00Z\n" for i, n in zip(ids, names, strict=True)),
            encoding="utf-8",
        )
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        created = ["2025-01-01T00:00:00Z"] * rows
        pq.write_table(
            pa.table({"id": ids, "full_name": names, "created_at": created}),
            path,
            row_group_size=50_000,
        )
    summary = ingest_paths([folder], db=tmp_path / "w" / "warehouse.duckdb")
    assert set(summary.fast_files) == {str(path)}
    first = 2 if fmt == "csv" else 1
    assert query(
        tmp_path / "w" / "warehouse.duckdb",
        "select line_number, record_id, error_code from quarantine order by line_number",
    ) == [(p + first - 1, f"cand-{p}", "empty_value") for p in bad]
    assert query(tmp_path / "w" / "warehouse.duckdb", "select count(*) from candidates") == [
        (rows - len(bad),)
    ]


def without_nulls(record: dict) -> str:
    """The raw text a Parquet row is quarantined with: its non-null cells, compact JSON."""
    present = {k: v for k, v in record.items() if v is not None}
    return json.dumps(present, ensure_ascii=False, separators=(",", ":"))


def test_null_parquet_cells_are_absent_fields_on_both_paths(tmp_path, monkeypatch):
    """A columnar file cannot leave a field out, so a null Parquet cell is an absent field (as an
    empty CSV cell is): an optional field is None, `interviewer_names` takes its default [] and
    a required field is `missing_field` at its row. A JSONL null stays a value the contract
    judges (`interviewer_names: null` is refused there)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    processes = [process(recruiter_name=None), process(id=P2, company_name=None)]
    pq.write_table(pa.Table.from_pylist(processes), folder / "processes.parquet")
    stages = [
        stage(interviewer_names=None, feedback_notes=None),
        stage(id=S2, stage_order=2, feedback_notes="strong"),
        stage(id=S3, stage_order=3, stage_name=None, feedback_notes=None),
    ]
    pq.write_table(pa.Table.from_pylist(stages), folder / "stages.parquet")
    assert pq.read_table(folder / "stages.parquet").column("interviewer_names").null_count == 1
    fast, slow, used = run_both(tmp_path, [([folder], None)], monkeypatch)
    assert_same(fast, slow)
    assert used == [{"candidates.jsonl", "processes.parquet", "stages.parquet"}]
    db = tmp_path / "slow" / "warehouse.duckdb"
    assert query(db, "select id::varchar, recruiter_name from interview_processes") == [(P1, None)]
    assert query(
        db,
        "select id::varchar, interviewer_names, feedback_notes from interview_stages order by id",
    ) == [(S1, [], None), (S2, ["Dana"], "strong")]
    assert query(
        db,
        "select file_path, line_number, record_id, error_code, field, error_message, raw_payload"
        " from quarantine order by kind",
    ) == [
        (
            str(folder / "processes.parquet"),
            2,
            P2,
            "missing_field",
            "company_name",
            "field 'company_name': Field required",
            without_nulls(processes[1]),
        ),
        (
            str(folder / "stages.parquet"),
            3,
            S3,
            "missing_field",
            "stage_name",
            "field 'stage_name': Field required",
            without_nulls(stages[2]),
        ),
    ]
    # the same null in JSON Lines is a value, and `interviewer_names` may not be null
    write_jsonl(folder / "stages.jsonl", [stage(id=S3, interviewer_names=None)])
    summary = ingest_paths([folder / "stages.jsonl"], db=db)
    assert summary.rejects_by_code == {"wrong_type": 1}


def test_typed_cells_checked_from_their_values_agree_with_the_line_reader(tmp_path, monkeypatch):
    """Text and integer cells of CSV and Parquet files are checked from their values (the JSON
    type and text their token would have), not from a JSON token built and parsed back: quotes,
    backslashes, tabs, control characters, non-ASCII text, blank names, negative and
    out-of-range integers of every width, and columns of the wrong type must be judged exactly
    as the line reader judges them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ingest.contract import MODELS
    from ingest.inputs import InputFile
    from ingest.readers import _fast_csv, _fast_parquet

    day1, day2, day3 = tmp_path / "day1", tmp_path / "day2", tmp_path / "day3"
    for day in (day1, day2, day3):
        day.mkdir()
    (day1 / "candidates.csv").write_text(
        "id,full_name,feeder_source,created_at\n"
        'cand-1,"Ann ""the Quote"" \\ Lée",ex-amazon,2025-01-01T00:00:00Z\n'
        "cand-2,\t,referral,2025-01-01T00:00:00Z\n"
        "cand-3,Bo\x01b,referral,2025-01-01T00:00:00Z\n"
        "cand-4, Cy  Lo ,referral,2025-01-01T00:00:00Z\n",
        encoding="utf-8",
    )
    write_jsonl(day1 / "processes.jsonl", [process()])

    def sid(n: int) -> str:
        return f"aaaaaaaa-0000-4000-8000-{n:012d}"

    # stage rows, one problem each but the first and the last two:
    # (id, stage_name, outcome, technical_rating, culture_fit_rating, interviewer_names)
    rows = [
        (S1, 'Phone "Screen" \\ café 🎉', "passed", 4, 3, ["Dana", 'Eve "Q" \\']),
        (S2, "   ", "passed", None, 3, ["Dana"]),
        (S3, "Tech", "passed", -1, 3, None),
        (sid(4), "Tech", "passed", 3, 2**64 - 1, []),
        (sid(5), "Tech", "maybe", 3, 3, ["Dana"]),
        (sid(6), "On\x01site", "passed", 3, 3, ["Dana"]),
        ("not-a-uuid", "Tech", "passed", 3, 3, ["Dana"]),
        (sid(10), "Tech", "passed", 3, 3, [None]),
        (sid(11), "Tech", "passed", 3, 3, ["  "]),
        (sid(12), "Tech", "passed", 3, 3, ["Bo\x01"]),
        (sid(13), "Tech", "passed", 3, 3, None),  # absent: no interviewers
        (sid(14), "Tech", "passed", 3, 3, []),
    ]
    ids, names, outcomes, technical, culture, interviewers = (
        list(c) for c in zip(*rows, strict=True)
    )
    n = len(rows)
    pq.write_table(
        pa.table(
            {
                "id": ids,
                "interview_process_id": [P1] * n,
                "stage_name": names,
                "stage_order": pa.array(range(1, n + 1), pa.int8()),
                "outcome": outcomes,
                "overall_rating": pa.array([5] * n, pa.uint8()),
                "technical_rating": pa.array(technical, pa.int64()),
                "culture_fit_rating": pa.array(culture, pa.uint64()),
                "communication_rating": pa.array([5] * n, pa.int32()),
                "feedback_notes": ['a "quoted" \\ note\twith tab', None, ""] + [None] * (n - 3),
                "interviewer_names": pa.array(interviewers, pa.list_(pa.string())),
                "created_at": ["2025-01-06T00:00:00Z"] * n,
            }
        ),
        day1 / "stages.parquet",
    )
    # then columns of the wrong type: a text stage_order, integer notes
    for day, order, notes in ((day2, pa.array(["8"]), None), (day3, pa.array([9]), 7)):
        pq.write_table(
            pa.table(
                {
                    "id": [f"aaaaaaaa-0000-4000-8000-00000000000{order[0]}"],
                    "interview_process_id": [P1],
                    "stage_name": ["Onsite"],
                    "stage_order": order,
                    "feedback_notes": pa.array([notes], pa.int64()),
                    "created_at": ["2025-01-06T00:00:00Z"],
                }
            ),
            day / "stages.parquet",
        )
    pq.write_table(
        pa.table({"id": ["cand-9"], "full_name": [5], "created_at": ["2025-01-01T00:00:00Z"]}),
        day3 / "candidates.parquet",
    )
    # integer cells of a CSV: padded, leading zeros, negative, not a number, beyond 64 bits
    day4 = tmp_path / "day4"
    day4.mkdir()
    (day4 / "stages.csv").write_text(
        "id,interview_process_id,stage_name,stage_order,overall_rating,created_at\n"
        + "".join(
            f"{sid(n)},{P1},Panel,{order},{rating},2025-01-06T00:00:00Z\n"
            for n, order, rating in [
                (20, " 15 ", "004"),
                (21, "16", "-1"),
                (22, "17", "5x"),
                (23, "18", "99999999999999999999"),
                (24, "19", "18446744073709551615"),
                (25, "-9223372036854775809", "3"),
                (26, "1001", "3"),
                (27, "20", ""),
            ]
        ),
        encoding="utf-8",
    )
    steps = [([day1], None), ([day2], None), ([day3], None), ([day4], None)]
    fast, slow, used = run_both(tmp_path, steps, monkeypatch)
    assert_same(fast, slow)
    assert used == [
        {"candidates.csv", "processes.jsonl", "stages.parquet"},
        {"stages.parquet"},
        {"candidates.parquet", "stages.parquet"},
        {"stages.csv"},
    ]
    assert sorted((q[0].split("/")[-2], q[1], q[3], q[5]) for q in slow["quarantine"]) == [
        ("day1", 2, S2, "empty_value"),
        ("day1", 3, S3, "invalid_rating"),  # -1
        ("day1", 3, "cand-2", "empty_value"),  # a tab is blank (CSV line 3: the header is 1)
        ("day1", 4, sid(4), "invalid_rating"),  # 2**64 - 1
        ("day1", 4, "cand-3", "control_character"),
        ("day1", 5, sid(5), "invalid_enum"),
        ("day1", 6, sid(6), "control_character"),
        ("day1", 7, "not-a-uuid", "invalid_uuid"),
        ("day1", 8, sid(10), "wrong_type"),  # a null interviewer
        ("day1", 9, sid(11), "empty_value"),
        ("day1", 10, sid(12), "control_character"),
        ("day2", 1, "aaaaaaaa-0000-4000-8000-000000000008", "wrong_type"),
        ("day3", 1, "aaaaaaaa-0000-4000-8000-000000000009", "wrong_type"),
        ("day3", 1, "cand-9", "wrong_type"),  # an integer name
        ("day4", 3, sid(21), "invalid_rating"),  # CSV: the header is line 1
        ("day4", 4, sid(22), "invalid_rating"),  # any rating problem, "5x" too
        ("day4", 5, sid(23), "invalid_rating"),
        ("day4", 6, sid(24), "invalid_rating"),
        ("day4", 7, sid(25), "invalid_value"),
        ("day4", 8, sid(26), "invalid_value"),
    ]
    assert [(r[2], r[8], r[11], r[12]) for r in slow["stages"]] == [
        ('Phone "Screen" \\ café 🎉', 4, 'a "quoted" \\ note\twith tab', ["Dana", 'Eve "Q" \\']),
        ("Tech", 3, None, []),  # an empty text cell is an absent field
        ("Tech", 3, None, []),
        ("Panel", None, None, []),
        ("Panel", None, None, []),
    ]
    assert [(r[3], r[7]) for r in slow["stages"] if r[2] == "Panel"] == [(15, 4), (20, None)]
    assert [r[1] for r in slow["candidates"]] == ['Ann "the Quote" \\ Lée', " Cy  Lo "]
    # the typed values really were used: every text and integer field of these files
    con = duckdb.connect()
    day1_stages = InputFile(day1 / "stages.parquet", "stages", "parquet", "")
    found = _fast_parquet(con, day1_stages, list(MODELS["stages"].model_fields))
    assert found.numbered  # each row's line is its position, which DuckDB gives
    # every column of the file: text, integers of every width, a list of strings
    assert found.given == set(pq.read_schema(day1 / "stages.parquet").names)
    day1_candidates = InputFile(day1 / "candidates.csv", "candidates", "csv", "")
    found = _fast_csv(con, day1_candidates, list(MODELS["candidates"].model_fields))
    assert found is not None and not found.numbered
    assert found.given == {"id", "full_name", "feeder_source", "created_at"}
    day4_stages = InputFile(day4 / "stages.csv", "stages", "csv", "")
    found = _fast_csv(con, day4_stages, list(MODELS["stages"].model_fields))
    assert found is not None
    assert found.given == {
        "id",
        "interview_process_id",
        "stage_name",
        "stage_order",
        "overall_rating",
        "created_at",
    }


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_null_among_the_interviewers_is_refused_as_pydantic_refuses_it(
    tmp_path, monkeypatch, fmt
):
    """The SQL check of a list read a JSON null element as SQL null, whose check is null, and
    let the list through (`[null, "Dana"]` was stored as is): every reader now refuses it."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    write_jsonl(folder / "processes.jsonl", [process()])
    names = [None, "Dana"]
    if fmt == "jsonl":
        write_jsonl(folder / "stages.jsonl", [stage(interviewer_names=names)])
    elif fmt == "csv":
        (folder / "stages.csv").write_text(
            "id,interview_process_id,stage_name,stage_order,interviewer_names,created_at\n"
            f'{S1},{P1},Tech,1,"[null, ""Dana""]",2025-01-06T00:00:00Z\n',
            encoding="utf-8",
        )
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(
            pa.Table.from_pylist([stage(interviewer_names=names)]), folder / "stages.parquet"
        )
    fast, slow, used = run_both(tmp_path, [([folder], None)], monkeypatch)
    assert_same(fast, slow)
    assert f"stages.{fmt}" in used[0]
    assert slow["stages"] == []
    assert [(q[1], q[3], q[5], q[6], q[7]) for q in slow["quarantine"]] == [
        (
            2 if fmt == "csv" else 1,
            S1,
            "wrong_type",
            "interviewer_names.0",
            "field 'interviewer_names.0': Input should be a valid string (got null)",
        )
    ]


def test_a_parquet_column_named_file_row_number_keeps_the_lines_right(tmp_path, monkeypatch):
    """The Parquet fast reader numbers rows by DuckDB's `file_row_number`, unless the file has
    a column of that name (an unknown field: quarantined at its exact row on both paths)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    rows = [candidate(id=f"cand-{i}", file_row_number=None) for i in range(1, 4)]
    rows[1]["file_row_number"] = 99  # a null cell is an absent field: only this row has it
    pq.write_table(pa.Table.from_pylist(rows), folder / "candidates.parquet")
    fast, slow, used = run_both(tmp_path, [([folder], None)], monkeypatch)
    assert_same(fast, slow)
    assert used == [{"candidates.parquet"}]
    assert [(q[1], q[3], q[5], q[6]) for q in slow["quarantine"]] == [
        (2, "cand-2", "unknown_field", "file_row_number")
    ]
    assert [r[0] for r in slow["candidates"]] == ["cand-1", "cand-3"]


def test_a_csv_row_of_whitespace_cells_is_skipped_as_the_line_reader_skips_it(
    tmp_path, monkeypatch
):
    """A row whose cells are all blank (spaces, a tab, a no-break space) is no record: the
    Python reader skips it, so the fast reader hands the file over instead of checking it."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "candidates.csv").write_text(
        "id,full_name,created_at\n"
        "cand-1,Ann,2025-01-01T00:00:00Z\n"
        " ,\t,\u00a0\n"
        "cand-2,Bo,2025-01-01T00:00:00Z\n",
        encoding="utf-8",
    )
    fast, slow, used = run_both(tmp_path, [([folder], None)], monkeypatch)
    assert_same(fast, slow)
    assert used == [set()]  # the line reader took it
    assert [r[0] for r in slow["candidates"]] == ["cand-1", "cand-2"]
    assert slow["quarantine"] == []


@given(
    lengths=st.lists(st.integers(min_value=0, max_value=15), max_size=12),
    newline_at_end=st.booleans(),
    limit=st.integers(min_value=1, max_value=12),
    chunk=st.integers(min_value=1, max_value=8),
)
@settings(max_examples=400, deadline=None)
def test_has_long_line_finds_exactly_the_lines_over_the_limit(
    tmp_path_factory, lengths, newline_at_end, limit, chunk
):
    """The probe `land_fast` asks before DuckDB reads a JSONL or CSV file (DuckDB would hold an
    oversized line whole) against splitting the bytes at every newline."""
    data = b"\n".join(b"a\r\xe9"[n % 3 : n % 3 + 1] * n for n in lengths)
    data += b"\n" if newline_at_end and data else b""
    path = tmp_path_factory.mktemp("lines") / "f.jsonl"
    path.write_bytes(data)
    expected = any(len(line) > limit for line in data.split(b"\n"))
    assert readers.has_long_line(path, limit, chunk) is expected  # reads `chunk` bytes at a time


def _parents(folder: Path) -> Path:
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    write_jsonl(folder / "processes.jsonl", [process()])
    return folder


def _quarantined(store: dict) -> list[tuple]:
    """(file name, line, record id, code, field) of each quarantined record."""
    rows = [(Path(q[0]).name, q[1], q[3], q[5], q[6]) for q in store["quarantine"]]
    return sorted(rows, key=lambda row: [str(x) for x in row])


@pytest.mark.parametrize("first", ["x_stages.jsonl", "y_stages.jsonl"])
def test_a_stage_order_taken_twice_on_the_same_line_of_two_files_keeps_the_first_files(
    tmp_path, monkeypatch, first
):
    """Two files of one run, each one stage of one process with order 1 on line 1: the file
    named first keeps it, the other is refused. Their equal line numbers refused neither, and
    both were stored."""
    parents = _parents(tmp_path / "parents")
    write_jsonl(tmp_path / "x_stages.jsonl", [stage(id=S1)])
    write_jsonl(tmp_path / "y_stages.jsonl", [stage(id=S2)])
    second = "y_stages.jsonl" if first == "x_stages.jsonl" else "x_stages.jsonl"
    steps = [([parents], None), ([tmp_path / first, tmp_path / second], None)]
    fast, slow, used = run_both(tmp_path, steps, monkeypatch)
    assert_same(fast, slow)
    assert used[1] == {"x_stages.jsonl", "y_stages.jsonl"}
    kept = S1 if first == "x_stages.jsonl" else S2
    assert [str(s[0]) for s in slow["stages"]] == [kept]
    refused = S2 if kept == S1 else S1
    assert _quarantined(slow) == [(second, 1, refused, "duplicate_stage_order", "stage_order")]


def test_inline_stages_that_are_not_objects_are_quarantined_and_a_repeated_order_refused(
    tmp_path, monkeypatch
):
    """A process record's `stages` list: elements that are not objects were dropped without a
    trace, and two order-1 stages (one line) were both stored."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    inline = [5, "phone screen", None, stage(id=S1), stage(id=S2, stage_name="Tech")]
    for element in inline:
        if isinstance(element, dict):
            del element["interview_process_id"]
    write_jsonl(folder / "processes.jsonl", [process(stages=inline)])
    fast, slow, _ = run_both(tmp_path, [([folder], None)], monkeypatch)
    assert_same(fast, slow)
    assert [(str(s[0]), str(s[1])) for s in slow["stages"]] == [(S1, P1)]
    name = "processes.jsonl"
    assert _quarantined(slow) == [
        (name, 1, None, "not_an_object", None),
        (name, 1, None, "not_an_object", None),
        (name, 1, None, "not_an_object", None),
        (name, 1, S2, "duplicate_stage_order", "stage_order"),
    ]
    assert sorted(q[4] for q in slow["quarantine"] if q[5] == "not_an_object") == [
        '"phone screen"',
        "5",
        "null",
    ]


def test_an_older_copy_of_an_id_whose_newest_copies_conflict_is_counted_stale(
    tmp_path, monkeypatch
):
    """Three copies of one id: the two newest differ (both refused as duplicate_id), the
    oldest was counted nowhere (3 read, 2 refused). It is stale: superseded in the file."""
    path = write_jsonl(
        tmp_path / "candidates.jsonl",
        [
            candidate(full_name="A", updated_at="2025-03-02T00:00:00Z"),
            candidate(full_name="B", updated_at="2025-03-03T00:00:00Z"),
            candidate(full_name="C", updated_at="2025-03-03T00:00:00Z"),
        ],
    )
    fast, slow, _ = run_both(tmp_path, [([path], None)], monkeypatch)
    assert_same(fast, slow)
    assert slow["candidates"] == []
    assert [(q[1], q[5]) for q in slow["quarantine"]] == [(2, "duplicate_id"), (3, "duplicate_id")]
    files = query(
        tmp_path / "slow" / "warehouse.duckdb",
        "select rows_read, inserted, updated, unchanged, stale, rejected from ingest_files",
    )
    assert files == [(3, 0, 0, 0, 1, 2)]


def test_a_file_named_twice_is_read_once(tmp_path, monkeypatch):
    """The same file given twice (as itself, and inside its folder under another spelling) is
    read once: twice, its rows were counted twice and the readers disagreed."""
    folder = tmp_path / "in"
    folder.mkdir()
    path = write_jsonl(
        folder / "candidates.jsonl", [candidate(), candidate(id="cand-2", full_name="")]
    )
    again = tmp_path / "in" / ".." / "in" / "candidates.jsonl"
    fast, slow, _ = run_both(tmp_path, [([path, folder, again], None)], monkeypatch)
    assert_same(fast, slow)
    assert [s[0] for s in slow["candidates"]] == ["cand-1"]
    assert _quarantined(slow) == [("candidates.jsonl", 2, "cand-2", "empty_value", "full_name")]
    assert slow["runs"] == [("completed", 2, 1, 1, 0, 0)]


@pytest.mark.parametrize("unit", ["us", "ms", "ns"])
def test_parquet_timestamps_with_a_time_zone_load_as_their_utc_instant(tmp_path, monkeypatch, unit):
    """Spark and pandas write UTC-adjusted timestamps (timestamp with a time zone): to_json
    spelled them `2025-01-06 10:30:00+00`, an offset ISO 8601 does not have, so every row was
    refused (invalid_date). Each is now its instant in UTC, on both readers; a refused row's
    raw text spells it in ISO 8601. In nanoseconds too, pandas' own unit, which DuckDB reads as
    another type (TIMESTAMPTZ_NS): every row of such a file was still refused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = _parents(tmp_path / "in")
    berlin = dt.timezone(dt.timedelta(hours=1))
    rows = [
        {"id": S1, "stage_order": 1, "created_at": dt.datetime(2025, 1, 6, 11, 30, tzinfo=berlin)},
        {"id": S2, "stage_order": 0, "created_at": dt.datetime(2025, 1, 6, 12, 0, tzinfo=dt.UTC)},
    ]
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("stage_order", pa.int64()),
            ("created_at", pa.timestamp(unit, "UTC")),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    table = table.append_column("interview_process_id", pa.array([P1, P1]))
    table = table.append_column("stage_name", pa.array(["Phone", "Tech"]))
    pq.write_table(table, folder / "stages.parquet")
    fast, slow, used = run_both(tmp_path, [([folder], None)], monkeypatch)
    assert_same(fast, slow)
    assert "stages.parquet" in used[0]
    assert [(str(s[0]), s[-2], s[-1]) for s in slow["stages"]] == [
        (S1, dt.datetime(2025, 1, 6, 10, 30), dt.datetime(2025, 1, 6, 10, 30))
    ]
    assert [(q[1], q[5], q[6]) for q in slow["quarantine"]] == [(2, "invalid_value", "stage_order")]
    assert json.loads(slow["quarantine"][0][4])["created_at"] == "2025-01-06T12:00:00.000000Z"


def test_parquet_text_in_a_binary_column_loads_as_its_text(tmp_path, monkeypatch):
    """Older writers store text as binary without the string annotation: read as bytes, to_json
    spelled `é` as the literal text `\\xC3\\xA9` and that was stored. Now the text, on both
    readers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = _parents(tmp_path / "in")
    names = [b"Phone", "Entretien t\u00e9l\u00e9phonique".encode()]
    table = pa.table(
        {
            "id": [S1, S2],
            "interview_process_id": [P1, P1],
            "stage_name": pa.array(names, pa.binary()),
            "stage_order": [1, 2],
            "created_at": ["2025-01-06T00:00:00Z"] * 2,
        }
    )
    pq.write_table(table, folder / "stages.parquet")
    fast, slow, used = run_both(tmp_path, [([folder], None)], monkeypatch)
    assert_same(fast, slow)
    assert "stages.parquet" in used[0]
    assert [s[2] for s in slow["stages"]] == ["Phone", "Entretien t\u00e9l\u00e9phonique"]
    assert slow["quarantine"] == []


def test_copies_of_a_rejected_record_are_rejected_with_it_not_counted_accepted(
    tmp_path, monkeypatch
):
    """The same record twice in a run (two exports holding it, a line repeated) is loaded
    once and its copy counted unchanged; but when the one loaded was then refused (an orphan
    here), the copy was still counted unchanged: "1 accepted" for a record stored nowhere
    (found by an exploratory run). A copy now shares the record's fate: rejected with its
    reason at its own line, and, an orphan, retried and resolved with it."""
    day1, day2, again = tmp_path / "day1", tmp_path / "day2", tmp_path / "again"
    for folder in (day1, day2, again):
        folder.mkdir()
    write_jsonl(day1 / "processes.jsonl", [process()])
    write_jsonl(day1 / "stages.jsonl", [stage(), stage()])
    write_jsonl(again / "processes.jsonl", [process()])
    write_jsonl(day2 / "candidates.jsonl", [candidate()])
    fast, slow, used = run_both(tmp_path, [([day1, again], None), ([day2], None)], monkeypatch)
    assert_same(fast, slow)
    assert used[0] == {"processes.jsonl", "stages.jsonl"}
    orphans = [(q[0].split("/")[-2], q[1], q[5]) for q in slow["quarantine"]]
    assert sorted(orphans) == [
        ("again", 1, "orphan_process"),
        ("day1", 1, "orphan_process"),
        ("day1", 1, "orphan_stage"),
        ("day1", 2, "orphan_stage"),
    ]
    assert all(q[-1] is False for q in slow["quarantine"])  # all resolved by day 2
    # (status, rows_read, accepted, rejected, stale, unchanged)
    assert slow["runs"] == [("completed", 4, 0, 4, 0, 0), ("completed", 1, 1, 0, 0, 0)]
    assert [r[0] for r in slow["processes"]] == [UUID(P1)]
    assert [r[0] for r in slow["stages"]] == [UUID(S1)]

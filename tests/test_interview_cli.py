"""`itrack interview ...` through Typer's CliRunner on a real store: the full life of a process."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.store.duckdb.store import open_store
from itrack.cli.interview import app
from itrack.cli.main import app as main_app
from tests.conftest import assert_exit

T0 = dt.datetime(2025, 1, 1)
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with open_store(path) as con:
        con.execute(
            "insert into candidates values ('c1', 'Ann Lee', 'linkedin', null, null, ?, ?, "
            "'seed', ?)",
            [T0, T0, T0],
        )
    return path


def run(db: Path, command: str, *args: str, code: int = 0) -> str:
    """`itrack interview COMMAND ARGS... --db DB`: COMMAND is split on spaces (plain tokens),
    ARGS are taken as they are."""
    result = runner.invoke(app, [*command.split(), *args, "--db", str(db)])
    assert_exit(result, code)
    return result.stdout if code == 0 else result.stderr


def run_json(db: Path, command: str, *args: str) -> object:
    return json.loads(run(db, command, *args, "--json"))


def test_full_life_of_an_interview(db, tmp_path):
    process = run_json(
        db,
        "create --new-company --candidate c1 --company Acme --role",
        "Data Engineer",
        "--recruiter",
        "Rita",
    )
    pid = process["id"]
    assert (process["status"], process["feeder_source"], process["recruiter_name"]) == (
        "in_progress",
        None,
        "Rita",
    )

    stage_ids = []
    for order, name in enumerate(["Phone Screen", "Technical Interview", "Onsite"], start=1):
        stage = run_json(db, f"add-stage {pid} --name", name, "--order", str(order))
        assert (stage["stage_name"], stage["stage_order"], stage["outcome"]) == (
            name,
            order,
            "pending",
        )
        stage_ids.append(stage["id"])

    for stage_id, rating in zip(stage_ids, (3, 4, 5), strict=True):
        stage = run_json(
            db,
            f"outcome {stage_id} passed --overall",
            str(rating),
            "--technical",
            "4",
            "--culture-fit",
            "5",
            "--communication",
            "2",
            "--feedback",
            "solid",
            "--interviewer",
            "Bo",
            "--interviewer",
            "Zoë",
        )["stage"]
        assert stage["outcome"] == "passed" and stage["completed_date"] is not None
        assert stage["overall_rating"] == rating
        assert stage["interviewer_names"] == ["Bo", "Zoë"]

    offer_file = tmp_path / "offer.json"
    offer_file.write_text(json.dumps({"base_salary": 140000, "currency": "GBP", "bonus": 10000}))
    extended = run_json(db, f"complete {pid} offer_extended --offer", str(offer_file))
    assert extended["status"] == "offer_extended"
    assert extended["offer_details"]["base_salary"] == 140000.0
    accepted = run_json(db, f"complete {pid} offer_accepted")
    assert accepted["status"] == "offer_accepted"

    shown = run_json(db, f"show {pid}")
    assert shown["status"] == "offer_accepted"
    assert shown["offer_details"] == {
        "base_salary": 140000.0,
        "currency": "GBP",
        "bonus": 10000.0,
        "equity": None,
        "sign_on_bonus": None,
        "offer_date": None,
        "start_date": None,
        "expiry_date": None,
    }
    assert [s["stage_name"] for s in shown["stages"]] == [
        "Phone Screen",
        "Technical Interview",
        "Onsite",
    ]
    assert [s["culture_fit_rating"] for s in shown["stages"]] == [5, 5, 5]

    with open_store(db) as con:
        moves = con.execute(
            "select from_status, to_status, source from interview_status_history "
            "order by changed_at"
        ).fetchall()
        run_ids = con.execute(
            "select count(distinct _run_id), bool_and(_run_id like 'api-%') from interview_stages"
        ).fetchone()
    assert moves == [
        (None, "in_progress", "service"),
        ("in_progress", "offer_extended", "service"),
        ("offer_extended", "offer_accepted", "service"),
    ]
    assert run_ids == (3, True)  # each stage last written by its own outcome call

    # closed now: refusals exit 1 with one line
    err = run(db, "outcome", stage_ids[0], "failed", code=1)
    assert (
        err.strip()
        == f"error: process {pid} is closed (offer_accepted): outcomes cannot be recorded"
    )
    assert len(err.strip().splitlines()) == 1


def test_human_output_tables(db):
    pid = run_json(
        db, "create --new-company --new-feeder --candidate c1 --company Acme --role SWE"
    )["id"]
    stage_id = run_json(db, f"add-stage {pid} --name", "Technical Interview", "--order", "1")["id"]
    out = run(db, f"outcome {stage_id} failed --overall 2")
    assert "Interview stage:" in out and "  outcome: failed" in out
    assert out.endswith(
        f"process {pid}: rejected_by_company\n"
        f"feedback deferred to the next build: {db}: no warehouse yet; run `itrack build` first\n"
    )
    shown = run(db, f"show {pid}")
    assert "Failed Technical Interview" in shown and pid in shown and stage_id in shown
    listed = run(db, "list --company Acme")
    assert "1 interview processes" in listed and pid in listed
    assert "0 interview processes" in run(db, "list --status on_hold")
    assert "rejected_by_company" in run(db, "history c1")


def test_list_and_history_json(db):
    first = run_json(db, "create --new-company --new-feeder --candidate c1 --company Acme --role A")
    second = run_json(
        db, "create --new-company --new-feeder --candidate c1 --company Globex --role B --feeder gh"
    )
    run(db, f"complete {second['id']} on_hold")
    assert [p["id"] for p in run_json(db, "list")] == [first["id"], second["id"]]
    assert [p["id"] for p in run_json(db, "list --status on_hold")] == [second["id"]]
    assert [p["id"] for p in run_json(db, "list --company Acme --candidate c1")] == [first["id"]]
    assert run_json(db, "list --candidate nobody") == []
    hist = run_json(db, "history c1")
    assert [(p["company_name"], p["stages"]) for p in hist] == [("Acme", []), ("Globex", [])]


def test_offer_as_inline_json_from_in_progress(db):
    pid = run_json(
        db, "create --new-company --new-feeder --candidate c1 --company Acme --role SWE"
    )["id"]
    offer = '{"base_salary": 100000, "currency": "EUR", "offer_date": "2025-02-01"}'
    done = run_json(db, f"complete {pid} offer_accepted --offer", offer)
    assert done["status"] == "offer_accepted"
    assert done["offer_details"]["offer_date"] == "2025-02-01"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            [
                "create",
                "--new-company",
                "--new-feeder",
                "--candidate",
                "ghost",
                "--company",
                "A",
                "--role",
                "B",
            ],
            1,
            "error: candidate 'ghost' not found: load the candidate first",
        ),
        (
            ["show", "not-a-uuid"],
            1,
            "error: interview process 'not-a-uuid' not found (not a valid id)",
        ),
        (
            ["show", "00000000-0000-0000-0000-000000000000"],
            1,
            "error: interview process '00000000-0000-0000-0000-000000000000' not found",
        ),
        (["history", "ghost"], 1, "error: candidate 'ghost' not found"),
        (["list", "--status", "open"], 1, "error: unknown status 'open'; expected one of:"),
    ],
)
def test_refusals_exit_1_with_one_line(db, args, code, message):
    err = run(db, *args, code=code)
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1


def test_process_refusals(db, tmp_path):
    pid = run_json(
        db, "create --new-company --new-feeder --candidate c1 --company Acme --role SWE"
    )["id"]
    err = run(db, f"add-stage {pid} --name Screen --order 2", code=1)
    assert err.strip().endswith("must have stage_order 1")
    stage_id = run_json(db, f"add-stage {pid} --name Screen --order 1")["id"]
    err = run(db, f"outcome {stage_id} passed --overall 9", code=1)
    assert (
        err.strip()
        == "error: stage refused: overall_rating: Input should be less than or equal to 5"
    )
    err = run(db, f"complete {pid} offer_declined", code=1)
    assert "allowed next: candidate_withdrew, offer_extended, on_hold, rejected_by_company" in err
    err = run(db, f"complete {pid} offer_extended --offer", '{"base_salary": -1}', code=1)
    assert err.startswith("error: offer details refused: base_salary: Input should be greater")
    missing = tmp_path / "missing.json"
    err = run(db, f"complete {pid} offer_extended --offer", str(missing), code=2)
    assert err.strip() == f"error: --offer: not a JSON object and no such file: {missing}"


@pytest.mark.parametrize("suffix", ["/", "/."])
def test_an_offer_file_spelled_as_a_folder_is_refused(db, tmp_path, suffix):
    """`--offer offer.json/` read offer.json and recorded its offer (Path drops a trailing '/'
    and '.'), where the shell and every other file option take a folder. Refused, exit 2,
    nothing recorded."""
    pid = run_json(
        db, "create --new-company --new-feeder --candidate c1 --company Acme --role SWE"
    )["id"]
    offer = tmp_path / "offer.json"
    offer.write_text('{"base_salary": 100, "currency": "GBP"}')
    err = run(db, f"complete {pid} offer_extended --offer", f"{offer}{suffix}", code=2)
    why = "ends with '/', so it names a folder" if suffix == "/" else "names a folder ('.')"
    assert err == f"error: --offer: {offer}{suffix} {why}, not a file\n"
    assert run_json(db, f"show {pid}")["status"] == "in_progress"


@pytest.mark.parametrize("inline", [True, False], ids=["text", "file"])
def test_offer_with_a_key_twice_is_refused_not_the_last_value_kept(db, tmp_path, inline):
    """`{"base_salary": 100, ..., "base_salary": 200}` recorded an offer of 200: json.loads keeps
    the last value, where ingest quarantines such a record (`duplicate_key`) and feeders.json
    refuses it. Now refused, nothing recorded."""
    pid = run_json(
        db, "create --new-company --new-feeder --candidate c1 --company Acme --role SWE"
    )["id"]
    offer = '{"base_salary": 100, "currency": "GBP", "base_salary": 200}'
    if not inline:
        (tmp_path / "offer.json").write_text(offer)
        offer = str(tmp_path / "offer.json")
    err = run(db, f"complete {pid} offer_extended --offer", offer, code=1)
    assert err == (
        'error: offer details are not valid JSON: duplicate key "base_salary" '
        "(which value is meant?)\n"
    )
    shown = run_json(db, f"show {pid}")
    assert (shown["status"], shown["offer_details"]) == ("in_progress", None)


def test_an_offer_file_with_a_byte_order_mark_is_read(db, tmp_path):
    """A file saved by Notepad or PowerShell starts with a UTF-8 byte order mark: it was
    "offer details are not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig)", exit 1,
    where ingest, feeders.json and the placements file all read such files."""
    pid = run_json(
        db, "create --new-company --new-feeder --candidate c1 --company Acme --role SWE"
    )["id"]
    offer_file = tmp_path / "offer.json"
    offer_file.write_bytes(b'\xef\xbb\xbf{"base_salary": 90000, "currency": "EUR"}\r\n')
    extended = run_json(db, f"complete {pid} offer_extended --offer", str(offer_file))
    assert (extended["status"], extended["offer_details"]["base_salary"]) == (
        "offer_extended",
        90000,
    )


@pytest.mark.parametrize("offer", ["a" * 300, "a/" * 3000], ids=["name", "path"])
def test_offer_too_long_to_name_a_file_is_one_line_naming_offer_cut(db, offer):
    """Text no file can be named (a name over 255 bytes, a path over 4096) that is not a JSON
    object: it was "error: cannot write: [Errno 36] File name too long: '<the whole text>'"
    (found by an exploratory run). Now the --offer refusal, exit 2, the text cut."""
    pid = run_json(
        db, "create --new-company --new-feeder --candidate c1 --company Acme --role SWE"
    )["id"]
    err = run(db, f"complete {pid} offer_extended --offer", offer, code=2)
    assert err == f"error: --offer: not a JSON object and no such file: {offer[:57]}...\n"


def test_unwritable_store_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = runner.invoke(app, ["list", "--db", str(blocker / "warehouse.duckdb")])
    assert_exit(result, 2)
    assert result.stderr.startswith("error: ")


def test_an_offer_amount_that_is_not_a_number_names_the_amount(db):
    """`itrack interview complete --offer` with an amount that is not a number named fields no
    offer has: "base_salary.int: ...; base_salary.float: ..." (the union members' tags).
    Through the main app, as a user runs it: the field once, exit 1, one line."""
    pid = run_json(
        db, "create --new-company --new-feeder --candidate c1 --company Acme --role SWE"
    )["id"]
    offer = '{"base_salary": "150k", "currency": "USD"}'
    result = runner.invoke(
        main_app,
        ["interview", "complete", pid, "offer_extended", "--offer", offer, "--db", str(db)],
    )
    assert_exit(result, 1)
    assert result.stderr == (
        "error: offer details refused: base_salary: Input should be a valid number\n"
    )

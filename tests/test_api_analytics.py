"""HTTP API: analytics from the published warehouse, health and the feedback trigger.

The warehouse is built by dbt from the hand-computed raw store of tests/lib_data.py; expected
numbers are worked out by hand from its table (see that module's docstring).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from feedback.atomic import locked
from feedback.publish import build_dir
from ingest.store.duckdb.store import raw_store_path
from itrack.api import ApiConfig, create_app
from itrack.cli.main import app as cli_app
from itrack.dbt_runner import run_dbt
from itrack.pipeline import build_lock
from tests.api_server import serve
from tests.api_support import ORG, SECRET, assert_error, client, lead, recruiter, token
from tests.conftest import assert_exit
from tests.dbt_helpers import write_raw_store
from tests.lib_data import DATA

ITRACK = str(Path(sys.executable).with_name("itrack"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("api_analytics")
    raw = write_raw_store(root / "warehouse.raw.duckdb", DATA)
    db = root / "warehouse.duckdb"
    outcome = run_dbt(["build"], db, raw)
    assert outcome.ok, outcome.failures
    return db


@pytest.fixture
def db(built: Path, tmp_path: Path) -> Path:
    """A private copy of the built warehouse and its raw store (the feedback test writes)."""
    for path in (built, raw_store_path(built)):
        shutil.copy2(path, tmp_path / path.name)
    return tmp_path / built.name


@pytest.fixture
def api(db: Path):
    with client(db) as c:
        yield c


def wilson(placed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = placed / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n)), min(
        1.0, (centre + spread) / (1 + z * z / n)
    )


def test_conversion_rates_per_feeder_with_interval_and_smoothed_rate(api, db):
    r = api.get("/interviews/analytics/conversion-rates", headers=lead())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["build"]["warehouse"] == str(db)
    by_feeder = {f["feeder_source"]: f for f in body["feeders"]}
    assert sorted(by_feeder) == ["agency", "linkedin", "referral"]
    # referral: P1 (accepted), P2 (rejected), P5 (in progress); prior = 1 placement / 7 started
    referral = by_feeder["referral"]
    low, high = wilson(1, 3)
    assert referral == {
        "feeder_source": "referral",
        "candidates_sourced": 3,
        "placements": 1,
        "conversion_rate": pytest.approx(1 / 3),
        "decided_processes": 2,
        "decided_conversion_rate": 0.5,
        "wilson_lower": pytest.approx(low),
        "wilson_upper": pytest.approx(high),
        "smoothed_conversion_rate": pytest.approx((1 + 10 * (1 / 7)) / (3 + 10)),
    }
    one = api.get("/interviews/analytics/conversion-rates?feeder=LinkedIn", headers=lead())
    assert [f["feeder_source"] for f in one.json()["feeders"]] == ["linkedin"]
    assert one.json()["feeders"][0]["candidates_sourced"] == 3  # P3, P4, P6
    assert_error(
        api.get("/interviews/analytics/conversion-rates?feeder=linkdin", headers=lead()),
        404,
        contains="closest: linkedin",
    )


def test_stage_success_rates_per_stage_type(api):
    r = api.get("/interviews/analytics/stage-success-rates", headers=lead())
    assert r.status_code == 200, r.text
    types = {t["name"]: t for t in r.json()["stage_types"]}
    # phone screen: P1 4, P2 3, P3 4, P4 4 passed; P6 failed; P5 pending
    phone = types["phone_screen"]
    assert (phone["stages"], phone["passed"], phone["failed"], phone["pending"]) == (6, 4, 1, 1)
    assert phone["pass_rate"] == pytest.approx(0.8)
    technical = types["technical"]  # Technical Interview P1 pass, P2 fail; Coding P4 pass
    assert (technical["stages"], technical["passed"], technical["failed"]) == (3, 2, 1)


def test_company_stats_and_unknown_company(api):
    r = api.get("/interviews/analytics/company-stats/acme", headers=lead())
    assert r.status_code == 200, r.text
    acme = r.json()["company"]
    assert (acme["company_name"], acme["processes"], acme["avg_time_to_decision"]) == (
        "Acme",
        3,
        "14 days",
    )
    assert acme["offer_rate"] == pytest.approx(1 / 3)
    assert_error(
        api.get("/interviews/analytics/company-stats/Acne", headers=lead()),
        404,
        contains="no such company 'Acne'; closest: Acme",
    )


def test_company_stats_reach_a_company_name_with_a_slash(api):
    """A name holding "/" reaches the endpoint (its own 404 naming the company), not the
    router's 404 "Not Found" (found by an exploratory run)."""
    for url in ("AC%2FDC", "AC/DC"):
        assert_error(
            api.get(f"/interviews/analytics/company-stats/{url}", headers=lead()),
            404,
            contains="no such company 'AC/DC'",
        )
    assert_error(
        api.get("/interviews/analytics/company-stats/", headers=lead()), 422, "path.company"
    )


def test_funnel_with_filters(api):
    overall = api.get("/interviews/analytics/funnel", headers=lead()).json()
    assert (overall["funnel"]["total_started"], overall["funnel"]["offers_accepted"]) == (7, 1)
    referral = api.get("/interviews/analytics/funnel?feeder=referral", headers=lead()).json()
    assert referral["funnel"]["total_started"] == 3
    both = api.get(
        "/interviews/analytics/funnel?feeder=referral&company=Beta", headers=lead()
    ).json()
    assert (both["funnel"]["feeder_source"], both["funnel"]["company"]) == ("referral", "Beta")
    assert both["funnel"]["total_started"] == 1  # P5
    assert overall["build"] == referral["build"] == both["build"]


def test_a_query_parameter_the_endpoint_does_not_take_is_422_not_ignored(api):
    """`?cohort=2025-03` (the CLI's and Python's filter, not this endpoint's) answered the
    overall funnel as if it were the cohort's, and a typo (`?feedr=`) everyone's."""
    for url, name, takes in [
        ("/interviews/analytics/funnel?cohort=2025-03", "cohort", "feeder, company"),
        ("/interviews/analytics/funnel?feedr=referral", "feedr", "feeder, company"),
        ("/interviews/analytics/stage-success-rates?stage=onsite", "stage", "none"),
    ]:
        err = assert_error(api.get(url, headers=lead()), 422, f"query.{name}")
        assert err["message"] == (
            f"invalid input: query.{name}: not a parameter of this endpoint (it takes: {takes})"
        )


def test_analytics_need_auth_and_a_warehouse(api, db):
    assert_error(api.get("/interviews/analytics/funnel"), 401)
    assert_error(
        api.get("/interviews/analytics/funnel", headers=token(role="anon", app_role=None)), 403
    )
    assert api.get("/interviews/analytics/funnel", headers=recruiter()).status_code == 200
    db.unlink()
    assert_error(
        api.get("/interviews/analytics/funnel", headers=lead()),
        503,
        contains="no warehouse published yet",
    )


def test_each_build_is_named_by_its_build_id(api, db):
    first = api.get("/interviews/analytics/funnel", headers=lead()).json()["build"]
    republished = db.with_name("new.duckdb")
    shutil.copy2(db, republished)
    republished.replace(db)  # what `itrack build` does: a new file, one rename
    second = api.get("/interviews/analytics/funnel", headers=lead()).json()["build"]
    assert first["build_id"] != second["build_id"]


def test_health_reports_store_and_warehouse(api, db):
    r = api.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["store_kind"]) == ("ok", "duckdb")
    assert body["store"] == {"ok": True, "detail": str(raw_store_path(db))}
    assert body["warehouse"] == {"ok": True, "detail": str(db)}
    assert body["build"]["warehouse"] == str(db)
    db.unlink()
    body = api.get("/health").json()
    assert body["warehouse"]["ok"] is False and "no warehouse" in body["warehouse"]["detail"]
    assert body["build"] is None


def test_health_on_postgres_is_the_store_check_bounded_by_the_server_wait(db, pg_fresh):
    """`GET /health` on PostgreSQL said only "postgresql" (no word of an unmigrated database)
    while PostgresInterviewStore.health, which says it, waited a fixed 5 s: one check now,
    waiting for a pooled connection as long as any request (`wait_seconds`)."""
    config = {"store": "postgres", "pg_dsn": pg_fresh, "pg_pool_size": 1, "wait_seconds": 0.5}
    with client(db, **config) as api:
        body = api.get("/health").json()
        assert (body["status"], body["store"]) == (
            "ok",
            {"ok": True, "detail": "PostgreSQL reachable"},
        )
        with api.app.state.backend.store.pool.connection():  # the pool's only connection
            r = api.get("/health")
        assert r.status_code == 503
        assert r.json()["store"] == {
            "ok": False,
            "detail": "PostgreSQL unavailable: couldn't get a connection after 0.50 sec",
        }


def test_feedback_run_writes_feeders_json(api, db):
    feeders = db.parent / "feeders.json"
    assert not feeders.exists()
    r = api.post("/feedback/run", headers=lead())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["feeders_path"] == str(feeders)
    assert body["feeders_written"] is True
    assert body["updated_feeders"] == ["agency", "linkedin", "referral"]
    written = json.loads(feeders.read_text())
    assert written["feeders"]["referral"]["metrics"]["placements"] == 1
    # the interview endpoints still work afterwards (the store was handed back)
    assert api.get("/interviews", headers=lead()).status_code == 200
    assert_error(api.post("/feedback/run", headers=recruiter()), 403, contains="only leads")


def test_a_body_sent_to_feedback_run_is_422_not_ignored(api, db):
    """POST /feedback/run reads no body: `{"feeder": "referral"}` was ignored and the step ran
    for every feeder, 200 (found by the API helper's exploratory run), where a query parameter
    it does not take is 422. Now 422 naming the body, nothing run; an empty body still runs."""
    for body in (b'{"feeder": "referral"}', b"{}", b"feeder=referral"):
        r = api.post("/feedback/run", content=body, headers=lead())
        err = assert_error(r, 422, "body")
        assert err["message"] == "invalid input: body: this endpoint takes no body (send none)"
    assert not (db.parent / "feeders.json").exists()
    r = api.post("/feedback/run", content=b"", headers=lead())
    assert (r.status_code, r.json()["feeders_written"]) == (200, True)


def test_feedback_run_is_409_while_a_build_runs(api, db):
    with build_lock(db):  # what `itrack build` holds from start to publish
        assert_error(api.post("/feedback/run", headers=lead()), 409, contains="a build is running")
    assert not (db.parent / "feeders.json").exists()


def test_feedback_runs_at_once_queue_for_each_other_not_409(db, monkeypatch):
    """Two leads asking for the feedback step together: the second was 409 "a build is
    running" (the runs share the build lock) though no build ran. The first run is held inside
    until the second has its answer (or a bound, once the second queues behind it)."""
    import feedback.service

    real = feedback.service.run_feedback
    inside, second_answered, calls = threading.Event(), threading.Event(), []

    def held_run(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            inside.set()
            second_answered.wait(2)
        return real(**kwargs)

    monkeypatch.setattr(feedback.service, "run_feedback", held_run)
    app = create_app(ApiConfig(db=db, jwt_secret=SECRET, organization_id=ORG, wait_seconds=10))
    with serve(app) as base:
        first: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: first.append(
                httpx.post(f"{base}/feedback/run", headers=lead(), timeout=60)
            )
        )
        thread.start()
        assert inside.wait(30)
        second = httpx.post(f"{base}/feedback/run", headers=lead(), timeout=60)
        second_answered.set()
        thread.join()
    assert (first[0].status_code, second.status_code) == (200, 200), second.text
    assert (first[0].json()["feeders_written"], second.json()["feeders_written"]) == (True, False)


@contextmanager
def feedback_run_elsewhere(db: Path) -> Iterator[subprocess.Popen]:
    """`itrack feedback` in a process of its own, held inside its run for the block: the test
    holds feeders.json's lock, which the run takes after its feedback and build locks (it
    holds the build lock, naming its PID, once the block starts). It ends well after."""
    hold = build_dir(db) / f"{db.stem}.build.lock"
    with locked(db.parent / "feeders.json"):
        command = [ITRACK, "feedback", "--db", str(db), "--wait", "120"]
        cli = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            while not (hold.exists() and hold.read_text().strip() == str(cli.pid)):
                assert cli.poll() is None, cli.communicate()
                time.sleep(0.05)
            yield cli
        except BaseException:
            cli.kill()
            raise
    _, err = cli.communicate(timeout=120)
    assert (cli.returncode, err) == (0, "")


def test_a_feedback_run_of_another_process_is_waited_for_not_409(db):
    """A second server worker's or the CLI's feedback run running: POST /feedback/run answered
    409 "a build is running" (each server queued only its own runs; another process's took the
    build lock, as a build does). It waits for that run now, then runs: one after the other.
    The POST is given until that run ends, or a bound once it queues behind it."""
    app = create_app(ApiConfig(db=db, jwt_secret=SECRET, organization_id=ORG, wait_seconds=120))
    answer: list[httpx.Response] = []
    with serve(app) as base:
        post = threading.Thread(
            target=lambda: answer.append(
                httpx.post(f"{base}/feedback/run", headers=lead(), timeout=180)
            )
        )
        with feedback_run_elsewhere(db):
            post.start()
            post.join(3)  # answered at once only when refused
        post.join()
    assert answer[0].status_code == 200, answer[0].text
    assert answer[0].json()["feeders_written"] is False  # the other run wrote these metrics


def test_a_feedback_run_still_running_past_the_wait_is_503(db):
    app = create_app(ApiConfig(db=db, jwt_secret=SECRET, organization_id=ORG, wait_seconds=1))
    with serve(app) as base, feedback_run_elsewhere(db):
        r = httpx.post(f"{base}/feedback/run", headers=lead(), timeout=60)
    err = assert_error(r, 503)
    assert err["message"] == "another feedback run is still running after 1 s; retry later"
    assert r.headers["retry-after"] == "2"


def test_itrack_feedback_waits_for_another_run_then_says_which(db):
    """`itrack feedback --wait 1` beside another process's feedback run said "build is busy"
    though no build ran. It names the other feedback run now, with what to do."""
    with feedback_run_elsewhere(db) as other:
        result = CliRunner().invoke(cli_app, ["feedback", "--db", str(db), "--wait", "1"])
    assert_exit(result, 2)
    assert result.stderr == (
        f"error: another feedback run on {db} is still running (PID {other.pid}) after 1 s; "
        "retry later or pass --wait SECONDS\n"
    )

"""The HTML report aggregates in SQL: its charts carry binned counts, never one value per row,
so the report costs the same at any warehouse size."""

from __future__ import annotations

import duckdb

from feedback.html_report import MAX_BINS, decision_bins, nice_step, time_to_decision_chart


def _warehouse(days_and_status: list[tuple[int | None, str]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create table fct_interview_processes (days_to_decision bigint, status varchar)")
    if days_and_status:
        con.executemany("insert into fct_interview_processes values (?, ?)", days_and_status)
    return con


def test_nice_steps_by_hand():
    assert nice_step(0, 29) == 1
    assert nice_step(0, 30) == 2
    assert nice_step(3, 59) == 2
    assert nice_step(0, 140) == 5
    assert nice_step(0, 150) == 10
    assert nice_step(0, 1000) == 50


def test_bins_are_counted_in_sql():
    rows = [(d, "offer_accepted") for d in (0, 1, 1, 2, 45)] + [(3, "rejected_by_company")]
    rows += [(None, "in_progress")] * 5
    con = _warehouse(rows)
    # 0..45 days: width 2 gives 23 bins (<= 30), width 1 would give 46
    assert decision_bins(con) == [
        {"bin_start": 0, "bin_end": 2, "status": "offer_accepted", "processes": 3},
        {"bin_start": 2, "bin_end": 4, "status": "offer_accepted", "processes": 1},
        {"bin_start": 2, "bin_end": 4, "status": "rejected_by_company", "processes": 1},
        {"bin_start": 44, "bin_end": 46, "status": "offer_accepted", "processes": 1},
    ]


def test_the_chart_embeds_no_row_level_data():
    statuses = ["offer_accepted", "offer_declined", "rejected_by_company", "candidate_withdrew"]
    con = _warehouse([])
    # 50,000 processes: day i % 400, status i % 4 (made in SQL: executemany takes ~0.5 ms a row)
    con.execute(
        "insert into fct_interview_processes select i % 400, (?)[i % 4 + 1] from range(50000) t(i)",
        [statuses],
    )
    spec = time_to_decision_chart(con)
    values = spec["data"]["values"]
    assert len(values) <= MAX_BINS * len(statuses)
    assert sum(v["processes"] for v in values) == 50_000
    assert {v["bin_end"] - v["bin_start"] for v in values} == {20}  # 0..399 days in 20 bins

"""A small raw store, hand-computed, for the Python API tests (analytics and FeedbackService).

Seven processes, clean on purpose (no retakes, no no-shows, whole days at 10:00) so every
expected value follows from the documented definitions alone:

| n | candidate | company | feeder   | status              | stages                                          | decided          |
|---|-----------|---------|----------|---------------------|-------------------------------------------------|------------------|
| 1 | c1        | Acme    | referral | offer_accepted      | Phone Screen P4, Technical Interview P5, Onsite P4 | 01-15 (14 days)  |
| 2 | c2        | Acme    | referral | rejected_by_company | phone screen P3, Technical Interview F2         | 01-12 (10 days)  |
| 3 | c3        | Acme    | linkedin | candidate_withdrew  | Phone Screen P4                                  | 01-21 (18 days)  |
| 4 | c4        | Beta    | linkedin | offer_declined      | Phone Screen P4, Coding P4, Onsite P3            | 01-25 (20 days)  |
| 5 | c1        | Beta    | referral | in_progress         | Phone Screen pending, Take-home Project pending  |                  |
| 6 | c5        | Beta    | linkedin | rejected_by_company | Phone Screen F2                                  | 01-09 (3 days)   |
| 7 | c6        | Gamma   | agency   | in_progress         | (none)                                           |                  |

(P = passed, F = failed, the digit is the overall rating.)
"""  # noqa: E501

from __future__ import annotations

from tests.dbt_helpers import Process, RawData, Stage

OFFER = {"base_salary": 150000, "currency": "USD"}


def day(d: str) -> str:
    return f"2025-{d} 10:00"


DATA = RawData(
    candidates={
        "c1": "referral",
        "c2": "referral",
        "c3": "linkedin",
        "c4": "linkedin",
        "c5": "linkedin",
        "c6": "agency",
    },
    processes=[
        Process(
            1,
            "c1",
            "Acme",
            "referral",
            "offer_accepted",
            day("01-01"),
            day("01-15"),
            stages=[
                Stage("Phone Screen", "passed", 4, "Clear communication."),
                Stage(
                    "Technical Interview",
                    "passed",
                    5,
                    "Strong coding, clear design.",
                    scheduled=day("01-05"),
                    completed=day("01-07"),
                ),
                Stage("Onsite", "passed", 4, "Great system design."),
            ],
            history=[
                ("in_progress", day("01-01")),
                ("offer_extended", day("01-10")),
                ("offer_accepted", day("01-15")),
            ],
            offer=OFFER,
        ),
        Process(
            2,
            "c2",
            "Acme",
            "referral",
            "rejected_by_company",
            day("01-02"),
            day("01-12"),
            stages=[
                Stage("phone screen", "passed", 3),
                Stage(
                    "Technical Interview",
                    "failed",
                    2,
                    "Weak coding; weak testing.",
                    scheduled=day("01-08"),
                    completed=day("01-09"),
                ),
            ],
            history=[("in_progress", day("01-02")), ("rejected_by_company", day("01-12"))],
            final_outcome="Failed technical interview",
        ),
        Process(
            3,
            "c3",
            "Acme",
            "linkedin",
            "candidate_withdrew",
            day("01-03"),
            day("01-21"),
            stages=[Stage("Phone Screen", "passed", 4)],
            history=[("in_progress", day("01-03")), ("candidate_withdrew", day("01-21"))],
        ),
        Process(
            4,
            "c4",
            "Beta",
            "linkedin",
            "offer_declined",
            day("01-05"),
            day("01-25"),
            stages=[
                Stage("Phone Screen", "passed", 4),
                Stage("Coding", "passed", 4, "Strong coding."),
                Stage("Onsite", "passed", 3),
            ],
            history=[
                ("in_progress", day("01-05")),
                ("offer_extended", day("01-20")),
                ("offer_declined", day("01-25")),
            ],
            offer=OFFER,
        ),
        Process(
            5,
            "c1",
            "Beta",
            "referral",
            "in_progress",
            day("02-01"),
            day("02-01"),
            stages=[Stage("Phone Screen", "pending"), Stage("Take-home Project", "pending")],
            history=[("in_progress", day("02-01"))],
        ),
        Process(
            6,
            "c5",
            "Beta",
            "linkedin",
            "rejected_by_company",
            day("01-06"),
            day("01-09"),
            stages=[Stage("Phone Screen", "failed", 2, "Poor communication.")],
            history=[("in_progress", day("01-06")), ("rejected_by_company", day("01-09"))],
            final_outcome="Failed phone screen",
        ),
        Process(7, "c6", "Gamma", "agency", "in_progress", day("02-02"), day("02-02")),
    ],
)

"""A plain-Python reference of every mart metric, written from the documented definitions
(README "dbt project" and the model YAML), never from the SQL.

Input: the raw store's rows (what ingest and the service API leave). Output: the marts'
rows as dicts, keyed like the marts. tests/test_dbt_reference.py requires dbt's marts and the
feedback step's feeders.json to equal these exactly.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import statistics
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.contract import OFFER_STATUSES, STAGE_TYPES, TERMINAL_STATUSES, UNMAPPED_STAGE_TYPE

# Unicode whitespace: what str.split() splits on (the contract refuses the control characters
# among them in names, so this agrees with the SQL class [\s\x{85}\p{Z}])
_SPACES = re.compile(r"[\s\u0085]+")
_SPACES_AND_SEPARATORS = re.compile(r"[\s\u0085_-]+")


def clean_text(value: str) -> str:
    """Runs of Unicode whitespace -> one space, trimmed; case kept (the display spelling)."""
    return _SPACES.sub(" ", value).strip(" ")


def normalize_name(value: str, fold_separators: bool = False) -> str:
    """The grouping key: clean_text, lower case, Unicode NFC; for stage names and rejection
    reasons `_` and `-` are spaces too."""
    if fold_separators:
        key = _SPACES_AND_SEPARATORS.sub(" ", value).strip(" ").lower()
    else:
        key = clean_text(value).lower()
    return unicodedata.normalize("NFC", key)


# ---- the definitions, in plain Python -------------------------------------------------------

TYPES = [t.value for t in STAGE_TYPES]
TERMINAL = {s.value for s in TERMINAL_STATUSES}
OFFER = {s.value for s in OFFER_STATUSES}
# rejection-reason phrases end at `;`, a line break, or a `.` followed by whitespace or the end
# (whitespace as the SQL engine's \s: ASCII only)
_PHRASE_END = re.compile(r"[;\n\r]|\.(?:[ \t\n\f\r]+|\Z)")
_WORD = re.compile(r"[^\W\d_]{3,}")  # 3+ letters


@dataclass
class Params:
    """The project's vars and seeds the definitions depend on."""

    stage_map: dict[str, str]
    stop_words: set[str]
    as_of: dt.datetime
    prior_strength: float = 10
    preferred_min: int = 5
    top_terms: int = 5

    @classmethod
    def from_project(cls, project_dir: Path, as_of: dt.datetime, **kw: Any) -> Params:
        seeds = project_dir / "seeds"
        with open(seeds / "stage_types.csv", encoding="utf-8") as handle:
            stage_map = {
                r["stage_name_normalized"]: r["stage_type"] for r in csv.DictReader(handle)
            }
        with open(seeds / "feedback_stop_words.csv", encoding="utf-8") as handle:
            stop = {r["word"] for r in csv.DictReader(handle)}
        return cls(stage_map, stop, as_of, **kw)


DAY_US = 86_400_000_000


def microseconds(start: dt.datetime, end: dt.datetime) -> int:
    return (end - start) // dt.timedelta(microseconds=1)


def days(start: dt.datetime, end: dt.datetime) -> float:
    """Elapsed days as a fraction: the exact microseconds over a day's, rounded once."""
    return microseconds(start, end) / DAY_US


def _mean_days(spans: list[int | None]) -> float | None:
    """The exact mean of elapsed microseconds, in days, rounded once (int / int is exact
    before its one rounding in Python)."""
    spans = [s for s in spans if s is not None]
    return sum(spans) / (len(spans) * DAY_US) if spans else None


def _median_days(spans: list[int | None]) -> float | None:
    """The exact median of elapsed microseconds (the mean of the middle two of an even count),
    in days, rounded once."""
    spans = sorted(s for s in spans if s is not None)
    if not spans:
        return None
    middle = len(spans) // 2
    if len(spans) % 2:
        return spans[middle] / DAY_US
    return (spans[middle - 1] + spans[middle]) / (2 * DAY_US)


def _stddev(values: list[int]) -> float | None:
    """Sample standard deviation: the square root of the exact sample variance rounded once."""
    n = len(values)
    if n < 2:
        return None
    return math.sqrt((n * sum(v * v for v in values) - sum(values) ** 2) / (n * (n - 1)))


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _display(spellings: list[str]) -> str:
    """The most frequent spelling, ties to the smallest."""
    counts = Counter(spellings)
    return min(counts, key=lambda s: (-counts[s], s))


def phrases(text: str) -> set[tuple[str, str]]:
    """The (key, spelling) of each rejection-reason phrase: keyed as stage names are."""
    found = {
        (normalize_name(x, fold_separators=True), clean_text(x)) for x in _PHRASE_END.split(text)
    }
    return {(key, spelling) for key, spelling in found if key}


@dataclass
class Reference:
    """Every mart, computed from the raw rows (dicts keyed like the raw tables)."""

    candidates: list[dict[str, Any]]
    processes: list[dict[str, Any]]
    stages: list[dict[str, Any]]
    history: list[dict[str, Any]]
    params: Params
    p: dict[str, dict[str, Any]] = field(default_factory=dict)  # process id -> derived
    s: list[dict[str, Any]] = field(default_factory=list)  # stages, derived

    def __post_init__(self) -> None:
        self._stages()
        self._processes()

    # -- stages --------------------------------------------------------------------------
    def _stages(self) -> None:
        for row in self.stages:
            key = normalize_name(row["stage_name"], fold_separators=True)
            sched, done = row["scheduled_date"], row["completed_date"]
            span = microseconds(sched, done) if sched and done else None
            elapsed = span / DAY_US if span is not None else None
            self.s.append(
                {
                    **row,
                    "clean": clean_text(row["stage_name"]),
                    "key": key,
                    "type": self.params.stage_map.get(key, UNMAPPED_STAGE_TYPE),
                    "unmapped": key not in self.params.stage_map,
                    "decided": row["outcome"] in ("passed", "failed"),
                    "completed": row["outcome"] in ("passed", "failed")
                    or (row["outcome"] == "pending" and done is not None),
                    "elapsed": elapsed,
                    "span": span,
                    "whole": math.floor(elapsed) if elapsed is not None else None,
                }
            )

    # -- processes -----------------------------------------------------------------------
    def sequenced(self, pid: str) -> list[dict[str, Any]]:
        rows = [h for h in self.history if str(h["interview_process_id"]) == pid]
        return sorted(
            rows,
            key=lambda h: (
                h["changed_at"],
                h["recorded_at"],
                h["from_status"] is not None,
                h["to_status"] in TERMINAL,
                h["to_status"] in OFFER,
                h["to_status"],
                h["from_status"] or "",
                h["run_id"],
            ),
        )

    def _processes(self) -> None:
        cand = {c["id"]: c for c in self.candidates}
        stages_of: dict[str, list[dict]] = defaultdict(list)
        for st in self.s:
            stages_of[str(st["interview_process_id"])].append(st)
        for row in self.processes:
            pid = str(row["id"])
            c = cand.get(row["candidate_id"], {})
            own, theirs = row["feeder_source"], c.get("feeder_source")
            if own:
                feeder, fkey = clean_text(own), normalize_name(own)
            elif theirs:
                feeder, fkey = clean_text(theirs), normalize_name(theirs)
            else:
                feeder, fkey = "unattributed", "unattributed"
            status = row["status"]
            hist = self.sequenced(pid)
            terminal_rows = [h for h in hist if h["to_status"] in TERMINAL]
            placed_rows = [h for h in hist if h["to_status"] == "offer_accepted"]
            decided = (
                (terminal_rows[-1]["changed_at"] if terminal_rows else row["updated_at"])
                if status in TERMINAL
                else None
            )
            placed = (
                (placed_rows[-1]["changed_at"] if placed_rows else row["updated_at"])
                if status == "offer_accepted"
                else None
            )
            started = row["created_at"]
            reached = (
                status in OFFER
                or row["offer_details"] is not None
                or any(h["to_status"] in OFFER for h in hist)
            )
            st = stages_of[pid]
            per_type: dict[str, dict[str, bool]] = {}
            for t in {x["type"] for x in st}:
                outcomes = [x["outcome"] for x in st if x["type"] == t]
                per_type[t] = {
                    "passed": "passed" in outcomes,
                    "failed": "failed" in outcomes and "passed" not in outcomes,
                }
            passed_n = sum(x["outcome"] == "passed" for x in st)
            pending_n = sum(x["outcome"] == "pending" for x in st)
            unpassed = any(v["failed"] for v in per_type.values())
            canonical = [t for t in TYPES if t in per_type]
            d = {
                "id": pid,
                "candidate_id": row["candidate_id"],
                "company_spelling": clean_text(row["company_name"]),
                "company_key": normalize_name(row["company_name"]),
                "feeder_spelling": feeder,
                "feeder_key": fkey,
                "status": status,
                "final_outcome": row["final_outcome"],
                "started_at": started,
                "decided_at": decided,
                "placed_at": placed,
                "is_terminal": status in TERMINAL,
                "is_placement": status == "offer_accepted",
                "is_offer_declined": status == "offer_declined",
                "is_offer_pending": status == "offer_extended",
                "is_in_flight": status not in TERMINAL and status not in OFFER,
                "reached_offer": reached,
                "stages_count": len(st),
                "completed_stages_count": sum(x["completed"] for x in st),
                "cleared_interviewing": reached
                or (passed_n > 0 and pending_n == 0 and not unpassed),
                "is_offer_withdrawn": reached and status == "candidate_withdrew",
                "is_offer_rescinded": reached and status == "rejected_by_company",
                "furthest_stage_reached": canonical[-1]
                if canonical
                else (UNMAPPED_STAGE_TYPE if st else "none"),
                "cohort_month": started.date().replace(day=1),
                "is_decided_before_start": bool(decided and decided < started),
            }
            # elapsed spans, null when the dates contradict each other
            for name, end in (("decision", decided), ("hire", placed)):
                span = microseconds(started, end) if end and end >= started else None
                d[f"us_to_{name}"] = span
                d[f"elapsed_days_to_{name}"] = None if span is None else span / DAY_US
            span = d["us_to_decision"]
            d["days_to_decision"] = None if span is None else span // DAY_US
            for t in TYPES:
                d[f"{t}_entered"] = t in per_type
                d[f"{t}_passed"] = per_type.get(t, {}).get("passed", False)
                d[f"{t}_failed"] = per_type.get(t, {}).get("failed", False)
            self.p[pid] = d
        company = self._displays("company")
        feeder = self._displays("feeder")
        for d in self.p.values():
            d["company_name"] = company[d["company_key"]]
            d["feeder_source"] = feeder[d["feeder_key"]]

    def _displays(self, kind: str) -> dict[str, str]:
        spellings: dict[str, list[str]] = defaultdict(list)
        for d in self.p.values():
            spellings[d[f"{kind}_key"]].append(d[f"{kind}_spelling"])
        return {k: _display(v) for k, v in spellings.items()}

    # -- fct_process_status_history ------------------------------------------------------
    def status_history(self) -> dict[tuple[str, int], dict[str, Any]]:
        out = {}
        for pid in self.p:
            rows = self.sequenced(pid)
            for n, h in enumerate(rows, start=1):
                until = rows[n]["changed_at"] if n < len(rows) else None
                terminal = h["to_status"] in TERMINAL
                measured = until if until is not None else (None if terminal else self.params.as_of)
                ok = measured is not None and measured >= h["changed_at"]
                elapsed = days(h["changed_at"], measured) if ok else None
                out[(pid, n)] = {
                    "status": h["to_status"],
                    "previous_status": h["from_status"],
                    "valid_from": h["changed_at"],
                    "valid_until": until,
                    "is_current": until is None,
                    "is_terminal_status": terminal,
                    "days_in_status": math.floor(elapsed) if elapsed is not None else None,
                    "elapsed_days_in_status": elapsed,
                    "is_out_of_order": measured is not None and measured < h["changed_at"],
                }
        return out

    # -- the funnel ----------------------------------------------------------------------
    def funnel(self) -> dict[tuple[str, str], dict[str, Any]]:
        groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for d in self.p.values():
            for key in (
                ("overall", "all"),
                ("feeder_source", d["feeder_source"]),
                ("company_name", d["company_name"]),
                ("feeder_company", f"{d['feeder_source']} @ {d['company_name']}"),
                ("cohort_month", d["cohort_month"].strftime("%Y-%m")),
            ):
                groups[key].append(d)
        return {key: self._funnel_row(members) for key, members in groups.items()}

    @staticmethod
    def _funnel_row(m: list[dict]) -> dict[str, Any]:
        def n(flag: str) -> int:
            return sum(bool(d[flag]) for d in m)

        row: dict[str, Any] = {"total_started": len(m)}
        for t in TYPES:
            passed, failed = n(f"{t}_passed"), n(f"{t}_failed")
            row |= {
                f"{t}_entered": n(f"{t}_entered"),
                f"{t}_passed": passed,
                f"{t}_failed": failed,
                f"{t}_pass_rate": _ratio(passed, passed + failed),
            }
        accepted, declined, withdrawn = (
            n("is_placement"),
            n("is_offer_declined"),
            n("is_offer_withdrawn"),
        )
        return row | {
            "offers_extended": n("reached_offer"),
            "cleared_interviewing": n("cleared_interviewing"),
            "offer_extended_rate": _ratio(n("reached_offer"), n("cleared_interviewing")),
            "offers_accepted": accepted,
            "offers_declined": declined,
            "offer_accepted_rate": _ratio(accepted, accepted + declined + withdrawn),
            "in_flight": n("is_in_flight"),
            "offers_pending": n("is_offer_pending"),
            "offers_withdrawn": withdrawn,
            "offers_rescinded": n("is_offer_rescinded"),
        }

    # -- rejection reasons ---------------------------------------------------------------
    def reasons(self) -> dict[str, set[str]]:
        """Rejected process id -> its reasons, each shown by its key's most frequent spelling
        (a spelling counted once per process using it)."""
        spelled = {}
        for pid, d in self.p.items():
            if d["status"] != "rejected_by_company":
                continue
            found = phrases(d["final_outcome"]) if d["final_outcome"] is not None else set()
            if not found:
                for st in self.s:
                    if (
                        str(st["interview_process_id"]) == pid
                        and st["outcome"] == "failed"
                        and st["feedback_notes"] is not None
                    ):
                        found |= phrases(st["feedback_notes"])
            spelled[pid] = found or {("unspecified", "unspecified")}
        spellings: dict[str, list[str]] = defaultdict(list)
        for found in spelled.values():
            for key, spelling in found:
                spellings[key].append(spelling)
        display = {key: _display(v) for key, v in spellings.items()}
        return {pid: {display[key] for key, _ in found} for pid, found in spelled.items()}

    def _reason_list(self, pids: list[str], top: int | None = None) -> list[dict[str, Any]]:
        reasons = self.reasons()
        counts = Counter(r for pid in pids if pid in reasons for r in reasons[pid])
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [{"reason": r, "count": c} for r, c in ranked[:top]]

    # -- mart_feeder_conversion ----------------------------------------------------------
    def feeders(self) -> dict[str, dict[str, Any]]:
        by: dict[str, list[dict]] = defaultdict(list)
        for d in self.p.values():
            by[d["feeder_source"]].append(d)
        total = len(self.p)
        prior = _ratio(sum(d["is_placement"] for d in self.p.values()), total)
        k, z = self.params.prior_strength, 1.96
        out = {}
        for name, m in by.items():
            n, placed = len(m), sum(d["is_placement"] for d in m)
            decided = sum(d["is_terminal"] for d in m)
            p = placed / n
            centre = p + z * z / (2 * n)
            half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
            row = {
                "candidates_sourced": n,
                "placements": placed,
                "conversion_rate": p,
                "decided_processes": decided,
                "decided_conversion_rate": _ratio(placed, decided),
                "wilson_lower": max(0.0, (centre - half) / (1 + z * z / n)),
                "wilson_upper": min(1.0, (centre + half) / (1 + z * z / n)),
                "smoothed_conversion_rate": (placed + k * prior) / (n + k),
                "avg_days_to_hire": _mean_days([d["us_to_hire"] for d in m if d["is_placement"]]),
                "pipeline_depth": _mean(
                    [
                        (
                            4
                            if d["is_placement"]
                            else 3
                            if d["reached_offer"]
                            else 2
                            if d["onsite_entered"]
                            else 1
                            if d["technical_entered"]
                            else 0
                        )
                        / 4
                        for d in m
                        if d["is_terminal"]
                    ]
                ),
                "top_rejection_reasons": self._reason_list([d["id"] for d in m], top=5),
            }
            for t in TYPES:
                passed = sum(d[f"{t}_passed"] for d in m)
                failed = sum(d[f"{t}_failed"] for d in m)
                row[f"{t}_pass_rate"] = _ratio(passed, passed + failed)
            out[name] = row
        return out

    # -- mart_company_insights -----------------------------------------------------------
    def companies(self) -> dict[str, dict[str, Any]]:
        by: dict[str, list[dict]] = defaultdict(list)
        for d in self.p.values():
            by[d["company_name"]].append(d)
        out = {}
        for name, m in by.items():
            n = len(m)
            placed = sum(d["is_placement"] for d in m)
            feeders: dict[str, list[dict]] = defaultdict(list)
            for d in m:
                feeders[d["feeder_source"]].append(d)
            preferred = [
                (f, len(fm), sum(d["reached_offer"] for d in fm) / len(fm))
                for f, fm in feeders.items()
                if len(fm) >= self.params.preferred_min
            ]
            preferred.sort(key=lambda x: (-x[2], -x[1], x[0]))
            out[name] = {
                "total_candidates_sent": len({d["candidate_id"] for d in m}),
                "processes": n,
                "interview_rate": sum(d["completed_stages_count"] > 0 for d in m) / n,
                "offer_rate": sum(d["reached_offer"] for d in m) / n,
                "acceptance_rate": _ratio(
                    placed,
                    placed
                    + sum(d["is_offer_declined"] for d in m)
                    + sum(d["is_offer_withdrawn"] for d in m),
                ),
                "avg_days_to_decision": _mean_days([d["us_to_decision"] for d in m]),
                "median_days_to_decision": _median_days([d["us_to_decision"] for d in m]),
                "preferred_feeders": [
                    {"feeder_source": f, "processes": c, "offer_rate": round4(r)}
                    for f, c, r in preferred
                ],
                "rejection_reasons": self._reason_list([d["id"] for d in m]),
            }
        return out

    # -- mart_stage_performance ----------------------------------------------------------
    def stage_performance(self) -> dict[tuple[str, str], dict[str, Any]]:
        stages = [x for x in self.s if str(x["interview_process_id"]) in self.p]
        names: dict[str, list[str]] = defaultdict(list)
        for x in stages:
            names[x["key"]].append(x["clean"])
        display = {k: _display(v) for k, v in names.items()}
        groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for x in stages:
            groups[("stage_type", x["type"])].append(x)
            groups[("stage_name", display[x["key"]])].append(x)
        out = {}
        for key, m in groups.items():
            passed = sum(x["outcome"] == "passed" for x in m)
            failed = sum(x["outcome"] == "failed" for x in m)
            row = {
                "stage_type": m[0]["type"],
                "stages": len(m),
                "passed": passed,
                "failed": failed,
                "pending": sum(x["outcome"] == "pending" for x in m),
                "cancelled": sum(x["outcome"] == "cancelled" for x in m),
                "no_show": sum(x["outcome"] == "no_show" for x in m),
                "pass_rate": _ratio(passed, passed + failed),
                "median_days_scheduled_to_completed": _median_days(
                    [x["span"] for x in m if x["completed"]]
                ),
            }
            for r in ("overall", "technical", "culture_fit", "communication"):
                row[f"avg_{r}_rating"] = _mean([x[f"{r}_rating"] for x in m])
            for outcome in ("passed", "failed"):
                terms: Counter[str] = Counter()
                for x in m:
                    if x["outcome"] == outcome and x["feedback_notes"] is not None:
                        words = _WORD.findall(x["feedback_notes"].lower())
                        terms.update(w for w in words if w not in self.params.stop_words)
                ranked = sorted(terms.items(), key=lambda kv: (-kv[1], kv[0]))
                row[f"top_terms_{outcome}"] = [
                    {"term": t, "count": c} for t, c in ranked[: self.params.top_terms]
                ]
            out[key] = row
        return out

    # -- mart_interviewer_calibration ----------------------------------------------------
    def interviewers(self) -> dict[str, dict[str, Any]]:
        stages = [x for x in self.s if str(x["interview_process_id"]) in self.p]
        rated = [x for x in stages if x["overall_rating"] is not None]
        type_totals = {
            t: (
                sum(x["overall_rating"] for x in rated if x["type"] == t),
                sum(x["type"] == t for x in rated),
            )
            for t in {x["type"] for x in rated}
        }

        def vs_type(m: list[dict]) -> float | None:
            """The mean over the rated stages of (rating - the stage type's average), added per
            type in funnel order (the unmapped type last): ratings total - rated x the type's
            total / the type's rated count."""
            mine = [x for x in m if x["overall_rating"] is not None]
            total: float = 0
            for t in [*TYPES, UNMAPPED_STAGE_TYPE]:
                ratings = [x["overall_rating"] for x in mine if x["type"] == t]
                if ratings:
                    type_total, type_rated = type_totals[t]
                    total = total + (sum(ratings) - len(ratings) * type_total / type_rated)
            return _ratio(total, len(mine))

        spellings: dict[str, list[str]] = defaultdict(list)
        sat: dict[str, dict[str, dict]] = defaultdict(dict)
        for x in stages:
            for name in x["interviewer_names"] or []:
                spelling = clean_text(name)
                if not spelling:
                    continue
                spellings[normalize_name(spelling)].append(spelling)
                sat[normalize_name(spelling)][str(x["id"])] = x
        out = {}
        for key, by_stage in sat.items():
            m = list(by_stage.values())
            decided = sum(x["decided"] for x in m)
            ratings = [x["overall_rating"] for x in m if x["overall_rating"] is not None]
            completed = [x for x in m if x["completed"]]
            out[_display(spellings[key])] = {
                "stages": len(m),
                "decided_stages": decided,
                "pass_rate": _ratio(sum(x["outcome"] == "passed" for x in m), decided),
                "avg_overall_rating": _mean(ratings),
                "stddev_overall_rating": _stddev(ratings),
                "avg_rating_vs_stage_type": vs_type(m),
                "adherence": _ratio(
                    sum(
                        x["overall_rating"] is not None and x["feedback_notes"] is not None
                        for x in completed
                    ),
                    len(completed),
                ),
            }
        return out

    # -- mart_data_quality ---------------------------------------------------------------
    def data_quality(self) -> dict[str, dict[str, Any]]:
        stages = [x for x in self.s if str(x["interview_process_id"]) in self.p]
        unmapped = Counter(x["clean"] for x in stages if x["unmapped"])
        history = self.status_history()
        return {
            "unmapped_stage_names": {
                "affected": sum(unmapped.values()),
                "examples": [
                    {"value": v, "count": c}
                    for v, c in sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0]))
                ],
            },
            "decided_before_start": {
                "affected": sum(d["is_decided_before_start"] for d in self.p.values()),
                "examples": [],
            },
            "status_history_out_of_order": {
                "affected": sum(h["is_out_of_order"] for h in history.values()),
                "examples": [],
            },
            "started_in_future": {
                "affected": sum(d["started_at"] > self.params.as_of for d in self.p.values()),
                "examples": [],
            },
        }

    # -- feeders.json ---------------------------------------------------------------------
    def feeder_metrics(self) -> dict[str, dict[str, Any]]:
        """Each feeder's `metrics` object of feeders.json (without updated_at)."""

        def r6(v: float | None) -> float | None:
            return None if v is None else round(float(v), 6)

        counts = ("candidates_sourced", "placements", "decided_processes")
        rates = (
            "conversion_rate",
            "decided_conversion_rate",
            "smoothed_conversion_rate",
            "avg_days_to_hire",
            "pipeline_depth",
        )
        return {
            name: {c: f[c] for c in counts}
            | {r: r6(f[r]) for r in rates}
            | {
                "wilson_interval": {
                    "lower": r6(f["wilson_lower"]),
                    "upper": r6(f["wilson_upper"]),
                    "confidence": 0.95,
                },
                "success_rate_by_stage": {t: r6(f[f"{t}_pass_rate"]) for t in TYPES},
                "top_rejection_reasons": f["top_rejection_reasons"],
            }
            for name, f in self.feeders().items()
        }


def round4(value: float) -> float:
    """Rounded to 4 places, halves away from zero (SQL round)."""
    return math.copysign(math.floor(abs(value) * 10_000 + 0.5), value) / 10_000

"""`itrack generate`: realistic synthetic recruiting data with planted signal.

Deterministic for a seed (no wall clock, UUIDs from the seeded generator). The planted signal
(`PLANTED`) is what tests check the marts recover: feeders with different true placement
propensities, companies that prefer one feeder, ratings that follow outcomes, recurring themes in
feedback notes, in-flight processes, and an optional share of invalid records.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from itrack.cli.common import path_option


@dataclass(frozen=True)
class Planted:
    # Chance to pass each interview stage, by feeder (the source's quality).
    feeder_pass: dict[str, float] = field(
        default_factory=lambda: {
            "referral": 0.86,
            "ex-google": 0.80,
            "ex-amazon": 0.74,
            "university": 0.66,
            "bootcamp": 0.58,
            "linkedin-outbound": 0.50,
        }
    )
    # Companies that favour one feeder: there, that feeder passes each stage with this chance
    # (above every feeder's own), so it tops the company's preferred feeders.
    company_preference: dict[str, str] = field(
        default_factory=lambda: {
            "Stripe": "bootcamp",
            "Netflix": "ex-amazon",
            "Shopify": "university",
        }
    )
    preferred_pass: float = 0.95
    companies: tuple[str, ...] = (
        "Stripe",
        "Netflix",
        "Shopify",
        "Datadog",
        "Airbnb",
        "Spotify",
        "Atlassian",
        "Canva",
        "Monzo",
        "Zalando",
    )

    @property
    def best_feeder(self) -> str:
        return max(self.feeder_pass, key=self.feeder_pass.__getitem__)

    @property
    def worst_feeder(self) -> str:
        return min(self.feeder_pass, key=self.feeder_pass.__getitem__)


PLANTED = Planted()
# (canonical type, spellings seen in exports: case, spaces, `_`/`-`, the type's own name)
STAGES = (
    (
        "phone_screen",
        (
            "Phone Screen",
            "phone screen",
            "Recruiter Call",
            "Phone  Screen",
            "phone_screen",
            "Phone-Screen",
            "Phone\u00a0Screen ",
        ),
    ),
    (
        "technical",
        (
            "Technical Interview",
            "Coding",
            "Technical  Interview",
            "technical interview",
            "technical",
            "Technical_Interview",
        ),
    ),
    (
        "onsite",
        ("Onsite", "Final Round", "On-site", "onsite", "Final-Round", "Onsite\u00a0Interview"),
    ),
)
# Messiness real exports have (issue #12), as shares of processes / stages / names.
MESSY = {
    "retake": 0.05,  # a failed stage is retaken (same type), passing with the usual chance
    "skipped": 0.04,  # a no-show or cancelled stage before the real one
    "offer_without_stages": 0.01,
    "name_variant": 0.03,  # a company or feeder spelled in another case / with stray spaces
    "double_listed": 0.02,  # an interviewer listed twice on one stage, in another spelling
    "zone_offset": 0.2,  # created_at written with a +02:00 offset (the same instant)
    "near_midnight": 0.05,  # a process created at 23:30
}
UNMAPPED_STAGE = "Take-home Review"
THEMES_PASS = (
    "strong system design",
    "clear communication",
    "solid coding fundamentals",
    "good product sense",
    "collaborative and curious",
)
THEMES_FAIL = (
    "weak algorithms",
    "poor culture fit",
    "lacked depth in distributed systems",
    "unclear communication",
    "struggled with coding exercise",
    "struggled with Node.js async code",
    "scored 2.5 of 5 on algorithms",
)
ROLES = ("Backend Engineer", "Data Engineer", "Frontend Engineer", "SRE", "ML Engineer")
RECRUITERS = ("Rita Gomez", "Sam Patel", "Mia Chen", "Olu Ade")
INTERVIEWERS = ("Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo")
FIRST = ("Alex", "Sam", "Priya", "Wei", "Maria", "John", "Aisha", "Lukas", "Yuki", "Omar")
LAST = ("Smith", "Kumar", "Zhang", "Garcia", "Okafor", "Müller", "Sato", "Haddad", "Nowak")
START = dt.datetime(2025, 1, 1, 9, 0)
SPAN_DAYS = 300
CURRENCIES = ("USD", "USD", "USD", "EUR", "GBP")  # ISO 4217 codes (a test holds them to it)


def _ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ratings(rng: random.Random, passed: bool) -> dict[str, int | None]:
    low, high = (3, 5) if passed else (1, 3)
    return {
        name: (rng.randint(low, high) if rng.random() > 0.08 else None)
        for name in (
            "overall_rating",
            "technical_rating",
            "culture_fit_rating",
            "communication_rating",
        )
    }


def _variant(rng: random.Random, name: str) -> str:
    """`name` as another export might spell it: other case, stray spaces (same grouping key)."""
    if rng.random() >= MESSY["name_variant"]:
        return name
    return rng.choice((name.lower(), name.upper(), f"{name} ", f"  {name}", name.title()))


def _offset_ts(rng: random.Random, value: dt.datetime) -> str:
    """Sometimes written with a +02:00 zone offset: the same instant, another spelling."""
    if rng.random() < MESSY["zone_offset"]:
        return (value + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    return _ts(value)


def _process(rng: random.Random, candidate: dict[str, Any], feeder: str) -> tuple[dict, list]:
    """One process and its stages, consistent with the contract's state machine."""
    company = rng.choice(PLANTED.companies)
    p_pass = PLANTED.feeder_pass[feeder]
    if PLANTED.company_preference.get(company) == feeder:
        p_pass = PLANTED.preferred_pass
    created = START + dt.timedelta(days=rng.uniform(0, SPAN_DAYS), hours=rng.randint(0, 8))
    if rng.random() < MESSY["near_midnight"]:
        created = created.replace(hour=23, minute=30)
    pid = _uuid(rng)
    in_flight = rng.random() < 0.15
    depth = rng.randint(1, 3) if in_flight else 3
    if not in_flight and rng.random() < MESSY["offer_without_stages"]:
        depth = 0
    stages, clock, failed_stage = [], created, None

    def add(name: str, **fields: Any) -> dict[str, Any]:
        scheduled = clock + dt.timedelta(days=rng.randint(2, 10), hours=rng.randint(0, 6))
        stage = {
            "id": _uuid(rng),
            "interview_process_id": pid,
            "stage_name": name,
            "stage_order": len(stages) + 1,
            "scheduled_date": _ts(scheduled),
            "created_at": _ts(clock + dt.timedelta(hours=1)),
            **fields,
        }
        stages.append(stage)
        return stage

    for position, (canonical, names) in enumerate(STAGES[:depth], start=1):
        last_pending = in_flight and position == depth
        if not last_pending and rng.random() < MESSY["skipped"]:
            skipped = add(rng.choice(names), outcome=rng.choice(("no_show", "cancelled")))
            skipped["updated_at"] = _ts(clock + dt.timedelta(hours=2))
        attempts = 2 if rng.random() < MESSY["retake"] else 1
        for _attempt in range(attempts):
            name = (
                UNMAPPED_STAGE
                if canonical == "technical" and rng.random() < 0.02
                else rng.choice(names)
            )
            passed = rng.random() < p_pass
            if last_pending:
                stage = add(name, outcome="pending", interviewer_names=[])
            else:
                scheduled = dt.datetime.fromisoformat(add(name)["scheduled_date"].rstrip("Z"))
                stage = stages[-1]
                completed = scheduled + dt.timedelta(days=rng.randint(0, 3), hours=1)
                themes = THEMES_PASS if passed else THEMES_FAIL
                interviewers = rng.sample(INTERVIEWERS, rng.randint(1, 3))
                if rng.random() < MESSY["double_listed"]:
                    interviewers.append(rng.choice(interviewers).upper())
                stage.update(
                    outcome="passed" if passed else "failed",
                    completed_date=_ts(completed),
                    interviewer_names=interviewers,
                    feedback_notes="; ".join(rng.sample(themes, 2)).capitalize() + ".",
                    **_ratings(rng, passed),
                )
                clock = completed
            stage["updated_at"] = _ts(clock + dt.timedelta(hours=2))
            if last_pending or passed:
                break
        if not last_pending and not passed:
            failed_stage = name
            break
    process = {
        "id": pid,
        "candidate_id": candidate["id"],
        "company_name": _variant(rng, company),
        "role_title": rng.choice(ROLES),
        "feeder_source": _variant(rng, feeder),
        "recruiter_name": rng.choice(RECRUITERS),
        "created_at": _offset_ts(rng, created),
    }
    decided = clock + dt.timedelta(days=rng.randint(1, 5))
    status, extra = _status(rng, in_flight, failed_stage, p_pass, decided)
    process.update(
        status=status,
        updated_at=_ts(decided if status != "in_progress" else clock + dt.timedelta(hours=3)),
        **extra,
    )
    return process, stages


def _status(
    rng: random.Random,
    in_flight: bool,
    failed_stage: str | None,
    p_pass: float,
    decided: dt.datetime,
) -> tuple[str, dict[str, Any]]:
    if failed_stage:
        return "rejected_by_company", {"final_outcome": f"Failed {failed_stage}"}
    if in_flight:
        return ("on_hold" if rng.random() < 0.15 else "in_progress"), {}
    if rng.random() < 0.06:
        return "candidate_withdrew", {"final_outcome": "Candidate withdrew: accepted another offer"}
    offer = {
        "base_salary": rng.randrange(90_000, 220_000, 5_000),
        "currency": rng.choice(CURRENCIES),
        "bonus": rng.randrange(0, 30_000, 1_000),
        "offer_date": decided.date().isoformat(),
        "start_date": (decided + dt.timedelta(days=30)).date().isoformat(),
    }
    roll = rng.random()
    if roll < 0.08:
        return "offer_extended", {"offer_details": offer}
    if roll < 0.08 + (1 - p_pass) * 0.6:
        return "offer_declined", {"offer_details": offer, "final_outcome": "Declined: compensation"}
    return "offer_accepted", {"offer_details": offer}


def _candidate(rng: random.Random, index: int, feeder: str) -> dict[str, Any]:
    return {
        "id": f"cand-{index:07d}",
        "full_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "feeder_source": feeder,
        "current_company": rng.choice(("Amazon", "Google", None)),
        "linkedin_url": f"https://www.linkedin.com/in/cand-{index:07d}",
        "created_at": _ts(START - dt.timedelta(days=rng.randint(1, 60))),
    }


def _spoil(rng: random.Random, record: dict[str, Any], kind: str) -> dict[str, Any] | str:
    """Make one record invalid in one of several realistic ways."""
    bad = dict(record)
    choice = rng.randrange(6)
    if choice == 0:
        return json.dumps(record)[:-7]  # a truncated line: malformed JSON
    if choice == 1:
        bad.pop("created_at")
    elif choice == 2 and kind == "stages":
        bad["overall_rating"] = 6
    elif choice == 2:
        bad["status" if kind == "processes" else "full_name"] = (
            "hired" if kind == "processes" else ""
        )
    elif choice == 3 and kind == "stages":
        bad["interview_process_id"] = _uuid(rng)  # orphan
    elif choice == 3:
        bad["id"] = "not-a-uuid" if kind == "processes" else "bad id"
    elif choice == 4:
        bad["created_at"] = "31/12/2024"
    else:
        bad["unexpected_field"] = "x"
    return bad


FORMATS = ("jsonl", "json", "csv", "parquet")
KINDS = ("candidates", "processes", "stages")  # the files a run writes, one per kind


def build_records(
    processes: int, seed: int, invalid_share: float = 0.0
) -> dict[str, list[dict[str, Any] | str]]:
    rng = random.Random(seed)
    feeders = list(PLANTED.feeder_pass)
    out: dict[str, list] = {kind: [] for kind in KINDS}
    candidate = None
    for _ in range(processes):
        if candidate is None or rng.random() < 0.77:  # ~1.3 processes per candidate
            feeder = rng.choice(feeders)
            candidate = _candidate(rng, len(out["candidates"]) + 1, feeder)
            out["candidates"].append(candidate)
        feeder = candidate["feeder_source"] if rng.random() < 0.9 else rng.choice(feeders)
        process, stages = _process(rng, candidate, feeder)
        out["processes"].append(process)
        out["stages"].extend(stages)
    if invalid_share > 0:
        for kind, records in out.items():
            for i in range(len(records)):
                if rng.random() < invalid_share:
                    records[i] = _spoil(rng, records[i], kind)
    return out


def write_records(records: list[dict[str, Any] | str], path: Path, fmt: str) -> int:
    """Write `records` to `path` in `fmt`; returns how many were written (JSONL holds them all,
    the other formats no malformed line)."""
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for record in records:
                text = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)
                handle.write(text + "\n")
        return len(records)
    rows = [r for r in records if not isinstance(r, str)]  # malformed lines exist in JSONL only
    if fmt == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
        return len(rows)
    import polars as pl  # here: every `itrack` command imports this module, few write CSV

    columns = sorted({key for row in rows for key in row})
    flat = [{c: _cell(row.get(c), fmt) for c in columns} for row in rows]
    frame = pl.DataFrame(
        flat,
        schema={c: pl.String for c in columns} if fmt == "csv" else None,
        infer_schema_length=None,
    )
    if fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return len(rows)


def _cell(value: Any, fmt: str) -> Any:
    """CSV cells are text (lists and objects as JSON); Parquet keeps lists and structs."""
    if fmt != "csv" or value is None:
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _refuse_other_formats(out_dir: Path, fmt: str) -> None:
    """A folder holding a run's files in another format is refused before anything is written:
    the new files landed beside them, and ingesting the folder loaded both runs (their
    candidate ids overlap, so one run's candidates silently replaced the other's). Files of
    the same format are replaced, as before; other files are left alone."""
    from ingest.errors import UserError

    others = [
        out_dir / f"{kind}.{other}"
        for other in FORMATS
        if other != fmt
        for kind in KINDS
        if (out_dir / f"{kind}.{other}").exists()
    ]
    if others:
        raise UserError(
            f"{out_dir} holds {', '.join(p.name for p in others)} of another --format; "
            "ingesting the folder would load both: remove them or choose another --out"
        )


def generate(
    out_dir: Path, processes: int, seed: int, invalid_share: float = 0.0, fmt: str = "jsonl"
) -> dict[str, int]:
    """Write candidates/processes/stages files in `fmt`; returns the records written per file.

    Each file is written beside its name (a hidden `.partial` file, which ingest skips) and all
    are renamed into place once every one is whole: a full disk or an interrupt in the middle
    left the files written before it and a truncated one, mixed with an earlier run's, under
    an error saying nothing was written."""
    from ingest.errors import make_folder

    _refuse_other_formats(out_dir, fmt)
    make_folder(out_dir, "--out")
    data = build_records(processes, seed, invalid_share)
    paths = {kind: out_dir / f"{kind}.{fmt}" for kind in data}
    staged = {kind: path.with_name(f".{path.name}.partial") for kind, path in paths.items()}
    written = {}
    try:
        for kind, records in data.items():
            written[paths[kind].name] = write_records(records, staged[kind], fmt)
        for kind, path in paths.items():
            staged[kind].replace(path)
    finally:  # after an error or an interrupt: no partial file stays
        for partial in staged.values():
            partial.unlink(missing_ok=True)
    return written


def generate_delta(
    src_dir: Path, out_dir: Path, share: float = 0.01, seed: int = 1
) -> dict[str, int]:
    """A delta of new processes (with candidates and stages) and changed ones (a pending stage
    decided, the process moved forward with a newer `updated_at`): the nightly 1% increment."""
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    processes = [
        json.loads(line)
        for line in (src_dir / "processes.jsonl").open()
        if line.strip().startswith("{") and line.rstrip().endswith("}")
    ]
    n = max(1, int(len(processes) * share))
    fresh = build_records(n // 2 + 1, seed + 10_000)
    for c in fresh["candidates"]:
        c["id"] = c["id"].replace("cand-", "cand-delta-")
    for p in fresh["processes"]:
        p["candidate_id"] = p["candidate_id"].replace("cand-", "cand-delta-")
    changed = []
    for p in rng.sample(
        [p for p in processes if p.get("status") == "in_progress"],
        min(n // 2, sum(p.get("status") == "in_progress" for p in processes)),
    ):
        later = dt.datetime.fromisoformat(p["updated_at"].rstrip("Z")) + dt.timedelta(days=3)
        p.update(
            status="candidate_withdrew",
            updated_at=_ts(later),
            final_outcome="Candidate withdrew: relocation",
        )
        changed.append(p)
    data = {
        "candidates": fresh["candidates"],
        "processes": fresh["processes"] + changed,
        "stages": fresh["stages"],
    }
    for kind, records in data.items():
        write_records(records, out_dir / f"delta_{kind}.jsonl", "jsonl")
    return {kind: len(records) for kind, records in data.items()}


# The records are held in memory while written: about 4 KB per process (210 MB of peak RSS at
# 50,000), so 2M processes (4x the bench's 1M-stage scale) take about 8 GB. A bigger number
# ran until memory ran out.
MAX_PROCESSES = 2_000_000


def generate_command(
    out: Annotated[Path, path_option("--out", help="Folder to write the files into.")],
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_PROCESSES,
            help=f"Interview processes to generate (1 to {MAX_PROCESSES:,}).",
        ),
    ] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 42,
    invalid_share: Annotated[
        float, typer.Option(help="Share of records made invalid on purpose (at least 0, below 1).")
    ] = 0.0,
    fmt: Annotated[str, typer.Option("--format", help="jsonl, json, csv or parquet.")] = "jsonl",
) -> None:
    """Generate synthetic candidates, processes and stages with planted signal."""
    from ingest.errors import UserError

    if fmt not in FORMATS:
        raise UserError(f"--format must be jsonl, json, csv or parquet, not '{fmt}'")
    if not 0 <= invalid_share < 1:  # (nan fails both)
        raise UserError(f"--invalid-share must be at least 0 and below 1, not {invalid_share}")
    counts = generate(out, processes, seed, invalid_share, fmt)
    typer.echo(", ".join(f"{name}: {n}" for name, n in counts.items()) + f" -> {out}")

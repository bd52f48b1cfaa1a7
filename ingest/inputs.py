"""Which files an ingest reads: found in folders, their format and record kind by name, their
size and mtime (their sha256: `ingest.checksum`). Nothing here parses a file or opens the raw
store, and nothing imports DuckDB or the contract's models: a no-op `itrack build` lists its
inputs with this module alone (see README, "Speed"). The readers (`ingest.readers`) read what it
found.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import UserError
from ingest.text import printable, storable

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# The record kinds in load order (`ingest.contract.LOAD_ORDER`, which a test holds it to):
# candidates before the processes that name them, processes before their stages.
KINDS = ("candidates", "processes", "stages")


@dataclass
class FileProblem:
    """A record-level problem found while reading (before validation)."""

    line_no: int | None
    code: str
    message: str
    raw: str | None = None


@dataclass
class InputFile:
    path: Path
    kind: str
    fmt: str
    sha256: str
    problems: list[FileProblem] = field(default_factory=list)
    # Where the records came from when `path` is only a local copy (e.g. a database table
    # extracted to a temporary file): what the audit and the quarantine name.
    origin: str | None = None
    size: int | None = None
    mtime_ns: int | None = None

    @property
    def label(self) -> str:
        return self.origin or str(self.path)


# what a compressed export ends with: read by no reader, so said how to give it
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".7z", ".tgz")


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        *others, last = FORMATS  # every suffix a reader takes (.ndjson and .pq were not named)
        hint = "; a compressed file is not read: decompress it first" * (
            path.suffix.lower() in COMPRESSED
        )
        raise UserError(
            f"{path}: unknown format '{path.suffix or '(none)'}'; "
            f"expected {', '.join(others)} or {last}{hint}"
        )
    return fmt


def detect_kind(path: Path, kind: str | None) -> str:
    if kind:
        return kind
    name = path.name.lower()
    matches = [k for k in KINDS if k in name]
    if len(matches) != 1:
        raise UserError(
            f"{path}: cannot tell the record kind from the file name; "
            "name it *candidates*, *processes* or *stages*, or pass --kind"
        )
    return matches[0]


def expand_paths_reporting(paths: list[Path], kind: str | None) -> tuple[list[Path], list[str]]:
    """(files to read, skipped files with the reason).

    A file named on the command line must be readable as records (else exit 2, naming it). In a
    folder, a file that is not .jsonl/.json/.csv/.parquet, or whose name does not tell its kind
    (without --kind), is skipped with a warning: one stray README or lock file does not stop the
    night's ingest, and the summary names it. Hidden files (".name") are skipped the same way,
    and so is a folder inside (its files are not read: a night's files put one level down were
    left out, "0 accepted", without a word).
    """
    files: list[Path] = []
    skipped: list[str] = []
    seen: set[tuple[int, int]] = set()  # (device, inode): a file named twice is read once

    def add(path: Path) -> None:
        info = path.stat()
        if (info.st_dev, info.st_ino) in seen:
            skipped.append(f"{path}: named more than once (read once)")
        else:
            seen.add((info.st_dev, info.st_ino))
            files.append(path)

    for path in paths:
        if path.is_dir():
            for entry in sorted(path.iterdir()):
                if entry.is_dir():  # its files are not read: said, never silently
                    skipped.append(f"{entry}: a folder (not read: name it to ingest its files)")
                    continue
                if entry.suffix.lower() in FORMATS and not entry.name.startswith("."):
                    _require_regular(entry)
                if entry.name.startswith("."):
                    skipped.append(f"{entry}: hidden file")
                elif entry.suffix.lower() not in FORMATS:
                    skipped.append(f"{entry}: not a data file (.jsonl, .json, .csv or .parquet)")
                elif kind is None and sum(k in entry.name.lower() for k in KINDS) != 1:
                    skipped.append(
                        f"{entry}: kind unknown (name it *candidates*, *processes* or "
                        "*stages*, or pass --kind)"
                    )
                else:
                    add(entry)
        elif path.exists():
            _require_regular(path)
            add(path)
        else:
            raise UserError(f"{path}: no such file or directory")
    return files, skipped


def _require_regular(path: Path) -> None:
    """A FIFO, socket or device never holds records (and reading a FIFO would hang): exit 2."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: not a regular file (a FIFO, socket or device); not read")
    if storable(str(path)) != str(path):  # bytes that are not UTF-8 (lone surrogates here)
        raise UserError(f"{printable(str(path))}: the file name is not valid UTF-8; rename it")


def stat_of(path: Path) -> tuple[int, int]:
    """(size, mtime in ns): with the path, what the skip check compares before any hashing."""
    try:
        info = path.stat()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    return info.st_size, info.st_mtime_ns


def prepare_files(
    paths: list[Path], kind: str | None, skipped: list[str] | None = None
) -> list[InputFile]:
    """Resolve, classify and stat inputs before the store is touched (errors exit 2);
    unrecognised files found in folders are appended to `skipped` (with the reason). The
    sha256 is computed later, only for files whose path, size and mtime were not loaded, and
    while the file is read."""
    files = []
    found, passed_over = expand_paths_reporting(paths, kind)
    if skipped is not None:
        skipped.extend(passed_over)
    for path in found:
        fmt = detect_format(path)
        size, mtime_ns = stat_of(path)
        files.append(
            InputFile(path, detect_kind(path, kind), fmt, "", size=size, mtime_ns=mtime_ns)
        )
    files.sort(key=lambda f: KINDS.index(f.kind))
    return files

"""The one careful writer: outputs other programs read are replaced whole or not at all.

- The target is resolved first: a symlink is written *through* (its target file is replaced, the
  link stays a link); a path that exists but is not a regular file (a FIFO, a device, a folder)
  is refused, as is a read-only file (exit 2, the file named; nothing written).
- Data goes to a temp file `.<name>.<random>.tmp` in the target's folder, is fsynced, then
  renamed over the target, and the folder is fsynced.
- The previous version is kept as `<name>.bak`, written the same atomic way (a full disk never
  leaves a truncated `.bak`).
- `locked(path)` is the advisory lock of one file (`flock` on `.<name>.lock` beside it): the
  read-merge-write of feeders.json holds it, the scoring job may take it too; holding it, the
  temp files a killed writer left are swept.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ingest.errors import UserError
from ingest.pidlock import pid_lock
from ingest.text import clip


def resolve_target(path: Path) -> Path:
    """The file to replace: symlinks followed to their target (which may not exist yet);
    anything that exists and is not a regular file is refused."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise UserError(f"cannot use {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: not a regular file (a FIFO, device or folder); not touched")
    return target


def refuse_to_replace(
    out: Path, looks_right: Callable[[bytes], bool], what: str, option: str
) -> None:
    """An output replaces only its own kind of file (or an empty one): `looks_right` judges the
    file's first bytes (a byte order mark and leading whitespace dropped). A path naming the
    warehouse, the raw store, feeders.json or any other file by mistake replaced it, without
    a backup. Absent, or not a regular file (the writer refuses that, naming it): nothing."""
    try:
        fd = os.open(out, os.O_RDONLY | os.O_NONBLOCK)  # never blocks on a FIFO
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return
    except OSError as exc:
        raise _cannot_read(out, exc) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # (fdopen refuses a folder's descriptor)
        os.close(fd)
        return
    with os.fdopen(fd, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head and not looks_right(head):
        raise UserError(f"{out} exists and is not {what}; not replaced ({option})")


class NameTooLongError(UserError):
    """A path the system refuses as too long: no file can have it."""


def read_regular(path: Path) -> bytes | None:
    """The bytes of a regular file (None if absent); never blocks on a FIFO."""
    try:
        # in the try: resolve_target's is_symlink() lets ENAMETOOLONG through (pathlib
        # ignores only "absent" errors), which was the CLI's "cannot write: [Errno 36] ..."
        fd = os.open(resolve_target(path), os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _cannot_read(path, exc) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped since the check
            raise UserError(f"{path}: not a regular file; not touched")
        return handle.read()


def _cannot_read(path: Path, exc: OSError) -> UserError:
    if exc.errno == errno.ENAMETOOLONG:  # not a name at all: shown cut, not echoed whole
        return NameTooLongError(f"cannot read {clip(str(path))}: {exc.strerror}")
    return UserError(f"cannot read {path}: {exc.strerror}")


def write_atomic(path: Path, data: bytes, keep_backup: bool = True) -> bool:
    """Replace `path` (through a symlink) with `data`: temp file in the same folder, fsync,
    rename, fsync the folder; the previous version kept as `<name>.bak`. Returns False (nothing
    written) if unchanged."""
    staged = Staged(path, data, keep_backup)
    try:
        return staged.commit()
    finally:
        staged.discard()


_UNREAD: Any = object()


class Staged:
    """New content for `path`, already in a synced temp file beside its target: `commit()` is
    then only the `.bak` copy and a rename, so several files can be made ready first and
    replaced together (the publish journal, feedback/publish.py, replaces a run's outputs as
    one set)."""

    def __init__(
        self, path: Path, data: bytes, keep_backup: bool = True, previous: Any = _UNREAD
    ) -> None:
        self.path = Path(path)
        self.target = resolve_target(self.path)
        self.keep_backup = keep_backup
        self.tmp: Path | None = None
        self.restage(data, read_regular(self.target) if previous is _UNREAD else previous)

    def restage(self, data: bytes, previous: bytes | None) -> None:
        """Stage `data` against `previous` (the content it was merged into)."""
        self.discard()
        self.data, self.previous = data, previous
        if previous == data:
            return
        if previous is not None and _read_only(self.target):
            raise UserError(
                f"{self.path}: the file is read-only; not overwritten (make it writable)"
            )
        self.tmp = _write_temp(self.target, data, self.path, _mode_for(self.target))

    @property
    def pending(self) -> bool:
        return self.tmp is not None

    def commit(self) -> bool:
        """Rename the temp file over the target (after the `.bak` copy); False if unchanged."""
        if self.tmp is None:
            return False
        backup = self.previous if self.keep_backup else None
        rename_into_place(self.tmp, self.target, backup, self.path, "the previous file is intact")
        self.tmp = None
        return True

    def discard(self) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


def _write_temp(target: Path, data: bytes, shown: Path, mode: int) -> Path:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UserError(f"cannot write {shown}: {exc.strerror}") from None
    try:
        os.chmod(tmp, mode)  # mkstemp makes 0600: readers (the scoring job) need more
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(
            f"cannot write {shown}: {exc.strerror}; the previous file is intact"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _replace_with(target: Path, data: bytes, shown: Path, mode: int | None = None) -> None:
    tmp = _write_temp(target, data, shown, mode if mode is not None else _mode_for(target))
    try:
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(
            f"cannot write {shown}: {exc.strerror}; the previous file is intact"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def rename_into_place(
    staged: Path, target: Path, backup: bytes | None, shown: Path, otherwise: str
) -> None:
    """Rename the synced file `staged` over `target` and fsync the folder, `backup` (None: no
    backup) kept first as `<name>.bak` (written the atomic way). A failure is one line:
    `cannot write <shown>: <why>; <otherwise>`. `Staged.commit` and the publish journal's
    renames (feedback/publish.py, of files staged here or by the build) both go through it."""
    if backup is not None:
        _replace_with(target.with_name(target.name + ".bak"), backup, shown)
    try:
        os.replace(staged, target)
        fsync_dir(target.parent)
    except OSError as exc:
        raise UserError(f"cannot write {shown}: {exc.strerror}; {otherwise}") from None


def _read_only(path: Path) -> bool:
    """No write permission bit at all (chmod a-w), or no access for this user: root's access()
    says yes to everything, so the mode bits decide too."""
    return not (path.stat().st_mode & 0o222) or not os.access(path, os.W_OK)


def _mode_for(path: Path) -> int:
    """The existing file's permissions, else the usual ones for a new file (0666 - umask)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_dir(folder: Path) -> None:
    """Make the folder's entries (a rename, a new or removed file) survive a power loss."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_path(path: Path) -> Path:
    target = resolve_target(path)
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def locked(path: Path, wait_seconds: float | None = None, sweep: bool = True) -> Iterator[None]:
    """The advisory lock of `path` (`flock(LOCK_EX)` on `.<name>.lock` beside its target).

    `wait_seconds` None waits as long as it takes; otherwise busy after that long -> UserError
    (exit 2) naming the holder's PID. Holding it, temp files a killed writer left are swept
    (not with `sweep` False: the roll forward of a publish journal, whose staged files they
    are)."""
    lock = lock_path(path)

    def busy(holder: str) -> Exception:
        return UserError(
            f"{path} is busy (locked by PID {holder} via {lock.name}); "
            "retry later or pass --wait SECONDS"
        )

    def cannot_open(exc: OSError) -> Exception:
        return UserError(f"cannot lock {path}: {exc.strerror}")

    with pid_lock(lock, wait_seconds, busy, cannot_open):
        if sweep:
            sweep_temp_files(path)
        yield


def sweep_temp_files(path: Path) -> list[Path]:
    """Remove `.<name>.*.tmp` (of the file and of its `.bak`) that a killed writer left.
    Only call it holding `locked(path)`: then no writer of this file is running."""
    target = resolve_target(path)
    swept = []
    for name in (target.name, target.name + ".bak"):
        for tmp in target.parent.glob(f".{_glob_escape(name)}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                swept.append(tmp)
    return swept


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


_SURROGATES = re.compile("[\ud800-\udfff]")


# Each byte of a JSON text -> "0" for a digit, "e" for e/E, "." for itself, else a space: the
# shapes of its numbers, searched with `in` (C) instead of a regex (1.4 s on the 40 MB
# placements file). A string that merely looks like such a number is a false alarm, never a
# miss: the caller then takes the standard library's slower, exact path.
_NUMBER_SHAPES = bytes(
    ord("0") if chr(b).isdigit() else ord("e") if chr(b) in "eE" else b if b == ord(".") else 32
    for b in range(256)
)


def spelled_alike(data: bytes) -> bool:
    """Whether every float in orjson's output `data` is spelled as the standard library (`repr`)
    spells it: none in exponent notation (orjson 1e-7, `repr` 1e-07: a digit then e), none in
    fixed notation where `repr` uses an exponent (orjson 0.00001 / 1e-05: under 1e-4, "0.0000"
    after a space, a minus or nothing; 10000000000000000.0 / 1e+16: 17 digits or more before
    the point)."""
    shapes = data.translate(_NUMBER_SHAPES)
    return not (
        b"0e" in shapes
        or b" 0.0000" in shapes
        or shapes.startswith(b"0.0000")
        or b"0" * 17 + b"." in shapes
    )


def dumps_indented(document: Any, sort_keys: bool = False, finite: bool = False) -> bytes:
    """`json.dumps(document, indent=2, ensure_ascii=False, sort_keys=...) + "\\n"`, byte for
    byte, through orjson's C encoder (the pure-Python indenting encoder took seconds on a 40 MB
    placements file). What orjson spells differently (NaN, integers beyond 64 bits) takes the
    standard library.

    `finite`: the caller knows `document` holds JSON types only and no NaN or infinite float
    (orjson writes those as null), e.g. `read_placements` found none: instead of walking
    every value first (`orjson_safe`, 0.8 s on the 40 MB placements file), orjson's own
    refusals (a key that is not a str, an integer beyond 64 bits, a lone surrogate) and a float
    it spells otherwise (`spelled_alike`) send it to the standard library."""
    option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    if finite:
        with contextlib.suppress(orjson.JSONEncodeError):
            data = orjson.dumps(document, option=option)
            if spelled_alike(data):
                return data + b"\n"
    elif orjson_safe(document):
        return orjson.dumps(document, option=option) + b"\n"
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=sort_keys)
    return (text + "\n").encode("utf-8")


def orjson_safe(value: Any) -> bool:
    """Only str keys, finite floats in fixed notation, integers within 64 bits, JSON types, no
    lone surrogates (orjson refuses them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(type(k) is str and not _SURROGATES.search(k) for k in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item) or "e" in repr(item):  # 1e-07 vs orjson's 1e-7
                return False
        elif isinstance(item, str):
            if _SURROGATES.search(item):
                return False
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -(2**63) <= item < 2**64:
                return False
        else:
            return False
    return True

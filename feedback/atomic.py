"""The one careful writer: outputs other programs read are replaced whole or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ingest.errors import UserError


def write_atomic(path: Path, data: bytes, keep_backup: bool = True) -> bool:
    """Replace `path` with `data`: temp file in the same folder, fsync, rename, fsync the folder.
    The previous version is kept as `<name>.bak`. Returns False (nothing written) if unchanged."""
    if path.exists() and path.read_bytes() == data:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    try:
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600: readers (the scoring job) need more
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_backup and path.exists():
            shutil.copy2(path, path.with_name(path.name + ".bak"))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(
            f"cannot write {path}: {exc.strerror}; the previous file is intact"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _mode_for(path: Path) -> int:
    """The existing file's permissions, else the usual ones for a new file (0666 - umask)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

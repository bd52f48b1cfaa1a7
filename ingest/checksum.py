"""A file's sha256, streamed: the one definition (a backup's checksums, an extract's files, the
publish journal's staged files). Its own module, so that feedback may use it without seeing
how an ingest finds its inputs (pyproject.toml [tool.importlinter])."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ingest.errors import UserError


def sha256_of(path: Path) -> str:
    """The file's sha256, read in 1 MB chunks (never the whole file in memory)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    return digest.hexdigest()

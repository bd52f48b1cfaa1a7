"""Backups of the raw store: consistent Parquet snapshots with a manifest, and restore.

The marts are derived (dbt rebuilds them), so only the raw store is backed up: the snapshot is
taken under the writer lock, so it is one consistent state.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ingest.contract import new_run_id, utc_now
from ingest.errors import UserError
from ingest.store.duckdb.store import SCHEMA, connect, open_store, raw_store_path

MANIFEST = "manifest.json"
DEFAULT_KEEP = 7


def default_backup_dir(db: Path | str) -> Path:
    """`backups/` beside the warehouse."""
    return Path(db).parent / "backups"


def _tables(con) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'main' and table_type = 'BASE TABLE' order by 1"
        ).fetchall()
    ]


def _file_digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name != MANIFEST
    }


def backup(
    db: Path | str,
    to: Path | None = None,
    keep: int = DEFAULT_KEEP,
    wait_seconds: float = 0.0,
) -> Path:
    """Snapshot the raw store into `<to>/<backup id>/` and keep the newest `keep` snapshots."""
    root = to or default_backup_dir(db)
    target = root / new_run_id("backup")
    partial = target.with_name(target.name + ".partial")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create backup folder {root}: {exc.strerror}") from None
    with open_store(db, wait_seconds) as con:
        counts = {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in _tables(con)}
        try:
            con.execute(f"export database '{_sql_path(partial)}' (format parquet)")
        except Exception as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise UserError(
                f"backup failed writing {partial}: {str(exc).splitlines()[0]}"
            ) from None
    manifest = {
        "created_at": utc_now().isoformat(),
        "source": str(raw_store_path(db)),
        "row_counts": counts,
        "files": _file_digests(partial),
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    partial.rename(target)  # a snapshot is complete or absent, never half-written
    _prune(root, keep)
    return target


def _snapshots(root: Path) -> list[Path]:
    """Complete snapshots in `root`, oldest first (by the manifest's creation time)."""
    found = (
        [p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).exists()]
        if root.exists()
        else []
    )
    return sorted(found, key=lambda p: json.loads((p / MANIFEST).read_text())["created_at"])


def _prune(root: Path, keep: int) -> None:
    snapshots = _snapshots(root)
    for old in snapshots[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def verify(snapshot: Path) -> dict:
    """Check a snapshot's files against its manifest; return the manifest."""
    manifest_path = snapshot / MANIFEST
    if not manifest_path.exists():
        raise UserError(f"{snapshot}: not a backup (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    actual = _file_digests(snapshot)
    for name, digest in manifest["files"].items():
        if actual.get(name) != digest:
            raise UserError(f"{snapshot}: {name} does not match the manifest checksum")
    return manifest


def restore(snapshot: Path, db: Path | str, overwrite: bool = False) -> Path:
    """Restore a snapshot as the raw store of warehouse `db` (a new file; verified counts)."""
    manifest = verify(snapshot)
    target = raw_store_path(db)
    if target.exists() and not overwrite:
        raise UserError(f"{target} exists; pass --overwrite to replace it")
    staging = target.with_name(target.name + ".restoring")
    staging.unlink(missing_ok=True)
    con = connect(staging)
    try:
        con.execute(f"import database '{_sql_path(snapshot)}'")
        con.execute(SCHEMA)  # tables added since the snapshot exist, empty
        for table, expected in manifest["row_counts"].items():
            got = con.execute(f'select count(*) from "{table}"').fetchone()[0]
            if got != expected:
                raise UserError(
                    f"restore check failed: {table} has {got} rows, the manifest says {expected}"
                )
        con.execute("checkpoint")
    finally:
        con.close()
    staging.replace(target)
    target.with_name(target.name + ".wal").unlink(missing_ok=True)
    return target


def latest(root: Path) -> Path:
    snapshots = _snapshots(root)
    if not snapshots:
        raise UserError(f"no backup in {root}")
    return snapshots[-1]

"""Backups of the raw store: consistent Parquet snapshots with a manifest, and restore.

The marts are derived (dbt rebuilds them), so only the raw store is backed up: the snapshot is
taken under the writer lock, so it is one consistent state. A snapshot holds data only (one
Parquet file per table and `manifest.json` with row counts and sha256 checksums): restore
creates the tables from the code's schema and reads the Parquet files into them, so nothing in
a backup folder is ever executed. With a key (`sign_key`, kept outside the backup folder) the
manifest carries an HMAC-SHA256 signature and restore refuses a snapshot whose signature does not
match: the checksums alone detect corruption, the signature detects tampering.

Crash safety: a snapshot is written as `<id>.<store tag>.partial/` and renamed when complete;
readers (`latest`, retention) see only complete snapshots with a readable manifest, and every
backup sweeps the `.partial` folders a killed or failed run of its store left (under the
store's writer lock, so never one that is being written; another store's are left to it).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ingest.checksum import sha256_of
from ingest.errors import UserError, make_folder
from ingest.interrupts import interrupted
from ingest.sqltext import sql_text
from ingest.stamps import new_run_id, utc_now
from ingest.store.duckdb.store import (
    connect,
    location,
    open_store,
    raw_store_path,
    remove_database,
    restore_staging,
    store_lock,
    upgrade,
)

MANIFEST = "manifest.json"
# Callables told when a restore or a backup reaches a step ("staged": the restore's staging
# file filled and checked, the raw store not yet replaced; "writing": a backup's `.partial`
# folder made, nothing in it yet). The fault tests register one that kills the process there,
# or that backs up another store into the same folder meanwhile.
STEP_HOOKS: list[Callable[[str], None]] = []
DEFAULT_KEEP = 7
PARTIAL = ".partial"
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def default_backup_dir(db: Path | str) -> Path:
    """`backups/` beside the warehouse."""
    return Path(db).parent / "backups"


def _tables(con) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
            " and table_type = 'BASE TABLE' and table_name <> 'schema_migrations' order by 1"
        ).fetchall()
    ]


def table_digests(con, tables: list[str] | None = None) -> dict[str, list]:
    """Per table (default: every table a backup holds): its row count and the sum of its rows'
    hashes, one scan each. Equal digests: equal contents, whoever wrote them."""
    digests = {}
    for table in _tables(con) if tables is None else tables:
        count, total = con.execute(
            f'select count(*), sum(hash(t)::hugeint)::varchar from "{table}" t'
        ).fetchone()
        digests[table] = [count, total]
    return digests


def content_fingerprint(digests: dict[str, list]) -> str:
    """One string for a store's contents (see `table_digests`), as a backup's manifest keeps it."""
    text = json.dumps(digests, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def store_of(db: Path | str) -> str:
    """What a manifest names its raw store by (`store`): the raw store's location, one however
    `--db` spells it. Backups of several stores may share a folder (`--to`): retention, the copy
    of unchanged tables and the build's newest backup are each store's own (`_complete`)."""
    return str(location(raw_store_path(db)))


def _store_in(manifest: dict, root: Path) -> str | None:
    """The raw store a backup in folder `root` is of. Backups written before `store` was
    recorded have only `source`, the raw store's path as the command spelled it: an absolute
    one names its store; a relative one (the default --db) was relative to a working folder
    nobody recorded, so it is read from where the backup is, never from where a command runs
    now: the store beside `root` when `root` is that path's own backup folder (`backups/`
    beside it, `default_backup_dir`, where the nightly build and `itrack backup` without `--to`
    write), else None. None (no `source`, or a relative one in another folder): kept, never
    pruned by a guess, restored only by name."""
    store = manifest.get("store")
    if isinstance(store, str):
        return store
    source = manifest.get("source")
    if not isinstance(source, str) or not source:
        return None
    if Path(source).is_absolute():
        return str(location(source))
    own = default_backup_dir(source).parts  # e.g. ("data", "backups")
    for folder in (root.absolute(), location(root)):  # as given, or its folders' links resolved
        if ".." not in own and folder.parts[-len(own) :] == own:
            return str(location(folder.parent / Path(source).name))
    return None


def newest_fingerprint(root: Path, db: Path | str, sign_key: bytes | None = None) -> str | None:
    """The content fingerprint of the newest complete backup of `db`'s raw store in `root`
    (None: no backup, or one written before backups recorded it, or, given a key, one the key
    did not sign: a restore with the key would pass it over)."""
    snapshots = _complete(root, store_of(db))
    if not snapshots or (sign_key is not None and not _signed_by(snapshots[-1][1], sign_key)):
        return None
    fingerprint = snapshots[-1][1].get("fingerprint")
    return fingerprint if isinstance(fingerprint, str) else None


def _signature(manifest: dict, key: bytes) -> str:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def check_key_outside(key_file: Path, folder: Path, named: str | None = None) -> None:
    """Refuse a signing key inside the backup folder: it would travel with every copy of the
    backups, and whoever can change a backup could sign it anew, so the signature would vouch
    for nothing. Both the path as given (its folder's symlinks resolved) and the file it links
    to count: a link inside the folder is copied along as the key by `cp -rL`. `named`: how
    the error names the key (default `--key-file <path>`)."""
    inside = folder.resolve()
    if any(path.is_relative_to(inside) for path in (location(key_file), key_file.resolve())):
        raise UserError(
            f"{named or f'--key-file {key_file}'} is inside the backup folder {folder}: keep "
            "the key outside it, or it travels with the backups it signs"
        )


def _signed_by(manifest: dict, key: bytes) -> bool:
    """Whether the manifest carries the signature `key` gives its contents."""
    given = manifest.get("signature")
    return isinstance(given, str) and hmac.compare_digest(given, _signature(manifest, key))


def backup(
    db: Path | str,
    to: Path | None = None,
    keep: int = DEFAULT_KEEP,
    wait_seconds: float = 0.0,
    sign_key: bytes | None = None,
) -> Path:
    """Snapshot the raw store into `<to>/<backup id>/` and keep the newest `keep` snapshots."""
    root, store = to or default_backup_dir(db), store_of(db)
    target = root / new_run_id("backup")
    partial = target.with_name(f"{target.name}.{_tag(store)}{PARTIAL}")
    if not raw_store_path(db).exists():  # a wrong --db: no empty backup folder, no new store
        with open_store(db, wait_seconds, create=False):
            pass
    make_folder(root, "--to" if to else "backup folder")
    with open_store(db, wait_seconds, create=False) as con:
        _sweep_partials(root, store)  # under the lock: no backup of this store runs
        try:
            partial.mkdir()
            for hook in STEP_HOOKS:
                hook("writing")
            digests = table_digests(con)  # what the next build compares the store with
            columns = _columns(con)
            counts = {table: count for table, (count, _) in digests.items()}
            reusable = _reusable(_complete(root, store), digests, columns, sign_key)
            # a table's rows in any order (a restore compares contents, never positions): the
            # Parquet writer then runs on every core (1.2 -> 0.9 s at 1M records)
            con.execute("set preserve_insertion_order = false")
            checksums: dict[str, str] = {}
            for table in counts:
                target_file = partial / f"{table}.parquet"
                if table in reusable and _copied(*reusable[table], target_file):
                    checksums[target_file.name] = reusable[table][1]
                    continue
                con.execute(
                    f'copy (select * from "{table}") to {sql_text(str(target_file))}'
                    " (format parquet)"
                )
            manifest = {
                "created_at": utc_now().isoformat(),
                "source": str(raw_store_path(db)),
                "store": store,
                "row_counts": counts,
                "fingerprint": content_fingerprint(digests),
                "digests": digests,
                "columns": columns,
                "files": {
                    p.name: checksums.get(p.name) or sha256_of(p) for p in sorted(partial.iterdir())
                },
            }
            if sign_key:
                manifest["signature"] = _signature(manifest, sign_key)
            _write_synced(partial / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            partial.rename(target)  # a snapshot is complete or absent, never half-written
        except UserError:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        except Exception as exc:  # disk full, read-only folder: nothing half-written stays
            shutil.rmtree(partial, ignore_errors=True)
            _reraise_interrupt(exc)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise UserError(
                f"backup failed writing {partial}: {reason}; no snapshot was written"
            ) from None
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    _prune(root, keep, store)
    return target


def _reraise_interrupt(exc: Exception) -> None:
    """Ctrl-C during a DuckDB query (`interrupted`) is the interrupt it is (exit 130,
    "interrupted"), not a backup file that "does not fit" or a failed write, which sent the
    operator after a sound backup."""
    if interrupted(exc):
        raise KeyboardInterrupt from None


def _columns(con) -> dict[str, str]:
    """Per table its columns and their types, in order: with equal digests, what makes a
    table's Parquet file of the last backup this table's file too."""
    rows = con.execute(
        "select table_name, string_agg(column_name || ' ' || data_type, ', ' order by"
        " ordinal_position) from information_schema.columns where table_schema = 'main'"
        " group by table_name"
    ).fetchall()
    return dict(rows)


def _reusable(
    snapshots: list[tuple[Path, dict]],
    digests: dict[str, list],
    columns: dict[str, str],
    sign_key: bytes | None,
) -> dict[str, tuple[Path, str]]:
    """Table -> (its Parquet file in the newest of the store's `snapshots`, that file's sha256)
    for every table
    whose contents (digest) and columns are the same now: a nightly build backs up a raw store
    whose big tables have not changed since the last build's backup (only its audit rows
    have), and copying those files replaces writing them again. With a key, only from a backup
    whose signature matches it, so a checksum of someone else's making is never signed anew
    (`_copied` checks each file against its checksum)."""
    if not snapshots:
        return {}
    newest, manifest = snapshots[-1]
    if not isinstance(manifest.get("digests"), dict):
        return {}
    if sign_key is not None and not _signed_by(manifest, sign_key):
        return {}
    old_columns = manifest.get("columns")
    old_columns = old_columns if isinstance(old_columns, dict) else {}
    reusable = {}
    for table, digest in digests.items():
        checksum = manifest["files"].get(f"{table}.parquet")
        if (
            manifest["digests"].get(table) == digest
            and old_columns.get(table) == columns.get(table)
            and isinstance(checksum, str)
        ):
            reusable[table] = (newest / f"{table}.parquet", checksum)
    return reusable


def _copied(source: Path, checksum: str, target: Path) -> bool:
    """Copy a file of an earlier backup, hashing it on the way: False (nothing left at
    `target`) when it no longer has the checksum its manifest recorded (corrupted or tampered
    with: the table is written anew, so a damaged file is never carried into a new backup) or
    is gone (pruned by another backup)."""
    digest = hashlib.sha256()
    try:
        with source.open("rb") as reader, target.open("wb") as writer:
            while chunk := reader.read(1 << 22):
                digest.update(chunk)
                writer.write(chunk)
    except OSError:
        target.unlink(missing_ok=True)
        return False
    if digest.hexdigest() != checksum:
        target.unlink()
        return False
    return True


def _write_synced(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _tag(store: str) -> str:
    """A store's mark in the names of its `.partial` folders (`<id>.<tag>.partial`)."""
    return hashlib.sha256(store.encode()).hexdigest()[:12]


def _sweep_partials(root: Path, store: str) -> None:
    """Remove the `.partial` folders killed backups of `store` left. Only its own: the writer
    lock held is this store's, and another store's backup may be writing its `.partial` into
    the same folder right now. One named without a tag (`<id>.partial`, by the code before)
    is anyone's leftover, as it always was."""
    for stale in root.glob(f"*{PARTIAL}"):
        stem = stale.name.removesuffix(PARTIAL)
        if "." not in stem or stem.endswith(f".{_tag(store)}"):
            shutil.rmtree(stale, ignore_errors=True)


def _read_manifest(snapshot: Path) -> dict | None:
    """The manifest of a complete snapshot, or None (partial, missing, unreadable, not ours)."""
    if snapshot.name.endswith(PARTIAL) or not snapshot.is_dir():
        return None
    try:
        manifest = json.loads((snapshot / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not (
        isinstance(manifest, dict)
        and isinstance(manifest.get("created_at"), str)
        and isinstance(manifest.get("row_counts"), dict)
        and isinstance(manifest.get("files"), dict)
    ):
        return None
    return manifest


def _complete(root: Path, store: str | None = None) -> list[tuple[Path, dict]]:
    """Complete, readable snapshots in `root` with their manifests, read once (given a `store`,
    only those of that raw store: see `store_of`), oldest first (by the manifest's creation
    time)."""
    found = []
    for path in root.iterdir() if root.is_dir() else []:
        manifest = _read_manifest(path)
        if manifest is not None and (store is None or _store_in(manifest, root) == store):
            found.append((manifest["created_at"], path.name, path, manifest))
    return [(path, manifest) for _, _, path, manifest in sorted(found, key=lambda f: f[:2])]


def _prune(root: Path, keep: int, store: str) -> None:
    """Keep the newest `keep` backups of `store`; another store's in the folder are its own."""
    snapshots = [path for path, _ in _complete(root, store)]
    for old in snapshots[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def verify(snapshot: Path, sign_key: bytes | None = None) -> dict:
    """Check a snapshot's files against its manifest (and signature); return the manifest."""
    if snapshot.name.endswith(PARTIAL):
        raise UserError(f"{snapshot}: an incomplete backup (a failed or killed run left it)")
    if not (snapshot / MANIFEST).is_file():
        raise UserError(f"{snapshot}: not a backup (no {MANIFEST})")
    manifest = _read_manifest(snapshot)
    if manifest is None:
        raise UserError(f"{snapshot}: {MANIFEST} is unreadable or incomplete; not restored")
    if sign_key is not None and "signature" not in manifest:  # not a wrong key: no signature
        raise UserError(
            f"{snapshot}: the manifest is not signed (backed up without --key-file), "
            "so the key cannot vouch for it; not restored"
        )
    if sign_key is not None and not _signed_by(manifest, sign_key):
        raise UserError(f"{snapshot}: the manifest's signature does not match the key")
    for name, digest in manifest["files"].items():
        path = snapshot / str(name)
        if "/" in str(name) or name in ("", ".", "..") or not path.is_file():
            raise UserError(f"{snapshot}: {name} is missing or not a file")
        if sha256_of(path) != digest:
            raise UserError(f"{snapshot}: {name} does not match the manifest checksum")
    return manifest


def restore(
    snapshot: Path,
    db: Path | str,
    overwrite: bool = False,
    wait_seconds: float = 0.0,
    sign_key: bytes | None = None,
) -> Path:
    """Restore a snapshot as the raw store of warehouse `db` (verified counts), under the writer
    lock: a writer that started first finishes before, one that starts later waits or exits 2.

    The tables come from the code's schema; the snapshot only contributes rows (Parquet read
    by column name). Its own SQL (`schema.sql`, `load.sql` of older snapshots) is never run.
    The snapshot is verified under the lock, right before it is read: while a restore waits,
    a backup's retention may prune it, or a file may change after a check made earlier."""
    target = raw_store_path(db)
    with store_lock(target, wait_seconds):  # which removes a killed restore's staging file
        manifest = verify(snapshot, sign_key)
        if target.exists() and not overwrite:
            raise UserError(f"{target} exists; pass --overwrite to replace it")
        staging = restore_staging(target)
        try:
            _fill(staging, snapshot, manifest)
            for hook in STEP_HOOKS:
                hook("staged")
            staging.replace(target)
            target.with_name(target.name + ".wal").unlink(missing_ok=True)
        finally:
            remove_database(staging)
    return target


def _fill(staging: Path, snapshot: Path, manifest: dict) -> None:
    con = connect(staging)
    try:
        upgrade(con)  # the code's schema, versioned; tables added since the snapshot stay empty
        known = set(_tables(con))
        for table, expected in manifest["row_counts"].items():
            if table == "schema_migrations":  # schema, not data: the restored store's is current
                continue
            if not isinstance(table, str) or not _TABLE_NAME.match(table) or table not in known:
                raise UserError(f"{snapshot}: unknown table '{table}' in the manifest")
            source = snapshot / f"{table}.parquet"
            if source.name not in manifest["files"]:
                raise UserError(f"{snapshot}: no checksummed {source.name}")
            try:
                con.execute(
                    f'insert into "{table}" by name select * from read_parquet(?)', [str(source)]
                )
            except Exception as exc:  # duckdb.Error: columns or types that do not fit
                _reraise_interrupt(exc)
                reason = str(exc).strip().splitlines()[0]
                raise UserError(
                    f"{snapshot}: {source.name} does not fit table {table}: {reason}"
                ) from None
            got = con.execute(f'select count(*) from "{table}"').fetchone()[0]
            if got != expected:
                raise UserError(
                    f"restore check failed: {table} has {got} rows, the manifest says {expected}"
                )
        con.execute("checkpoint")
    finally:
        with contextlib.suppress(Exception):
            con.close()


class Chosen(NamedTuple):
    """What `latest` takes from a folder of backups."""

    snapshot: Path
    passed_over: list[Path]  # the store's newer backups the key did not sign
    store: str | None  # the raw store the snapshot is a backup of


def latest(
    root: Path, db: Path | str, sign_key: bytes | None = None, elsewhere: bool = False
) -> Chosen:
    """The backup `itrack restore <folder> --db DB` restores, and the newer ones it passes over:
    the newest complete backup of `db`'s raw store (see `store_of`); with a key, the newest of
    them whose manifest the key signed. Another store's backups in the folder are never taken
    in its place: a folder with none of the store's is refused, naming the stores it holds and
    the newest backup of each (`itrack restore <backup folder>` restores one by name), except
    that with `elsewhere` (a restore that replaces nothing: a copy, a new machine) the backups
    of the one store the folder holds are taken. A backup the key did not sign (taken without a
    key, or with another key, or planted) is never restored with it, and one newer than every
    signed backup would else stop every restore with the key. Only the signature decides: a
    chosen backup whose files do not match its manifest is refused by `verify`, as without a
    key, never replaced by an older one."""
    everyone = _complete(root)
    if not everyone:
        raise UserError(f"no complete backup in {root}")
    store = store_of(db)
    found = [(path, m) for path, m in everyone if _store_in(m, root) == store]
    if not found:
        newest = {_store_in(m, root): path.name for path, m in everyone}
        if not (elsewhere and len(newest) == 1):
            held = ", ".join(
                f"{name or 'an unrecorded store'} (newest {backup})"
                for name, backup in newest.items()
            )
            raise UserError(
                f"no backup in {root} is of the raw store {store}; it holds backups of {held}: "
                f"to restore one of them, name it (itrack restore {root}/<backup>)"
            )
        found, [store] = everyone, newest
    snapshots = [path for path, _ in found]
    signed = [path for path, m in found if sign_key is None or _signed_by(m, sign_key)]
    if not signed:
        raise UserError(
            f"no backup in {root} is signed with the key ({len(snapshots)} complete, the newest "
            f"{snapshots[-1].name}); not restored"
        )
    return Chosen(signed[-1], snapshots[snapshots.index(signed[-1]) + 1 :], store)

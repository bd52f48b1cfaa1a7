"""Backups: a verified snapshot of the raw store, and recovery from a corrupted database."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ingest.errors import UserError
from ingest.load import ingest_paths
from ingest.store.duckdb import backup as backups
from ingest.store.duckdb.backup import MANIFEST, backup, newest_fingerprint, restore, verify
from ingest.store.duckdb.store import open_store, raw_store_path
from itrack.cli.main import app
from itrack.generate import generate
from itrack.pipeline import run_build
from itrack.settings import from_environment, get_settings
from tests.conftest import assert_exit

runner = CliRunner()


def out(*args: str) -> str:
    """`itrack ARGS...` through the main app: exit 0, its stdout."""
    result = runner.invoke(app, list(args))
    assert_exit(result, 0)
    return result.stdout


def err(*args: str, code: int = 2) -> str:
    """`itrack ARGS...` refused: exit `code`, nothing on stdout, its stderr."""
    result = runner.invoke(app, list(args))
    assert_exit(result, code)
    assert result.stdout == ""
    return result.stderr


def new_store(db, watermarks: int = 0) -> None:
    """A raw store, its schema current, with `watermarks` rows (stores of other contents)."""
    with open_store(db) as con:
        con.execute(
            "insert into extract_watermarks select 'src', 't' || i, null, 'run', now()"
            " from range(?) r(i)",
            [watermarks],
        )


def backed_up(db, to, *args: str) -> str:
    """`itrack backup --db DB --to TO ARGS...`: the name of the backup it wrote."""
    written = out("backup", "--db", str(db), "--to", str(to), *args)
    return written.removeprefix(f"backup written: {to}/").strip()


def marts(db) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: sorted(map(repr, con.execute(f"select * exclude ({ex}) from {t}").fetchall()))
            for t, ex in (
                ("mart_feeder_conversion", "pipeline_depth"),
                ("mart_conversion_funnel", "funnel_row_id"),
                ("fct_interview_processes", "offer_details"),
            )
        }
    finally:
        con.close()


def test_manifest_counts_checksums_and_retention(tmp_path):
    generate(tmp_path / "in", 60, seed=4)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    snapshots = [backup(db, tmp_path / "bk", keep=2) for _ in range(3)]
    kept = sorted(p.name for p in (tmp_path / "bk").iterdir())
    assert kept == sorted(p.name for p in snapshots[1:])
    manifest = json.loads((snapshots[-1] / MANIFEST).read_text())
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    assert (
        manifest["row_counts"]["interview_stages"]
        == con.execute("select count(*) from interview_stages").fetchone()[0]
    )
    con.close()
    assert all(len(digest) == 64 for digest in manifest["files"].values())
    tampered = snapshots[-1] / "interview_stages.parquet"
    tampered.write_bytes(tampered.read_bytes()[:-10])
    with pytest.raises(UserError, match="does not match the manifest"):
        restore(snapshots[-1], tmp_path / "other.duckdb")


def test_corrupt_database_restored_and_rebuilt_gives_the_same_outputs(tmp_path, shared_plans):
    generate(tmp_path / "in", 300, seed=6)
    db = tmp_path / "warehouse.duckdb"
    quiet = {"write_html": False, "note": lambda _m: None}
    run_build([tmp_path / "in"], db=db, take_backup=False, **quiet, plan_cache=shared_plans)
    before, feeders = marts(db), json.loads((tmp_path / "feeders.json").read_text())
    snapshot = backup(db, tmp_path / "bk")
    raw = raw_store_path(db)
    data = bytearray(raw.read_bytes())
    data[4096:8192] = b"\xde\xad" * 2048  # corrupt the file's header blocks
    raw.write_bytes(bytes(data))
    broken = CliRunner().invoke(app, ["ingest", str(tmp_path / "in"), "--db", str(db)])
    assert_exit(broken, 2)
    restored = CliRunner().invoke(
        app, ["restore", str(tmp_path / "bk"), "--db", str(db), "--overwrite"]
    )
    assert restored.exit_code == 0, restored.output
    assert str(snapshot) in restored.output
    db.unlink()  # rebuild the warehouse from the restored raw store alone
    run_build([tmp_path / "in"], db=db, take_backup=False, **quiet)
    assert marts(db) == before
    after = json.loads((tmp_path / "feeders.json").read_text())
    assert {
        k: {m: v for m, v in e["metrics"].items() if m != "updated_at"}
        for k, e in after["feeders"].items()
    } == {
        k: {m: v for m, v in e["metrics"].items() if m != "updated_at"}
        for k, e in feeders["feeders"].items()
    }


def _recode(snapshot, table: str, db) -> bytes:
    """Write `table` of the raw store into `snapshot` as zstd Parquet (the same rows, other
    bytes than a backup writes) and record its checksum in the (unsigned) manifest."""
    import hashlib

    path = snapshot / f"{table}.parquet"
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    con.execute(f"copy {table} to '{path}' (format parquet, compression zstd)")
    con.close()
    manifest = json.loads((snapshot / MANIFEST).read_text())
    manifest["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (snapshot / MANIFEST).write_text(json.dumps(manifest))
    return path.read_bytes()


def _rows(db, table: str) -> list:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(map(repr, con.execute(f"select * from {table}").fetchall()))
    finally:
        con.close()


def test_a_table_unchanged_since_the_newest_backup_is_copied_from_it(tmp_path):
    """A nightly build backs up a raw store whose big tables the last backup holds already:
    their files are copied (checked against their checksums) instead of written again; a
    changed table, a file that lost its checksum and a manifest the key did not sign are
    written anew, and every backup restores to the raw store it was taken of."""
    generate(tmp_path / "in", 60, seed=4)
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([tmp_path / "in"], db=db)
    first = backup(db, tmp_path / "bk")
    recoded = _recode(first, "interview_stages", db)
    con = duckdb.connect(str(raw_store_path(db)))
    con.execute("update candidates set full_name = full_name || ' Jr' where rowid % 2 = 0")
    con.close()

    second = backup(db, tmp_path / "bk")
    assert (second / "interview_stages.parquet").read_bytes() == recoded  # copied
    fresh = tmp_path / "fresh.duckdb"
    restore(second, fresh)
    for table in ("candidates", "interview_stages", "interview_processes"):
        assert _rows(raw_store_path(fresh), table) == _rows(raw_store_path(db), table)
    manifest = json.loads((second / MANIFEST).read_text())
    assert (
        manifest["digests"]["candidates"]
        != json.loads((first / MANIFEST).read_text())["digests"]["candidates"]
    )

    # the newest backup's file damaged: the next backup writes the table anew
    damaged = second / "interview_stages.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-10])
    third = backup(db, tmp_path / "bk")
    assert (third / "interview_stages.parquet").read_bytes() not in (recoded, damaged.read_bytes())
    restore(third, tmp_path / "third.duckdb")
    assert _rows(raw_store_path(tmp_path / "third.duckdb"), "interview_stages") == _rows(
        raw_store_path(db), "interview_stages"
    )

    # signed: a manifest edited without the key is not trusted for copies
    signed = backup(db, tmp_path / "bk", sign_key=b"k")
    recoded = _recode(signed, "interview_stages", db)
    after = backup(db, tmp_path / "bk", sign_key=b"k")
    assert (after / "interview_stages.parquet").read_bytes() != recoded
    restore(after, tmp_path / "after.duckdb", sign_key=b"k")


def test_backups_of_two_stores_in_one_folder_keep_each_other(tmp_path):
    """Found by backing up two raw stores into one `--to` folder: retention kept the newest
    `--keep` backups of the folder, whoever they were of, so `itrack backup --db b --keep 1`
    removed every backup of store a (and the nightly build's backup does the same to the
    stores beside its warehouse). Fails before the fix (a's backups were pruned)."""
    first, second, bk = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "bk"
    new_store(first)
    new_store(second, watermarks=1)
    a1 = backed_up(first, bk, "--keep", "2")
    b1 = backed_up(second, bk, "--keep", "1")
    a2 = backed_up(first, bk, "--keep", "2")
    b2 = backed_up(second, bk, "--keep", "1")
    assert sorted(p.name for p in bk.iterdir()) == sorted([a1, a2, b2])
    # the build's "the newest backup holds the raw store as it is" is of its own store too
    assert (
        newest_fingerprint(bk, first) == json.loads((bk / a2 / MANIFEST).read_text())["fingerprint"]
    )
    a3 = backed_up(first, bk, "--keep", "2")
    assert sorted(p.name for p in bk.iterdir()) == sorted([a2, a3, b2])
    assert b1 not in (a1, a2, a3)
    manifest = json.loads((bk / a3 / MANIFEST).read_text())
    assert (manifest["source"], manifest["store"]) == (
        str(raw_store_path(first)),
        str(tmp_path.resolve() / "a.raw.duckdb"),
    )


def _unrecorded(snapshot: Path) -> None:
    """Make `snapshot`'s manifest as the code before wrote it: no `store`."""
    manifest = json.loads((snapshot / MANIFEST).read_text())
    del manifest["store"]
    (snapshot / MANIFEST).write_text(json.dumps(manifest))


def test_backups_from_before_the_store_was_recorded_restore_and_are_pruned(tmp_path, monkeypatch):
    """Backups written before manifests recorded `store` name their raw store by `source`, as
    the command spelled it (relative with the default --db): in the store's own backup folder
    (`backups/` beside it) they are the store's own, pruned with its newer backups and restored
    as ever; another store's backups beside them stay."""
    monkeypatch.chdir(tmp_path)
    mine, other = Path("data/warehouse.duckdb"), Path("other/warehouse.duckdb")
    bk = Path("data/backups")  # mine's own backup folder (see the next test)
    new_store(mine)
    new_store(other)
    old = [backed_up(mine, bk, "--keep", "9"), backed_up(other, bk, "--keep", "9")]
    for name in old:
        _unrecorded(bk / name)
    assert out("restore", str(bk / old[0]), "--db", "restored.duckdb") == (
        f"restored {bk / old[0]} -> restored.raw.duckdb\n"
    )
    newer = backed_up(mine, bk, "--keep", "1")
    assert sorted(p.name for p in bk.iterdir()) == sorted([old[1], newer])


def test_a_relative_source_names_the_store_beside_its_backup_folder_wherever_one_runs(
    tmp_path, monkeypatch
):
    """Found by running commands from another folder on a backup folder of older backups
    (manifests with only `source`, relative with the default --db): `source` was read from the
    working folder, so there the backups of data/warehouse were taken as x/data/warehouse's:
    `itrack restore ../data/backups --db data/warehouse.duckdb --overwrite` run in x/ put them
    into x's store, and x's `backup --keep 1` into that folder pruned them. A relative `source`
    now names the store beside its backup folder when that is its own (`backups/` beside it),
    else no store. Fails before the fix (x's store got the other store's backup)."""
    monkeypatch.chdir(tmp_path)
    mine, bk, x = Path("data/warehouse.duckdb"), Path("data/backups"), tmp_path / "x"
    new_store(mine, watermarks=1)
    new_store(x / mine, watermarks=2)
    old = backed_up(mine, bk)
    elsewhere = backed_up(mine, Path("bk"))  # a relative source in a folder not its own
    _unrecorded(bk / old)
    _unrecorded(Path("bk") / elsewhere)
    here = tmp_path.resolve()

    monkeypatch.chdir(x)  # where `data/warehouse.duckdb` is another store
    assert err("restore", "../data/backups", "--db", str(mine), "--overwrite") == (
        f"error: no backup in ../data/backups is of the raw store "
        f"{here / 'x/data/warehouse.raw.duckdb'}; it holds backups of "
        f"{here / 'data/warehouse.raw.duckdb'} (newest {old}): to restore one of them, name it "
        "(itrack restore ../data/backups/<backup>)\n"
    )
    assert err("restore", "../bk", "--db", str(mine), "--overwrite") == (
        f"error: no backup in ../bk is of the raw store {here / 'x/data/warehouse.raw.duckdb'}; "
        f"it holds backups of an unrecorded store (newest {elsewhere}): to restore one of them, "
        "name it (itrack restore ../bk/<backup>)\n"
    )
    x_backup = backed_up(mine, Path("../data/backups"), "--keep", "1")
    assert sorted(p.name for p in (tmp_path / bk).iterdir()) == sorted([old, x_backup])

    monkeypatch.chdir(tmp_path)
    newer = backed_up(mine, bk, "--keep", "1")  # the old backup is mine's: pruned, x's kept
    assert sorted(p.name for p in bk.iterdir()) == sorted([x_backup, newer])
    assert [p.name for p in Path("bk").iterdir()] == [elsewhere]


def test_a_key_file_inside_the_backup_folder_is_refused(tmp_path):
    """Found by reading the --key-file help ("kept outside the backup folder"): nothing checked
    it, so `itrack backup --to bk --key-file bk/backup.key` signed with a key that travels with
    the backups, and whoever can change a backup could sign it anew. Backup and restore refuse
    it, exit 2 as every bad input, before anything is written. Fails before the fix (exit 0)."""
    db, bk = tmp_path / "data" / "warehouse.duckdb", tmp_path / "data" / "backups"
    new_store(db)
    bk.mkdir()
    key = bk / "backup.key"
    key.write_text("s3cret\n")
    refusal = (
        f"error: --key-file {key} is inside the backup folder {{}}: keep the key outside it, "
        "or it travels with the backups it signs\n"
    )
    assert err("backup", "--db", str(db), "--to", str(bk), "--key-file", str(key)) == (
        refusal.format(bk)
    )
    assert err("backup", "--db", str(db), "--key-file", str(key)) == refusal.format(bk)
    assert [p.name for p in bk.iterdir()] == ["backup.key"]  # no backup written

    outside = tmp_path / "backup.key"
    outside.write_text("s3cret\n")
    snapshot = bk / backed_up(db, bk, "--key-file", str(outside))
    restored = tmp_path / "restored.duckdb"
    assert err("restore", str(bk), "--db", str(restored), "--key-file", str(key)) == (
        refusal.format(bk)
    )
    assert err("restore", str(snapshot), "--db", str(restored), "--key-file", str(key)) == (
        refusal.format(bk)
    )
    linked = snapshot / "key"  # a link inside the folder is refused as the file it names
    linked.symlink_to(outside)
    assert err("restore", str(snapshot), "--db", str(restored), "--key-file", str(linked)) == (
        f"error: --key-file {linked} is inside the backup folder {bk}: keep the key outside "
        "it, or it travels with the backups it signs\n"
    )
    assert not raw_store_path(restored).exists()
    assert out("restore", str(snapshot), "--db", str(restored), "--key-file", str(outside)) == (
        f"restored {snapshot} -> {raw_store_path(restored)}\n"
    )


def test_restore_with_a_key_takes_the_newest_backup_the_key_signed(tmp_path):
    """Found by restoring a folder where the nightly build (unsigned) and `itrack backup
    --key-file` both write: `itrack restore bk --key-file K` took the newest backup, unsigned,
    and stopped there (exit 2), so no restore with the key ever got past a newer unsigned or
    otherwise signed backup. Now the newest the key signed is restored and the newer ones are
    named; none signed is one line naming the folder. Fails before the fix (exit 2)."""
    db, bk = tmp_path / "warehouse.duckdb", tmp_path / "bk"
    new_store(db, watermarks=2)
    key, other = tmp_path / "backup.key", tmp_path / "other.key"
    key.write_text("s3cret\n")
    other.write_text("another\n")
    signed = backed_up(db, bk, "--key-file", str(key))
    with open_store(db) as con:
        con.execute("delete from extract_watermarks")
    unsigned = backed_up(db, bk)
    signed_otherwise = backed_up(db, bk, "--key-file", str(other))
    restored = tmp_path / "restored.duckdb"
    assert out("restore", str(bk), "--db", str(restored), "--key-file", str(key)) == (
        f"restored {bk / signed} -> {raw_store_path(restored)}\n"
        f"the folder holds no backup of {tmp_path.resolve() / 'restored.raw.duckdb'}: this one "
        f"is of {tmp_path.resolve() / 'warehouse.raw.duckdb'}, the one store it holds\n"
        f"passed over 2 newer backup(s) not signed with the key: {unsigned}, {signed_otherwise}\n"
    )
    con = duckdb.connect(str(raw_store_path(restored)), read_only=True)
    names = con.execute("select table_name from extract_watermarks order by 1").fetchall()
    con.close()
    assert names == [("t0",), ("t1",)]  # the signed backup's rows (the store has none now)

    (bk / signed).rename(tmp_path / signed)  # only backups the key did not sign are left
    assert err("restore", str(bk), "--db", str(tmp_path / "x.duckdb"), "--key-file", str(key)) == (
        f"error: no backup in {bk} is signed with the key (2 complete, the newest "
        f"{signed_otherwise}); not restored\n"
    )
    assert not raw_store_path(tmp_path / "x.duckdb").exists()


def test_a_backup_never_sweeps_the_one_another_store_is_writing_into_the_folder(tmp_path):
    """Found by backing up two raw stores into one folder at the same time: each backup
    sweeps the `.partial` folders of the folder, leftovers of killed runs, under its own
    store's lock, which does not stop another store's backup, so store a's backup removed the
    one store b was writing and b's failed ("backup failed writing ..."). A backup sweeps
    only its own store's leftovers. Fails before the fix (b's backup failed)."""
    first, second, bk = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "bk"
    new_store(first)
    new_store(second, watermarks=1)
    written: list[str] = []

    def meanwhile(step: str) -> None:  # b's partial made: back up a into the same folder
        if step == "writing" and meanwhile in backups.STEP_HOOKS:
            backups.STEP_HOOKS.remove(meanwhile)  # (a's own backup reaches "writing" too)
            written.append(backed_up(first, bk))

    backups.STEP_HOOKS.append(meanwhile)
    try:
        b = backed_up(second, bk)
    finally:
        if meanwhile in backups.STEP_HOOKS:
            backups.STEP_HOOKS.remove(meanwhile)
    assert len(written) == 1
    assert sorted(p.name for p in bk.iterdir()) == sorted([*written, b])
    assert json.loads((bk / b / MANIFEST).read_text())["row_counts"]["extract_watermarks"] == 1


def test_restore_of_a_folder_takes_only_the_backups_of_the_store_restored(tmp_path):
    """Found by restoring a folder two raw stores back up into: `itrack restore bk --db a
    --overwrite` restored the newest backup of the folder, b's, so store a silently held b's
    rows. Now only a's backups are restored over a; a folder with none of the store's is
    refused in one line naming the stores there and their newest backups, except that a
    restore replacing nothing (no --overwrite: a copy, a new machine) takes the backups of the
    one store a folder holds, and says so. Fails before the fix (a got b's rows)."""
    first, second, bk = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "bk"
    new_store(first, watermarks=1)
    new_store(second, watermarks=3)
    a1 = backed_up(first, bk)
    b1 = backed_up(second, bk)
    assert out("restore", str(bk), "--db", str(first), "--overwrite") == (
        f"restored {bk / a1} -> {raw_store_path(first)}\n"
    )
    con = duckdb.connect(str(raw_store_path(first)), read_only=True)
    names = con.execute("select table_name from extract_watermarks").fetchall()
    con.close()
    assert names == [("t0",)]  # a's one row, not b's three

    here = tmp_path.resolve()
    third = tmp_path / "c.duckdb"
    assert err("restore", str(bk), "--db", str(third)) == (
        f"error: no backup in {bk} is of the raw store {here / 'c.raw.duckdb'}; it holds "
        f"backups of {here / 'a.raw.duckdb'} (newest {a1}), {here / 'b.raw.duckdb'} (newest "
        f"{b1}): to restore one of them, name it (itrack restore {bk}/<backup>)\n"
    )
    assert not raw_store_path(third).exists()
    assert out("restore", str(bk / b1), "--db", str(third)) == (
        f"restored {bk / b1} -> {raw_store_path(third)}\n"
    )

    only_b = tmp_path / "only-b"
    b2 = backed_up(second, only_b)
    assert err("restore", str(only_b), "--db", str(first), "--overwrite") == (
        f"error: no backup in {only_b} is of the raw store {here / 'a.raw.duckdb'}; it holds "
        f"backups of {here / 'b.raw.duckdb'} (newest {b2}): to restore one of them, name it "
        f"(itrack restore {only_b}/<backup>)\n"
    )
    copy = tmp_path / "copy.duckdb"
    assert out("restore", str(only_b), "--db", str(copy)) == (
        f"restored {only_b / b2} -> {raw_store_path(copy)}\n"
        f"the folder holds no backup of {here / 'copy.raw.duckdb'}: this one is of "
        f"{here / 'b.raw.duckdb'}, the one store it holds\n"
    )


def _backup_step(*args: str) -> str | None:
    """`itrack build ARGS... --format json`: what its backup step did (None: no backup step)."""
    steps = json.loads(out("build", *args, "--no-html", "--format", "json"))["steps"]
    return next((step["result"] for step in steps if step["name"] == "backup"), None)


def test_the_nightly_build_signs_its_backups_with_the_configured_key(tmp_path, monkeypatch):
    """Found by configuring signed backups for a nightly job: only `itrack backup --key-file`
    signed, the build's own backups never, so `itrack restore --key-file` passed over every
    nightly backup. With ITRACK_BACKUP_KEY_FILE the build signs its backups (and a newest
    backup the key did not sign is not taken as current); restore verifies them with that key
    (its default --key-file) and refuses them with another. Fails before the fix (unsigned)."""
    generate(tmp_path / "in", 40, seed=7)
    db, bk = tmp_path / "data" / "warehouse.duckdb", tmp_path / "data" / "backups"
    build = (str(tmp_path / "in"), "--db", str(db))
    key, wrong = tmp_path / "backup.key", tmp_path / "wrong.key"
    key.write_text("s3cret\n")
    wrong.write_text("another\n")
    assert _backup_step(*build) is None  # a first build: no raw store before it
    unsigned = Path(_backup_step(*build))  # no key configured: an unsigned backup
    assert "signature" not in json.loads((unsigned / MANIFEST).read_text())

    monkeypatch.setenv("ITRACK_BACKUP_KEY_FILE", str(key))
    get_settings.cache_clear()
    try:
        signed = Path(_backup_step(*build))  # the raw store as backed up, but not signed
        assert sorted(bk.iterdir()) == sorted([unsigned, signed])
        assert verify(signed, b"s3cret")["fingerprint"] == newest_fingerprint(bk, db, b"s3cret")
        assert _backup_step(*build) == "skipped: the newest backup holds the raw store as it is"
        copy = tmp_path / "copy.duckdb"
        assert out("restore", str(bk), "--db", str(copy)) == (
            f"restored {signed} -> {raw_store_path(copy)}\n"
            f"the folder holds no backup of {tmp_path.resolve() / 'copy.raw.duckdb'}: this one "
            f"is of {raw_store_path(db)}, the one store it holds\n"
        )
        assert (
            err(
                "restore", str(signed), "--db", str(tmp_path / "x.duckdb"), "--key-file", str(wrong)
            )
            == f"error: {signed}: the manifest's signature does not match the key\n"
        )
        assert err(
            "restore", str(bk), "--db", str(db), "--overwrite", "--key-file", str(wrong)
        ) == (
            f"error: no backup in {bk} is signed with the key (2 complete, the newest "
            f"{signed.name}); not restored\n"
        )
        inside = bk / "backup.key"
        inside.write_text("s3cret\n")
        monkeypatch.setenv("ITRACK_BACKUP_KEY_FILE", str(inside))
        get_settings.cache_clear()
        assert err("build", *build, "--no-html") == (
            f"error: ITRACK_BACKUP_KEY_FILE={inside} is inside the backup folder {bk}: keep "
            "the key outside it, or it travels with the backups it signs\n"
        )
    finally:
        get_settings.cache_clear()
    assert from_environment({"ITRACK_BACKUP_KEY_FILE": " "}).backup_key_path() is None  # unset

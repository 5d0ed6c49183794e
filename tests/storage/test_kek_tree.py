"""The KEK tree (storage/vault.py): an erasure's rotation re-wraps only the erased owners'
buckets, a copy of the database taken before it cannot open the erased subject's key with
the current keys while other subjects still open, and keys of format 2 (homes made before
the tree) still open and move into the tree. On SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, insert

from probity.errors import IntegrityError
from probity.storage.blobs import FileBlobStore
from probity.storage.db import Database
from probity.storage.keyring import Keyring, new_data_key
from probity.storage.tables import (
    GalleryRow,
    KekBucketRow,
    KekStaleBucketRow,
    SubjectKeyRow,
    SubjectRow,
)
from probity.storage.vault import Vault

MASTER = new_data_key()
N = 3000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgres"
        else f"sqlite:///{tmp_path / 'p.db'}"
    )
    database = Database(url)
    database.migrate()
    return database


def _vault(keys: Path) -> Vault:
    return Vault(Keyring(MASTER, keys), FileBlobStore(keys.parent / "blobs"))


def _fill(db: Database, vault: Vault, n: int, *, legacy: bool = False) -> dict[str, bytes]:
    """n subjects with data keys (format 2 under the root if ``legacy``); plain keys by id."""
    now = datetime.now(UTC)
    plain: dict[str, bytes] = {}
    with db.transaction() as s:
        s.add(GalleryRow(id="g", name="g", inclusion_policy="p", retention_days=1,
                         jurisdictions=[], quality_floor={}, model_name="m",
                         model_version="1", model_dimension=128, created_at=now,
                         created_by="tests"))  # fmt: skip
        s.flush()
        epoch = vault.current_epoch(s)
        subjects, keys = [], []
        for i in range(n):
            sid = f"s{i:05d}"
            key = new_data_key()
            plain[sid] = key
            if legacy:
                wrapped = vault.keyring.wrap(sid, key, epoch)
            else:
                wrapped = vault._wrap_new(s, Keyring.subject_aad(sid), key)
            subjects.append({"id": sid, "gallery_id": "g", "reference": sid, "created_at": now})
            keys.append({"subject_id": sid, "wrapped_key": wrapped, "created_at": now})
        s.execute(insert(SubjectRow), subjects)
        s.execute(insert(SubjectKeyRow), keys)
    return plain


def _erase(db: Database, vault: Vault, sid: str) -> None:
    """What ErasureService does to the keys: the row goes, the subject's bucket rotates."""
    with db.transaction() as s:
        s.execute(delete(SubjectKeyRow).where(SubjectKeyRow.subject_id == sid))
        s.execute(delete(SubjectRow).where(SubjectRow.id == sid))
        vault.rotate(s, buckets=vault.subject_buckets([sid]), destroy_on_commit=True)


def test_an_erasure_rewraps_only_the_erased_subjects_bucket(db: Database, tmp_path: Path) -> None:
    vault = _vault(tmp_path / "keys")
    with db.transaction() as s:
        vault.start_first_epoch(s)
        assert s.query(KekBucketRow).count() == 4096
    plain = _fill(db, vault, N)
    bucket = vault.subject_buckets(["s00000"]).pop()
    mates = [sid for sid in plain if vault.subject_buckets([sid]) == {bucket}]
    _erase(db, vault, "s00000")
    assert vault.rewrapped == len(mates) - 1  # the erased subject's row is gone
    assert vault.rewrapped < N / 100
    with db.read() as s:
        assert vault.current_epoch(s) == 2
        for sid in ("s00001", "s02999", *mates[1:]):
            assert vault.subject_key(s, sid) == plain[sid]
        assert s.get(KekBucketRow, bucket).generation == 2


def test_a_copy_taken_before_the_erasure_cannot_open_the_erased_subject(
    db: Database, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    vault = _vault(keys)
    with db.transaction() as s:
        vault.start_first_epoch(s)
    plain = _fill(db, vault, 200)
    # The backup as it was: every wrapped key and bucket row, and the keys folder.
    with db.read() as s:
        copy_keys = {r.subject_id: r.wrapped_key for r in s.query(SubjectKeyRow)}
        copy_buckets = [
            {"bucket": r.bucket, "generation": r.generation, "epoch": r.epoch,
             "sealed_kek": r.sealed_kek} for r in s.query(KekBucketRow)
        ]  # fmt: skip
    shutil.copytree(keys, tmp_path / "keys-copy")
    _erase(db, vault, "s00007")
    # Current keys, the copy's key rows: the erased subject's key does not open...
    with db.read() as s:
        with pytest.raises(IntegrityError):
            vault._unwrap(s, Keyring.subject_aad("s00007"), copy_keys["s00007"])
        # ...while every other subject's key in the copy still opens, as before the tree.
        for sid in ("s00001", "s00150"):
            assert vault._unwrap(s, Keyring.subject_aad(sid), copy_keys[sid]) == plain[sid]
    # Current keys folder, the copy's bucket rows: sealed under a root that is destroyed.
    restored = Database(f"sqlite:///{tmp_path / 'restored.db'}")
    restored.migrate()
    with restored.transaction() as s:
        s.execute(insert(KekBucketRow), copy_buckets)
    fresh = _vault(keys)
    with restored.read() as s, pytest.raises(IntegrityError):
        fresh._unwrap(s, Keyring.subject_aad("s00007"), copy_keys["s00007"])
    assert not (keys / "kek-1.key").exists() and (tmp_path / "keys-copy" / "kek-1.key").exists()


def test_format_2_keys_still_open_and_enter_the_tree(db: Database, tmp_path: Path) -> None:
    vault = _vault(tmp_path / "keys")
    with db.transaction() as s:
        vault.rotate(s, destroy_on_commit=True)  # epoch 1, then the home "predates" the tree
        s.execute(delete(KekBucketRow))
    vault._buckets.clear()
    plain = _fill(db, vault, 50, legacy=True)
    with db.read() as s:
        assert s.get(SubjectKeyRow, "s00003").wrapped_key[:1] == b"\x02"
        assert vault.subject_key(s, "s00003") == plain["s00003"]
    with db.transaction() as s:
        assert vault.start_first_epoch(s) is False  # enter_tree: no rotation
    assert vault.rewrapped == 50
    with db.read() as s:
        assert vault.current_epoch(s) == 1
        assert s.get(SubjectKeyRow, "s00003").wrapped_key[:1] == b"\x03"
        assert all(vault.subject_key(s, sid) == key for sid, key in plain.items())
    _erase(db, vault, "s00004")
    with db.read() as s:
        assert vault.subject_key(s, "s00003") == plain["s00003"]


def test_a_bucketed_rotation_moves_leftover_format_2_keys_too(db: Database, tmp_path: Path) -> None:
    """Keys wrapped under the root alone must not be stranded when that root is destroyed."""
    vault = _vault(tmp_path / "keys")
    with db.transaction() as s:
        vault.start_first_epoch(s)
    plain = _fill(db, vault, 20, legacy=True)
    _erase(db, vault, "s00000")
    assert vault.rewrapped == 19
    with db.read() as s:
        assert all(vault.subject_key(s, sid) == plain[sid] for sid in plain if sid != "s00000")


def test_a_key_dropped_outside_an_erasure_dies_at_the_next_erasure(
    db: Database, tmp_path: Path
) -> None:
    """A rights request's photo key is dropped when the request closes, with no rotation of
    its own (``forget_key``). A backup taken before the close holds it; the next erasure,
    of someone in another bucket, must rotate the dropped key's bucket too, so the copy no
    longer opens with the current keys. Without the stale mark this fails: the bucket's KEK
    would be unchanged."""
    vault = _vault(tmp_path / "keys")
    with db.transaction() as s:
        vault.start_first_epoch(s)
    plain = _fill(db, vault, 200)
    dropped = "s00042"  # stands for the photo key: any data key whose row is then dropped
    with db.read() as s:
        copy = s.get(SubjectKeyRow, dropped).wrapped_key  # the backup's copy of it
    aad = Keyring.subject_aad(dropped)
    erased = next(
        sid for sid in plain if vault.subject_buckets([sid]) != vault.subject_buckets([dropped])
    )
    with db.transaction() as s:
        s.execute(delete(SubjectKeyRow).where(SubjectKeyRow.subject_id == dropped))
        vault.forget_key(s, aad)
    with db.read() as s:  # until the next erasure the copy still opens (the known window)
        assert vault._unwrap(s, aad, copy) == plain[dropped]
    _erase(db, vault, erased)
    with db.read() as s:
        with pytest.raises(IntegrityError):
            vault._unwrap(s, aad, copy)
        others = [
            sid
            for sid in plain
            if sid not in (dropped, erased)
            and vault.subject_buckets([sid]) == vault.subject_buckets([dropped])
        ]
        assert all(vault.subject_key(s, sid) == plain[sid] for sid in others)  # re-wrapped
        assert s.query(KekStaleBucketRow).count() == 0  # the mark is spent


def test_keys_wrapped_in_a_batch_open_and_die_like_single_ones(
    db: Database, tmp_path: Path
) -> None:
    """``Vault.new_wrapped_keys`` (the bulk loader's) wraps each key under its bucket's
    current KEK, as ``new_wrapped_key`` does: they open, and an erasure's rotation of a
    bucket re-wraps them."""
    vault = _vault(tmp_path / "keys")
    now = datetime.now(UTC)
    with db.transaction() as s:
        vault.start_first_epoch(s)
        s.add(GalleryRow(id="g", name="g", inclusion_policy="p", retention_days=1,
                         jurisdictions=[], quality_floor={}, model_name="m",
                         model_version="1", model_dimension=128, created_at=now,
                         created_by="tests"))  # fmt: skip
        s.flush()
        sids = [f"b{i:03d}" for i in range(300)]
        pairs = vault.new_wrapped_keys(s, sids)
        s.execute(insert(SubjectRow), [
            {"id": sid, "gallery_id": "g", "reference": sid, "created_at": now} for sid in sids
        ])  # fmt: skip
        s.execute(insert(SubjectKeyRow), [
            {"subject_id": sid, "wrapped_key": w, "created_at": now}
            for sid, (_, w) in zip(sids, pairs, strict=True)
        ])  # fmt: skip
    assert len({k for k, _ in pairs}) == 300  # a fresh key each
    with db.read() as s:
        assert vault.subject_keys(s, sids) == {
            sid: k for sid, (k, _) in zip(sids, pairs, strict=True)
        }
    bucket = vault.subject_buckets(["b000"]).pop()
    mates = [sid for sid in sids[1:] if vault.subject_buckets([sid]) == {bucket}]
    _erase(db, vault, "b000")
    with db.read() as s:
        for sid in ["b001", "b299", *mates]:
            assert vault.subject_key(s, sid) == pairs[sids.index(sid)][0]

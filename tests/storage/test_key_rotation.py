"""Key-encryption-key rotation (storage/keyring.py, storage/vault.py) on SQLite and on the
real PostgreSQL server: rotation re-wraps every stored key, destroys the old KEK only once
the transaction commits, leaves no new KEK behind when it rolls back, and another process
that still holds the old KEK in memory drops it as soon as it sees the new epoch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from probity.errors import IntegrityError
from probity.storage.blobs import FileBlobStore
from probity.storage.db import Database
from probity.storage.keyring import Keyring, new_data_key
from probity.storage.tables import SubjectKeyRow, SubjectRow
from probity.storage.vault import Vault

MASTER = new_data_key()


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


def _vault(tmp_path: Path) -> Vault:
    return Vault(Keyring(MASTER, tmp_path / "keys"), FileBlobStore(tmp_path / "blobs"))


def _add_subject(db: Database, vault: Vault, subject_id: str) -> bytes:
    """A subject row with a wrapped data key; returns the plain key."""
    with db.transaction() as s:
        gallery = _gallery(s)
        key, wrapped = vault.new_wrapped_key(s, subject_id)
        s.add(SubjectRow(id=subject_id, gallery_id=gallery, reference=subject_id,
                         created_at=datetime.now(UTC)))  # fmt: skip
        s.flush()
        s.add(SubjectKeyRow(subject_id=subject_id, wrapped_key=wrapped,
                            created_at=datetime.now(UTC)))  # fmt: skip
    return key


def _gallery(s) -> str:  # type: ignore[no-untyped-def]
    from probity.storage.tables import GalleryRow

    found = s.scalars(select(GalleryRow.id)).first()
    if found:
        return str(found)
    s.add(GalleryRow(id="g1", name="g", inclusion_policy="p", retention_days=1,
                     jurisdictions=[], quality_floor={}, model_name="m", model_version="1",
                     model_dimension=128, created_at=datetime.now(UTC),
                     created_by="tests"))  # fmt: skip
    s.flush()
    return "g1"


def test_new_homes_start_at_epoch_1_and_rotation_retires_the_old_kek(
    db: Database, tmp_path: Path
) -> None:
    vault = _vault(tmp_path)
    with db.transaction() as s:
        assert vault.start_first_epoch(s)
    with db.read() as s:
        assert vault.current_epoch(s) == 1
    key_a = _add_subject(db, vault, "a")
    key_b = _add_subject(db, vault, "b")
    with db.read() as s:
        old_wrapped = s.get(SubjectKeyRow, "a").wrapped_key  # a "backup" taken now
        assert vault.subject_key(s, "a") == key_a

    with db.transaction() as s:
        assert vault.rotate(s) == 2
    # The old KEK file stays until the erasure's journal destroys it (after resealing the
    # index files it still opens: services/erasure_work.py).
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["kek-1.key", "kek-2.key"]
    assert vault.keyring.destroy_below(2) == 1
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["kek-2.key"]
    with db.read() as s:
        assert vault.subject_key(s, "a") == key_a and vault.subject_key(s, "b") == key_b
    # The backup's wrapped key no longer opens: not in this process, not in a new one.
    with pytest.raises(IntegrityError):
        vault.keyring.unwrap("a", old_wrapped)
    with pytest.raises(IntegrityError):
        Keyring(MASTER, tmp_path / "keys").unwrap("a", old_wrapped)
    # Nor does the master key alone (epoch 0 is retired too).
    with pytest.raises(IntegrityError):
        Keyring(MASTER, tmp_path / "keys").kek(0)


def test_a_rotation_that_rolls_back_leaves_the_old_kek_in_place(
    db: Database, tmp_path: Path
) -> None:
    vault = _vault(tmp_path)
    with db.transaction() as s:
        vault.start_first_epoch(s)
    key = _add_subject(db, vault, "a")
    with pytest.raises(RuntimeError), db.transaction() as s:
        vault.rotate(s)
        raise RuntimeError("the erasure failed after the rotation")
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["kek-1.key"]
    with db.read() as s:
        assert vault.current_epoch(s) == 1
        assert vault.subject_key(s, "a") == key


def test_another_process_drops_the_old_kek_when_it_sees_the_new_epoch(
    db: Database, tmp_path: Path
) -> None:
    mine, theirs = _vault(tmp_path), _vault(tmp_path)
    with db.transaction() as s:
        mine.start_first_epoch(s)
    _add_subject(db, mine, "a")
    with db.read() as s:
        old_wrapped = s.get(SubjectKeyRow, "a").wrapped_key
        theirs.subject_key(s, "a")  # loads KEK 1 into the other process's memory
    with db.transaction() as s:
        mine.rotate(s)
    aad = Keyring.subject_aad("a")
    with db.read() as s:
        assert theirs._unwrap(s, aad, old_wrapped)  # still cached: not yet told
    theirs._observed_at = float("-inf")  # as if OBSERVE_EVERY_S had passed
    with db.read() as s:
        theirs.subject_key(s, "a")  # an ordinary read notices the new epoch
        with pytest.raises(IntegrityError):
            theirs._unwrap(s, aad, old_wrapped)  # the retired bucket KEK is gone here too
    _add_subject(db, theirs, "b")  # new keys are wrapped under the new generation
    with db.read() as s:
        assert s.get(SubjectKeyRow, "b").wrapped_key[3:7] == (2).to_bytes(4, "big")


def test_every_kind_of_stored_key_survives_a_rotation(db: Database, tmp_path: Path) -> None:
    """Subjects', cases', rights-request photos' and suppression templates' keys are all
    re-wrapped: each still opens after the rotation, at the new epoch."""
    from probity.storage.tables import SuppressionRow
    from probity.storage.vault import SUPPRESSION

    vault = _vault(tmp_path)
    with db.transaction() as s:
        vault.start_first_epoch(s)
    subject_key = _add_subject(db, vault, "a")
    with db.transaction() as s:
        key, wrapped = vault.new_purpose_key(s, SUPPRESSION, "sup-1")
        s.add(SuppressionRow(id="sup-1", reference="L-1", model_key="m", sealed=b"x",
                             wrapped_key=wrapped, created_at=datetime.now(UTC),
                             created_by="tests"))  # fmt: skip
    with db.transaction() as s:
        vault.rotate(s)
    with db.read() as s:
        assert vault.subject_key(s, "a") == subject_key
        row = s.get(SuppressionRow, "sup-1")
        assert row is not None and row.wrapped_key[3:7] == (2).to_bytes(4, "big")
        assert vault.open_purpose_key(s, SUPPRESSION, "sup-1", row.wrapped_key) == key


def test_the_first_key_opened_in_an_epoch_opens_every_bucket_kek_at_once(
    db: Database, tmp_path: Path
) -> None:
    """A search opens about 40 subject keys in about 40 buckets: the first miss of an epoch
    reads and opens all the bucket KEKs in one query, and a rotation drops them all (the
    erased buckets' old KEKs with them) until the next miss fills the cache again."""
    from probity.storage.keyring import BUCKETS
    from probity.storage.tables import KekBucketRow

    mine, theirs = _vault(tmp_path), _vault(tmp_path)
    with db.transaction() as s:
        mine.start_first_epoch(s)
    keys = {sid: _add_subject(db, mine, sid) for sid in ("a", "b", "c")}
    with db.read() as s:
        rows = len(s.scalars(select(KekBucketRow.bucket)).all())
        assert rows == BUCKETS
        assert theirs.subject_key(s, "a") == keys["a"]
        assert len(theirs._buckets) == BUCKETS  # one miss, every bucket
        assert theirs.subject_keys(s, ["b", "c"]) == {"b": keys["b"], "c": keys["c"]}
    with db.transaction() as s:
        mine.rotate(s, buckets=mine.subject_buckets(["b"]))
    theirs._observed_at = float("-inf")  # as if OBSERVE_EVERY_S had passed
    with db.read() as s:
        assert theirs.subject_keys(s, ["a", "b", "c"]) == keys
        assert theirs._buckets_filled == mine.current_epoch(s) == 2
        assert len(theirs._buckets) == BUCKETS

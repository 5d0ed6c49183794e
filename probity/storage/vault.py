"""Envelope encryption of a subject's images and templates, cases' probes, rights-request
photos and suppression templates (see keyring.py for the scheme and key rotation).

**The KEK tree.** A data key is wrapped under its owner's *bucket KEK* (format 3, one of
``BUCKETS`` = 4,096 buckets, chosen by a keyed hash of the owner); each bucket KEK is stored
in ``kek_buckets`` sealed under the *root KEK* of the current epoch (``keys/kek-<epoch>.key``,
as before the tree). An erasure (``rotate`` with ``buckets``) gives the erased owners'
buckets fresh KEKs of a new generation, re-wraps only those buckets' data keys (about N /
4,096), re-seals all 4,096 bucket KEKs under a new root and bumps the epoch; the old root
file is destroyed after the commit as before. A copy of the database taken before the
erasure holds the erased owner's data key under the old generation of its bucket KEK, which
exists only sealed under the old root, now destroyed: the current keys cannot open it.
Other owners' keys in that copy are still under bucket KEKs that live on (re-sealed under
the new root), exactly as before the tree a copy's other keys opened until their epoch died.

Cost: the erasure's rotation is O(N / 4,096 + 4,096) AES-GCM operations and row updates
instead of O(N); a full rotation (``buckets=None``) re-wraps everything, as before.

Every new data key is wrapped under the current bucket KEK. Wrapping reads the current
epoch from ``keyring_state`` under a shared lock (PostgreSQL ``FOR SHARE``; SQLite
serialises writers anyway), so it can never be wrapped under a KEK a concurrent rotation is
retiring. Unwrapping needs no lock: a wrapped key names its bucket and generation (format
3) or its epoch (format 2; format 1 is epoch 0, the master key itself), and those still
open, so homes made before the tree keep working until ``enter_tree`` moves them in.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Table, bindparam, delete, event, select, update
from sqlalchemy.orm import Session

from probity.errors import IntegrityError
from probity.storage.blobs import BlobStore
from probity.storage.keyring import BUCKETS, Keyring, new_data_key, seal, unseal
from probity.storage.repositories import Cases, Subjects
from probity.storage.tables import (
    CaseRow,
    KekBucketRow,
    KekStaleBucketRow,
    KeyringStateRow,
    RightsRequestRow,
    SubjectKeyRow,
    SuppressionRow,
    bucket_of_wrapped,
)

RIGHTS_PHOTO = "rights-photo"
"""Purpose of a rights request's photo key (owner: the request id)."""
SUPPRESSION = "suppression"
"""Purpose of a suppression template's key (owner: the suppression row id)."""


LEGACY_BELOW = b"\x03\x00\x00"
"""Wrapped keys whose first three bytes sort below this are of format 1 or 2 (outside the
tree): found through the same expression index as one bucket's keys."""

_WRAPPED_KEYS: tuple[tuple[type[Any], str, Callable[[Any], bytes]], ...] = (
    (SubjectKeyRow, "wrapped_key", lambda r: Keyring.subject_aad(r.subject_id)),
    (CaseRow, "wrapped_probe_key", lambda r: Keyring.case_aad(r.id)),
    (RightsRequestRow, "photo_key", lambda r: Keyring.purpose_aad(RIGHTS_PHOTO, r.id)),
    (SuppressionRow, "wrapped_key", lambda r: Keyring.purpose_aad(SUPPRESSION, r.id)),
)
"""Every column that holds a wrapped data key, with the AAD its row's key is wrapped under.
``rotate`` re-wraps each of them; a new kind of stored key must be listed here."""


class Vault:
    """Seals and opens data with per-owner keys. Unwrapped keys are never cached beyond
    one service call, so a shredded key cannot linger in a long-running process."""

    OBSERVE_EVERY_S = 5.0
    """How often a reading process re-reads the key epoch, so that a KEK retired by another
    process's erasure is dropped from this one's memory within seconds (one primary-key read
    at most every 5 s; writers read it on every wrap anyway)."""

    def __init__(self, keyring: Keyring, blobs: BlobStore) -> None:
        self.keyring = keyring
        self.blobs = blobs
        self._observed_at = float("-inf")
        # Unwrapped bucket KEKs, valid for ``_buckets_epoch`` only: a rotation changes the
        # generation of the erased buckets, so the whole cache is dropped as soon as this
        # process observes a new epoch (at most OBSERVE_EVERY_S late for readers, at once
        # for writers), like the root KEKs in Keyring.observe.
        self._buckets: dict[int, tuple[int, bytes]] = {}
        self._buckets_epoch = -1
        self._buckets_filled = -1  # the epoch for which every bucket was read at once
        self.rewrapped = 0
        """Data keys the last ``rotate`` or ``enter_tree`` of this vault re-wrapped."""

    def _observe(self, session: Session) -> None:
        now = time.monotonic()
        if now - self._observed_at >= self.OBSERVE_EVERY_S:
            self._observed_at = now
            self._epoch(session, lock=None)

    # -- epochs -----------------------------------------------------------------------------

    def _epoch(self, session: Session, *, lock: str | None) -> KeyringStateRow:
        stmt = select(KeyringStateRow).where(KeyringStateRow.id == 1)
        if lock == "share":
            stmt = stmt.with_for_update(read=True)
        elif lock == "update":
            stmt = stmt.with_for_update()
        row = session.scalars(stmt).one_or_none()
        if row is None:
            raise IntegrityError("keyring_state is missing (run 'probity init' to migrate)")
        self.keyring.observe(row.epoch)
        if row.epoch != self._buckets_epoch:
            self._buckets.clear()
            self._buckets_epoch = row.epoch
        return row

    # -- the KEK tree -----------------------------------------------------------------------

    def _bucket(self, session: Session, bucket: int) -> tuple[int, bytes] | None:
        """(generation, KEK) of ``bucket`` as the database holds it now; None if the home
        has no tree yet (made before migration 0016 and not yet through ``enter_tree``)."""
        found = self._buckets.get(bucket)
        if (
            found is None
            and self._buckets_epoch >= 0
            and self._buckets_filled != self._buckets_epoch
        ):
            # The first miss of an epoch reads and opens every bucket at once (4,096 rows,
            # about 0.1 s), not one primary-key read and unwrap per miss: a search's 40
            # candidates fall in about 40 different buckets, and filling the cache one miss
            # at a time cost a search 30 ms for its first few hundred searches (profiled on
            # a 200k home).
            self._buckets_filled = self._buckets_epoch
            for each in session.scalars(
                select(KekBucketRow).where(KekBucketRow.epoch == self._buckets_epoch)
            ):
                self._buckets[each.bucket] = (
                    each.generation,
                    self.keyring.open_bucket_kek(
                        each.epoch, each.bucket, each.generation, each.sealed_kek
                    ),
                )
            found = self._buckets.get(bucket)
        if found is None:
            row = session.get(KekBucketRow, bucket)
            if row is None:
                return None
            kek = self.keyring.open_bucket_kek(row.epoch, bucket, row.generation, row.sealed_kek)
            found = (row.generation, kek)
            if row.epoch == self._buckets_epoch:
                self._buckets[bucket] = found
        return found

    def _bucket_kek_in(self, session: Session) -> Callable[[int, int], bytes]:
        def bucket_kek(bucket: int, generation: int) -> bytes:
            found = self._bucket(session, bucket)
            if found is None or found[0] != generation:
                raise IntegrityError(
                    f"the key-encryption key of bucket {bucket}, generation {generation}, was "
                    "destroyed by an erasure (or this copy of the database is not this home's)"
                )
            return found[1]

        return bucket_kek

    def _unwrap(self, session: Session, aad: bytes, wrapped: bytes) -> bytes:
        self._observe(session)
        return self.keyring.unwrap_any(aad, wrapped, self._bucket_kek_in(session))

    def _wrap_new(self, session: Session, aad: bytes, key: bytes) -> bytes:
        """Wrap a new data key under its bucket's current KEK (format 2 under the root, in a
        home that has not entered the tree yet)."""
        return self._wrap_under(session, self._epoch(session, lock="share").epoch, aad, key)

    def _wrap_under(self, session: Session, epoch: int, aad: bytes, key: bytes) -> bytes:
        bucket = self.keyring.bucket_of(aad)
        found = self._bucket(session, bucket)
        if found is None:
            return self.keyring.wrap_at(epoch, aad, key)
        return Keyring.wrap_in_bucket(bucket, found[0], found[1], aad, key)

    def forget_key(self, session: Session, aad: bytes) -> None:
        """Say, in the caller's transaction, that the data key of ``aad`` is being dropped
        outside an erasure (a rights request's photo key when the request closes). Its
        bucket is marked stale, and the next rotation (the next erasure's) gives it a fresh
        KEK, so a backup taken before the drop stops opening that key with the current keys
        at the next erasure, as it did when every rotation re-wrapped every key. A home not
        yet in the tree needs nothing: its next rotation retires the root under which the
        key was wrapped."""
        bucket = self.keyring.bucket_of(aad)
        if session.get(KekStaleBucketRow, bucket) is None:
            session.add(KekStaleBucketRow(bucket=bucket))
            session.flush()

    def subject_buckets(self, subject_ids: Iterable[str]) -> set[int]:
        """The buckets an erasure of these subjects must rotate (``rotate(buckets=...)``)."""
        return {self.keyring.bucket_of(Keyring.subject_aad(s)) for s in subject_ids}

    def buckets_of(self, aads: Iterable[bytes]) -> set[int]:
        """The buckets of any owners, by the AAD their key is wrapped under
        (``Keyring.case_aad``, ``Keyring.purpose_aad``, ...)."""
        return {self.keyring.bucket_of(a) for a in aads}

    def current_epoch(self, session: Session) -> int:
        return self._epoch(session, lock=None).epoch

    # -- subjects ---------------------------------------------------------------------------

    def new_wrapped_key(self, session: Session, subject_id: str) -> tuple[bytes, bytes]:
        """A fresh data key for a new subject: (plain key, wrapped key to store in this
        same transaction)."""
        key = new_data_key()
        return key, self._wrap_new(session, Keyring.subject_aad(subject_id), key)

    def new_wrapped_keys(
        self, session: Session, subject_ids: Sequence[str]
    ) -> list[tuple[bytes, bytes]]:
        """``new_wrapped_key`` for many new subjects in one transaction (a bulk load): the
        epoch row is read (and share-locked) once, not once a key. The keys are the same as
        ``new_wrapped_key`` would give: each under its bucket's current KEK. The loader
        (bench/fill_home.py) spent 55 % of its time re-reading that row."""
        epoch = self._epoch(session, lock="share").epoch
        out: list[tuple[bytes, bytes]] = []
        for subject_id in subject_ids:
            key = new_data_key()
            out.append(
                (key, self._wrap_under(session, epoch, Keyring.subject_aad(subject_id), key))
            )
        return out

    def subject_key(self, session: Session, subject_id: str) -> bytes:
        wrapped = Subjects(session).wrapped_key(subject_id)
        if wrapped is None:
            raise IntegrityError(f"subject {subject_id} has no data key (erased?)")
        return self._unwrap(session, Keyring.subject_aad(subject_id), wrapped)

    def subject_keys(self, session: Session, subject_ids: Iterable[str]) -> dict[str, bytes]:
        """The data keys of many subjects, read in ``IN`` queries rather than one read each
        (a search re-scores up to 40 candidate subjects; a catch-up opens thousands). A
        subject with no key (erased meanwhile) is absent from the result: the caller decides
        whether that is an error."""
        wrapped = Subjects(session).wrapped_keys(subject_ids)
        return {
            sid: self._unwrap(session, Keyring.subject_aad(sid), key)
            for sid, key in wrapped.items()
        }

    @staticmethod
    def seal_vector(key: bytes, subject_id: str, vector: NDArray[np.float32]) -> bytes:
        data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        return seal(key, data, b"probity/template/" + subject_id.encode())

    @staticmethod
    def open_vector(key: bytes, subject_id: str, sealed: bytes) -> NDArray[np.float32]:
        data = unseal(key, sealed, b"probity/template/" + subject_id.encode())
        return np.frombuffer(data, dtype="<f4").astype(np.float32)

    def put_image(self, key: bytes, subject_id: str, blob_id: str, image: bytes) -> None:
        aad = f"probity/image/{subject_id}/{blob_id}".encode()
        self.blobs.put(blob_id, seal(key, image, aad))

    def get_image(self, key: bytes, subject_id: str, blob_id: str) -> bytes:
        aad = f"probity/image/{subject_id}/{blob_id}".encode()
        return unseal(key, self.blobs.get(blob_id), aad)

    # -- cases ------------------------------------------------------------------------------

    def new_case_key(self, session: Session, case_id: str) -> tuple[bytes, bytes]:
        """A fresh data key for a case's probes: (plain key, wrapped key to store)."""
        key = new_data_key()
        return key, self._wrap_new(session, Keyring.case_aad(case_id), key)

    def case_key(self, session: Session, case_id: str) -> bytes | None:
        """The case's probe key, or None if the case has none yet (opened before probes
        were kept)."""
        wrapped = Cases(session).wrapped_probe_key(case_id)
        return (
            None if wrapped is None else self._unwrap(session, Keyring.case_aad(case_id), wrapped)
        )

    def put_probe(self, key: bytes, case_id: str, blob_id: str, image: bytes) -> None:
        self.blobs.put(blob_id, seal(key, image, f"probity/probe/{case_id}/{blob_id}".encode()))

    def get_probe(self, key: bytes, case_id: str, blob_id: str) -> bytes:
        return unseal(key, self.blobs.get(blob_id), f"probity/probe/{case_id}/{blob_id}".encode())

    # -- other purposes ---------------------------------------------------------------------

    def new_purpose_key(self, session: Session, purpose: str, owner_id: str) -> tuple[bytes, bytes]:
        """A fresh data key for something that is neither a subject nor a case: ``purpose``
        is RIGHTS_PHOTO (owner: the request id) or SUPPRESSION (owner: the suppression row
        id). Returns (plain key, wrapped key to store in this same transaction). The purpose
        is bound into the wrapping, so a key cannot serve another purpose. A new purpose must
        be added to ``_WRAPPED_KEYS``, or rotation would strand its keys."""
        if purpose not in (RIGHTS_PHOTO, SUPPRESSION):
            raise IntegrityError(f"unknown key purpose '{purpose}'")
        key = new_data_key()
        return key, self._wrap_new(session, Keyring.purpose_aad(purpose, owner_id), key)

    def open_purpose_key(
        self, session: Session, purpose: str, owner_id: str, wrapped: bytes
    ) -> bytes:
        """Open a key that ``new_purpose_key`` made (the session reads its bucket KEK)."""
        return self._unwrap(session, Keyring.purpose_aad(purpose, owner_id), wrapped)

    @staticmethod
    def seal_with(key: bytes, data: bytes, aad: bytes) -> bytes:
        """AES-256-GCM under a data key (see keyring.seal)."""
        return seal(key, data, aad)

    @staticmethod
    def open_with(key: bytes, sealed: bytes, aad: bytes) -> bytes:
        return unseal(key, sealed, aad)

    # -- rotation ---------------------------------------------------------------------------

    def rotate(
        self,
        session: Session,
        *,
        buckets: Iterable[int] | None = None,
        destroy_on_commit: bool = False,
    ) -> int:
        """Rotate the KEK tree inside the caller's transaction (an erasure's) and return the
        new epoch. ``buckets``: the buckets whose owners' keys this transaction destroyed
        (``subject_buckets``, ``buckets_of``); they get fresh KEKs of the next generation
        and only their data keys are re-wrapped. ``None`` rotates every bucket (a full
        rotation: every data key re-wrapped, as before the tree). Either way every bucket
        KEK is re-sealed under a new root KEK of the next epoch, whose file is written
        before the database refers to it and removed if the transaction rolls back; keys
        still of format 1 or 2 are moved into the tree on the way (they were under the
        root being retired).

        The old root files are not destroyed here: an erasure journals the new epoch
        (``services/erasure_work.py``), whose completion first reseals every index file
        under the new epoch, while the old root can still open them, and only then destroys
        the files below it; a crash in between is finished at the next start.
        ``destroy_on_commit`` destroys them as soon as the transaction commits instead, for
        a rotation with nothing to reseal (``start_first_epoch``, at ``probity init``).

        Cost of an erasure's rotation: 4,096 bucket KEKs unsealed and sealed again (32 bytes
        each, one executemany of row updates) plus the data keys of the erased buckets (N /
        4,096 each, found by the expression index on the wrapped bytes). Measured on 2 cores
        with SQLite: see bench/README.md (key rotation). The erasure holds the write lock
        that long. ``self.rewrapped`` says how many data keys it re-wrapped."""
        state = self._epoch(session, lock="update")
        new = state.epoch + 1
        ring = self.keyring
        existing = {row.bucket: row for row in session.scalars(select(KekBucketRow))}
        # Buckets whose keys were dropped since the last rotation without one of their own
        # (``forget_key``) rotate now too, so those keys die with this erasure as they did
        # when every rotation re-wrapped everything.
        stale = set(session.scalars(select(KekStaleBucketRow.bucket)))
        fresh = set(range(BUCKETS)) if buckets is None else set(buckets) | stale
        retired: dict[int, tuple[int, bytes]] = {}  # bucket -> (old generation, old KEK)
        current: dict[int, tuple[int, bytes]] = {}  # bucket -> (generation, KEK) after this
        for bucket in range(BUCKETS):
            row = existing.get(bucket)
            if row is None:
                current[bucket] = (1, new_data_key())
                continue
            kek = ring.open_bucket_kek(row.epoch, bucket, row.generation, row.sealed_kek)
            if bucket in fresh:
                retired[bucket] = (row.generation, kek)
                current[bucket] = (row.generation + 1, new_data_key())
            else:
                current[bucket] = (row.generation, kek)
        ring.write_kek(new)

        def old_bucket_kek(bucket: int, generation: int) -> bytes:
            found = retired.get(bucket)
            if found is None or found[0] != generation:
                raise IntegrityError(f"no key-encryption key for bucket {bucket}/{generation}")
            return found[1]

        rewrapped = 0
        for table, column, aad_of in _WRAPPED_KEYS:
            held = getattr(table, column)
            if buckets is None:
                wanted = [held.is_not(None)]
            else:
                # The erased buckets first: keys moved into the tree below must not be met
                # again. Keys outside the tree sort below format 3 in the same index.
                prefixes = [Keyring.bucket_prefix(b) for b in sorted(retired)]
                wanted = [bucket_of_wrapped(held).in_(prefixes)] if prefixes else []
                wanted.append(bucket_of_wrapped(held) < LEGACY_BELOW)
            for clause in wanted:
                for row in session.scalars(select(table).where(clause)):
                    aad = aad_of(row)
                    data_key = ring.unwrap_any(aad, getattr(row, column), old_bucket_kek)
                    bucket = ring.bucket_of(aad)
                    generation, kek = current[bucket]
                    setattr(
                        row, column, Keyring.wrap_in_bucket(bucket, generation, kek, aad, data_key)
                    )
                    rewrapped += 1
        session.flush()
        self._store_buckets(session, new, current, existing)
        session.execute(delete(KekStaleBucketRow))
        session.execute(
            update(KeyringStateRow)
            .where(KeyringStateRow.id == 1)
            .values(epoch=new, rotated_at=datetime.now(UTC))
        )
        session.flush()
        self.rewrapped = rewrapped
        self._buckets.clear()  # the retired generations must not linger here
        retired.clear()

        def committed(_: Session) -> None:
            ring.destroy_below(new)

        def rolled_back(_: Session) -> None:
            ring.forget(new)
            self._buckets.clear()

        if destroy_on_commit:
            event.listen(session, "after_commit", committed, once=True)
        event.listen(session, "after_rollback", rolled_back, once=True)
        return new

    def _store_buckets(
        self,
        session: Session,
        epoch: int,
        keks: dict[int, tuple[int, bytes]],
        existing: dict[int, KekBucketRow],
    ) -> None:
        """Seal every bucket KEK under the root of ``epoch``: one executemany of updates for
        the buckets that exist, one of inserts for those that do not (a home entering the
        tree). Core statements, so 4,096 rows cost one round trip each, not an ORM flush."""
        ring = self.keyring
        sealed = {
            b: {"b": b, "g": g, "e": epoch, "k": ring.seal_bucket_kek(epoch, b, g, kek)}
            for b, (g, kek) in keks.items()
        }
        for row in existing.values():  # ORM copies would go stale under the Core update
            session.expunge(row)
        table = cast(Table, KekBucketRow.__table__)
        changed = [sealed[b] for b in sorted(sealed) if b in existing]
        added = [sealed[b] for b in sorted(sealed) if b not in existing]
        if changed:
            session.execute(
                table.update()
                .where(table.c.bucket == bindparam("b"))
                .values(generation=bindparam("g"), epoch=bindparam("e"), sealed_kek=bindparam("k")),
                changed,
            )
        if added:
            session.execute(
                table.insert().values(
                    bucket=bindparam("b"),
                    generation=bindparam("g"),
                    epoch=bindparam("e"),
                    sealed_kek=bindparam("k"),
                ),
                added,
            )

    def enter_tree(self, session: Session) -> int:
        """Move a home made before the KEK tree into it, without a rotation: create the
        bucket KEKs (sealed under the current root) if there are none, and re-wrap every
        data key still of format 1 or 2 under its bucket. Nothing is destroyed and the
        epoch stays (no erasure happened: a copy taken before opened with the current keys
        and still does, until an erasure retires its root). Run at ``probity init``; the
        one-off cost is one unwrap, wrap and row update per legacy key, like one erasure
        before the tree (about 5 s per 100,000 keys on 2 cores). Returns how many keys it
        re-wrapped (0, and cheap, once the home is in the tree)."""
        state = self._epoch(session, lock="update")
        if state.epoch == 0:
            return 0  # start_first_epoch rotates it in
        ring = self.keyring
        existing = {row.bucket: row for row in session.scalars(select(KekBucketRow))}
        if len(existing) < BUCKETS:
            keks = {
                b: (
                    (existing[b].generation, ring.open_bucket_kek(
                        existing[b].epoch, b, existing[b].generation, existing[b].sealed_kek
                    ))
                    if b in existing
                    else (1, new_data_key())
                )
                for b in range(BUCKETS)
            }  # fmt: skip
            self._store_buckets(session, state.epoch, keks, existing)
            self._buckets.clear()
        rewrapped = 0
        for table, column, aad_of in _WRAPPED_KEYS:
            held = getattr(table, column)
            for row in session.scalars(select(table).where(bucket_of_wrapped(held) < LEGACY_BELOW)):
                aad = aad_of(row)
                data_key = ring.unwrap_any(aad, getattr(row, column))
                setattr(row, column, self._wrap_new(session, aad, data_key))
                rewrapped += 1
        session.flush()
        self.rewrapped = rewrapped
        return rewrapped

    def start_first_epoch(self, session: Session) -> bool:
        """At ``probity init``: a home still at epoch 0 (data keys wrapped by the master key
        itself, or none yet) moves to epoch 1 by a full rotation, which also creates the KEK
        tree, so that the master key wraps no data key and even the first erasure leaves
        backups unreadable with the current keys. A home past epoch 0 that predates the
        tree enters it (``enter_tree``). Returns True if it rotated."""
        if self.current_epoch(session) != 0:
            self.enter_tree(session)
            return False
        self.rotate(session, destroy_on_commit=True)
        return True


def unwrap_in_sqlite_file(ring: Keyring, database: Path, aad: bytes, wrapped: bytes) -> bytes:
    """Open a wrapped data key with ``ring`` and the bucket KEKs that the SQLite file
    ``database`` holds (a home's ``probity.db`` or a copy of it), without a Session: for
    ``probity restore``'s check and for tests that read a backup as an attacker would.
    Formats 1 and 2 need no database. IntegrityError when the keys do not open it."""

    def bucket_kek(bucket: int, generation: int) -> bytes:
        with closing(sqlite3.connect(database)) as db:
            row = db.execute(
                "SELECT generation, epoch, sealed_kek FROM kek_buckets WHERE bucket = ?",
                (bucket,),
            ).fetchone()
        if row is None or int(row[0]) != generation:
            raise IntegrityError(f"no key-encryption key for bucket {bucket}/{generation}")
        return ring.open_bucket_kek(int(row[1]), bucket, generation, bytes(row[2]))

    return ring.unwrap_any(aad, wrapped, bucket_kek)

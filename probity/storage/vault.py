"""Envelope encryption of a subject's images and templates, cases' probes, rights-request
photos and suppression templates (see keyring.py for the scheme and key rotation).

Every data key is stored wrapped under the current key-encryption key (KEK). Wrapping a
new key reads the current epoch from ``keyring_state`` under a shared lock (PostgreSQL
``FOR SHARE``; SQLite serialises writers anyway), so it can never be wrapped under a KEK a
concurrent rotation is retiring. Unwrapping needs no lock: a wrapped key names its epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from probity.errors import IntegrityError
from probity.storage.blobs import BlobStore
from probity.storage.keyring import Keyring, new_data_key, seal, unseal
from probity.storage.repositories import Cases, Subjects
from probity.storage.tables import (
    CaseRow,
    KeyringStateRow,
    RightsRequestRow,
    SubjectKeyRow,
    SuppressionRow,
)

RIGHTS_PHOTO = "rights-photo"
"""Purpose of a rights request's photo key (owner: the request id)."""
SUPPRESSION = "suppression"
"""Purpose of a suppression template's key (owner: the suppression row id)."""


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
        return row

    def current_epoch(self, session: Session) -> int:
        return self._epoch(session, lock=None).epoch

    # -- subjects ---------------------------------------------------------------------------

    def new_wrapped_key(self, session: Session, subject_id: str) -> tuple[bytes, bytes]:
        """A fresh data key for a new subject: (plain key, wrapped key to store in this
        same transaction)."""
        key = new_data_key()
        epoch = self._epoch(session, lock="share").epoch
        return key, self.keyring.wrap(subject_id, key, epoch)

    def subject_key(self, session: Session, subject_id: str) -> bytes:
        self._observe(session)
        wrapped = Subjects(session).wrapped_key(subject_id)
        if wrapped is None:
            raise IntegrityError(f"subject {subject_id} has no data key (erased?)")
        return self.keyring.unwrap(subject_id, wrapped)

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
        epoch = self._epoch(session, lock="share").epoch
        return key, self.keyring.wrap_case_key(case_id, key, epoch)

    def case_key(self, session: Session, case_id: str) -> bytes | None:
        """The case's probe key, or None if the case has none yet (opened before probes
        were kept)."""
        self._observe(session)
        wrapped = Cases(session).wrapped_probe_key(case_id)
        return None if wrapped is None else self.keyring.unwrap_case_key(case_id, wrapped)

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
        epoch = self._epoch(session, lock="share").epoch
        return key, self.keyring.wrap_for(purpose, owner_id, key, epoch)

    def open_purpose_key(self, purpose: str, owner_id: str, wrapped: bytes) -> bytes:
        return self.keyring.unwrap_for(purpose, owner_id, wrapped)

    @staticmethod
    def seal_with(key: bytes, data: bytes, aad: bytes) -> bytes:
        """AES-256-GCM under a data key (see keyring.seal)."""
        return seal(key, data, aad)

    @staticmethod
    def open_with(key: bytes, sealed: bytes, aad: bytes) -> bytes:
        return unseal(key, sealed, aad)

    # -- rotation ---------------------------------------------------------------------------

    def rotate(self, session: Session, *, destroy_on_commit: bool = False) -> int:
        """Re-wrap every stored data key under a new KEK, inside the caller's transaction
        (an erasure's). The new KEK's file is written before the database refers to it, and
        removed if the transaction rolls back. Returns the new epoch.

        The old KEK files are not destroyed here: an erasure journals the new epoch
        (``services/erasure_work.py``), whose completion first reseals every index file
        under the new epoch, while the old KEK can still open them, and only then destroys
        the files below it; a crash in between is finished at the next start.
        ``destroy_on_commit`` destroys them as soon as the transaction commits instead, for
        a rotation with nothing to reseal (``start_first_epoch``, at ``probity init``).

        Cost: one unwrap and one wrap (AES-GCM on 32 bytes) and one row update per stored
        key, paid once per erasure call (bulk erasures rotate once for the lot). Measured
        on 2 cores with SQLite (bench/key_rotation.py): 0.05 s for 1,000 keys, 0.8 s for
        10,000, 4.7 s for 100,000 — the erasure holds the write lock that long."""
        state = self._epoch(session, lock="update")
        new = state.epoch + 1
        ring = self.keyring
        ring.write_kek(new)
        for table, column, aad_of in _WRAPPED_KEYS:
            held = getattr(table, column)
            for row in session.scalars(select(table).where(held.is_not(None))):
                aad = aad_of(row)
                setattr(
                    row, column, ring.wrap_at(new, aad, ring.unwrap_any(aad, getattr(row, column)))
                )
        session.execute(
            update(KeyringStateRow)
            .where(KeyringStateRow.id == 1)
            .values(epoch=new, rotated_at=datetime.now(UTC))
        )
        session.flush()

        def committed(_: Session) -> None:
            ring.destroy_below(new)

        def rolled_back(_: Session) -> None:
            ring.forget(new)

        if destroy_on_commit:
            event.listen(session, "after_commit", committed, once=True)
        event.listen(session, "after_rollback", rolled_back, once=True)
        return new

    def start_first_epoch(self, session: Session) -> bool:
        """At ``probity init``: a home still at epoch 0 (data keys wrapped by the master key
        itself, or none yet) moves to epoch 1, re-wrapping whatever keys it holds, so that
        the master key wraps no data key and even the first erasure leaves backups
        unreadable with the current keys. Returns True if it rotated."""
        if self.current_epoch(session) != 0:
            return False
        self.rotate(session, destroy_on_commit=True)
        return True

"""Envelope encryption of a subject's images and templates (see keyring.py for the scheme)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from probity.errors import IntegrityError
from probity.storage.blobs import BlobStore
from probity.storage.keyring import Keyring, new_data_key, seal, unseal
from probity.storage.repositories import Cases, Subjects


class Vault:
    """Seals and opens subject data with per-subject keys. Unwrapped keys are never cached
    beyond one service call, so a shredded key cannot linger in a long-running process."""

    def __init__(self, keyring: Keyring, blobs: BlobStore) -> None:
        self.keyring = keyring
        self.blobs = blobs

    def new_wrapped_key(self, subject_id: str) -> tuple[bytes, bytes]:
        """A fresh data key for a new subject: (plain key, wrapped key to store)."""
        key = new_data_key()
        return key, self.keyring.wrap(subject_id, key)

    def subject_key(self, session: Session, subject_id: str) -> bytes:
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

    def new_case_key(self, case_id: str) -> tuple[bytes, bytes]:
        """A fresh data key for a case's probes: (plain key, wrapped key to store)."""
        key = new_data_key()
        return key, self.keyring.wrap_case_key(case_id, key)

    def case_key(self, session: Session, case_id: str) -> bytes | None:
        """The case's probe key, or None if the case has none yet (opened before probes
        were kept)."""
        wrapped = Cases(session).wrapped_probe_key(case_id)
        return None if wrapped is None else self.keyring.unwrap_case_key(case_id, wrapped)

    def put_probe(self, key: bytes, case_id: str, blob_id: str, image: bytes) -> None:
        self.blobs.put(blob_id, seal(key, image, f"probity/probe/{case_id}/{blob_id}".encode()))

    def get_probe(self, key: bytes, case_id: str, blob_id: str) -> bytes:
        return unseal(key, self.blobs.get(blob_id), f"probity/probe/{case_id}/{blob_id}".encode())

    def new_purpose_key(self, purpose: str, owner_id: str) -> tuple[bytes, bytes]:
        """A fresh data key for something that is neither a subject nor a case (a rights
        request's photo, a suppression template): (plain key, wrapped key to store). The
        purpose is bound into the wrapping, so a key cannot be reused for another purpose.
        Every wrapped key is re-wrapped by ``rotate``; a new purpose must be added there."""
        key = new_data_key()
        return key, self.keyring.wrap_for(purpose, owner_id, key)

    def open_purpose_key(self, purpose: str, owner_id: str, wrapped: bytes) -> bytes:
        return self.keyring.unwrap_for(purpose, owner_id, wrapped)

    @staticmethod
    def seal_with(key: bytes, data: bytes, aad: bytes) -> bytes:
        """AES-256-GCM under a data key (see keyring.seal)."""
        return seal(key, data, aad)

    @staticmethod
    def open_with(key: bytes, sealed: bytes, aad: bytes) -> bytes:
        return unseal(key, sealed, aad)

    def get_image(self, key: bytes, subject_id: str, blob_id: str) -> bytes:
        aad = f"probity/image/{subject_id}/{blob_id}".encode()
        return unseal(key, self.blobs.get(blob_id), aad)

    def rotate(self, session: Session) -> None:
        """Re-wrap every stored data key under a new key-wrapping key (see keyring.py).
        Called inside an erasure's transaction."""
        return None

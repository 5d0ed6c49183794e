"""A fixed-key ``IndexSeal`` for the index tests (the real one, ``IndexKeys``, derives keys
from the keyring's KEKs; see ``services/indexes.py``)."""

from __future__ import annotations

import hashlib

import pytest

from probity.errors import IntegrityError


class FixedSeal:
    """Keys derived from the epoch number; ``current_epoch`` seals saves; epochs in
    ``destroyed`` raise IntegrityError like a keyring whose KEK was destroyed."""

    def __init__(self, current_epoch: int = 1, *, salt: bytes = b"test") -> None:
        self.current_epoch = current_epoch
        self.destroyed: set[int] = set()
        self._salt = salt

    def key(self, epoch: int) -> bytes:
        if epoch in self.destroyed:
            raise IntegrityError(f"the key-encryption key of epoch {epoch} was destroyed")
        return hashlib.sha256(self._salt + epoch.to_bytes(8, "big")).digest()

    def current(self) -> tuple[int, bytes]:
        return self.current_epoch, self.key(self.current_epoch)


@pytest.fixture
def seal() -> FixedSeal:
    return FixedSeal()

"""The key an index file is sealed under (the seam between the index package and the
keyring). Index files hold every template of a gallery, so they are encrypted at rest like
the rest of the home, under a key that changes with every rotation of the key-encryption key
(KEK): a copy of ``index/`` taken before an erasure cannot be opened with the current keys.

``services/indexes.py`` provides the implementation (``IndexKeys``: the epoch from the
database, the key derived from that epoch's KEK by ``Keyring.index_key``); tests of the
index package use a fixed key.
"""

from __future__ import annotations

from typing import Protocol

from probity.errors import IntegrityError


class IndexFileUnreadable(IntegrityError):
    """An index file that cannot be opened: written before index files were sealed (plain
    FAISS or numpy), corrupt, sealed for another slot, or sealed under a key whose KEK was
    destroyed by an erasure. The index is derived data: ``services/indexes.py`` starts that
    slot empty at seq 0 and rebuilds it from the template log."""


class IndexSeal(Protocol):
    def current(self) -> tuple[int, bytes]:
        """(epoch, 32-byte key) to seal a save with: the KEK epoch current in the database
        at the time of the call, and the index key derived from it."""
        ...

    def key(self, epoch: int) -> bytes:
        """The 32-byte index key of ``epoch``. Raises ``IntegrityError`` if that epoch's KEK
        was destroyed (the file was sealed before an erasure)."""
        ...

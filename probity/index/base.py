"""The ``VectorIndex`` protocol every backend implements (one contract test runs against all).

Vectors go in as the model produced them; the index L2-normalises them and ranks by inner
product, i.e. cosine similarity in [-1, 1], best first. Labels are int64 template ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Hit:
    id: int
    similarity: float  # cosine similarity of the normalised vectors, 1.0 = same direction


class VectorIndex(Protocol):
    @property
    def dimension(self) -> int: ...

    def __len__(self) -> int: ...

    def add(self, ids: Sequence[int] | NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add vectors (n, dimension) under ids (n,). Adding an id already present replaces it."""
        ...

    def remove(self, ids: Sequence[int] | NDArray[np.int64]) -> int:
        """Physically remove these ids (no tombstones); returns how many were present."""
        ...

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        """For each query row, up to k hits, best first."""
        ...

    def ids(self) -> NDArray[np.int64]:
        """Every id held, in no particular order."""
        ...

    def clear(self) -> None:
        """Remove everything (used by rebuild)."""
        ...

    @property
    def applied_seq(self) -> int:
        """The last ``template_changes`` seq whose effect this index holds (0: none yet).

        The database is the only truth: every change to the set of templates is logged there
        with a seq (migration 0014), and ``services/indexes.py`` brings an index from its
        ``applied_seq`` up to the log's head before it answers a search. A backend keeps this
        number with its vectors and persists both in the same ``save()``, so that after a
        crash the saved vectors and the saved seq always describe the same state."""
        ...

    def mark_applied(self, seq: int) -> None:
        """Record (in memory, saved by the next ``save()``) that every change up to ``seq``
        is applied. Never moves backwards."""
        ...

    def save(self) -> None:
        """Persist the vectors and ``applied_seq`` together, sealed (AES-256-GCM) under the
        index key current at the time of the call (``IndexSeal.current``): write to a temp
        file, fsync, atomic rename, fsync dir."""
        ...

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

    def save(self) -> None:
        """Persist to the index's file: write to a temp file, fsync, atomic rename, fsync dir."""
        ...

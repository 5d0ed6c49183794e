"""Input checks and L2 normalisation shared by every index backend.

Every backend funnels its inputs through these functions so that they refuse the same things
with the same messages, and store bit-identical normalised float32 vectors (which is what lets
the contract test scan a saved file for a removed vector's exact bytes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from probity.errors import InvalidInput
from probity.index.base import Hit

IdsLike = Sequence[int] | NDArray[np.int64]


def check_ids(ids: IdsLike, *, unique: bool = True) -> NDArray[np.int64]:
    """Return ``ids`` as a contiguous 1-D int64 array, or raise ``InvalidInput``.

    Ids must be integers >= 0: FAISS uses -1 to mean "no result", so negative labels would be
    ambiguous. With ``unique`` (used by ``add``) an id may appear only once per call, because
    "last one wins" inside a batch would silently drop a template.
    """
    array = np.asarray(ids)
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if array.ndim != 1:
        raise InvalidInput(f"ids must be one-dimensional, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise InvalidInput(f"ids must be integers, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.unsignedinteger) and int(array.max()) > np.iinfo(np.int64).max:
        raise InvalidInput("ids must fit in a signed 64-bit integer")
    result = np.ascontiguousarray(array, dtype=np.int64)
    if int(result.min()) < 0:
        raise InvalidInput("ids must be >= 0 (negative labels are reserved)")
    if unique and np.unique(result).size != result.size:
        raise InvalidInput("ids must be unique within one call")
    return result


def normalise(
    vectors: NDArray[np.floating], dimension: int, *, what: str = "vectors"
) -> NDArray[np.float32]:
    """Check shape (n, ``dimension``) and finiteness, and scale each row to unit L2 length.

    Returns a new C-contiguous float32 array; the input is never modified. Any real float dtype
    is accepted (dlib gives float64) and converted to float32 first. Norms are accumulated in
    float64 so that the result does not depend on the backend: both backends store exactly
    these bytes. A zero row has no direction, so it is refused rather than stored as NaN.
    """
    array = np.asarray(vectors)
    if array.ndim != 2:
        raise InvalidInput(f"{what} must have shape (n, {dimension}), got shape {array.shape}")
    if array.shape[1] != dimension:
        raise InvalidInput(
            f"{what} have dimension {array.shape[1]} but this index holds dimension {dimension}"
        )
    if array.size and not np.issubdtype(array.dtype, np.floating):
        raise InvalidInput(f"{what} must be floating point, got dtype {array.dtype}")
    floats = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(floats).all():
        raise InvalidInput(f"{what} hold NaN or infinite values")
    norms = np.sqrt(np.einsum("ij,ij->i", floats, floats, dtype=np.float64))
    if floats.shape[0] and float(norms.min()) == 0.0:
        raise InvalidInput(f"{what} hold an all-zero row, which has no direction")
    result: NDArray[np.float32] = floats / norms[:, None].astype(np.float32)
    return result


def check_batch(
    ids: IdsLike, vectors: NDArray[np.floating], dimension: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Check an ``add`` call: unique ids >= 0, one per row of (n, ``dimension``) vectors.

    Returns the ids as int64 and the vectors normalised (see ``normalise``).
    """
    checked_ids = check_ids(ids)
    normalised = normalise(vectors, dimension)
    if checked_ids.shape[0] != normalised.shape[0]:
        raise InvalidInput(
            f"got {checked_ids.shape[0]} ids but {normalised.shape[0]} vectors; they must match"
        )
    return checked_ids, normalised


def check_dimension(dimension: int) -> int:
    """Return ``dimension`` as an int >= 1, or raise ``InvalidInput``."""
    if isinstance(dimension, bool) or not isinstance(dimension, int | np.integer) or dimension < 1:
        raise InvalidInput(f"dimension must be an integer >= 1, got {dimension!r}")
    return int(dimension)


def check_k(k: int) -> int:
    """Return ``k`` as an int >= 1, or raise ``InvalidInput``."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidInput(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def clip_similarity(value: float) -> float:
    """Clamp rounding overshoot (1.0000001) so reported similarities stay in [-1, 1]."""
    return min(1.0, max(-1.0, float(value)))


def to_hits(labels: NDArray[np.int64], scores: NDArray[np.float32]) -> list[list[Hit]]:
    """FAISS-style search results (one row of labels and scores per query, best first, -1
    where fewer than k were found) as ``Hit`` lists, the -1 padding dropped."""
    return [
        [
            Hit(id=int(i), similarity=clip_similarity(s))
            for i, s in zip(row_ids.tolist(), row_scores.tolist(), strict=True)
            if i >= 0
        ]
        for row_ids, row_scores in zip(labels, scores, strict=True)
    ]

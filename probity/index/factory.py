"""Choose and open an index backend by name (``settings.index_backend``).

    "faiss"  FaissIndex, FAISS IndexIDMap2(IndexFlatIP), file <stem>.faiss   (default)
    "exact"  ExactIndex, numpy brute force, file <stem>.npz                 (reference)

Both are exact and support physical removal; FAISS is faster on batches and loads/saves its
own format. The backend module is imported only when it is opened.
"""

from __future__ import annotations

from pathlib import Path

from probity.errors import InvalidInput
from probity.index.base import VectorIndex

__all__ = ["BACKENDS", "index_file", "open_index"]

BACKENDS: dict[str, str] = {"faiss": ".faiss", "exact": ".npz"}
"""Backend name -> file suffix appended to the path stem."""


def index_file(backend: str, path_stem: Path) -> Path:
    """The file a backend keeps under ``path_stem``: the stem plus the backend's suffix.

    The suffix is appended, not substituted, so a stem like ``gallery.v2`` keeps its dot.
    Raises ``InvalidInput`` for an unknown backend.
    """
    suffix = BACKENDS.get(backend)
    if suffix is None:
        known = ", ".join(f"'{name}'" for name in sorted(BACKENDS))
        raise InvalidInput(f"unknown index backend '{backend}': choose one of {known}")
    return path_stem.with_name(path_stem.name + suffix)


def open_index(backend: str, path_stem: Path, dimension: int | None) -> VectorIndex:
    """Open (loading its file if present) or create the index ``backend`` at ``path_stem``.

    ``dimension`` is the template length of the gallery's model (128 for dlib and SFace);
    None reads it from the existing file (which must then exist). Raises
    ``InvalidInput`` for an unknown backend and ``IntegrityError`` for an unreadable file or a
    file of another dimension; the index is derived data, so the fix is a rebuild.
    """
    path = index_file(backend, path_stem)
    if backend == "faiss":
        from probity.index.faiss_index import FaissIndex

        return FaissIndex(path, dimension)
    from probity.index.exact import ExactIndex

    return ExactIndex(path, dimension)

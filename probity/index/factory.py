"""Choose and open an index backend by name (``settings.index_backend``).

    "faiss"  FaissIndex, FAISS IndexIDMap2(IndexFlatIP), file <stem>.faiss   (default)
    "exact"  ExactIndex, numpy brute force, file <stem>.npz                 (reference)
    "ivf"    IvfIndex, flat up to 50,000 vectors then IVF-SQ8, a manifest <stem>.ivf and
             segment files <stem>.ivf-*.seg (large galleries; see ivf_index.py)
    "milvus" MilvusIndex, a Milvus collection per slot; Milvus Lite keeps it in the data
             folder <stem>.milvus.db, a cluster by settings.milvus.uri (see milvus_index.py)

Both are exact and support physical removal; FAISS is faster on batches and loads/saves its
own format. Either file is sealed at rest (AES-256-GCM, ``probity.index.files``) under the
index key ``seal`` gives, with the index's ``applied_seq`` in its authenticated header. The
backend module is imported only when it is opened.
"""

from __future__ import annotations

from pathlib import Path

from probity.errors import InvalidInput
from probity.index.base import VectorIndex
from probity.index.sealing import IndexSeal

__all__ = ["BACKENDS", "index_file", "index_paths", "index_plaintext", "open_index"]

BACKENDS: dict[str, str] = {
    "faiss": ".faiss",
    "exact": ".npz",
    "ivf": ".ivf",
    "milvus": ".milvus.db",
}
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


def open_index(
    backend: str, path_stem: Path, dimension: int | None, seal: IndexSeal
) -> VectorIndex:
    """Open (unsealing its file if present) or create the index ``backend`` at ``path_stem``.

    ``dimension`` is the template length of the gallery's model (128 for dlib and SFace);
    None reads it from the existing file's header (the file must then exist). ``seal`` gives
    the index keys: ``seal.key(epoch)`` to open the file, ``seal.current()`` for each
    ``save()``. Raises ``InvalidInput`` for an unknown backend and ``IndexFileUnreadable`` (an
    ``IntegrityError``) for a file that is missing (dimension None), plain (written before
    sealing), corrupt, truncated, another slot's or backend's, sealed under a destroyed epoch,
    or of another dimension; the index is derived data, so the fix is a rebuild.
    """
    path = index_file(backend, path_stem)
    if backend == "faiss":
        from probity.index.faiss_index import FaissIndex

        return FaissIndex(path, dimension, seal)
    if backend == "ivf":
        from probity.index.ivf_index import IvfIndex

        return IvfIndex(path, dimension, seal)
    if backend == "milvus":
        from probity.index.milvus_index import MilvusIndex

        return MilvusIndex(path, dimension, seal)
    from probity.index.exact import ExactIndex

    return ExactIndex(path, dimension, seal)


def index_paths(backend: str, path_stem: Path) -> list[Path]:
    """Every file on disk that holds part of the index at ``path_stem``: the index file and,
    for "ivf", its segment files (referenced by the manifest or left by a crash). Deleting
    an index means deleting all of them."""
    path = index_file(backend, path_stem)
    out = [path] if path.exists() else []
    if backend == "ivf":
        from probity.index.ivf_index import segment_files

        out += segment_files(path)
    return out


def index_plaintext(backend: str, path_stem: Path, seal: IndexSeal) -> list[bytes]:
    """The decrypted payload of every file of the index at ``path_stem`` (for tests and
    audits that scan an index at rest for a template's bytes: an erasure's byte scan)."""
    from probity.index.files import read_sealed

    path = index_file(backend, path_stem)
    if backend == "ivf":
        from probity.index.ivf_index import decrypted_payloads

        return decrypted_payloads(path, seal)
    return [read_sealed(path, seal=seal, backend=backend)[0].tobytes()]

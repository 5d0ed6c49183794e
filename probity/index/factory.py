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

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from probity.errors import InvalidInput
from probity.index.base import VectorIndex
from probity.index.sealing import IndexSeal

if TYPE_CHECKING:
    from probity.config import MilvusSettings

__all__ = [
    "BACKENDS",
    "erasure_statement",
    "index_file",
    "index_paths",
    "index_plaintext",
    "open_index",
]

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
    backend: str,
    path_stem: Path,
    dimension: int | None,
    seal: IndexSeal,
    *,
    milvus: MilvusSettings | None = None,
) -> VectorIndex:
    """Open (unsealing its file if present) or create the index ``backend`` at ``path_stem``.

    ``dimension`` is the template length of the gallery's model (128 for dlib and SFace);
    None reads it from the existing file's header (the file must then exist). ``seal`` gives
    the index keys: ``seal.key(epoch)`` to open the file, ``seal.current()`` for each
    ``save()``. Raises ``InvalidInput`` for an unknown backend and ``IndexFileUnreadable`` (an
    ``IntegrityError``) for a file that is missing (dimension None), plain (written before
    sealing), corrupt, truncated, another slot's or backend's, sealed under a destroyed epoch,
    or of another dimension; the index is derived data, so the fix is a rebuild.

    ``milvus`` is the home's Milvus settings (``settings.milvus``), used by the "milvus"
    backend only. The services pass it, so that a settings file or a CLI override reaches
    the index; None (direct callers, tests) reads ``PROBITY_MILVUS__*`` from the environment.
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

        return MilvusIndex(path, dimension, seal, settings=milvus)
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


_HELD_BY_PROBITY = "The template held by Probity was destroyed with its subject's key."


def erasure_statement(
    backend: str,
    milvus: MilvusSettings | None,
    *,
    at: datetime,
    slot: str | None = None,
) -> str:
    """One plain-English paragraph, for an erasure receipt, of what erasing a template from
    the vector index of ``backend`` guarantees, and where that guarantee stops.

    Why here: what the index erasure reaches is a property of the backend, so the text lives
    beside the backends, and it says only what their code does (each module's docstring):
    freed disk blocks are never overwritten, and old copies of sealed files (a backup of the
    home) are covered only by the key rotation. The receipt is written in the erasing
    transaction, before the index catches up (``services/erasure_work.py`` journals that
    step and retries it until it succeeds), so the text says what the erasure does, not that
    it has been observed done. ``at`` is the erasure's time; ``slot`` the index slot's name
    (``IndexSlot.name``), which names the file, Lite folder or cluster collection (None: a
    generic description). ``milvus`` None reads ``PROBITY_MILVUS__*`` from the environment,
    as ``open_index`` does. Raises ``InvalidInput`` for an unknown backend.
    """
    index_file(backend, Path(slot or "index"))  # refuses an unknown backend
    when = at.isoformat(timespec="seconds")
    if backend == "milvus":
        if milvus is None:
            from probity.index.milvus_index import _default_settings

            milvus = _default_settings()
        return _milvus_statement(milvus, when, slot)
    if backend == "ivf":
        where = f"`{slot}.ivf` and its segment files" if slot else "its manifest and segments"
        return (
            f"Vector index (ivf, {where} in the home's index folder): at the erasure of "
            f"{when} the index removes the template entries and rewrites every segment file "
            "that held them under a fresh random key and a new file name, writes a new "
            "manifest sealed under the key-encryption key this erasure rotated to, and "
            "deletes the old segment files; no current file holds the entries. An old copy of "
            "a rewritten segment (a backup of the home) cannot be opened: its key was only in "
            "manifests sealed under keys the rotation destroys. Freed disk blocks are not "
            f"overwritten. {_HELD_BY_PROBITY}"
        )
    suffix = BACKENDS[backend]
    where = f"the sealed file `{slot}{suffix}`" if slot else f"its sealed {suffix} file"
    return (
        f"Vector index ({backend}, {where} in the home's index folder): at the erasure of "
        f"{when} the index removes the template entries and the whole file is rewritten "
        "without them, sealed under the key-encryption key this erasure rotated to. An old "
        "copy of the file (a backup of the home) cannot be opened: the key that sealed it is "
        "destroyed by the rotation. Freed disk blocks are not overwritten. "
        f"{_HELD_BY_PROBITY}"
    )


def _milvus_statement(milvus: MilvusSettings, when: str, slot: str | None) -> str:
    """The Milvus wordings of docs/milvus.md ("Receipt wording"): Lite rewrites its folder
    and can say the bytes are gone from it; a cluster deletes at once but removes the bytes
    only when its compaction, garbage collection and queue retention get to them, which
    Probity cannot observe, so the bound is the operator's statement or is said to be
    missing."""
    if not milvus.uri:
        where = f"data folder `{slot}.milvus.db`" if slot else "the slot's data folder"
        return (
            f"Vector index (Milvus Lite, {where} in the home's index folder): at the erasure "
            f"of {when} the template entries are deleted and the collection is rewritten "
            "without them; their bytes are then in no file of the index folder. The folder is "
            "not sealed by Probity, so a backup of it taken before the erasure still holds "
            f"them. Freed disk blocks are not overwritten. {_HELD_BY_PROBITY}"
        )
    from probity.index.milvus_index import collection_name

    collection = (
        f"`{collection_name(slot, milvus.collection_prefix)}`"
        if slot
        else f"of prefix `{milvus.collection_prefix}`"
    )
    bound = milvus.stated_removal_bound.strip()
    if bound:
        expected = (
            "this deployment's operator states that its compaction, garbage-collection and "
            f"message-queue retention settings remove them within {bound} of the deletion"
        )
    else:
        expected = (
            "this deployment's operator has not stated within what time its compaction, "
            "garbage-collection and message-queue retention settings remove them"
        )
    return (
        f"Vector index (Milvus collection {collection}): at the erasure of {when} Probity "
        "deletes the template entries from the collection and waits until Milvus confirms "
        "the deletion and the flush and reports the compaction Probity requested complete "
        f"(at most {milvus.compaction_timeout_s:g} s a try; the erasure's journal retries "
        "until it succeeds). From the deletion on, no search can return them. Milvus removes "
        "deleted entries from its storage only when it rewrites the segments that held them "
        "and its garbage collector then deletes the old files, and the message queue keeps "
        f"the insert messages for its retention time; {expected}. Probity cannot observe "
        "this and does not certify it. Backups of the Milvus cluster are not covered. "
        f"{_HELD_BY_PROBITY}"
    )

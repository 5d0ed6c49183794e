"""``MilvusIndex``: a ``VectorIndex`` held in the Milvus vector database (past one machine).

**What Milvus holds.** One collection per index slot (one gallery's templates of one model),
with two fields and nothing else: ``id`` (INT64 primary key: the template id) and ``vector``
(FLOAT_VECTOR, L2-normalised by ``probity.index.vectors``, metric IP, so scores are cosine
similarities). No name, subject id, gallery id or provenance goes to Milvus; the templates
themselves stay sealed in Probity's database, and the collection can always be rebuilt
from them. Two collection properties describe the collection: ``probity.slot`` (the slot
name, so a data folder moved into another slot is refused) and ``probity.applied_seq``.

**Where.** ``MilvusSettings.uri`` empty (the default): Milvus Lite, the in-process Milvus of
the ``milvus-lite`` package, with one data folder per slot at ``<stem>.milvus.db`` (Lite
locks it: one process at a time). ``uri`` set: a Milvus server or cluster, one collection
per slot named ``<prefix>_<slot>_<hash>`` (Milvus allows letters, digits and underscores; the
hash of the exact slot name keeps two slots that sanitise alike apart).

**applied_seq and crashes.** ``services/indexes.py`` replays the template log from an index's
``applied_seq``, and replaying a change already applied changes nothing (an add replaces, a
remove of an absent id is ignored). So the one thing that must never happen is a persisted
``applied_seq`` ahead of the persisted vectors: that would skip changes for good. Milvus
persists every insert and delete in its write-ahead log as it is acknowledged, so the data
is always at least as new as anything Probity marked; ``save()`` flushes the collection
(the vectors reach sealed segments) and only then writes ``applied_seq`` into the collection
properties (an atomic metadata write in Milvus, ``schema.json`` replaced atomically in Lite).
A crash before that write leaves the older seq with newer data: a harmless replay. Emptying
a collection (``clear``, the Lite rewrite below) drops and recreates it with seq 0 *before*
anything is put back, so a crash in between costs a full rebuild, never a miss.

**Sealing.** Milvus keeps its own files: there is nothing for Probity to seal, and
``seal`` is accepted only to keep the ``open_index`` signature. In a cluster, at-rest
encryption is the job of Milvus and its storage (encrypted volumes for etcd and the message
queue, server-side encryption of the object store); Probity's crypto-shredding of the
templates does not reach copies Milvus keeps, so erasure there depends on Milvus deleting
them (below, and docs/milvus.md). Milvus Lite's data folder holds the normalised vectors in
the clear (Parquet files and index files): keep ``<home>/index`` on an encrypted volume.

**Erasure.** ``remove`` deletes the rows, flushes, requests a compaction and waits for it to
finish (at most ``compaction_timeout_s``; past that it raises ``MilvusCompactionTimeout`` and
the rows stay deleted, i.e. never returned by a search). Milvus marks deleted rows and drops
them physically only when a compaction rewrites their segments; the old segment files stay
in object storage until Milvus's garbage collector removes them (``dataCoord.gc.*``), and
the insert messages stay in the message queue for its retention time. Probity cannot see or
speed up those last steps, so a receipt must say no more than docs/milvus.md says.
Milvus Lite 3.2 answers a compaction request at once without compacting (its
``ManualCompaction`` is a no-op, and its automatic compaction merges only groups of four
or more similar-sized files), so on Lite ``remove`` also rewrites the collection: it reads
the remaining rows, drops the collection (its folder is deleted) and writes them back. That
costs O(n) per call, like FAISS's ``remove_ids``; batch removals. After it, the removed
vectors' bytes are in no file of the data folder (tests/index/test_milvus_index.py scans
them).

``pymilvus`` is imported only when an index is opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from probity.errors import IntegrityError
from probity.index.base import Hit
from probity.index.sealing import IndexFileUnreadable, IndexSeal
from probity.index.vectors import (
    IdsLike,
    check_batch,
    check_dimension,
    check_ids,
    check_k,
    clip_similarity,
    normalise,
)

if TYPE_CHECKING:
    from probity.config import MilvusSettings

__all__ = [
    "MilvusCompactionTimeout",
    "MilvusIndex",
    "MilvusUnavailable",
    "collection_name",
    "drop_index",
]

BACKEND = "milvus"
SLOT_PROPERTY = "probity.slot"
SEQ_PROPERTY = "probity.applied_seq"
ID_FIELD = "id"
VECTOR_FIELD = "vector"

_MAX_TOPK = 16_384  # Milvus's limit on k and on queries per request
_QUERY_BATCH = 1_024  # queries per search request
_WRITE_BATCH = 5_000  # rows per insert request (2.5 MiB at 128-d, far below gRPC's 64 MiB)
_READ_BATCH = 10_000  # rows per page when reading the collection back
_FILTER_BATCH = 1_000  # ids per "id in [...]" expression


class MilvusUnavailable(IntegrityError):
    """Milvus could not be reached or refused a call (a server down, wrong credentials, a
    Milvus Lite folder another process holds). The index cannot answer or catch up."""

    code = "milvus_unavailable"


class MilvusCompactionTimeout(IntegrityError):
    """A removal's compaction did not finish within ``compaction_timeout_s``. The rows are
    deleted (no search returns them) but their bytes may remain in sealed segments."""

    code = "milvus_compaction_timeout"


def collection_name(slot: str, prefix: str = "probity") -> str:
    """The collection of the slot named ``slot``: ``<prefix>_<sanitised slot>_<hash>``.

    Milvus names hold letters, digits and underscores, start with a letter or underscore
    and have at most 255 characters; the first 12 hex digits of the slot name's SHA-256
    keep slots apart whose names differ only in characters replaced by ``_``."""
    digest = hashlib.sha256(slot.encode("utf-8")).hexdigest()[:12]
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", slot)[:160]
    return f"{prefix}_{cleaned}_{digest}"


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise MilvusUnavailable(
            "the 'milvus' index backend needs pymilvus and milvus-lite: "
            "pip install 'probity[milvus]'"
        ) from error
    return pymilvus


def drop_index(path: Path, settings: MilvusSettings | None = None) -> None:
    """Delete the Milvus index whose Lite data folder is ``path`` (``<stem>.milvus.db``),
    whether or not it can be opened: with Milvus Lite, stop the folder's server in this
    process and delete the folder (or a stray file of that name); with a cluster
    (``settings.uri``), drop the slot's collection. Nothing there: nothing is done.

    ``services/indexes.py`` calls this where it unlinks other backends' files: a Lite
    index is a folder, and the server Lite runs in the process must let go of it first."""
    settings = settings if settings is not None else _default_settings()
    path = Path(path)
    if not settings.uri:
        _remove_lite_folder(path)
        return
    slot = path.name.removesuffix(".milvus.db")
    pymilvus = _pymilvus()
    token = settings.token.get_secret_value() if settings.token is not None else ""
    try:
        client = pymilvus.MilvusClient(
            uri=settings.uri,
            token=token,
            db_name=settings.db_name,
            timeout=settings.request_timeout_s,
        )
        try:
            client.drop_collection(collection_name(slot, settings.collection_prefix))
        finally:
            client.close()
    except pymilvus.MilvusException as error:
        raise MilvusUnavailable(
            f"Milvus could not drop the index of slot {slot}: {error}"
        ) from error


def _remove_lite_folder(path: Path) -> None:
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:  # pragma: no cover - without Lite no server can hold the folder
        pass
    else:
        server_manager_instance.release_server(str(path))
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _default_settings() -> MilvusSettings:
    """``PROBITY_MILVUS__*`` from the environment: only a fallback for direct callers
    (tests, benchmarks) that pass no settings. The services always pass the home's
    ``settings.milvus`` (``open_index(..., milvus=)``, ``IndexSet(milvus=)``), because the
    environment alone misses a settings file and a CLI override."""
    from probity.config import Settings

    return Settings().milvus


class MilvusIndex:
    """Cosine-similarity search over L2-normalised float32 vectors in a Milvus collection.

    ``path`` is the slot's Milvus Lite data folder (``<stem>.milvus.db``); its file name
    without the suffix is the slot name, which also names the collection in a cluster.
    ``dimension`` None opens an existing collection and takes its dimension (the
    collection must exist). ``settings`` None reads ``PROBITY_MILVUS__*`` from the
    environment (a fallback for direct callers; the services pass the home's settings).
    Thread-safe: one lock serialises every call, so a search never sees a removal's rewrite
    half done.
    """

    def __init__(
        self,
        path: Path,
        dimension: int | None,
        seal: IndexSeal | None = None,
        *,
        settings: MilvusSettings | None = None,
    ) -> None:
        self._path = Path(path)
        self._settings = settings if settings is not None else _default_settings()
        self._slot = self._path.name.removesuffix(".milvus.db")
        self._name = collection_name(self._slot, self._settings.collection_prefix)
        self._lock = threading.RLock()
        self._pymilvus = _pymilvus()
        self._lite = not self._settings.uri
        self._dimension = 0 if dimension is None else check_dimension(dimension)
        self._index_type = self._settings.index_type
        self._client = self._connect(create=dimension is not None)
        self._lite = self._lite or self._server_is_lite()
        with self._calls("look up"):
            exists = self._client.has_collection(self._name)
        if exists:
            self._dimension, saved = self._open_existing()
        elif dimension is None:
            raise self._unreadable("does not exist")
        else:
            self._refuse_other_slots()
            self._create()
            saved = 0
        self._applied_seq = saved
        self._saved_seq = saved

    # -- the VectorIndex protocol -----------------------------------------------------------

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def path(self) -> Path:
        """The Milvus Lite data folder (unused by a cluster, where the slot names it)."""
        return self._path

    @property
    def collection(self) -> str:
        """The collection's name in Milvus."""
        return self._name

    def __len__(self) -> int:
        with self._lock, self._calls("count the rows of"):
            rows = self._client.query(self._name, filter="", output_fields=["count(*)"])
            return int(rows[0]["count(*)"]) if rows else 0

    def add(self, ids: IdsLike, vectors: NDArray[np.float32]) -> None:
        """Add vectors (n, dimension) under ids (n,); an id already present is replaced
        (a Milvus upsert). Vectors are normalised on the way in; the same checks as every
        backend (``check_batch``) refuse bad input before anything is sent."""
        new_ids, new_vectors = check_batch(ids, vectors, self._dimension)
        if new_ids.size == 0:
            return
        with self._lock, self._calls("write to"):
            self._write(new_ids, new_vectors, upsert=True)

    def remove(self, ids: IdsLike) -> int:
        """Delete these ids, flush, compact and wait for the compaction; returns how many
        were present (absent ids are ignored, and nothing is sent when none is present).

        Raises ``MilvusCompactionTimeout`` when the compaction does not finish within
        ``compaction_timeout_s``; the rows are deleted all the same. On Milvus Lite the
        collection is then rewritten without the rows (see the module docstring)."""
        gone = np.unique(check_ids(ids, unique=False))
        if gone.size == 0:
            return 0
        with self._lock:
            with self._calls("delete from"):
                present = self._present(gone)
                if present.size == 0:
                    return 0
                self._client.delete(self._name, ids=present.tolist())
                self._client.flush(self._name)
            self._compact_and_wait()
            if self._lite:
                self._rewrite()
            return int(present.size)

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        """For each query row, up to ``k`` hits (at most 16,384: Milvus's limit), highest
        cosine similarity first. With FLAT the answers are exact; HNSW, IVF and DISKANN
        are approximate (recall measured in bench/milvus_index.py)."""
        k = min(check_k(k), _MAX_TOPK)
        normalised = normalise(queries, self._dimension, what="queries")
        if normalised.shape[0] == 0:
            return []
        params = self._search_params(k)
        results: list[list[Hit]] = []
        with self._lock, self._calls("search"):
            for start in range(0, normalised.shape[0], _QUERY_BATCH):
                block = normalised[start : start + _QUERY_BATCH]
                answer = self._client.search(
                    self._name,
                    data=[row for row in block],
                    anns_field=VECTOR_FIELD,
                    limit=k,
                    output_fields=[ID_FIELD],
                    search_params=params,
                )
                for row in answer:
                    results.append(
                        [
                            Hit(id=int(hit["id"]), similarity=clip_similarity(hit["distance"]))
                            for hit in row
                        ]
                    )
        return results

    def ids(self) -> NDArray[np.int64]:
        """Every id held, in no particular order."""
        with self._lock, self._calls("read the ids of"):
            chunks = [page for page, _ in self._pages(with_vectors=False)]
        if not chunks:
            return np.empty(0, dtype=np.int64)
        return np.concatenate(chunks).astype(np.int64, copy=False)

    def clear(self) -> None:
        """Remove everything and reset ``applied_seq`` to 0. The collection is dropped and
        created again at once (Milvus has no unsaved state), with seq 0 persisted."""
        with self._lock:
            self._recreate()
            self._applied_seq = 0
            self._saved_seq = 0

    @property
    def applied_seq(self) -> int:
        """The last template-change seq this index holds (0: none); see ``VectorIndex``."""
        with self._lock:
            return self._applied_seq

    def mark_applied(self, seq: int) -> None:
        """Record that every change up to ``seq`` is applied (persisted by the next
        ``save()``). A lower ``seq`` than the current one is ignored."""
        with self._lock:
            self._applied_seq = max(self._applied_seq, int(seq))

    def save(self) -> None:
        """Flush the collection, then persist ``applied_seq`` in its properties.

        The order is the point: a crash between the two leaves the older seq with the newer
        data, which the next catch-up replays harmlessly. Nothing is sealed: Milvus keeps
        its own files (see the module docstring on at-rest encryption)."""
        with self._lock, self._calls("flush"):
            seq = self._applied_seq
            self._client.flush(self._name)
            if seq != self._saved_seq:
                self._write_seq(seq)
                self._saved_seq = seq

    # -- beyond the protocol ----------------------------------------------------------------

    def drop(self) -> None:
        """Delete the index (a deleted gallery, the old model after a migration): drop the
        collection; on Milvus Lite also stop its server in this process and delete the data
        folder. In a cluster the segment files leave object storage at a garbage collection
        after ``dataCoord.gc.dropTolerance``. The handle is unusable afterwards.

        ``drop_index`` does the same for an index that cannot be opened."""
        with self._lock:
            with self._calls("drop"):
                self._client.drop_collection(self._name)
            self.close()
            if self._lite and not self._settings.uri:
                _remove_lite_folder(self._path)

    def close(self) -> None:
        """Close the connection (a Milvus Lite server stays up for other handles)."""
        with contextlib.suppress(Exception):
            self._client.close()

    # -- internals --------------------------------------------------------------------------

    def _connect(self, *, create: bool) -> Any:
        settings = self._settings
        if self._lite:
            if self._path.exists() and not self._path.is_dir():
                raise self._unreadable("is not a Milvus Lite data folder")
            if not self._path.exists():
                if not create:
                    raise self._unreadable("does not exist")
                self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._path.mkdir(mode=0o700)
            uri = str(self._path)
        else:
            uri = settings.uri
        token = settings.token.get_secret_value() if settings.token is not None else ""
        try:
            return self._pymilvus.MilvusClient(
                uri=uri,
                token=token,
                db_name=settings.db_name,
                timeout=settings.request_timeout_s,
            )
        except Exception as error:
            where = f"Milvus Lite at {self._path}" if self._lite else f"Milvus at {uri}"
            raise MilvusUnavailable(
                f"cannot connect to {where} ({error}); a Milvus Lite folder opens in one "
                "process only"
            ) from error

    def _server_is_lite(self) -> bool:
        # A Milvus Lite server started on its own (`milvus-lite` command) also compacts
        # nothing on request, so it gets the rewrite too.
        with contextlib.suppress(Exception):
            return str(self._client.get_server_version()).startswith("milvus_lite")
        return False

    @contextlib.contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """Turn pymilvus's errors into ``MilvusUnavailable`` naming the collection."""
        try:
            yield
        except (IntegrityError, ValueError):
            raise
        except self._pymilvus.MilvusException as error:
            raise MilvusUnavailable(
                f"Milvus could not {what} collection {self._name}: {error}"
            ) from error

    def _create(self) -> None:
        pymilvus = self._pymilvus
        settings = self._settings
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, pymilvus.DataType.INT64, is_primary=True)
        schema.add_field(VECTOR_FIELD, pymilvus.DataType.FLOAT_VECTOR, dim=self._dimension)
        index_params = self._client.prepare_index_params()
        index_params.add_index(
            VECTOR_FIELD,
            index_type=settings.index_type,
            metric_type="IP",
            params=dict(settings.index_params),
        )
        with self._calls("create"):
            self._client.create_collection(
                self._name,
                schema=schema,
                index_params=index_params,
                consistency_level="Strong",
                properties={SLOT_PROPERTY: self._slot, SEQ_PROPERTY: "0"},
            )
            self._client.load_collection(self._name)

    def _open_existing(self) -> tuple[int, int]:
        with self._calls("describe"):
            described = self._client.describe_collection(self._name)
        properties = described.get("properties") or {}
        if properties.get(SLOT_PROPERTY, self._slot) != self._slot:
            raise self._unreadable(
                f"holds the collection of the slot '{properties[SLOT_PROPERTY]}'"
            )
        fields = {field["name"]: field for field in described.get("fields", [])}
        vector = fields.get(VECTOR_FIELD)
        key = fields.get(ID_FIELD)
        data_type = self._pymilvus.DataType
        if (
            vector is None
            or key is None
            or vector.get("type") != data_type.FLOAT_VECTOR
            or key.get("type") != data_type.INT64
            or not key.get("is_primary")
            or len(fields) != 2
        ):
            raise self._unreadable("holds a collection that is not a Probity index")
        dimension = int(vector.get("params", {}).get("dim", 0))
        if self._dimension and dimension != self._dimension:
            raise self._unreadable(
                f"holds dimension {dimension} vectors, expected {self._dimension}"
            )
        try:
            seq = int(properties.get(SEQ_PROPERTY, "0"))
        except ValueError as error:
            raise self._unreadable(f"has an unreadable {SEQ_PROPERTY}") from error
        with self._calls("load"):
            self._client.load_collection(self._name)
            # The collection keeps the index it was built with, whatever the settings say now.
            described_index = self._client.describe_index(self._name, VECTOR_FIELD) or {}
        self._index_type = str(described_index.get("index_type") or self._index_type).upper()
        return check_dimension(dimension), seq

    def _refuse_other_slots(self) -> None:
        """A Lite folder holds one slot's collection; another slot's folder renamed to this
        one is refused rather than silently shadowed by a new empty collection."""
        if not self._lite:
            return
        with self._calls("list the collections of"):
            others = [n for n in self._client.list_collections() if n != self._name]
        if others:
            raise self._unreadable(f"holds the collection {others[0]}, of another slot")

    def _recreate(self) -> None:
        with self._calls("recreate"):
            self._client.drop_collection(self._name)
        self._create()

    def _write(self, ids: NDArray[np.int64], vectors: NDArray[np.float32], *, upsert: bool) -> None:
        call = self._client.upsert if upsert else self._client.insert
        for start in range(0, ids.shape[0], _WRITE_BATCH):
            rows = [
                {ID_FIELD: int(i), VECTOR_FIELD: v}
                for i, v in zip(
                    ids[start : start + _WRITE_BATCH].tolist(),
                    vectors[start : start + _WRITE_BATCH],
                    strict=True,
                )
            ]
            call(self._name, rows)

    def _write_seq(self, seq: int) -> None:
        self._client.alter_collection_properties(self._name, properties={SEQ_PROPERTY: str(seq)})

    def _present(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        found: list[int] = []
        for start in range(0, ids.shape[0], _FILTER_BATCH):
            chunk = ids[start : start + _FILTER_BATCH].tolist()
            rows = self._client.query(
                self._name, filter=f"{ID_FIELD} in {chunk}", output_fields=[ID_FIELD]
            )
            found.extend(int(row[ID_FIELD]) for row in rows)
        return np.asarray(sorted(found), dtype=np.int64)

    def _pages(
        self, *, with_vectors: bool
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32] | None]]:
        fields = [ID_FIELD, VECTOR_FIELD] if with_vectors else [ID_FIELD]
        iterator = self._client.query_iterator(
            self._name, batch_size=_READ_BATCH, filter="", output_fields=fields
        )
        try:
            while True:
                page = iterator.next()
                if not page:
                    return
                ids = np.fromiter((row[ID_FIELD] for row in page), np.int64, len(page))
                vectors = (
                    np.asarray([row[VECTOR_FIELD] for row in page], dtype=np.float32)
                    if with_vectors
                    else None
                )
                yield ids, vectors
        finally:
            iterator.close()

    def _compact_and_wait(self) -> None:
        timeout = self._settings.compaction_timeout_s
        with self._calls("compact"):
            job = self._client.compact(self._name)
            deadline = time.monotonic() + timeout
            pause = 0.05
            while True:
                state = str(self._client.get_compaction_state(job))
                if state.endswith("Completed"):
                    return
                if time.monotonic() >= deadline:
                    raise MilvusCompactionTimeout(
                        f"Milvus did not finish compaction {job} of collection {self._name} "
                        f"within {timeout:g} s (state {state}); the rows are deleted and no "
                        "search returns them, but their bytes may remain in sealed segments "
                        "until a compaction rewrites them; the erasure is retried by "
                        "'probity doctor'"
                    )
                time.sleep(pause)
                pause = min(2.0, pause * 2)

    def _rewrite(self) -> None:
        """Milvus Lite only: write the collection again without its deleted rows.

        The remaining rows are read into memory (n x (4 x dimension + 8) bytes), the
        collection is dropped (Lite deletes its folder, Parquet and index files included)
        and created again with seq 0, the rows are written back and flushed, and only then
        is the saved seq restored. A crash in between leaves seq 0: a full rebuild."""
        with self._calls("rewrite"):
            id_pages: list[NDArray[np.int64]] = []
            vector_pages: list[NDArray[np.float32]] = []
            for ids, vectors in self._pages(with_vectors=True):
                assert vectors is not None
                id_pages.append(ids)
                vector_pages.append(vectors)
            self._recreate()
            if id_pages:
                self._write(np.concatenate(id_pages), np.concatenate(vector_pages), upsert=False)
            self._client.flush(self._name)
            if self._saved_seq:
                self._write_seq(self._saved_seq)

    def _search_params(self, k: int) -> dict[str, Any]:
        params: dict[str, Any] = dict(self._settings.search_params)
        index_type = self._index_type
        if index_type == "HNSW":
            params["ef"] = max(int(params.get("ef", k)), k)
        elif index_type == "DISKANN":
            params["search_list"] = max(int(params.get("search_list", k)), k)
        return {"metric_type": "IP", "params": params}

    def _unreadable(self, reason: str) -> IndexFileUnreadable:
        where = (
            f"Milvus Lite index {self._path}"
            if self._lite
            else f"Milvus collection {self._name} (slot '{self._slot}')"
        )
        return IndexFileUnreadable(f"{where} {reason}; rebuild the index")

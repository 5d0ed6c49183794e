"""One vector index per gallery and model, kept in step with the database's template log.

**The database is the only truth.** Every insert into and delete from ``templates`` is
written, by a database trigger in the same transaction, to ``template_changes`` with a
sequence number (migration 0014). Each index records the last seq it has applied
(``VectorIndex.applied_seq``, saved with its vectors) and **catches up** from the log:

- before it answers a search or says how many vectors it holds (one primary-key read of the
  log's head when it is current, one indexed range read of its own slot's changes when not);
- when it is opened, and when its file is missing, unreadable (written before index files
  were sealed, corrupt, or sealed under a key an erasure destroyed): it then starts empty at
  seq 0 and replays the whole log, i.e. it is rebuilt from the encrypted templates;
- after an enrolment commits (``add``: the new vectors are passed in, so they need not be
  decrypted again) and after an erasure commits (``refresh_all``).

A crash between a commit and an index save therefore costs a catch-up at the next read, not
a silent miss: ``kill -9`` of a bulk enrolment after 192 of 320 index saves used to leave
128 people unsearchable until someone ran ``index rebuild``. A search whose index cannot catch
up fails with ``IndexBehind`` rather than answering from an incomplete index.

A gallery's templates are of one model, so it has one index; during a model migration the
new model's index is built beside it (another **slot**, ``IndexSlot``) and the old one is
dropped at the swap. Slot file names: ``<gallery_id>`` for dlib-resnet-v1 (the name every
index had before there were other models, so older homes keep their files) and
``<gallery_id>.<model name>.<model version>`` for every other model.

Index files are sealed (AES-256-GCM) under a key derived from the current key-encryption
key (``IndexKeys``), so every rotation (every erasure) reseals them and a copy of ``index/``
taken before an erasure does not open with the current keys.

Changes take an exclusive ``flock`` on ``<index_dir>/<slot>.lock`` and re-read the file if
another process changed it, so two processes catching up at once cannot lose each other's
work; catching up is idempotent (replaying a change already applied changes nothing).
"""

from __future__ import annotations

import fcntl
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select

from probity.domain.faces import ModelVersion
from probity.domain.gallery import Gallery
from probity.errors import IntegrityError
from probity.faults import crash_point
from probity.index.base import Hit, VectorIndex
from probity.index.factory import BACKENDS, index_file, index_paths, open_index
from probity.index.sealing import IndexFileUnreadable, IndexSeal
from probity.storage.db import Database
from probity.storage.keyring import Keyring
from probity.storage.repositories import Templates
from probity.storage.tables import (
    GalleryRow,
    KeyringStateRow,
    ModelMigrationRow,
    TemplateChangeRow,
    TemplateLogHeadRow,
)
from probity.storage.vault import Vault

if TYPE_CHECKING:
    from probity.config import MilvusSettings

log = logging.getLogger(__name__)

LEGACY_MODEL_KEY = "dlib-resnet-v1@face_recognition_models-0.3.0"
"""The model whose index file is named by the gallery id alone (as before models were many)."""

ADD = "add"
REMOVE = "remove"
BUILD_BATCH = 200_000
"""A catch-up with more templates to decrypt than this adds them in batches of this many
(``IndexSet._add_in_batches``): about 100 MB of float vectors and their Python arrays at a
time. Below it, one batch, as an enrolment's catch-up always is."""
_SWAPPED = "swapped"  # services/migration.MigrationStatus.SWAPPED (not imported: a cycle)


class IndexBehind(IntegrityError):
    """An index is behind the database's template log and could not catch up (a template
    that does not decrypt, a full disk, an unwritable index folder). The search is refused
    rather than answered from an index that misses people; ``probity doctor`` says more."""

    code = "index_behind"


@dataclass(frozen=True, slots=True)
class IndexSlot:
    """The index of one gallery's templates of one model."""

    gallery_id: str
    model: ModelVersion

    @classmethod
    def of(cls, gallery: Gallery, model: ModelVersion | None = None) -> IndexSlot:
        """The slot of ``gallery``'s own model (or of ``model``, for a migration)."""
        return cls(gallery.id, model or gallery.model)

    @property
    def name(self) -> str:
        if self.model.key == LEGACY_MODEL_KEY:
            return self.gallery_id
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{self.model.name}.{self.model.version}")
        return f"{self.gallery_id}.{slug}"


@dataclass(frozen=True, slots=True)
class SlotState:
    """Where one index stands against the log (``index status``, ``probity doctor``)."""

    slot: IndexSlot
    vectors: int
    applied_seq: int
    head_seq: int
    behind: int  # changes of this slot in the log after applied_seq

    @property
    def current(self) -> bool:
        return self.behind == 0


class IndexKeys:
    """``IndexSeal`` for the home: the KEK epoch read from the database, the key derived
    from it by ``Keyring.index_key``.

    The epoch is read directly, not through ``Vault`` (whose reads retire older KEKs from
    memory): right after an erasure's rotation the index files of every gallery are still
    sealed under the old epoch and must be opened with it once more to be resealed."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self.db = db
        self.keyring = keyring

    def current(self) -> tuple[int, bytes]:
        with self.db.read() as session:
            epoch = session.scalar(select(KeyringStateRow.epoch).where(KeyringStateRow.id == 1))
        if epoch is None:
            raise IntegrityError("keyring_state is missing (run 'probity migrate')")
        return int(epoch), self.keyring.index_key(int(epoch))

    def key(self, epoch: int) -> bytes:
        return self.keyring.index_key(epoch)


class TemplateLog:
    """Reads the template change log and opens the templates it names (for catch-up)."""

    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault

    def head(self) -> int:
        """The newest seq (one primary-key read)."""
        with self.db.read() as session:
            seq = session.scalar(select(TemplateLogHeadRow.seq).where(TemplateLogHeadRow.id == 1))
        if seq is None:
            raise IntegrityError("template_log_head is missing (run 'probity migrate')")
        return int(seq)

    def changes(self, slot: IndexSlot, after: int) -> tuple[int, dict[int, str]]:
        """(head, {template id: its last op}) for the slot's changes after ``after``.

        The head is read first, and only changes up to it are taken: writers serialise on
        the head row until they commit (migration 0014), so every change <= head is visible
        and none is skipped by a later catch-up that starts from head."""
        with self.db.read() as session:
            head = session.scalar(select(TemplateLogHeadRow.seq).where(TemplateLogHeadRow.id == 1))
            if head is None:
                raise IntegrityError("template_log_head is missing (run 'probity migrate')")
            rows = session.execute(
                select(TemplateChangeRow.template_id, TemplateChangeRow.op)
                .where(
                    TemplateChangeRow.gallery_id == slot.gallery_id,
                    TemplateChangeRow.model_key == slot.model.key,
                    TemplateChangeRow.seq > after,
                    TemplateChangeRow.seq <= head,
                )
                .order_by(TemplateChangeRow.seq)
            )
            final: dict[int, str] = {}
            for template_id, op in rows:
                final[int(template_id)] = op  # the last change of a template wins
        return int(head), final

    def behind(self, slot: IndexSlot, after: int) -> int:
        """How many of the slot's changes are after ``after``."""
        with self.db.read() as session:
            count = session.scalar(
                select(func.count())
                .select_from(TemplateChangeRow)
                .where(
                    TemplateChangeRow.gallery_id == slot.gallery_id,
                    TemplateChangeRow.model_key == slot.model.key,
                    TemplateChangeRow.seq > after,
                )
            )
        return int(count or 0)

    def vectors(self, ids: Sequence[int]) -> tuple[list[int], list[NDArray[np.float32]]]:
        """Decrypt the templates ``ids`` that still exist (one erased since the log was read
        is skipped: its removal is in the log after the head just read)."""
        found: list[int] = []
        vectors: list[NDArray[np.float32]] = []
        with self.db.read() as session:
            keys: dict[str, bytes] = {}
            for start in range(0, len(ids), 1000):
                sealed = Templates(session).get_many(ids[start : start + 1000])
                # The batch's subject keys in IN queries, not one read per subject (the
                # first build at 1M spent most of its time on those reads).
                owners = {t.subject_id for t in sealed.values()} - keys.keys()
                keys.update(self.vault.subject_keys(session, owners))
                for template_id in sorted(sealed):
                    t = sealed[template_id]
                    key = keys.get(t.subject_id)
                    if key is None:  # erased while we read: its removal is in the log
                        continue
                    found.append(template_id)
                    vectors.append(Vault.open_vector(key, t.subject_id, t.sealed_vector))
        return found, vectors

    def slots(self) -> list[IndexSlot]:
        """Every slot that should have an index: each gallery's own model, and the target
        model of each migration not yet swapped."""
        with self.db.read() as session:
            galleries = list(session.scalars(select(GalleryRow)))
            migrations = list(
                session.scalars(
                    select(ModelMigrationRow).where(ModelMigrationRow.status != _SWAPPED)
                )
            )
        out = [
            IndexSlot(g.id, ModelVersion(g.model_name, g.model_version, g.model_dimension))
            for g in galleries
        ]
        for m in migrations:
            model = ModelVersion(m.to_model_name, m.to_model_version, m.to_model_dimension)
            slot = IndexSlot(m.gallery_id, model)
            if slot not in out:
                out.append(slot)
        return out


class IndexSet:
    """The home's indexes. ``log`` None (tests of this class alone) skips catching up.

    ``milvus`` is the home's Milvus settings (``settings.milvus``), passed to every index it
    opens or drops on the "milvus" backend, so that a settings file or a CLI override is
    what they use; None falls back to ``PROBITY_MILVUS__*`` in the environment."""

    def __init__(
        self,
        *,
        directory: Path,
        backend: str,
        seal: IndexSeal,
        log: TemplateLog | None = None,
        milvus: MilvusSettings | None = None,
    ) -> None:
        self.directory = directory
        self.backend = backend
        self.seal = seal
        self.log = log
        self.milvus = milvus
        self._open: dict[str, tuple[VectorIndex, float]] = {}
        self._lock = threading.RLock()

    def path(self, slot: IndexSlot) -> Path:
        return self._file(slot.name)

    def _file(self, name: str) -> Path:
        return index_file(self.backend, self.directory / name)

    def _mtime(self, name: str) -> float:
        try:
            return self._file(name).stat().st_mtime_ns / 1e9
        except FileNotFoundError:
            return 0.0

    # -- opening ----------------------------------------------------------------------------

    def _load(self, name: str, dimension: int | None, *, fresh_if_unreadable: bool) -> VectorIndex:
        """The index as its file holds it (cached while the file is unchanged).

        An unreadable file raises ``IndexFileUnreadable``, unless ``fresh_if_unreadable``
        (only under the slot's exclusive lock): the file is then deleted and an empty index
        at seq 0 returned, which the catch-up fills from the whole log."""
        with self._lock:
            cached = self._open.get(name)
            mtime = self._mtime(name)
            if cached is not None and cached[1] == mtime:
                return cached[0]
            if cached is not None and mtime and self._reloaded(name, cached[0]):
                self._open[name] = (cached[0], mtime)
                return cached[0]
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                index = open_index(
                    self.backend, self.directory / name, dimension, self.seal, milvus=self.milvus
                )
            except IndexFileUnreadable as error:
                if not fresh_if_unreadable:
                    raise
                if dimension is None:
                    raise
                log.warning("index %s: %s; rebuilding it from the template log", name, error)
                self._delete_index(self.backend, name)
                index = open_index(
                    self.backend, self.directory / name, dimension, self.seal, milvus=self.milvus
                )
                mtime = 0.0
            if hasattr(index, "on_retrained"):  # IvfIndex: save a retrained layout at once
                index.on_retrained = lambda: self._save_retrained(name, index)
            self._open[name] = (index, mtime)
            return index

    def _save_retrained(self, name: str, index: VectorIndex) -> None:
        """The retraining thread of ``index``, once its new layout is live: save it (every
        file anew) under the slot's lock. Skipped when ``index`` is no longer the open one
        (another process saved the file meanwhile, or it was dropped): the files then hold
        that process's layout, and the next change here retrains again. A failure is
        logged, not raised: the old layout stays on disk and stays correct."""
        try:
            with self._lock:
                cached = self._open.get(name)
                if cached is None or cached[0] is not index:
                    return
                with self._exclusive(name, None):
                    pass  # _exclusive saves, if the file is still the one index came from
        except Exception as error:  # a background thread: nobody else would see it
            log.warning("index %s: saving the retrained layout failed: %s", name, error)

    @staticmethod
    def _reloaded(name: str, index: VectorIndex) -> bool:
        """Whether an open index whose file another process saved could take in just the
        changed parts (``IvfIndex.reload``: the segments that changed, not the 1.4 GB of a
        10M index and its fast stage). Otherwise, or if that read fails, it is opened anew,
        which says what is wrong with the file."""
        reload = getattr(index, "reload", None)  # only IvfIndex can
        if not callable(reload):
            return False
        try:
            return bool(reload())
        except (IndexFileUnreadable, OSError) as error:
            log.warning("index %s: reading its changed segments failed (%s)", name, error)
            return False

    @contextmanager
    def _exclusive(
        self, name: str, dimension: int | None, *, save: bool = True
    ) -> Iterator[VectorIndex]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.directory / f"{name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                index = self._load(name, dimension, fresh_if_unreadable=True)
                yield index
                if save:
                    crash_point("index.before-save")
                    index.save()
                    self._open[name] = (index, self._mtime(name))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def finish_retraining(self, on_wait: Callable[[str, int], None] | None = None) -> list[str]:
        """Wait for every retraining this process has in flight, and for its save; the names
        of the indexes waited for. Called by short-lived processes (the CLI) before they
        exit. ``on_wait(name, vectors)`` is called before each wait (to tell the user).

        Why: an ``IvfIndex`` retrains in a background daemon thread when its gallery has
        grown ``RETRAIN_GROWTH`` times past the size it was trained at (about a minute per
        million vectors on two cores). A server lives long enough to finish it; a CLI
        command that enrols the face which crosses the threshold exits a second later, the
        thread dies with it, and every later CLI process starts the same retraining again
        and loses it the same way, so a gallery run from the CLI alone would never be
        retrained (slower searches, not wrong ones: the old layout stays correct). Waiting
        once, when the threshold is crossed (at 200k, 800k, 3.2M... vectors), ends that.

        The retraining thread saves its layout itself (``_save_retrained``), so this only
        waits. Interrupting the wait (Ctrl-C) loses nothing: the old layout stays on disk."""
        waited: list[str] = []
        with self._lock:
            pending = [
                (name, index)
                for name, (index, _) in self._open.items()
                if getattr(index, "retraining", False)
            ]
        for name, index in pending:
            if on_wait is not None:
                on_wait(name, len(index))
            wait = getattr(index, "wait_for_retraining", None)
            if callable(wait):
                wait(None)  # the thread saves its layout before it ends (_save_retrained)
            waited.append(name)
        return waited

    def get(self, slot: IndexSlot) -> VectorIndex:
        """The slot's index, caught up with the log."""
        return self._current(slot)

    def _current(self, slot: IndexSlot) -> VectorIndex:
        """The slot's index, after catching up if the log is ahead of it (or its file is
        unreadable). Raises ``IndexBehind`` if it cannot catch up."""
        if self.log is None:
            return self._load(slot.name, slot.model.dimension, fresh_if_unreadable=True)
        try:
            head = self.log.head()
            try:
                index = self._load(slot.name, slot.model.dimension, fresh_if_unreadable=False)
            except IndexFileUnreadable:
                index = None
            if index is not None and index.applied_seq == head:
                return index
            return self.catch_up(slot)
        except IndexBehind:
            raise
        except (IntegrityError, OSError) as error:
            behind = "" if self.log is None else f" ({self._behind_text(slot)})"
            raise IndexBehind(
                f"the index of gallery {slot.gallery_id} ({slot.model.key}) cannot catch up "
                f"with the database{behind}: {error}; run 'probity doctor'"
            ) from error

    def _behind_text(self, slot: IndexSlot) -> str:
        try:
            cached = self._open.get(slot.name)
            applied = cached[0].applied_seq if cached else 0
            assert self.log is not None
            return f"{self.log.behind(slot, applied)} changes behind"
        except Exception:  # a best-effort detail of an error message
            return "behind by an unknown number of changes"

    # -- catching up ------------------------------------------------------------------------

    def catch_up(
        self,
        slot: IndexSlot,
        known: Mapping[int, NDArray[np.float32]] | None = None,
        *,
        force_save: bool = False,
    ) -> VectorIndex:
        """Apply the slot's changes after its ``applied_seq`` and save (under the slot's
        lock). ``known``: vectors of templates the caller has in hand (a fresh enrolment), so
        they are not decrypted again; any of them the log does not name are added too (a
        test's synthetic vectors). ``force_save`` saves even without changes: a reseal under
        the current key after a rotation."""
        with self._exclusive(slot.name, slot.model.dimension, save=False) as index:
            head, changes = (
                (0, {}) if self.log is None else self.log.changes(slot, index.applied_seq)
            )
            if self.log is not None and index.applied_seq > head:
                # The log is behind the index: the database was restored from an older copy.
                # Template ids may since have been given to other people's templates, so
                # the index is not trusted: it is rebuilt from the whole log.
                log.warning(
                    "index %s applied seq %d but the log ends at %d (database restored?); "
                    "rebuilding it",
                    slot.name,
                    index.applied_seq,
                    head,
                )
                index.clear()
                head, changes = self.log.changes(slot, 0)
                force_save = True
            removes = [t for t, op in changes.items() if op == REMOVE]
            adds = [t for t, op in changes.items() if op == ADD]
            given = dict(known or {})
            add_ids = [t for t in adds if t in given]
            add_vectors = [np.asarray(given.pop(t), np.float32) for t in add_ids]
            unknown = [t for t in adds if t not in set(add_ids)]
            batched = self.log is not None and len(unknown) > BUILD_BATCH
            if self.log is not None and batched:  # (both: mypy narrows self.log)
                self._add_in_batches(index, self.log, unknown)
            elif unknown and self.log is not None:
                found, vectors = self.log.vectors(unknown)
                add_ids += found
                add_vectors += vectors
            for template_id, vector in given.items():  # not in the log: added as given
                add_ids.append(template_id)
                add_vectors.append(np.asarray(vector, np.float32))
            changed = bool(removes or add_ids) or batched
            if removes:
                index.remove(np.asarray(removes, dtype=np.int64))
            if add_ids:
                index.add(np.asarray(add_ids, dtype=np.int64), np.stack(add_vectors))
            index.mark_applied(head)  # in memory when nothing changed: the file is as good
            if changed or force_save:
                crash_point("index.before-save")
                index.save()
                self._open[slot.name] = (index, self._mtime(slot.name))
            return index

    def _add_in_batches(
        self, index: VectorIndex, template_log: TemplateLog, template_ids: list[int]
    ) -> None:
        """A big catch-up (a first build, a rebuild, a restore): decrypt and add the
        templates ``BUILD_BATCH`` at a time, so memory holds one batch of float vectors, not
        all of them (10M at once peaked at about 25 GiB). The order is shuffled, with a
        seed, so that the first batch is a random sample of the gallery, and an index that
        trains (``IvfIndex.reserve``) trains once, on that sample, for the final size."""
        order = np.random.default_rng(len(template_ids)).permutation(len(template_ids))
        pending = np.asarray(template_ids, np.int64)[order]
        reserve = getattr(index, "reserve", None)  # only IvfIndex wants to know
        first = int(reserve(len(index) + len(pending))) if callable(reserve) else 0
        start, total = 0, len(pending)
        while start < total:
            size = max(first, BUILD_BATCH) if start == 0 else BUILD_BATCH
            batch = [int(t) for t in pending[start : start + size]]
            found, vectors = template_log.vectors(batch)
            if found:
                index.add(np.asarray(found, dtype=np.int64), np.stack(vectors))
            start += size
            log.info("index build: %d of %d templates added", min(start, total), total)

    def add(self, slot: IndexSlot, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
        """After an enrolment commits: catch up, using these vectors for their templates."""
        if not len(ids):
            return
        known = {int(i): vectors[n] for n, i in enumerate(ids)}
        self.catch_up(slot, known)

    def rebuild(self, slot: IndexSlot) -> VectorIndex:
        """Empty the slot's index and replay the whole log (``index rebuild``, a migration's
        new index): every template of the slot, decrypted."""
        with self._exclusive(slot.name, slot.model.dimension, save=False) as index:
            index.clear()
        return self.catch_up(slot, force_save=True)

    def refresh_all(self) -> list[SlotState]:
        """Bring every slot up to the log's head and save each sealed under the current key
        (after an erasure: its vectors leave every file, and every file is resealed under
        the new KEK epoch, so copies of the old files no longer open). Index files of no
        current slot (a deleted gallery, a migration's leftover) are deleted."""
        slots = [] if self.log is None else self.log.slots()
        names = {s.name for s in slots}
        for name in self._names_on_disk():
            if name not in names:
                self._drop_name(name)
        for name in self._drop_other_backends():
            log.info("index file %s of another backend deleted", name)
        # Open every file first, while the KEK it was sealed under is surely still at hand:
        # the catch-up below decrypts templates, and a Vault read that sees the new epoch
        # retires the old KEK in this process. A file that cannot be opened any more is
        # rebuilt from the log by its catch-up (correct, only slower).
        for slot in slots:
            with suppress(IndexFileUnreadable):
                self._load(slot.name, slot.model.dimension, fresh_if_unreadable=False)
        for slot in slots:
            self.catch_up(slot, force_save=True)
        return self.states(slots)

    def warm(self) -> int:
        """Open every slot's index and catch it up (at server start, so the first search
        does not pay for loading). Returns how many opened; one that cannot catch up is
        logged and left for its first search to report (``IndexBehind``)."""
        if self.log is None:
            return 0
        opened = 0
        for slot in self.log.slots():
            try:
                self._current(slot)
                opened += 1
            except IndexBehind as error:
                log.warning("index %s not ready at start: %s", slot.name, error)
        return opened

    def states(self, slots: Sequence[IndexSlot] | None = None) -> list[SlotState]:
        """Where each slot stands (no catching up: this is what ``index status`` and
        ``probity doctor --check`` report)."""
        if self.log is None:
            return []
        chosen = list(slots) if slots is not None else self.log.slots()
        head = self.log.head()
        out = []
        for slot in chosen:
            try:
                index = self._load(slot.name, slot.model.dimension, fresh_if_unreadable=False)
                applied, vectors = index.applied_seq, len(index)
            except IndexFileUnreadable:
                applied, vectors = 0, 0
            out.append(SlotState(slot, vectors, applied, head, self.log.behind(slot, applied)))
        return out

    def gaps(self) -> list[tuple[str, int]]:
        """(slot name, changes behind) of every slot that is behind the log."""
        return [(s.slot.name, s.behind) for s in self.states() if s.behind]

    # -- files ------------------------------------------------------------------------------

    def _names_on_disk(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        suffix = self._file("x").name[1:]
        return sorted(p.name[: -len(suffix)] for p in self.directory.glob(f"*{suffix}"))

    def _names_of(self, gallery_id: str) -> list[str]:
        """The slot names of every index file of ``gallery_id`` on disk."""
        return [
            n for n in self._names_on_disk() if n == gallery_id or n.startswith(f"{gallery_id}.")
        ]

    def _drop_name(self, name: str) -> None:
        with self._lock:
            self._open.pop(name, None)
            self._delete_index(self.backend, name)
            (self.directory / f"{name}.lock").unlink(missing_ok=True)

    def _delete_index(self, backend: str, name: str) -> None:
        """Delete every file of ``backend``'s index ``name``. A Milvus Lite index is a
        folder that its in-process server must let go of first (``drop_index``)."""
        if backend == "milvus":
            from probity.index.milvus_index import drop_index

            drop_index(index_file(backend, self.directory / name), self.milvus)
            return
        for path in index_paths(backend, self.directory / name):
            path.unlink(missing_ok=True)

    def _drop_other_backends(self) -> list[str]:
        """Delete index files another backend left (the home switched ``index_backend``):
        they hold templates, some perhaps erased since, and nothing reads them any more.
        Milvus Lite's folders go too (they hold the vectors in the clear); a cluster's
        collections are not on this disk and are the cluster's to drop."""
        dropped: list[str] = []
        if not self.directory.is_dir():
            return dropped
        for backend, suffix in BACKENDS.items():
            if backend == self.backend:
                continue
            for path in sorted(self.directory.glob(f"*{suffix}")):
                if backend == "milvus" and path.is_dir():
                    from probity.config import MilvusSettings
                    from probity.index.milvus_index import drop_index

                    drop_index(path, MilvusSettings())  # a Lite folder, whatever the URI now
                    dropped.append(path.name)
                    continue
                if not path.is_file():
                    continue
                for part in index_paths(backend, path.with_name(path.name[: -len(suffix)])):
                    part.unlink(missing_ok=True)
                dropped.append(path.name)
        return dropped

    def drop(self, slot: IndexSlot) -> None:
        """Delete the slot's file (the old model's index after a migration's swap)."""
        self._drop_name(slot.name)

    def drop_others(self, keep: IndexSlot) -> list[str]:
        """Delete every index file of ``keep``'s gallery but ``keep``'s own (what a model
        migration leaves: the old model's file, or a crash's before it was deleted). Returns
        the slot names dropped."""
        dropped = [n for n in self._names_of(keep.gallery_id) if n != keep.name]
        for name in dropped:
            self._drop_name(name)
        return dropped

    # -- reading ----------------------------------------------------------------------------

    def search(self, slot: IndexSlot, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        index = self._current(slot)
        if len(index) == 0:
            return [[] for _ in range(len(queries))]
        return index.search(queries, k)

    def size(self, slot: IndexSlot) -> int:
        """Vectors in the slot's index once caught up (a search's N: exactly the comparisons
        it makes, read in O(1) rather than by a COUNT over the templates)."""
        return len(self._current(slot))

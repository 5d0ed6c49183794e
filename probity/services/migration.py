"""Moving a gallery to another face model: ``probity gallery migrate NAME --model KEY``.

A gallery holds templates of one model. A migration re-embeds every enrolment from its
sealed image with the new model and swaps the gallery over in one transaction:

1. **Start** (audited ``gallery.migrate_start``): a ``model_migrations`` row. At most one
   unfinished migration per gallery; running the command again continues it (to another
   model: refused until it is finished).
2. **Re-embed**, one enrolment at a time, each in its own transaction: the image blob is
   decrypted with the subject's key, the new model's engine analyses it, and the face whose
   box best overlaps the enrolment's stored box is the one taken (the enrolment's own face,
   not a bystander). The new template (``model_key`` = the new model) is written beside the
   old one, with a ``model_migration_items`` row; a face the new model refuses (no face
   where the enrolment's was, or under the gallery's quality floor) gets an item row with
   its reasons instead, audited ``gallery.migrate_refused``. The item's primary key
   (migration, enrolment) means a resumed run never embeds an enrolment twice; a crash loses
   at most the enrolment in progress. Searches keep using the old model and its index.
3. **The new index** is built from the new templates in its own slot (``IndexSlot.of(gallery,
   new_model)``), from scratch each time, so a crash between a commit and an index save
   leaves nothing behind.
4. **Refused faces.** The swap is refused while any enrolment has no template of the new
   model, unless the curator passes ``drop_refused``: those enrolments are then *erased*
   (``ErasureService.erase_enrolments``, cause ``removal``, one receipt each; a subject left
   with none is erased whole) before the swap. They are listed (CLI, JSON, API, page) either
   way. Erasing, not keeping them without a template, is the choice because an enrolment
   that no search can find is held data with no purpose, and because every enrolment then
   keeps exactly one template, which erasure, retention and the index checks rely on.
5. **The swap**, one transaction (audited ``gallery.migrate_swap``): the gallery row's model
   columns, every enrolment's ``template_id`` (and box and quality) to its new template, the
   old model's templates deleted, suppression holds for legacy objections written
   (services/suppression.py, "Legacy objections"). After the commit the old slot's index
   file is deleted.

Erasure during a migration reaches the new templates too: they carry the subject and the
gallery, ``Templates.delete_for_subject`` deletes them and ``IndexSet.remove`` reaches every
index file of the gallery; a partial erasure deletes an enrolment's migration template with
it (``EnrolmentPruning.delete``). An enrolment added during the migration is embedded before
the swap (the swap checks, in its transaction, that every enrolment has been handled); one
whose face analysis started on the old model before the swap and would commit after it is
refused (``Conflict``: enrol it again), since the enrolment checks the gallery's model in
its own transaction.

**In the background** (the API and the curator's page): ``start`` checks and opens the
migration in the caller's thread (so a bad model or a second migration is a 4xx at once),
then runs ``migrate`` in a thread of this process; the page and the API poll ``report``,
which reads the database, so any process can answer. A failure is written to the
migration's ``error``; running it again continues.

**Fault hook for tests.** ``on_item(n)`` is called after each enrolment's transaction has
committed, ``n`` counting this run's items; the CLI uses it to kill itself after
``PROBITY_TEST_CRASH_AFTER`` items (interfaces/cli/gallery.py), which is how the crash test
stops a migration half-way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from probity.domain.accounts import Action
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import FaceBox, ModelVersion
from probity.domain.gallery import Gallery
from probity.domain.ids import new_id
from probity.engine.images import decode_image
from probity.engine.quality import quality_reasons
from probity.engine.registry import EngineSet
from probity.engine.types import AnalysedFace, FaceEngine
from probity.errors import Conflict, InvalidInput, MigrationNotFound, ProbityError
from probity.faults import crash_point
from probity.services.access import Who, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.erasure import ErasureCause, ErasureService
from probity.services.galleries import GalleryService
from probity.services.indexes import IndexSet, IndexSlot
from probity.services.suppression import Hold, SuppressionService
from probity.storage.db import Database
from probity.storage.repositories import Templates
from probity.storage.tables import (
    EnrolmentRow,
    GalleryRow,
    ModelMigrationItemRow,
    ModelMigrationRow,
    SubjectRow,
    SuppressionHoldRow,
    TemplateRow,
)
from probity.storage.vault import Vault

log = logging.getLogger("probity.migration")


class MigrationStatus(StrEnum):
    RUNNING = "running"  # embedding, or stopped half-way (running the command continues it)
    AWAITING_DECISION = "awaiting_decision"  # all embedded; refused faces block the swap
    SWAPPED = "swapped"  # the gallery is on the new model


@dataclass(frozen=True, slots=True)
class MigrationRefusal:
    """An enrolment the new model could not embed, and why (no biometric data)."""

    enrolment_id: str
    subject_reference: str
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "enrolment_id": self.enrolment_id,
            "subject": self.subject_reference,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """Where a migration stands: ``embedded`` + ``refused`` of ``enrolments`` handled."""

    id: str
    gallery: str
    from_model: str
    to_model: str
    status: MigrationStatus
    enrolments: int
    embedded: int
    refused: tuple[MigrationRefusal, ...]
    started_at: datetime
    started_by: str
    updated_at: datetime
    finished_at: datetime | None = None
    erased: tuple[str, ...] = ()  # receipt numbers of enrolments dropped at the swap
    holds: int = 0  # suppression holds written at the swap
    index_vectors: int = 0  # in the new model's index
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "gallery": self.gallery,
            "from_model": self.from_model,
            "to_model": self.to_model,
            "status": self.status.value,
            "enrolments": self.enrolments,
            "embedded": self.embedded,
            "refused": [r.as_dict() for r in self.refused],
            "started_at": self.started_at.isoformat(),
            "started_by": self.started_by,
            "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "erased_receipts": list(self.erased),
            "holds": self.holds,
            "index_vectors": self.index_vectors,
            "error": self.error,
        }


def _model(row: ModelMigrationRow) -> ModelVersion:
    return ModelVersion(row.to_model_name, row.to_model_version, row.to_model_dimension)


def _overlap(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes (0: apart, 1: the same box)."""
    left, top = max(a.left, b.left), max(a.top, b.top)
    right = min(a.left + a.width, b.left + b.width)
    bottom = min(a.top + a.height, b.top + b.height)
    inter = max(0, right - left) * max(0, bottom - top)
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Run:
    """This call's counters (for the progress callback and the fault hook)."""

    items: int = 0
    erased: list[str] = field(default_factory=list)
    refused: list[MigrationRefusal] = field(default_factory=list)  # dropped at the swap


class ModelMigrationService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        galleries: GalleryService,
        engines: EngineSet,
        vault: Vault,
        indexes: IndexSet,
        erasure: ErasureService,
        suppression: SuppressionService,
        max_upload_bytes: int,
        max_image_pixels: int,
        hog_pixel_budget: int | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.galleries = galleries
        self.engines = engines
        self.vault = vault
        self.indexes = indexes
        self.erasure = erasure
        self.suppression = suppression
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels
        self.hog_pixel_budget = hog_pixel_budget
        self._threads: dict[str, threading.Thread] = {}
        self._threads_lock = threading.Lock()

    # -- the job ----------------------------------------------------------------------------

    def migrate(
        self,
        *,
        actor: Who,
        gallery: str,
        model: str,
        drop_refused: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        on_item: Callable[[int], None] | None = None,
    ) -> MigrationReport:
        """Move ``gallery`` to ``model`` (a model name or full key), or continue the
        migration already under way. Needs GALLERY_CREATE on the gallery (curators).

        Returns the report: ``SWAPPED`` when the gallery is on the new model,
        ``AWAITING_DECISION`` when refused faces block the swap (run again with
        ``drop_refused`` to erase those enrolments and swap). ``on_progress(done, total)``
        after each enrolment; ``on_item`` is the fault hook (module docstring)."""
        target = self.galleries.get(gallery, actor=actor, action=Action.GALLERY_CREATE)
        engine = self.engines.resolve(model)
        new = engine.model
        self.suppression.operating_point(new)  # a model without an FMR table: refuse now
        if target.model.key == new.key and self._swapped_to(target, new):
            # Run again after a crash between the swap and deleting the old index file.
            self.indexes.drop_others(IndexSlot.of(target))
            return self.report(gallery=gallery, actor=actor)
        row_id = self._open(actor, target, new)
        run = _Run()
        while True:
            self._embed_pending(actor, target, engine, row_id, run, on_progress, on_item)
            refused = self._refusals(row_id)
            if refused and not drop_refused:
                self._set_status(row_id, MigrationStatus.AWAITING_DECISION)
                self._build_index(target, new)
                return self.report(gallery=gallery, actor=actor)
            if refused:
                run.refused += refused
                run.erased += [
                    r.number
                    for r in self.erasure.erase_enrolments(
                        actor=actor,
                        enrolment_ids=[r.enrolment_id for r in refused],
                        reason=f"model migration to {new.key}: the new model refused the face",
                        cause=ErasureCause.REMOVAL,
                    )
                ]
            vectors = self._build_index(target, new)
            holds = self.suppression.legacy_holds(target, new)
            if self._swap(actor, target, new, row_id, holds, run, vectors):
                break  # else an enrolment arrived meanwhile: embed it and try again
        crash_point("migration.after-swap")  # swapped and committed; old index file still there
        # The old model's index file, after the commit (and any a crash left behind).
        self.indexes.drop_others(IndexSlot.of(target, new))
        return self.report(gallery=gallery, actor=actor)

    def _swapped_to(self, gallery: Gallery, model: ModelVersion) -> bool:
        """Whether the gallery's latest migration was to ``model`` and has swapped."""
        with self.db.read() as session:
            row = session.scalars(
                select(ModelMigrationRow)
                .where(ModelMigrationRow.gallery_id == gallery.id)
                .order_by(ModelMigrationRow.started_at.desc())
            ).first()
        return (
            row is not None
            and row.status == MigrationStatus.SWAPPED.value
            and _model(row).key == model.key
        )

    def start(
        self, *, actor: Who, gallery: str, model: str, drop_refused: bool = False
    ) -> MigrationReport:
        """Start (or continue) the migration in a background thread of this process and
        return its report as it starts. Refusals (no such model, already on it, another
        migration under way, one already running here) are raised at once."""
        target = self.galleries.get(gallery, actor=actor, action=Action.GALLERY_CREATE)
        engine = self.engines.resolve(model)
        self.suppression.operating_point(engine.model)
        with self._threads_lock:
            running = self._threads.get(target.id)
            if running is not None and running.is_alive():
                raise Conflict(f"a migration of gallery '{target.name}' is already running")
            row_id = self._open(actor, target, engine.model)
            self._note(row_id, error=None, status=MigrationStatus.RUNNING)
            thread = threading.Thread(
                target=self._background,
                args=(actor, target.name, engine.model.key, drop_refused, row_id),
                name=f"probity-migrate-{target.id}",
                daemon=True,
            )
            self._threads[target.id] = thread
            thread.start()
        return self.report(gallery=gallery, actor=actor)

    def wait(self, gallery: str, timeout: float | None = None) -> None:
        """Wait for this process's background migration of ``gallery`` (tests, shutdown)."""
        target = self.galleries.get(gallery)
        with self._threads_lock:
            thread = self._threads.get(target.id)
        if thread is not None:
            thread.join(timeout)

    def _background(
        self, actor: Who, gallery: str, model: str, drop_refused: bool, row_id: str
    ) -> None:
        try:
            self.migrate(actor=actor, gallery=gallery, model=model, drop_refused=drop_refused)
        except ProbityError as exc:
            self._note(row_id, error=exc.message)
        except Exception as exc:  # the thread must record why it stopped
            log.exception("model migration %s stopped", row_id)
            self._note(row_id, error=f"{type(exc).__name__}: {exc}")

    def _note(
        self, migration_id: str, *, error: str | None, status: MigrationStatus | None = None
    ) -> None:
        with self.db.transaction() as session:
            row = session.get(ModelMigrationRow, migration_id)
            if row is not None:
                row.error = error
                if status is not None and row.status != MigrationStatus.SWAPPED.value:
                    row.status = status.value
                row.updated_at = self.clock()

    def _open(self, actor: Who, gallery: Gallery, new: ModelVersion) -> str:
        """The unfinished migration of ``gallery`` to ``new``, or a new one (audited)."""
        with self.db.transaction() as session:
            current = self._unfinished(session, gallery.id)
            if current is not None:
                if _model(current).key != new.key:
                    raise Conflict(
                        f"gallery '{gallery.name}' is being migrated to {_model(current).key}; "
                        "finish that migration first (run it again)"
                    )
                return current.id
            if gallery.model.key == new.key:
                raise InvalidInput(f"gallery '{gallery.name}' already uses model {new.key}")
            now = self.clock()
            row = ModelMigrationRow(
                id=new_id(),
                gallery_id=gallery.id,
                from_model_key=gallery.model.key,
                to_model_name=new.name,
                to_model_version=new.version,
                to_model_dimension=new.dimension,
                status=MigrationStatus.RUNNING.value,
                started_at=now,
                started_by=name_of(actor),
                updated_at=now,
            )
            session.add(row)
            total = self._count(session, gallery.id)
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.GALLERY_MIGRATE_START,
                    galleries=(gallery.name,),
                    details={
                        "migration_id": row.id,
                        "from_model": gallery.model.key,
                        "to_model": new.key,
                        "enrolments": total,
                    },
                ),
            )
            return row.id

    @staticmethod
    def _unfinished(session: Session, gallery_id: str) -> ModelMigrationRow | None:
        return session.scalars(
            select(ModelMigrationRow).where(
                ModelMigrationRow.gallery_id == gallery_id,
                ModelMigrationRow.status != MigrationStatus.SWAPPED.value,
            )
        ).first()

    @staticmethod
    def _count(session: Session, gallery_id: str) -> int:
        return len(
            session.scalars(
                select(EnrolmentRow.id).where(EnrolmentRow.gallery_id == gallery_id)
            ).all()
        )

    @staticmethod
    def _pending(session: Session, gallery_id: str, migration_id: str) -> list[str]:
        """Enrolments of the gallery that this migration has not handled, oldest first."""
        done = select(ModelMigrationItemRow.enrolment_id).where(
            ModelMigrationItemRow.migration_id == migration_id
        )
        return list(
            session.scalars(
                select(EnrolmentRow.id)
                .where(EnrolmentRow.gallery_id == gallery_id, EnrolmentRow.id.not_in(done))
                .order_by(EnrolmentRow.created_at, EnrolmentRow.id)
            )
        )

    def _embed_pending(
        self,
        actor: Who,
        gallery: Gallery,
        engine: FaceEngine,
        migration_id: str,
        run: _Run,
        on_progress: Callable[[int, int], None] | None,
        on_item: Callable[[int], None] | None,
    ) -> None:
        with self.db.read() as session:
            pending = self._pending(session, gallery.id, migration_id)
            total = self._count(session, gallery.id)
        done = total - len(pending)
        if on_progress is not None:
            on_progress(done, total)
        for enrolment_id in pending:
            if self._embed_one(actor, gallery, engine, migration_id, enrolment_id):
                crash_point("migration.after-batch")  # this enrolment's new template committed
                run.items += 1
                if on_item is not None:
                    on_item(run.items)
            done += 1
            if on_progress is not None:
                on_progress(done, total)

    def _embed_one(
        self,
        actor: Who,
        gallery: Gallery,
        engine: FaceEngine,
        migration_id: str,
        enrolment_id: str,
    ) -> bool:
        """Re-embed one enrolment from its sealed image; False if it was erased meanwhile."""
        with self.db.read() as session:
            row = session.get(EnrolmentRow, enrolment_id)
            if row is None:
                return False
            subject_id, blob, box = row.subject_id, row.image_blob, FaceBox.from_list(row.box)
            key = self.vault.subject_key(session, subject_id)
        image = self.vault.get_image(key, subject_id, blob)
        face, reasons = self._choose(engine, gallery, image, box)
        with self.db.transaction() as session:
            if session.get(EnrolmentRow, enrolment_id) is None:
                return False  # erased while we analysed it
            if session.get(ModelMigrationItemRow, (migration_id, enrolment_id)) is not None:
                return False  # another process handled it
            item = ModelMigrationItemRow(
                migration_id=migration_id, enrolment_id=enrolment_id, subject_id=subject_id
            )
            if face is not None:
                # Sealed under the key as it is now, inside the transaction: a partial
                # erasure may have re-keyed the subject while the face was analysed.
                current = self.vault.subject_key(session, subject_id)
                item.template_id = Templates(session).add(
                    subject_id=subject_id,
                    gallery_id=gallery.id,
                    model_key=engine.model.key,
                    sealed=Vault.seal_vector(current, subject_id, face.descriptor),
                    at=self.clock(),
                )
                item.box = face.box.as_list()
                item.quality = face.quality.as_dict()
            else:
                item.reasons = list(reasons)
                reference = session.get(SubjectRow, subject_id)
                self.audit.record(
                    session,
                    AuditRecord(
                        actor=name_of(actor),
                        organisation=organisation_of(actor),
                        action=AuditAction.GALLERY_MIGRATE_REFUSED,
                        galleries=(gallery.name,),
                        subject_ids=(subject_id,),
                        details={
                            "migration_id": migration_id,
                            "enrolment_id": enrolment_id,
                            "subject_reference": reference.reference if reference else None,
                            "model": engine.model.key,
                            "reasons": list(reasons),
                        },
                    ),
                )
            session.add(item)
            migration = session.get(ModelMigrationRow, migration_id)
            if migration is not None:
                migration.updated_at = self.clock()
        return True

    def _choose(
        self, engine: FaceEngine, gallery: Gallery, image: bytes, box: FaceBox
    ) -> tuple[AnalysedFace | None, tuple[str, ...]]:
        """The face the enrolment is of, as the new model sees it: of the faces the new
        engine finds, the one whose box best overlaps the stored box; it must meet the
        gallery's quality floor. (None, reasons) when there is no such face."""
        try:
            decoded = decode_image(
                image, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
            )
            faces = engine.analyse(decoded, hog_pixel_budget=self.hog_pixel_budget)
        except ProbityError as exc:
            return None, (exc.message,)
        if not faces:
            return None, ("no face found by the new model",)
        overlaps = [_overlap(f.box, box) for f in faces]
        best = int(np.argmax(overlaps))
        if overlaps[best] <= 0.0:
            return None, (
                f"no face found where the enrolment's face was ({box.as_list()}); the new "
                f"model found {len(faces)} elsewhere",
            )
        face = faces[best]
        reasons = quality_reasons(face.quality, gallery.quality_floor)
        if reasons:
            return None, tuple(reasons)
        return face, ()

    def _refusals(self, migration_id: str) -> list[MigrationRefusal]:
        with self.db.read() as session:
            rows = session.execute(
                select(ModelMigrationItemRow, SubjectRow.reference)
                .join(EnrolmentRow, EnrolmentRow.id == ModelMigrationItemRow.enrolment_id)
                .join(SubjectRow, SubjectRow.id == ModelMigrationItemRow.subject_id)
                .where(
                    ModelMigrationItemRow.migration_id == migration_id,
                    ModelMigrationItemRow.template_id.is_(None),
                )
                .order_by(SubjectRow.reference, ModelMigrationItemRow.enrolment_id)
            ).all()
            return [
                MigrationRefusal(item.enrolment_id, reference, tuple(item.reasons or ()))
                for item, reference in rows
            ]

    def _set_status(self, migration_id: str, status: MigrationStatus) -> None:
        with self.db.transaction() as session:
            row = session.get(ModelMigrationRow, migration_id)
            if row is not None:
                row.status = status.value
                row.updated_at = self.clock()

    def _build_index(self, gallery: Gallery, new: ModelVersion) -> int:
        """The new model's index of the gallery, rebuilt from the template log (its new
        templates, decrypted)."""
        return len(self.indexes.rebuild(IndexSlot.of(gallery, new)))

    def _swap(
        self,
        actor: Who,
        gallery: Gallery,
        new: ModelVersion,
        migration_id: str,
        holds: list[Hold],
        run: _Run,
        vectors: int,
    ) -> bool:
        """The swap transaction; False (nothing changed) if an enrolment is not handled."""
        with self.db.transaction() as session:
            if self._pending(session, gallery.id, migration_id):
                return False
            items = list(
                session.scalars(
                    select(ModelMigrationItemRow).where(
                        ModelMigrationItemRow.migration_id == migration_id,
                        ModelMigrationItemRow.template_id.is_not(None),
                    )
                )
            )
            by_enrolment = {i.enrolment_id: i for i in items}
            enrolments = session.scalars(
                select(EnrolmentRow).where(EnrolmentRow.gallery_id == gallery.id)
            ).all()
            for enrolment in enrolments:
                item = by_enrolment.get(enrolment.id)
                if item is None or item.template_id is None:
                    return False  # refused and not erased: cannot swap
                enrolment.template_id = item.template_id
                enrolment.box = item.box
                enrolment.quality = item.quality
            session.flush()
            result = session.execute(
                delete(TemplateRow).where(
                    TemplateRow.gallery_id == gallery.id, TemplateRow.model_key != new.key
                )
            )
            old = int(getattr(result, "rowcount", 0) or 0)
            row = session.get(GalleryRow, gallery.id)
            assert row is not None
            row.model_name, row.model_version = new.name, new.version
            row.model_dimension = new.dimension
            now = self.clock()
            for hold in holds:
                session.add(
                    SuppressionHoldRow(
                        subject_id=hold.subject_id,
                        objection_id=hold.objection_id,
                        model_key=hold.model_key,
                        distance=hold.distance,
                        migration_id=migration_id,
                        created_at=now,
                    )
                )
            migration = session.get(ModelMigrationRow, migration_id)
            assert migration is not None
            migration.status = MigrationStatus.SWAPPED.value
            migration.finished_at = migration.updated_at = now
            migration.outcome = {
                "refused": [r.as_dict() for r in run.refused],
                "erased_receipts": run.erased,
            }
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.GALLERY_MIGRATE_SWAP,
                    galleries=(gallery.name,),
                    details={
                        "migration_id": migration_id,
                        "from_model": gallery.model.key,
                        "to_model": new.key,
                        "enrolments": len(enrolments),
                        "old_templates_deleted": old,
                        "index_vectors": vectors,
                        "erased_receipts": run.erased,
                        "holds": [[h.subject_id, h.objection_id, h.distance] for h in holds],
                    },
                ),
            )
        return True

    # -- reading ------------------------------------------------------------------------------

    def report(self, *, gallery: str, actor: Who) -> MigrationReport:
        """The gallery's latest migration (MigrationNotFound if it never had one). Needs
        GALLERY_CREATE on the gallery, as running one does: it names refused subjects."""
        target = self.galleries.get(gallery, actor=actor, action=Action.GALLERY_CREATE)
        with self.db.read() as session:
            row = session.scalars(
                select(ModelMigrationRow)
                .where(ModelMigrationRow.gallery_id == target.id)
                .order_by(ModelMigrationRow.started_at.desc())
            ).first()
            if row is None:
                raise MigrationNotFound(f"gallery '{gallery}' has never been migrated")
            items = session.scalars(
                select(ModelMigrationItemRow.template_id).where(
                    ModelMigrationItemRow.migration_id == row.id
                )
            ).all()
            total = self._count(session, target.id)
            holds = len(
                session.scalars(
                    select(SuppressionHoldRow.id).where(SuppressionHoldRow.migration_id == row.id)
                ).all()
            )
            kept = row.outcome or {}
        swapped = row.status == MigrationStatus.SWAPPED.value
        refused = (
            tuple(
                MigrationRefusal(str(r["enrolment_id"]), str(r["subject"]), tuple(r["reasons"]))
                for r in kept.get("refused", [])
            )
            if swapped
            else tuple(self._refusals(row.id))
        )
        new = _model(row)
        return MigrationReport(
            id=row.id,
            gallery=target.name,
            from_model=row.from_model_key,
            to_model=new.key,
            status=MigrationStatus(row.status),
            enrolments=total,
            embedded=sum(1 for t in items if t is not None),
            refused=refused,
            started_at=row.started_at,
            started_by=row.started_by,
            updated_at=row.updated_at,
            finished_at=row.finished_at,
            erased=tuple(kept.get("erased_receipts", [])),
            holds=holds,
            index_vectors=self.indexes.size(IndexSlot.of(target, new)),
            error=row.error,
        )

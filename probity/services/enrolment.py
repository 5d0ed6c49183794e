"""Enrolment: one image of one subject, with provenance, into a gallery.

Order of checks, cheapest first, and nothing is written until all have passed: provenance
fields → gallery → image bytes and decoding → already enrolled? → faces and quality floor.
Then one transaction writes the subject (and its data key), the sealed template, the sealed
image blob, the enrolment row and the audit event. The vector goes into the gallery's index
after the commit (bulk enrolment batches that, see ``enrol_manifest``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from probity.domain.accounts import Action
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import FaceRefusal, ModelVersion, QualityFloor
from probity.domain.gallery import Enrolment, Gallery, Provenance, Subject
from probity.domain.ids import EnrolmentId, SubjectId, new_id
from probity.engine.images import read_image_bytes
from probity.engine.pool import Analysis, AnalysisPool
from probity.engine.quality import quality_reasons
from probity.engine.types import AnalysedFace
from probity.errors import (
    AlreadyEnrolled,
    Conflict,
    EnrolmentNotFound,
    ImageTooLarge,
    InvalidInput,
    MissingProvenance,
    NoFaceFound,
    ProbityError,
    QualityRefused,
)
from probity.faults import crash_point
from probity.policy.provenance import parse_provenance
from probity.services.access import Who, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.galleries import GalleryService
from probity.services.idempotency import IdempotencyService, fingerprint
from probity.services.indexes import IndexSet, IndexSlot
from probity.services.jurisdictions import JurisdictionService
from probity.services.manifest import ManifestRow, read_manifest
from probity.services.suppression import SuppressionService
from probity.storage.db import Database
from probity.storage.repositories import Enrolments, Galleries, Subjects, Templates
from probity.storage.vault import Vault

INDEX_FLUSH_EVERY = 64
"""Bulk enrolment saves the index after this many enrolments (and at the end): saving a
large flat index on every row would rewrite the whole file each time."""


class RowStatus(StrEnum):
    ENROLLED = "enrolled"
    SKIPPED = "skipped"  # already enrolled: makes re-running a manifest resumable
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class EnrolOutcome:
    status: RowStatus
    subject_reference: str
    enrolment: Enrolment | None = None
    refused_faces: tuple[FaceRefusal, ...] = ()
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ManifestResult:
    line: int
    path: str
    subject: str
    outcome: EnrolOutcome


@dataclass
class BulkSummary:
    rows: list[ManifestResult] = field(default_factory=list)

    def count(self, status: RowStatus) -> int:
        return sum(1 for r in self.rows if r.outcome.status is status)


class EnrolmentService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        galleries: GalleryService,
        vault: Vault,
        indexes: IndexSet,
        pools: Callable[[int, ModelVersion], AnalysisPool],
        workers: int,
        max_upload_bytes: int,
        suppression: SuppressionService | None = None,
        jurisdictions: JurisdictionService | None = None,
        idempotency: IdempotencyService | None = None,
    ) -> None:
        self.idempotency = idempotency
        self.db = db
        self.audit = audit
        self.clock = clock
        self.galleries = galleries
        self.vault = vault
        self.indexes = indexes
        self.pools = pools  # (workers, the gallery's model) -> a pool running that model
        self.workers = workers
        self.max_upload_bytes = max_upload_bytes
        self.suppression = suppression
        self.jurisdictions = jurisdictions

    def enrol(
        self,
        *,
        actor: Who,
        gallery: str,
        subject: str,
        image: bytes,
        provenance: Mapping[str, str | None],
        idempotency_key: str | None = None,
    ) -> EnrolOutcome:
        """Enrol one image. Raises a ProbityError (nothing written) if it cannot be enrolled;
        an image already enrolled for this subject raises AlreadyEnrolled.

        With ``idempotency_key``, the same person sending the same enrolment again (a retry
        after a lost answer) gets the first answer back, rebuilt from the stored enrolment,
        instead of AlreadyEnrolled; the same key with a different request is refused (422).
        Faces refused in the first answer are not repeated (they were never stored)."""
        if idempotency_key is None or self.idempotency is None:
            return self._enrol(actor, gallery, subject, image, provenance)
        request = fingerprint(
            gallery=gallery, subject=subject, image=image, provenance=dict(provenance)
        )
        return self.idempotency.once(
            actor=actor,
            operation="enrolment",
            key=idempotency_key,
            request=request,
            perform=lambda: self._enrol(actor, gallery, subject, image, provenance),
            made=lambda outcome: str(outcome.enrolment.id) if outcome.enrolment else "",
            replay=lambda enrolment_id: self._stored(actor, gallery, subject, enrolment_id),
        )

    def _stored(self, actor: Who, gallery: str, subject: str, enrolment_id: str) -> EnrolOutcome:
        target = self.galleries.get(gallery, actor=actor, action=Action.ENROL)
        with self.db.read() as session:
            found = Enrolments(session).get_many([enrolment_id]).get(enrolment_id)
        if found is None or found.gallery_id != target.id:
            raise EnrolmentNotFound(
                "the enrolment made with this idempotency key no longer exists (erased)"
            )
        return EnrolOutcome(RowStatus.ENROLLED, subject, found)

    def _enrol(
        self,
        actor: Who,
        gallery: str,
        subject: str,
        image: bytes,
        provenance: Mapping[str, str | None],
    ) -> EnrolOutcome:
        target = self.galleries.get(gallery, actor=actor, action=Action.ENROL)
        prepared = self._prepare(target, subject, image, provenance)
        if isinstance(prepared, EnrolOutcome):
            raise AlreadyEnrolled(
                f"this image is already enrolled for subject '{subject}' in '{gallery}'"
            )
        pool = self.pools(1, target.model)
        try:
            analysis = pool.submit(image).result()
        finally:
            pool.close()
        outcome, vector = self._persist(actor, target, prepared, analysis)
        if outcome.enrolment is None or vector is None:
            raise AlreadyEnrolled(
                f"this image is already enrolled for subject '{subject}' in '{gallery}'"
            )
        self.indexes.add(IndexSlot.of(target), [outcome.enrolment.template_id], vector[None, :])
        return outcome

    def enrol_manifest(
        self,
        *,
        actor: Who,
        gallery: str,
        manifest: Path,
        on_progress: Callable[[int, int], None] | None = None,
        workers: int | None = None,
        read: Callable[[Path], bytes] | None = None,
    ) -> BulkSummary:
        """Enrol every row of a CSV manifest (paths relative to the manifest's folder).

        Each row is its own transaction, so a crash loses at most the rows in progress;
        running the same manifest again skips rows already enrolled (same subject, same
        image bytes) before any face analysis. Refused rows are listed with their reason,
        never silently dropped. Face analysis runs in ``workers`` processes (default: the
        engine setting); rows are written to the database in manifest order.

        ``read`` reads the manifest and each image file instead of a plain file read: a
        bulk job's staged files are sealed, and the job passes the function that opens them
        (it raises a ProbityError, which refuses that row, for a file it cannot open).
        """
        target = self.galleries.get(gallery, actor=actor, action=Action.ENROL)
        rows = read_manifest(manifest, data=None if read is None else read(manifest))
        wanted = workers or self.workers
        pool = self.pools(wanted if len(rows) >= 2 * wanted else 1, target.model)
        summary = BulkSummary()
        batch = _IndexBatch(self.indexes, IndexSlot.of(target))
        # Rows waiting for their analysis, oldest first; a bounded window keeps memory flat.
        in_flight: deque[tuple[ManifestRow, _Prepared | EnrolOutcome, Future[Analysis] | None]]
        in_flight = deque()

        def finish_oldest() -> None:
            row, prepared, future = in_flight.popleft()
            outcome = self._finish_row(actor, target, prepared, future, batch)
            summary.rows.append(ManifestResult(row.line, str(row.path), row.subject, outcome))
            if on_progress is not None:
                on_progress(len(summary.rows), len(rows))

        try:
            for row in rows:
                try:
                    if row.error:
                        raise InvalidInput(row.error)
                    data = (
                        read_image_bytes(row.path, max_bytes=self.max_upload_bytes)
                        if read is None
                        else read(row.path)
                    )
                    prepared = self._prepare(target, row.subject, data, row.provenance)
                    future = None if isinstance(prepared, EnrolOutcome) else pool.submit(data)
                    in_flight.append((row, prepared, future))
                except ProbityError as exc:
                    in_flight.append(
                        (
                            row,
                            EnrolOutcome(RowStatus.REFUSED, row.subject, reason=exc.message),
                            None,
                        )
                    )
                while len(in_flight) > 2 * pool.workers or (in_flight and in_flight[0][2] is None):
                    finish_oldest()
            while in_flight:
                finish_oldest()
        finally:
            pool.close()
            batch.flush()
            self.audit.record_alone(
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.ENROL_BULK,
                    galleries=(target.name,),
                    details={
                        "manifest": manifest.name,
                        "rows": len(summary.rows),
                        "enrolled": summary.count(RowStatus.ENROLLED),
                        "skipped": summary.count(RowStatus.SKIPPED),
                        "refused": [
                            {"line": r.line, "reason": r.outcome.reason}
                            for r in summary.rows
                            if r.outcome.status is RowStatus.REFUSED
                        ],
                    },
                )
            )
        return summary

    def _finish_row(
        self,
        actor: Who,
        gallery: Gallery,
        prepared: _Prepared | EnrolOutcome,
        future: Future[Analysis] | None,
        batch: _IndexBatch,
    ) -> EnrolOutcome:
        if isinstance(prepared, EnrolOutcome):
            return prepared
        assert future is not None
        try:
            analysis = future.result()
        except ProbityError as exc:
            return EnrolOutcome(RowStatus.REFUSED, prepared.reference, reason=exc.message)
        except Exception as exc:
            # Not a refusal of this row: a worker died or the engine broke. Stop the run
            # (rows already written stay written; rerunning the manifest resumes).
            hint = (
                " (a worker process stopped; a program that calls Probity must guard its entry "
                "point with `if __name__ == '__main__':`, as multiprocessing requires, or set "
                "PROBITY_ENGINE__WORKERS=1)"
                if isinstance(exc, BrokenExecutor)
                else ""
            )
            raise ProbityError(f"face analysis failed: {type(exc).__name__}: {exc}{hint}") from exc
        try:
            outcome, vector = self._persist(actor, gallery, prepared, analysis)
        except ProbityError as exc:
            return EnrolOutcome(RowStatus.REFUSED, prepared.reference, reason=exc.message)
        if outcome.enrolment is not None and vector is not None:
            batch.add(outcome.enrolment.template_id, vector)
        return outcome

    def _prepare(
        self,
        gallery: Gallery,
        subject: str,
        image: bytes,
        provenance: Mapping[str, str | None],
    ) -> _Prepared | EnrolOutcome:
        """The checks that need no face analysis: reference, provenance, already enrolled."""
        reference = subject.strip()
        if not reference:
            raise MissingProvenance("subject", "a subject reference is required")
        now = self.clock()
        parsed = parse_provenance(provenance, gallery=gallery, today=now.date())
        if self.jurisdictions is not None:  # a jurisdiction rule excludes where it was taken
            self.jurisdictions.check_enrolment(gallery, parsed.jurisdiction)
        if len(image) > self.max_upload_bytes:
            raise ImageTooLarge(
                f"the image is {len(image)} bytes, over the {self.max_upload_bytes}-byte limit"
            )
        sha256 = hashlib.sha256(image).hexdigest()
        with self.db.read() as session:
            if Enrolments(session).find_image(gallery.id, reference, sha256):
                return EnrolOutcome(RowStatus.SKIPPED, reference)
        return _Prepared(reference, parsed, image, sha256)

    def _persist(
        self, actor: Who, gallery: Gallery, prepared: _Prepared, analysis: Analysis
    ) -> tuple[EnrolOutcome, NDArray[np.float32] | None]:
        """Choose the one face to enrol and write everything in one transaction."""
        sha256, faces = analysis
        face, refused = self._single_face(faces, gallery.quality_floor)
        reference = prepared.reference
        if self.suppression is not None:  # "objection on file": refused, nothing written
            self.suppression.check_enrolment(
                actor=actor, gallery=gallery, descriptor=face.descriptor,
                reference=reference, image_sha256=sha256,
                # an objection with no template of this model is checked on one it has
                image=prepared.image, detection=face.detection,
            )  # fmt: skip
        now = self.clock()
        enrolment_id = EnrolmentId(new_id())
        blob_id = new_id()
        with self.db.transaction() as session:
            if Enrolments(session).find_image(gallery.id, reference, sha256):
                return EnrolOutcome(RowStatus.SKIPPED, reference), None  # same row twice
            current = Galleries(session).get(gallery.id)
            if current is not None and current.model != gallery.model:
                # A model migration swapped the gallery while this face was analysed: its
                # template is of the old model, which the gallery no longer searches.
                raise Conflict(
                    f"gallery '{gallery.name}' moved to model {current.model.key} during this "
                    "enrolment; nothing was enrolled, enrol the image again"
                )
            subjects = Subjects(session)
            existing = subjects.find(gallery.id, reference)
            if existing is None:
                subject_row = Subject(SubjectId(new_id()), gallery.id, reference, now)
                key, wrapped = self.vault.new_wrapped_key(session, subject_row.id)
                subjects.add(subject_row, wrapped)
            else:
                subject_row = existing
                key = self.vault.subject_key(session, subject_row.id)
            template_id = Templates(session).add(
                subject_id=subject_row.id,
                gallery_id=gallery.id,
                model_key=gallery.model.key,
                sealed=self.vault.seal_vector(key, subject_row.id, face.descriptor),
                at=now,
            )
            enrolment = Enrolment(
                id=enrolment_id,
                subject_id=subject_row.id,
                gallery_id=gallery.id,
                template_id=template_id,
                provenance=prepared.provenance,
                image_sha256=sha256,
                box=face.box,
                quality=face.quality,
                created_at=now,
                created_by=name_of(actor),
            )
            Enrolments(session).add(enrolment, image_blob=blob_id)
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.ENROL,
                    galleries=(gallery.name,),
                    subject_ids=(subject_row.id,),
                    details={
                        "enrolment_id": enrolment_id,
                        "template_id": template_id,
                        "image_sha256": sha256,
                        "source": prepared.provenance.source,
                        "lawful_basis": prepared.provenance.lawful_basis.value,
                        "jurisdiction": prepared.provenance.jurisdiction,
                        "retention_until": prepared.provenance.retention_until.isoformat(),
                        "refused_faces": len(refused),
                    },
                ),
            )
            # The blob goes last inside the transaction: if writing it fails, nothing commits.
            self.vault.put_image(key, subject_row.id, blob_id, prepared.image)
        # Committed; the vector is not in the index yet (single and bulk paths both pass here).
        crash_point("enrol.after-commit")
        return (
            EnrolOutcome(RowStatus.ENROLLED, reference, enrolment=enrolment, refused_faces=refused),
            face.descriptor,
        )

    @staticmethod
    def _single_face(
        faces: list[AnalysedFace], floor: QualityFloor
    ) -> tuple[AnalysedFace, tuple[FaceRefusal, ...]]:
        """The one face to enrol, and the faces the quality floor refused (with reasons)."""
        if not faces:
            raise NoFaceFound("no face found in the image")
        accepted: list[AnalysedFace] = []
        refused: list[FaceRefusal] = []
        for face in faces:
            reasons = quality_reasons(face.quality, floor)
            if reasons:
                refused.append(FaceRefusal(face.box, tuple(reasons)))
            else:
                accepted.append(face)
        if not accepted:
            detail = "; ".join(
                f"face at {r.box.as_list()}: {', '.join(r.reasons)}" for r in refused
            )
            raise QualityRefused(f"no face meets the gallery's quality floor ({detail})")
        if len(accepted) > 1:
            raise InvalidInput(
                f"{len(accepted)} faces meet the quality floor; an enrolment image must show "
                "exactly one person (crop it first)"
            )
        return accepted[0], tuple(refused)


@dataclass(frozen=True, slots=True)
class _Prepared:
    reference: str
    provenance: Provenance
    image: bytes
    sha256: str


class _IndexBatch:
    """Collects new vectors and adds them to the gallery's index every INDEX_FLUSH_EVERY."""

    def __init__(self, indexes: IndexSet, slot: IndexSlot) -> None:
        self.indexes = indexes
        self.slot = slot
        self.ids: list[int] = []
        self.vectors: list[NDArray[np.float32]] = []

    def add(self, template_id: int, vector: NDArray[np.float32]) -> None:
        self.ids.append(template_id)
        self.vectors.append(vector)
        if len(self.ids) >= INDEX_FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.ids:
            self.indexes.add(self.slot, self.ids, np.stack(self.vectors))
            self.ids, self.vectors = [], []

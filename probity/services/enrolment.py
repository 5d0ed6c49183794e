"""Enrolment: one image of one subject, with provenance, into a gallery.

Order of checks, cheapest first, and nothing is written until all have passed: provenance
fields → gallery → image bytes and decoding → already enrolled? → faces and quality floor.
Then one transaction writes the subject (and its data key), the sealed template, the sealed
image blob, the enrolment row and the audit event. The vector goes into the gallery's index
after the commit (bulk enrolment batches that, see ``enrol_manifest``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import FaceRefusal, QualityFloor
from probity.domain.gallery import Enrolment, Gallery, Subject
from probity.domain.ids import EnrolmentId, SubjectId, new_id
from probity.engine.images import decode_image
from probity.engine.quality import quality_reasons
from probity.engine.types import AnalysedFace, DecodedImage, FaceEngine
from probity.errors import (
    AlreadyEnrolled,
    ImageTooLarge,
    InvalidInput,
    NoFaceFound,
    ProbityError,
    QualityRefused,
)
from probity.policy.provenance import parse_provenance
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.galleries import GalleryService
from probity.services.indexes import IndexSet
from probity.services.manifest import ManifestRow, read_manifest
from probity.storage.db import Database
from probity.storage.repositories import Enrolments, Subjects, Templates
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
        engine: FaceEngine,
        galleries: GalleryService,
        vault: Vault,
        indexes: IndexSet,
        max_upload_bytes: int,
        max_image_pixels: int,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.engine = engine
        self.galleries = galleries
        self.vault = vault
        self.indexes = indexes
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels

    def enrol(
        self,
        *,
        actor: str,
        gallery: str,
        subject: str,
        image: bytes,
        provenance: Mapping[str, str | None],
    ) -> EnrolOutcome:
        """Enrol one image. Raises a ProbityError (nothing written) if it cannot be enrolled;
        an image already enrolled for this subject raises AlreadyEnrolled."""
        target = self.galleries.get(gallery)
        outcome, vector = self._enrol_one(
            actor=actor, gallery=target, subject=subject, image=image, provenance=provenance
        )
        if outcome.status is RowStatus.SKIPPED:
            raise AlreadyEnrolled(
                f"this image is already enrolled for subject '{subject}' in '{gallery}'"
            )
        assert outcome.enrolment is not None and vector is not None
        self.indexes.add(target.id, [outcome.enrolment.template_id], vector[None, :])
        return outcome

    def enrol_manifest(
        self,
        *,
        actor: str,
        gallery: str,
        manifest: Path,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> BulkSummary:
        """Enrol every row of a CSV manifest (paths relative to the manifest's folder).

        Each row is its own transaction, so a crash loses at most the row in progress;
        running the same manifest again skips rows already enrolled (same subject, same
        image bytes). Refused rows are listed with their reason, never silently dropped.
        """
        target = self.galleries.get(gallery)
        rows = read_manifest(manifest)
        summary = BulkSummary()
        pending_ids: list[int] = []
        pending_vectors: list[NDArray[np.float32]] = []

        def flush() -> None:
            if pending_ids:
                self.indexes.add(target.id, pending_ids, np.stack(pending_vectors))
                pending_ids.clear()
                pending_vectors.clear()

        try:
            for done, row in enumerate(rows, start=1):
                outcome = self._manifest_row(actor, target, row)
                summary.rows.append(
                    ManifestResult(row.line, str(row.path), row.subject, outcome[0])
                )
                if outcome[1] is not None and outcome[0].enrolment is not None:
                    pending_ids.append(outcome[0].enrolment.template_id)
                    pending_vectors.append(outcome[1])
                    if len(pending_ids) >= INDEX_FLUSH_EVERY:
                        flush()
                if on_progress is not None:
                    on_progress(done, len(rows))
        finally:
            flush()
            self.audit.record_alone(
                AuditRecord(
                    actor=actor,
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

    def _manifest_row(
        self, actor: str, gallery: Gallery, row: ManifestRow
    ) -> tuple[EnrolOutcome, NDArray[np.float32] | None]:
        try:
            if row.error:
                raise InvalidInput(row.error)
            data = _read_file(row.path, self.max_upload_bytes)
            return self._enrol_one(
                actor=actor,
                gallery=gallery,
                subject=row.subject,
                image=data,
                provenance=row.provenance,
            )
        except ProbityError as exc:
            return EnrolOutcome(RowStatus.REFUSED, row.subject, reason=exc.message), None

    def _enrol_one(
        self,
        *,
        actor: str,
        gallery: Gallery,
        subject: str,
        image: bytes,
        provenance: Mapping[str, str | None],
    ) -> tuple[EnrolOutcome, NDArray[np.float32] | None]:
        reference = subject.strip()
        if not reference:
            raise InvalidInput("a subject reference is required")
        now = self.clock()
        parsed = parse_provenance(provenance, gallery=gallery, today=now.date())
        decoded = decode_image(
            image, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
        )
        with self.db.transaction() as session:
            if Enrolments(session).find_image(gallery.id, reference, decoded.sha256):
                return EnrolOutcome(RowStatus.SKIPPED, reference), None
        face, refused = self._single_face(decoded, gallery.quality_floor)

        enrolment_id = EnrolmentId(new_id())
        blob_id = new_id()
        with self.db.transaction() as session:
            subjects = Subjects(session)
            existing = subjects.find(gallery.id, reference)
            if existing is None:
                subject_row = Subject(SubjectId(new_id()), gallery.id, reference, now)
                key, wrapped = self.vault.new_wrapped_key(subject_row.id)
                subjects.add(subject_row, wrapped)
            else:
                subject_row = existing
                key = self.vault.subject_key(session, subject_row.id)
            template_id = Templates(session).add(
                subject_id=subject_row.id,
                gallery_id=gallery.id,
                model_key=self.engine.model.key,
                sealed=self.vault.seal_vector(key, subject_row.id, face.descriptor),
                at=now,
            )
            enrolment = Enrolment(
                id=enrolment_id,
                subject_id=subject_row.id,
                gallery_id=gallery.id,
                template_id=template_id,
                provenance=parsed,
                image_sha256=decoded.sha256,
                box=face.box,
                quality=face.quality,
                created_at=now,
                created_by=actor,
            )
            Enrolments(session).add(enrolment, image_blob=blob_id)
            self.audit.record(
                session,
                AuditRecord(
                    actor=actor,
                    action=AuditAction.ENROL,
                    galleries=(gallery.name,),
                    subject_ids=(subject_row.id,),
                    details={
                        "enrolment_id": enrolment_id,
                        "template_id": template_id,
                        "image_sha256": decoded.sha256,
                        "source": parsed.source,
                        "lawful_basis": parsed.lawful_basis.value,
                        "jurisdiction": parsed.jurisdiction,
                        "retention_until": parsed.retention_until.isoformat(),
                        "refused_faces": len(refused),
                    },
                ),
            )
            # The blob goes last inside the transaction: if it fails, nothing commits; if the
            # commit fails after it, the orphan blob is removed below.
            self.vault.put_image(key, subject_row.id, blob_id, image)
        return (
            EnrolOutcome(RowStatus.ENROLLED, reference, enrolment=enrolment, refused_faces=refused),
            face.descriptor,
        )

    def _single_face(
        self, image: DecodedImage, floor: QualityFloor
    ) -> tuple[AnalysedFace, tuple[FaceRefusal, ...]]:
        """The one face to enrol, and the faces the quality floor refused (with reasons)."""
        faces = self.engine.analyse(image)
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


def _read_file(path: Path, max_bytes: int) -> bytes:
    """Read an image file, refusing missing files and (before reading) oversized ones."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InvalidInput(f"file not found: {path}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if size > max_bytes:
        raise ImageTooLarge(f"{path.name} is {size} bytes, over the {max_bytes}-byte limit")
    return path.read_bytes()

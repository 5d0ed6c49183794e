"""A gallery's subjects for the people who keep the records: listing one subject's
enrolments, removing one enrolment, removing the whole subject. Every removal is an erasure
through ``services/erasure.py`` (cause ``removal``) and leaves its receipt; this module adds
no erasure path of its own. Kept as its own service for the CLI's ``subject remove`` and the
API's enrolment and subject DELETEs, which answer with counts."""

from __future__ import annotations

from dataclasses import dataclass

from probity.domain.accounts import Action
from probity.domain.gallery import Enrolment
from probity.domain.ids import SubjectId
from probity.errors import EnrolmentNotFound, SubjectNotFound
from probity.services.access import Who
from probity.services.erasure import ErasureCause, ErasureReceipt, ErasureService
from probity.services.galleries import GalleryService
from probity.storage.db import Database
from probity.storage.repositories import Enrolments, Subjects


@dataclass(frozen=True, slots=True)
class Removal:
    subject_id: SubjectId
    reference: str
    gallery: str
    enrolments: int
    templates: int
    index_vectors_removed: int
    audit_seq: int
    receipt: str


class SubjectService:
    def __init__(
        self,
        *,
        erasure: ErasureService,
        galleries: GalleryService | None = None,
        db: Database | None = None,
    ) -> None:
        self.erasure = erasure
        self.galleries = galleries
        self.db = db

    def remove(self, *, actor: Who, gallery: str, reference: str, reason: str) -> Removal:
        """Erase the subject: data key, rows, image blobs, index vectors; a receipt."""
        r = self.erasure.erase(
            actor=actor,
            gallery=gallery,
            reference=reference,
            reason=reason,
            cause=ErasureCause.REMOVAL,
        )
        return _removal(r)

    def enrolments(self, *, actor: Who, gallery: str, reference: str) -> list[Enrolment]:
        """The subject's enrolments (provenance, face box, quality; no image, no template),
        oldest first, for someone who may remove the subject's records (curator, privacy
        officer) in the gallery's organisation."""
        assert self.galleries is not None and self.db is not None
        target = self.galleries.get(gallery, actor=actor, action=Action.SUBJECT_REMOVE)
        with self.db.read() as session:
            subject = Subjects(session).find(target.id, reference)
            if subject is None:
                raise SubjectNotFound(f"no subject '{reference}' in gallery '{gallery}'")
            found = [e for e, _ in Enrolments(session).for_subject(subject.id)]
        return sorted(found, key=lambda e: (e.created_at, e.id))

    def remove_enrolment(
        self, *, actor: Who, gallery: str, reference: str, enrolment_id: str, reason: str
    ) -> Removal:
        """Erase one enrolment of the subject (``ErasureService.erase_enrolments``): its row,
        template, image blob and index vector go, the subject's remaining images are
        re-keyed, and a receipt is issued. Removing the last one erases the subject whole."""
        held = self.enrolments(actor=actor, gallery=gallery, reference=reference)
        if enrolment_id not in {e.id for e in held}:
            raise EnrolmentNotFound(
                f"subject '{reference}' in '{gallery}' has no enrolment '{enrolment_id}'"
            )
        receipts = self.erasure.erase_enrolments(
            actor=actor, enrolment_ids=[enrolment_id], reason=reason, cause=ErasureCause.REMOVAL
        )
        if not receipts:  # erased by someone else between the check and the erasure
            raise EnrolmentNotFound(f"enrolment '{enrolment_id}' was erased meanwhile")
        return _removal(receipts[0])


def _removal(r: ErasureReceipt) -> Removal:
    return Removal(
        SubjectId(r.subject_id),
        r.subject_reference,
        r.gallery,
        r.enrolments,
        r.templates,
        r.index_vectors,
        r.audit_seq,
        r.number,
    )

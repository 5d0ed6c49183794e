"""Removing a subject from a gallery: rows, blobs, index vectors and the data key.

The order is chosen so that a crash never leaves readable data behind: the database
transaction deletes the data key (crypto-shredding), templates, enrolments and the subject and
records the audit event; only then are the (now unreadable) blobs deleted and the vectors
removed from the index file, which is rewritten without their bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from probity.domain.accounts import Action
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.ids import SubjectId
from probity.errors import InvalidInput, SubjectNotFound
from probity.services.access import Who, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.galleries import GalleryService
from probity.services.indexes import IndexSet
from probity.storage.db import Database
from probity.storage.repositories import Enrolments, Subjects, Templates
from probity.storage.vault import Vault


@dataclass(frozen=True, slots=True)
class Removal:
    subject_id: SubjectId
    reference: str
    gallery: str
    enrolments: int
    templates: int
    index_vectors_removed: int
    audit_seq: int


class SubjectService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        galleries: GalleryService,
        vault: Vault,
        indexes: IndexSet,
    ) -> None:
        self.db = db
        self.audit = audit
        self.galleries = galleries
        self.vault = vault
        self.indexes = indexes

    def remove(self, *, actor: Who, gallery: str, reference: str, reason: str) -> Removal:
        if len(reason.strip()) < 3:
            raise InvalidInput("a reason for the removal is required")
        target = self.galleries.get(gallery, actor=actor, action=Action.SUBJECT_REMOVE)
        with self.db.transaction() as session:
            subjects = Subjects(session)
            subject = subjects.find(target.id, reference)
            if subject is None:
                raise SubjectNotFound(f"no subject '{reference}' in gallery '{gallery}'")
            enrolments = Enrolments(session)
            blobs = [blob for _, blob in enrolments.for_subject(subject.id)]
            templates = Templates(session)
            template_ids = templates.ids_for_subject(subject.id)
            enrolments.delete_for_subject(subject.id)
            templates.delete_for_subject(subject.id)
            subjects.delete(subject.id)
            event = self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.SUBJECT_REMOVE,
                    galleries=(target.name,),
                    subject_ids=(subject.id,),
                    details={
                        "reference": reference,
                        "reason": reason.strip(),
                        "enrolments": len(blobs),
                        "templates": len(template_ids),
                    },
                ),
            )
        for blob in blobs:
            self.vault.blobs.delete(blob)
        removed = self.indexes.remove(target.id, template_ids)
        return Removal(
            subject.id, reference, target.name, len(blobs), len(template_ids), removed, event.seq
        )

"""Removing a subject from a gallery (a curator's or privacy officer's decision): an
erasure like any other (``services/erasure.py``), with cause ``removal``. Kept as its own
service for the CLI's ``subject remove`` and the API's DELETE, which answer with counts."""

from __future__ import annotations

from dataclasses import dataclass

from probity.domain.ids import SubjectId
from probity.services.access import Who
from probity.services.erasure import ErasureCause, ErasureService


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
    def __init__(self, *, erasure: ErasureService) -> None:
        self.erasure = erasure

    def remove(self, *, actor: Who, gallery: str, reference: str, reason: str) -> Removal:
        """Erase the subject: data key, rows, image blobs, index vectors; a receipt."""
        r = self.erasure.erase(
            actor=actor,
            gallery=gallery,
            reference=reference,
            reason=reason,
            cause=ErasureCause.REMOVAL,
        )
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

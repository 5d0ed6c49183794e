"""Index maintenance: rebuild each gallery's index from the encrypted templates, and report
whether index and database agree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probity.domain.audit import AuditAction, AuditRecord
from probity.services.access import Who, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.galleries import GalleryService
from probity.services.indexes import IndexSet, IndexSlot
from probity.storage.db import Database
from probity.storage.repositories import Enrolments, Templates
from probity.storage.vault import Vault


@dataclass(frozen=True, slots=True)
class IndexStatus:
    gallery: str
    templates: int
    vectors: int

    @property
    def in_step(self) -> bool:
        return self.templates == self.vectors


class IndexMaintenance:
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

    def status(self) -> list[IndexStatus]:
        out = []
        for gallery in self.galleries.all():
            with self.db.read() as session:
                count = Enrolments(session).count(gallery.id)
            out.append(IndexStatus(gallery.name, count, self.indexes.size(IndexSlot.of(gallery))))
        return out

    def rebuild(self, *, actor: Who) -> list[IndexStatus]:
        """Recreate every gallery's index from its templates (decrypting each with its
        subject's key) and save it atomically."""
        out = []
        for gallery in self.galleries.all():
            ids: list[int] = []
            vectors = []
            with self.db.read() as session:
                keys: dict[str, bytes] = {}
                for t in Templates(session).for_gallery(gallery.id):
                    if t.model_key != gallery.model.key:
                        continue  # a migration's new templates: that job builds their index
                    if t.subject_id not in keys:
                        keys[t.subject_id] = self.vault.subject_key(session, t.subject_id)
                    ids.append(t.id)
                    vectors.append(
                        Vault.open_vector(keys[t.subject_id], t.subject_id, t.sealed_vector)
                    )
            matrix = (
                np.stack(vectors).astype(np.float32)
                if vectors
                else np.zeros((0, gallery.model.dimension), np.float32)
            )
            slot = IndexSlot.of(gallery)
            self.indexes.replace_all(slot, ids, matrix)
            out.append(IndexStatus(gallery.name, len(ids), self.indexes.size(slot)))
        self.audit.record_alone(
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=AuditAction.INDEX_REBUILD,
                galleries=tuple(s.gallery for s in out),
                details={"vectors": {s.gallery: s.vectors for s in out}},
            )
        )
        return out

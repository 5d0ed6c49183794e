"""Index maintenance: rebuild each gallery's index from the encrypted templates, and report
whether index and database agree."""

from __future__ import annotations

from dataclasses import dataclass

from probity.domain.audit import AuditAction, AuditRecord
from probity.services.access import Who, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.galleries import GalleryService
from probity.services.indexes import IndexSet, IndexSlot
from probity.storage.db import Database
from probity.storage.repositories import Templates
from probity.storage.vault import Vault


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """One gallery's index against the database: ``templates`` rows of the gallery's model,
    ``vectors`` in its index, and where the index stands in the template log
    (``applied_seq`` of ``head_seq``; ``behind`` = this slot's changes not yet applied)."""

    gallery: str
    templates: int
    vectors: int
    applied_seq: int = 0
    head_seq: int = 0
    behind: int = 0

    @property
    def in_step(self) -> bool:
        return self.templates == self.vectors and self.behind == 0


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
        """Each gallery's index as it stands, without catching up: a gap here is what a
        crash left and what the next search (or ``probity doctor``) will repair."""
        out = []
        for gallery in self.galleries.all():
            slot = IndexSlot.of(gallery)
            with self.db.read() as session:
                count = Templates(session).count(gallery.id, gallery.model.key)
            state = self.indexes.states([slot])[0]
            out.append(
                IndexStatus(
                    gallery.name,
                    count,
                    state.vectors,
                    state.applied_seq,
                    state.head_seq,
                    state.behind,
                )
            )
        return out

    def rebuild(self, *, actor: Who) -> list[IndexStatus]:
        """Recreate every gallery's index from the template log (every template decrypted
        with its subject's key) and save it sealed and atomically."""
        out = []
        for gallery in self.galleries.all():
            slot = IndexSlot.of(gallery)
            index = self.indexes.rebuild(slot)
            with self.db.read() as session:
                count = Templates(session).count(gallery.id, gallery.model.key)
            head = index.applied_seq
            out.append(IndexStatus(gallery.name, count, len(index), head, head, 0))
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

"""Galleries: named collections with an inclusion policy, retention, jurisdictions, a quality
floor and one model version."""

from __future__ import annotations

import re

from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import ModelVersion, QualityFloor
from probity.domain.gallery import Gallery
from probity.domain.ids import GalleryId, new_id
from probity.errors import AlreadyExists, GalleryNotFound, InvalidInput
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.storage.db import Database
from probity.storage.repositories import Enrolments, Galleries, Subjects

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


class GalleryService:
    def __init__(self, *, db: Database, audit: AuditService, clock: Clock, model: ModelVersion):
        self.db = db
        self.audit = audit
        self.clock = clock
        self.model = model

    def create(
        self,
        *,
        actor: str,
        name: str,
        inclusion_policy: str,
        retention_days: int,
        jurisdictions: list[str] | None = None,
        quality_floor: QualityFloor | None = None,
    ) -> Gallery:
        """Create a gallery bound to the engine's current model version."""
        if not _NAME.match(name):
            raise InvalidInput(
                f"gallery name {name!r}: use 1-100 letters, digits, spaces, '.', '_' or '-'"
            )
        if not inclusion_policy.strip():
            raise InvalidInput("the inclusion policy must say who may be in the gallery")
        if retention_days < 1:
            raise InvalidInput("retention days must be at least 1")
        codes = tuple(sorted({j.strip().upper() for j in jurisdictions or []}))
        for code in codes:
            if not _JURISDICTION.match(code):
                raise InvalidInput(f"jurisdiction {code!r} is not an ISO 3166 code such as GB")
        gallery = Gallery(
            id=GalleryId(new_id()),
            name=name,
            inclusion_policy=inclusion_policy.strip(),
            retention_days=retention_days,
            jurisdictions=codes,
            quality_floor=quality_floor or QualityFloor(),
            model=self.model,
            created_at=self.clock(),
            created_by=actor,
        )
        with self.db.transaction() as session:
            repo = Galleries(session)
            if repo.by_name(name) is not None:
                raise AlreadyExists(f"gallery '{name}' already exists")
            repo.add(gallery)
            self.audit.record(
                session,
                AuditRecord(
                    actor=actor,
                    action=AuditAction.GALLERY_CREATE,
                    galleries=(name,),
                    details={
                        "gallery_id": gallery.id,
                        "inclusion_policy": gallery.inclusion_policy,
                        "retention_days": retention_days,
                        "jurisdictions": list(codes),
                        "model": self.model.key,
                        "quality_floor": gallery.quality_floor.as_dict(),
                    },
                ),
            )
        return gallery

    def get(self, name: str) -> Gallery:
        with self.db.read() as session:
            gallery = Galleries(session).by_name(name)
        if gallery is None:
            raise GalleryNotFound(f"no gallery named '{name}'")
        return gallery

    def all(self) -> list[Gallery]:
        """Every gallery, by name (no counts: this is on the search path)."""
        with self.db.read() as session:
            return Galleries(session).all()

    def list(self) -> list[tuple[Gallery, int, int]]:
        """Every gallery with its subject and enrolment counts."""
        with self.db.read() as session:
            return [
                (g, Subjects(session).count(g.id), Enrolments(session).count(g.id))
                for g in Galleries(session).all()
            ]

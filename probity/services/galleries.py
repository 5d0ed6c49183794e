"""Galleries: named collections with an inclusion policy, retention, jurisdictions, a quality
floor and one model version."""

from __future__ import annotations

import re

from probity.domain.accounts import Action, Resource
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import ModelVersion, QualityFloor
from probity.domain.gallery import Gallery
from probity.domain.ids import GalleryId, new_id
from probity.engine.registry import EngineSet
from probity.errors import AlreadyExists, GalleryNotFound, InvalidInput
from probity.services.access import AccessGuard, Who, name_of, organisation_id_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.storage.db import Database
from probity.storage.repositories import Enrolments, Galleries, Subjects

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


class GalleryService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        model: ModelVersion,
        guard: AccessGuard,
        engines: EngineSet | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.model = model  # new galleries' model unless one is named
        self.guard = guard
        self.engines = engines  # to resolve a named model; None: only ``model``

    def create(
        self,
        *,
        actor: Who,
        name: str,
        inclusion_policy: str,
        retention_days: int,
        jurisdictions: list[str] | None = None,
        quality_floor: QualityFloor | None = None,
        model: str | None = None,
    ) -> Gallery:
        """Create a gallery bound to ``model`` (an installed model's name or full key; by
        default the default engine's, SFace), for example dlib-resnet-v1 to match galleries
        held elsewhere. A gallery created by a server account belongs to its organisation;
        one created by the local operator is shared across the deployment."""
        self.guard.check(actor, Action.GALLERY_CREATE)
        chosen = self.model
        if model is not None and model.strip():
            if self.engines is None:
                if model.strip() not in (self.model.key, self.model.name):
                    raise InvalidInput(f"unknown model '{model}' (installed: {self.model.key})")
            else:
                chosen = self.engines.resolve(model.strip()).model
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
            model=chosen,
            created_at=self.clock(),
            created_by=name_of(actor),
            organisation_id=organisation_id_of(actor),
        )
        with self.db.transaction() as session:
            repo = Galleries(session)
            if repo.by_name(name) is not None:
                raise AlreadyExists(f"gallery '{name}' already exists")
            repo.add(gallery)
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.GALLERY_CREATE,
                    galleries=(name,),
                    details={
                        "gallery_id": gallery.id,
                        "inclusion_policy": gallery.inclusion_policy,
                        "retention_days": retention_days,
                        "jurisdictions": list(codes),
                        "model": chosen.key,
                        "quality_floor": gallery.quality_floor.as_dict(),
                    },
                ),
            )
        return gallery

    def get(self, name: str, *, actor: Who | None = None, action: Action | None = None) -> Gallery:
        """The gallery called ``name``; with ``actor``, only if they may take ``action`` (by
        default, read) on it. Another organisation's gallery reads as not found."""
        with self.db.read() as session:
            gallery = Galleries(session).by_name(name)
        if gallery is None or (
            actor is not None and not self.guard.sees(actor, gallery.organisation_id)
        ):
            raise GalleryNotFound(f"no gallery named '{name}'")
        if actor is not None:
            self.guard.check(
                actor, action or Action.GALLERY_READ, Resource(gallery.organisation_id)
            )
        return gallery

    def all(self, actor: Who | None = None) -> list[Gallery]:
        """Every gallery (that ``actor`` may see), by name; no counts: this is on the search
        path."""
        with self.db.read() as session:
            found = Galleries(session).all()
        return [g for g in found if actor is None or self.guard.sees(actor, g.organisation_id)]

    def list(self, actor: Who | None = None) -> list[tuple[Gallery, int, int]]:
        """Every gallery (that ``actor`` may see) with its subject and enrolment counts."""
        if actor is not None:
            self.guard.check(actor, Action.GALLERY_READ)
        with self.db.read() as session:
            return [
                (g, Subjects(session).count(g.id), Enrolments(session).count(g.id))
                for g in Galleries(session).all()
                if actor is None or self.guard.sees(actor, g.organisation_id)
            ]

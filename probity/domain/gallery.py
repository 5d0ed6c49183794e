"""Galleries, subjects, enrolments and their provenance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from probity.domain.faces import FaceBox, ModelVersion, Quality, QualityFloor
from probity.domain.ids import EnrolmentId, GalleryId, SubjectId, TemplateId


class LawfulBasis(StrEnum):
    """Why the organisation may hold this image (GDPR Art 6/9, Law Enforcement Directive Art 8).

    The enum names the kind of basis; ``Provenance.lawful_basis_reference`` holds the statute,
    warrant or policy reference that makes it concrete.
    """

    LAW_ENFORCEMENT = "law_enforcement"  # LED Art 8 / DPA 2018 Part 3: custody, charge records
    LEGAL_OBLIGATION = "legal_obligation"  # GDPR 6(1)(c)
    PUBLIC_TASK = "public_task"  # GDPR 6(1)(e)
    CONSENT = "consent"  # GDPR 6(1)(a) + 9(2)(a): explicit consent of the person
    VITAL_INTERESTS = "vital_interests"  # GDPR 6(1)(d): e.g. missing persons
    COURT_ORDER = "court_order"  # a specific judicial order


@dataclass(frozen=True, slots=True)
class Gallery:
    id: GalleryId
    name: str
    inclusion_policy: str
    retention_days: int
    jurisdictions: tuple[str, ...]
    quality_floor: QualityFloor
    model: ModelVersion
    created_at: datetime
    created_by: str
    organisation_id: str | None = None  # the controller; None: shared across the deployment


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where an enrolled image came from and why it may be held. Every field but
    ``collected_by`` and ``lawful_basis_reference`` is required; nothing is defaulted."""

    source: str  # source system and record id, e.g. "custody-suite/2024-118812"
    lawful_basis: LawfulBasis
    collected_at: date
    jurisdiction: str  # ISO 3166-1 alpha-2 (or subdivision, e.g. "GB-SCT"), upper case
    retention_until: date
    collected_by: str | None = None
    lawful_basis_reference: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "source": self.source,
            "lawful_basis": self.lawful_basis.value,
            "lawful_basis_reference": self.lawful_basis_reference,
            "collected_at": self.collected_at.isoformat(),
            "collected_by": self.collected_by,
            "jurisdiction": self.jurisdiction,
            "retention_until": self.retention_until.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Subject:
    """A person in a gallery, known by an external reference (never a required real name)."""

    id: SubjectId
    gallery_id: GalleryId
    reference: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Enrolment:
    """One image of a subject, its provenance and the template made from its face."""

    id: EnrolmentId
    subject_id: SubjectId
    gallery_id: GalleryId
    template_id: TemplateId
    provenance: Provenance
    image_sha256: str  # of the uploaded bytes; used to make bulk enrolment resumable
    box: FaceBox
    quality: Quality
    created_at: datetime
    created_by: str

"""Galleries, enrolment (multipart upload with provenance) and subject removal."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile

from probity.domain.gallery import Gallery
from probity.interfaces.api.deps import ActorDep, PagingDep, ServicesDep
from probity.interfaces.api.schemas import (
    EnrolmentOut,
    GalleryIn,
    GalleryOut,
    Page,
    RemovalOut,
)
from probity.interfaces.api.uploads import read_upload
from probity.interfaces.render.results import enrol_json

router = APIRouter(prefix="/api/v1/galleries", tags=["galleries"])


def _gallery(g: Gallery, subjects: int | None = None, enrolments: int | None = None) -> GalleryOut:
    return GalleryOut(
        id=g.id,
        name=g.name,
        inclusion_policy=g.inclusion_policy,
        retention_days=g.retention_days,
        jurisdictions=list(g.jurisdictions),
        model=g.model.key,
        quality_floor=g.quality_floor.as_dict(),
        created_at=g.created_at,
        subjects=subjects,
        enrolments=enrolments,
    )


@router.post("", response_model=GalleryOut, status_code=201)
def create_gallery(body: GalleryIn, actor: ActorDep, services: ServicesDep) -> GalleryOut:
    return _gallery(
        services.galleries.create(
            actor=actor,
            name=body.name,
            inclusion_policy=body.inclusion_policy,
            retention_days=body.retention_days,
            jurisdictions=body.jurisdictions,
        )
    )


@router.get("", response_model=Page[GalleryOut])
def list_galleries(actor: ActorDep, services: ServicesDep, paging: PagingDep) -> Page[GalleryOut]:
    found = [_gallery(g, s, e) for g, s, e in services.galleries.list(actor)]
    return paging.page(found)


@router.get("/{name}", response_model=GalleryOut)
def get_gallery(name: str, actor: ActorDep, services: ServicesDep) -> GalleryOut:
    return _gallery(services.galleries.get(name, actor=actor))


@router.post("/{name}/enrolments", response_model=EnrolmentOut, status_code=201)
def enrol(
    name: str,
    actor: ActorDep,
    services: ServicesDep,
    image: Annotated[UploadFile, File(description="JPEG, PNG, WebP or HEIC with one face")],
    subject: Annotated[str, Form(min_length=1, max_length=200)],
    source: Annotated[str | None, Form(max_length=2000)] = None,
    lawful_basis: Annotated[str | None, Form(max_length=100)] = None,
    collected_at: Annotated[str | None, Form(max_length=40, description="YYYY-MM-DD")] = None,
    jurisdiction: Annotated[str | None, Form(max_length=20)] = None,
    lawful_basis_reference: Annotated[str | None, Form(max_length=2000)] = None,
    collected_by: Annotated[str | None, Form(max_length=200)] = None,
) -> dict[str, Any]:
    """Enrol one image of a subject. Every provenance field but ``collected_by`` and
    ``lawful_basis_reference`` is required; a missing one is named in the 422 problem."""
    data = read_upload(image, services.settings.limits.max_upload_bytes)
    outcome = services.enrolment.enrol(
        actor=actor,
        gallery=name,
        subject=subject,
        image=data,
        provenance={
            "source": source,
            "lawful_basis": lawful_basis,
            "collected_at": collected_at,
            "jurisdiction": jurisdiction,
            "lawful_basis_reference": lawful_basis_reference,
            "collected_by": collected_by,
        },
    )
    return enrol_json(outcome)


@router.delete("/{name}/subjects/{reference}", response_model=RemovalOut)
def remove_subject(
    name: str,
    reference: str,
    actor: ActorDep,
    services: ServicesDep,
    reason: Annotated[str, Query(min_length=3, max_length=2000)],
) -> RemovalOut:
    """Remove a subject: data key, rows, image blobs and index vectors."""
    r = services.subjects.remove(actor=actor, gallery=name, reference=reference, reason=reason)
    return RemovalOut(
        subject_id=r.subject_id,
        reference=r.reference,
        gallery=r.gallery,
        enrolments=r.enrolments,
        templates=r.templates,
        index_vectors_removed=r.index_vectors_removed,
    )

"""Galleries, enrolment (multipart upload with provenance), bulk enrolment jobs and subject
removal."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from probity.domain.gallery import Enrolment, Gallery
from probity.domain.jobs import EnrolmentJob, RefusedImage
from probity.errors import EnrolmentNotFound
from probity.interfaces.api.deps import ActorDep, PagingDep, ServicesDep
from probity.interfaces.api.links import created
from probity.interfaces.api.schemas import (
    EnrolmentOut,
    GalleryIn,
    GalleryOut,
    HeldEnrolmentOut,
    JobOut,
    JobRowOut,
    MigrationIn,
    MigrationOut,
    MigrationRefusalOut,
    Page,
    Provenance,
    RefusedFace,
    RemovalOut,
)
from probity.interfaces.api.uploads import bulk_form, read_upload
from probity.interfaces.render.results import enrol_json
from probity.services.migration import MigrationReport
from probity.services.subjects import Removal

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
def create_gallery(
    body: GalleryIn, response: Response, actor: ActorDep, services: ServicesDep
) -> GalleryOut:
    gallery = services.galleries.create(
        actor=actor,
        name=body.name,
        inclusion_policy=body.inclusion_policy,
        retention_days=body.retention_days,
        jurisdictions=body.jurisdictions,
        model=body.model,
    )
    created(response, "galleries", gallery.name)
    return _gallery(gallery)


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
    response: Response,
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
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description=(
                "a key of your choosing naming this request: sent again with the same "
                "request it returns the first answer; with a different request, 422"
            ),
        ),
    ] = None,
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
        idempotency_key=idempotency_key,
    )
    if outcome.enrolment is not None:
        created(
            response, "galleries", name, "subjects", subject, "enrolments", outcome.enrolment.id
        )
    return enrol_json(outcome)


def _held(e: Enrolment) -> HeldEnrolmentOut:
    return HeldEnrolmentOut(
        enrolment_id=e.id,
        box=e.box.as_list(),
        quality=e.quality.as_dict(),
        provenance=Provenance.model_validate(e.provenance.as_dict()),
        created_at=e.created_at,
        created_by=e.created_by,
    )


@router.get("/{name}/subjects/{reference}/enrolments", response_model=Page[HeldEnrolmentOut])
def list_enrolments(
    name: str, reference: str, actor: ActorDep, services: ServicesDep, paging: PagingDep
) -> Page[HeldEnrolmentOut]:
    """A subject's enrolments, oldest first: provenance, face box and quality (no image, no
    template). For curators and privacy officers of the gallery's organisation."""
    found = services.subjects.enrolments(actor=actor, gallery=name, reference=reference)
    return paging.page([_held(e) for e in found])


@router.get(
    "/{name}/subjects/{reference}/enrolments/{enrolment_id}", response_model=HeldEnrolmentOut
)
def get_enrolment(
    name: str, reference: str, enrolment_id: str, actor: ActorDep, services: ServicesDep
) -> HeldEnrolmentOut:
    """One enrolment of the subject."""
    found = services.subjects.enrolments(actor=actor, gallery=name, reference=reference)
    for e in found:
        if e.id == enrolment_id:
            return _held(e)
    raise EnrolmentNotFound(f"subject '{reference}' in '{name}' has no enrolment '{enrolment_id}'")


@router.delete("/{name}/subjects/{reference}/enrolments/{enrolment_id}", response_model=RemovalOut)
def remove_enrolment(
    name: str,
    reference: str,
    enrolment_id: str,
    actor: ActorDep,
    services: ServicesDep,
    reason: Annotated[str, Query(min_length=3, max_length=2000)],
) -> RemovalOut:
    """Erase one enrolment: its row, template, sealed image and index vector; the subject's
    other images are re-keyed. An erasure like any other, with a receipt (``receipt``).
    Removing the subject's last enrolment erases the subject."""
    r = services.subjects.remove_enrolment(
        actor=actor, gallery=name, reference=reference, enrolment_id=enrolment_id, reason=reason
    )
    return _removal(r)


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
    return _removal(r)


def _removal(r: Removal) -> RemovalOut:
    return RemovalOut(
        subject_id=r.subject_id,
        reference=r.reference,
        gallery=r.gallery,
        enrolments=r.enrolments,
        templates=r.templates,
        index_vectors_removed=r.index_vectors_removed,
        receipt=r.receipt,
    )


_JOB_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["manifest"],
                    "properties": {
                        "manifest": {
                            "type": "string",
                            "format": "binary",
                            "description": (
                                "CSV: path,subject,source,lawful_basis,collected_at,"
                                "jurisdiction[,collected_by,lawful_basis_reference]"
                            ),
                        },
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "the images the manifest names, matched by file name",
                        },
                    },
                }
            }
        },
    }
}


def _row(r: RefusedImage) -> JobRowOut:
    return JobRowOut(
        line=r.line,
        path=r.path,
        subject=r.subject,
        reason=r.reason,
        refused_faces=[
            RefusedFace(box=f.box.as_list(), reasons=list(f.reasons)) for f in r.refused_faces
        ],
    )


def _job(job: EnrolmentJob, gallery: str) -> JobOut:
    return JobOut(
        id=job.id,
        gallery=gallery,
        manifest=job.manifest,
        status=job.status.value,
        interrupted=job.interrupted,
        total=job.total,
        done=job.done,
        percent=job.percent,
        enrolled=job.enrolled,
        skipped=job.skipped,
        refused_count=job.refused_count,
        refused=[_row(r) for r in job.refused],
        faces_refused=[_row(r) for r in job.faces_refused],
        error=job.error,
        actor=job.actor,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@router.post("/{name}/jobs", response_model=JobOut, status_code=202, openapi_extra=_JOB_FORM)
async def start_job(
    name: str, request: Request, response: Response, actor: ActorDep, services: ServicesDep
) -> JobOut:
    """Bulk enrolment: a CSV manifest (``manifest``) and the images it names (``images``,
    matched by file name; at most ``PROBITY_LIMITS__MAX_BULK_FILES``, each at most
    ``PROBITY_LIMITS__MAX_UPLOAD_BYTES``). The job runs in the background; poll the
    ``Location``. Rows already enrolled are skipped, so uploading again resumes."""
    await run_in_threadpool(services.jobs.check_upload, actor=actor, gallery=name)
    limits = services.settings.limits
    async with bulk_form(
        request, max_files=limits.max_bulk_files, max_manifest_bytes=limits.max_upload_bytes
    ) as upload:
        job = await run_in_threadpool(
            services.jobs.start,
            actor=actor,
            gallery=name,
            manifest_name=upload.manifest_name,
            manifest=upload.manifest,
            images=upload.images,
        )
    response.headers["Location"] = f"/api/v1/galleries/{quote(name, safe='')}/jobs/{job.id}"
    return _job(job, name)


@router.get("/{name}/jobs/{job_id}", response_model=JobOut)
def get_job(name: str, job_id: str, actor: ActorDep, services: ServicesDep) -> JobOut:
    """A bulk enrolment job's progress and, once done, its results."""
    return _job(services.jobs.get(job_id, actor=actor, gallery=name), name)


def _migration(r: MigrationReport) -> MigrationOut:
    return MigrationOut(
        id=r.id,
        gallery=r.gallery,
        from_model=r.from_model,
        to_model=r.to_model,
        status=r.status.value,
        enrolments=r.enrolments,
        embedded=r.embedded,
        refused=[
            MigrationRefusalOut(
                enrolment_id=x.enrolment_id, subject=x.subject_reference, reasons=list(x.reasons)
            )
            for x in r.refused
        ],
        started_at=r.started_at,
        started_by=r.started_by,
        updated_at=r.updated_at,
        finished_at=r.finished_at,
        erased_receipts=list(r.erased),
        holds=r.holds,
        index_vectors=r.index_vectors,
        error=r.error,
    )


@router.post("/{name}/migration", response_model=MigrationOut, status_code=202)
def start_migration(
    name: str, body: MigrationIn, response: Response, actor: ActorDep, services: ServicesDep
) -> MigrationOut:
    """Move the gallery to another face model (curators): every enrolment is re-embedded
    from its sealed image in the background, the new index is built beside the old one and
    the gallery swaps over in one transaction; searches use the old model until then. Poll
    the ``Location``. Posting again continues a migration that stopped (a restart), or
    swaps one that waits on refused faces once ``drop_refused`` is true."""
    report = services.migrations.start(
        actor=actor, gallery=name, model=body.model, drop_refused=body.drop_refused
    )
    response.headers["Location"] = f"/api/v1/galleries/{quote(name, safe='')}/migration"
    return _migration(report)


@router.get("/{name}/migration", response_model=MigrationOut)
def get_migration(name: str, actor: ActorDep, services: ServicesDep) -> MigrationOut:
    """The gallery's latest model migration: progress, faces the new model refused (with
    reasons), and, once swapped, what the swap did."""
    return _migration(services.migrations.report(gallery=name, actor=actor))

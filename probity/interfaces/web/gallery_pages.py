"""The curator's pages: galleries, enrolling one image with its provenance, bulk upload (a
CSV manifest and its images) with a progress bar, and the list of refused images.

Everyone who may read galleries sees them; the forms appear to those whose roles allow the
action (create a gallery, enrol), and every form posts to the same service call the API
makes, which applies the policy again. A bulk upload becomes a job in
``services.jobs`` (``EnrolmentJobs``); its page polls ``/galleries/{name}/jobs/{id}`` every
second with htmx (``HX-Request`` gets the fragment only) until the job has ended, then shows
the summary: enrolled, skipped, refused rows with their reasons, and faces the quality floor
refused.

A refused image (a missing provenance field, no face, a corrupt file...) is answered on the
gallery page itself, with the reason next to the form and the form kept filled in; other
errors (403, 404) are the error page, as everywhere else.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from probity.domain.accounts import Action, Actor, Resource
from probity.domain.faces import QualityFloor
from probity.domain.gallery import Gallery, LawfulBasis
from probity.errors import (
    Conflict,
    GalleryNotFound,
    InvalidInput,
    MigrationNotFound,
    ProbityError,
)
from probity.interfaces.api.deps import ServicesDep
from probity.interfaces.api.uploads import bulk_form
from probity.interfaces.web.common import SessionCookie, check_csrf, render, signed_form, signed_in
from probity.services.container import Services
from probity.services.jobs import STALE_AFTER
from probity.services.migration import MigrationReport, MigrationStatus

router = APIRouter(include_in_schema=False)

REFUSED_ON_GALLERY_PAGE = 20
"""Refused images shown on the gallery page (newest first); the full list has its own page."""

REFUSED_LIST_LIMIT = 500
"""Refused images on the list page, newest first."""

_SPLIT = re.compile(r"[\s,;]+")


def floor_text(floor: QualityFloor) -> str:
    """The quality floor in words, for people: what a face must measure to be enrolled."""
    return (
        f"eyes ≥ {floor.min_inter_eye_px:g} px apart, sharpness ≥ {floor.min_sharpness:g}, "
        f"yaw ≤ {floor.max_abs_yaw_ratio:g}, detector confidence ≥ {floor.min_hog_confidence:g} "
        f"(HOG) / {floor.min_cnn_confidence:g} (CNN), landmarks ≥ "
        f"{floor.min_landmark_consistency:g}"
    )


def _gallery_url(name: str, tail: str = "") -> str:
    return f"/galleries/{quote(name, safe='')}{tail}"


# -- the list of galleries -------------------------------------------------------------------


def _galleries_page(
    request: Request,
    services: Services,
    actor: Actor,
    csrf: str,
    *,
    error: ProbityError | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    rows = [
        (g, subjects, enrolments, floor_text(g.quality_floor))
        for g, subjects, enrolments in services.galleries.list(actor)
    ]
    return render(
        request,
        "galleries.html",
        actor=actor,
        csrf=csrf,
        status=error.status if error else 200,
        rows=rows,
        may_create=services.access.allows(actor, Action.GALLERY_CREATE),
        models=_models_default_first(services),
        error=error,
        form=form or {},
    )


def _models_default_first(services: Services) -> list[str]:
    default = services.engines.default.model.key
    return [default] + [e.model.key for e in services.engines if e.model.key != default]


@router.get("/galleries", response_class=HTMLResponse)
def galleries_page(
    request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    actor, csrf = signed_in(request, services, probity_session)
    return _galleries_page(request, services, actor, csrf)


@router.post("/galleries")
def create_gallery(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    name: Annotated[str, Form(max_length=100)],
    inclusion_policy: Annotated[str, Form(max_length=2000)],
    retention_days: Annotated[str, Form(max_length=10)],
    jurisdictions: Annotated[str, Form(max_length=1000)] = "",
    model: Annotated[str, Form(max_length=200)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Create a gallery (curators); jurisdictions are ISO 3166 codes separated by commas or
    spaces; ``model`` an installed model (empty: the default). A refusal (a bad name, a
    name in use...) is shown above the form, kept filled."""
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    form = {
        "name": name,
        "inclusion_policy": inclusion_policy,
        "retention_days": retention_days,
        "jurisdictions": jurisdictions,
        "model": model,
    }
    try:
        days = int(retention_days.strip())
    except ValueError:
        error = InvalidInput("retention must be a whole number of days")
        return _galleries_page(request, services, actor, csrf, error=error, form=form)
    try:
        gallery = services.galleries.create(
            actor=actor,
            name=name.strip(),
            inclusion_policy=inclusion_policy,
            retention_days=days,
            jurisdictions=[j for j in _SPLIT.split(jurisdictions) if j],
            model=model.strip() or None,
        )
    except (InvalidInput, Conflict) as exc:
        return _galleries_page(request, services, actor, csrf, error=exc, form=form)
    return RedirectResponse(_gallery_url(gallery.name), status_code=303)


# -- one gallery -----------------------------------------------------------------------------


def _counts(services: Services, actor: Actor, name: str) -> tuple[Gallery, int, int]:
    for gallery, subjects, enrolments in services.galleries.list(actor):
        if gallery.name == name:
            return gallery, subjects, enrolments
    raise GalleryNotFound(f"no gallery named '{name}'")


def _gallery_page(
    request: Request,
    services: Services,
    actor: Actor,
    csrf: str,
    name: str,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    gallery, subjects, enrolments = _counts(services, actor, name)
    jobs = services.jobs
    shown: dict[str, Any] = {
        "enrol_form": {},
        "enrol_error": None,
        "upload_error": None,
        "migration_error": None,
    }
    shown.update(context)
    return render(
        request,
        "gallery.html",
        actor=actor,
        csrf=csrf,
        status=status,
        gallery=gallery,
        subjects=subjects,
        enrolments=enrolments,
        floor=floor_text(gallery.quality_floor),
        may_enrol=services.access.allows(actor, Action.ENROL, Resource(gallery.organisation_id)),
        lawful_bases=list(LawfulBasis),
        today=services.clock().date().isoformat(),
        jobs=jobs.recent(actor=actor, gallery=name),
        refused=jobs.refused_images(actor=actor, gallery=name, limit=REFUSED_ON_GALLERY_PAGE),
        max_files=services.settings.limits.max_bulk_files,
        max_mib=services.settings.limits.max_upload_bytes // (1024 * 1024),
        **_migration_context(services, actor, gallery),
        **shown,
    )


def _migration_context(services: Services, actor: Actor, gallery: Gallery) -> dict[str, Any]:
    """What the face-model section needs: whether this person may migrate the gallery, the
    latest migration (None: never), whether it has stalled, and the other models."""
    may = services.access.allows(actor, Action.GALLERY_CREATE, Resource(gallery.organisation_id))
    if not may:
        return {"may_migrate": False}
    try:
        migration: MigrationReport | None = services.migrations.report(
            gallery=gallery.name, actor=actor
        )
    except MigrationNotFound:
        migration = None
    stale = (
        migration is not None
        and migration.status is MigrationStatus.RUNNING
        and services.clock() - migration.updated_at > STALE_AFTER
    )
    return {
        "may_migrate": True,
        "migration": migration,
        "stale": stale,
        "other_models": [e.model.key for e in services.engines if e.model != gallery.model],
    }


@router.get("/galleries/{name}", response_class=HTMLResponse)
def gallery_page(
    name: str,
    request: Request,
    services: ServicesDep,
    enrolled: str = "",
    faces_refused: int = 0,
    probity_session: SessionCookie = None,
) -> Response:
    actor, csrf = signed_in(request, services, probity_session)
    return _gallery_page(
        request, services, actor, csrf, name, enrolled=enrolled, faces_refused=faces_refused
    )


@router.post("/galleries/{name}/enrolments")
def enrol_one(
    name: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    image: Annotated[UploadFile, File()],
    subject: Annotated[str, Form(max_length=200)],
    source: Annotated[str, Form(max_length=2000)] = "",
    lawful_basis: Annotated[str, Form(max_length=100)] = "",
    lawful_basis_reference: Annotated[str, Form(max_length=2000)] = "",
    collected_at: Annotated[str, Form(max_length=40)] = "",
    jurisdiction: Annotated[str, Form(max_length=20)] = "",
    collected_by: Annotated[str, Form(max_length=200)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Enrol one image with its provenance. Empty fields are sent to the service as missing
    (never defaulted), so a missing one is named in the refusal."""
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    provenance = {
        "source": source,
        "lawful_basis": lawful_basis,
        "lawful_basis_reference": lawful_basis_reference,
        "collected_at": collected_at,
        "jurisdiction": jurisdiction,
        "collected_by": collected_by,
    }
    try:
        outcome = services.jobs.enrol_one(
            actor=actor,
            gallery=name,
            subject=subject,
            image=image.file,
            filename=image.filename or "",
            provenance={k: (v.strip() or None) for k, v in provenance.items()},
        )
    except (InvalidInput, Conflict) as exc:
        return _gallery_page(
            request,
            services,
            actor,
            csrf,
            name,
            status=exc.status,
            enrol_error=exc,
            enrol_form={"subject": subject, **provenance},
        )
    query = urlencode(
        {"enrolled": outcome.subject_reference, "faces_refused": len(outcome.refused_faces)}
    )
    return RedirectResponse(_gallery_url(name, f"?{query}#enrol"), status_code=303)


@router.post("/galleries/{name}/jobs")
async def start_job(
    name: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """Start a bulk upload: the manifest and the images it names. The right to enrol is
    checked before the body is read, the CSRF token once the form is parsed; problems
    with the upload itself (columns, a named image missing, too many files, one too large)
    are shown next to the form."""
    actor, csrf = await run_in_threadpool(signed_in, request, services, probity_session)
    await run_in_threadpool(services.jobs.check_upload, actor=actor, gallery=name)
    limits = services.settings.limits
    try:
        async with bulk_form(
            request, max_files=limits.max_bulk_files, max_manifest_bytes=limits.max_upload_bytes
        ) as upload:
            check_csrf(upload.fields.get("csrf_token", ""), csrf)
            job = await run_in_threadpool(
                services.jobs.start,
                actor=actor,
                gallery=name,
                manifest_name=upload.manifest_name,
                manifest=upload.manifest,
                images=upload.images,
            )
    except InvalidInput as exc:
        return await run_in_threadpool(
            _gallery_page, request, services, actor, csrf, name, status=exc.status, upload_error=exc
        )
    return RedirectResponse(_gallery_url(name, f"/jobs/{job.id}"), status_code=303)


@router.get("/galleries/{name}/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    name: str,
    job_id: str,
    request: Request,
    services: ServicesDep,
    probity_session: SessionCookie = None,
) -> Response:
    """The job's progress and, once it has ended, its summary. htmx's poll (``HX-Request``)
    gets the fragment alone; while the job is active the fragment asks to be polled again."""
    actor, csrf = signed_in(request, services, probity_session)
    gallery = services.galleries.get(name, actor=actor)
    job = services.jobs.get(job_id, actor=actor, gallery=name)
    template = (
        "gallery_job_status.html" if request.headers.get("HX-Request") else "gallery_job.html"
    )
    response = render(request, template, actor=actor, csrf=csrf, gallery=gallery, job=job)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "HX-Request"  # the fragment and the page share one URL
    return response


@router.post("/galleries/{name}/migration")
def start_migration(
    name: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    model: Annotated[str, Form(max_length=200)],
    drop_refused: Annotated[str, Form(max_length=10)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Start (or continue) moving the gallery to ``model`` in the background; the gallery
    page then shows its progress. A refusal (already on that model, another migration under
    way) is shown in the face-model section."""
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    try:
        services.migrations.start(
            actor=actor, gallery=name, model=model, drop_refused=drop_refused == "yes"
        )
    except (InvalidInput, Conflict) as exc:
        return _gallery_page(
            request, services, actor, csrf, name, status=exc.status, migration_error=exc
        )
    return RedirectResponse(_gallery_url(name, "#migration"), status_code=303)


@router.get("/galleries/{name}/migration", response_class=HTMLResponse)
def migration_fragment(
    name: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """The face-model section alone (htmx polls it while a migration runs)."""
    actor, csrf = signed_in(request, services, probity_session)
    gallery = services.galleries.get(name, actor=actor, action=Action.GALLERY_CREATE)
    response = render(
        request,
        "gallery_migration.html",
        actor=actor,
        csrf=csrf,
        gallery=gallery,
        migration_error=None,
        **_migration_context(services, actor, gallery),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/galleries/{name}/refused", response_class=HTMLResponse)
def refused_page(
    name: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """Every image refused in the gallery (bulk rows and single uploads), newest first."""
    actor, csrf = signed_in(request, services, probity_session)
    gallery = services.galleries.get(name, actor=actor)
    refused = services.jobs.refused_images(actor=actor, gallery=name, limit=REFUSED_LIST_LIMIT)
    return render(
        request,
        "gallery_refused.html",
        actor=actor,
        csrf=csrf,
        gallery=gallery,
        refused=refused,
        limit=REFUSED_LIST_LIMIT,
    )

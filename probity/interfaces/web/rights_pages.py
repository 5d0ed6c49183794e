"""The public privacy page and the privacy officer's rights pages.

``/privacy`` needs no account: anyone files an access, objection or erasure request there
and gets a receipt number and the deadline, and anyone holding a receipt number looks up its
status (status and dates, nothing else). These routes never call ``signed_in``. Their forms
cannot carry a session's CSRF token, so each carries a short-lived signed form token instead
(``RightsService.form_token``: HMAC under a key derived from the master key, valid for two
hours): a page of another site cannot read it, so it cannot post the form on a visitor's
behalf, and an old copy cannot be replayed. The status lookup is a POST too, so receipt
numbers stay out of addresses, browser history and logs. Answers that show a receipt are
sent ``no-store``. Filing is rate-limited per address and across the deployment (see
``services.rights``) and the page says so. Mistakes (a missing contact, a photo that is not
needed) come back on the same form with the message, the other fields kept.

``/rights`` (privacy officers, ``rights.handle``): the list with deadline clocks, overdue
requests highlighted, and one page per request with its actions (extend once, erase the
subject, export, apply an objection, close, refuse). Every form there carries the session's
CSRF token and redirects back (303) on success, except the export, whose zip is the answer,
and "Find by photo", whose answer is the request page with the possible matches listed
(``RightsService.lookup_by_photo``): shown once, ``no-store``, kept nowhere, each with its
own export or erase form that asks the officer to confirm they compared the photos.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from probity.domain.accounts import Actor
from probity.domain.rights import PUBLIC_FILER, RequestKind, RequestStatus
from probity.errors import InvalidImage, InvalidInput, ProbityError, RateLimited
from probity.interfaces.api.deps import ServicesDep
from probity.interfaces.render.access_export_pdf import render_access_export_pdf
from probity.interfaces.web.common import SessionCookie, render, signed_form, signed_in
from probity.interfaces.web.listing import listing
from probity.services.container import Services
from probity.services.rights import (
    FORM_TOKEN_LIFETIME,
    LOOKUP_NOTICE,
    PUBLIC_PER_ADDRESS_PER_HOUR,
    PhotoMatch,
    image_media_type,
)

router = APIRouter(include_in_schema=False)


def confirmed(confirm: str) -> None:
    """The confirmation step every erasing form has: its required "I confirm" box. A post
    without it (a script, an old form) erases nothing."""
    if confirm != "yes":
        raise InvalidInput("tick the box to confirm: an erasure cannot be undone")


KINDS = (
    (
        RequestKind.ACCESS,
        "Access",
        "A copy of the images and records held about you, and every search in which you "
        "were returned as a candidate.",
    ),
    (
        RequestKind.OBJECTION,
        "Objection (opt out by face)",
        "Your face is kept out of the galleries and out of search results from now on, and "
        "records that match it are erased. Needs one photo of your face.",
    ),
    (
        RequestKind.ERASURE,
        "Erasure",
        "The records held about you are erased, with a receipt.",
    ),
)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _privacy(
    request: Request,
    services: Services,
    *,
    status: int = 200,
    error: str | None = None,
    lookup_error: str | None = None,
    form: dict[str, str] | None = None,
    found: Any = None,
) -> Response:
    return _no_store(
        render(
            request,
            "privacy.html",
            actor=None,
            status=status,
            kinds=KINDS,
            token=services.rights.form_token(),
            per_hour=PUBLIC_PER_ADDRESS_PER_HOUR,
            token_hours=int(FORM_TOKEN_LIFETIME.total_seconds() // 3600),
            error=error,
            lookup_error=lookup_error,
            form=form or {},
            found=found,
        )
    )


@router.get("/privacy", response_class=HTMLResponse)
def privacy_page(request: Request, services: ServicesDep) -> Response:
    """The public privacy page: how to file a request, the form, and the status lookup."""
    return _privacy(request, services)


@router.post("/privacy", response_class=HTMLResponse)
def privacy_file(
    request: Request,
    services: ServicesDep,
    form_token: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=20)] = "",
    contact: Annotated[str, Form(max_length=2000)] = "",
    reference: Annotated[str, Form(max_length=2000)] = "",
    gallery: Annotated[str, Form(max_length=2000)] = "",
    details: Annotated[str, Form(max_length=20000)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """File a request as a member of the public; the answer shows the receipt number and
    the deadline once (``no-store``)."""
    kept = {"kind": kind, "contact": contact, "reference": reference, "gallery": gallery}
    kept["details"] = details
    try:
        services.rights.check_form_token(form_token)
        image = _photo(photo, services.settings.limits.max_upload_bytes)
        filed = services.rights.file(
            actor=PUBLIC_FILER,
            kind=kind,
            contact=contact,
            identifiers={"reference": reference, "gallery": gallery},
            details=details,
            photo=image,
            client=_client(request),
        )
    except ProbityError as exc:
        page = _privacy(request, services, status=exc.status, error=exc.message, form=kept)
        if isinstance(exc, RateLimited):
            page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    return _no_store(render(request, "privacy_filed.html", actor=None, filed=filed, kinds=KINDS))


def _photo(upload: UploadFile | None, max_bytes: int) -> bytes | None:
    """The uploaded photo, or None where the field was left empty."""
    if upload is None or not upload.filename:
        return None
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidImage(f"the photo is larger than {max_bytes // (1024 * 1024)} MiB")
    return data or None


@router.post("/privacy/status", response_class=HTMLResponse)
def privacy_status(
    request: Request,
    services: ServicesDep,
    form_token: Annotated[str, Form(max_length=200)] = "",
    receipt: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The status lookup: status and dates of the request with this receipt number."""
    try:
        services.rights.check_form_token(form_token)
        found = services.rights.status(receipt=receipt, client=_client(request))
    except ProbityError as exc:
        return _privacy(request, services, status=exc.status, lookup_error=exc.message)
    return _privacy(request, services, found=found)


# -- the privacy officer's pages -------------------------------------------------------------


def _request_page(receipt: str) -> Response:
    return RedirectResponse(f"/rights/{quote(receipt, safe='')}", status_code=303)


@router.get("/rights", response_class=HTMLResponse)
def rights_list(
    request: Request,
    services: ServicesDep,
    status: str = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    q: Annotated[str, Query(max_length=200)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Requests, the earliest deadline first; ``status=open`` (default) shows open and
    extended ones, ``all`` every one; ``q`` narrows by receipt, kind, status or filer;
    ``PER_PAGE`` a page."""
    actor, csrf = signed_in(request, services, probity_session)
    chosen = status or "open"
    found = services.rights.list(actor=actor)
    if chosen == "open":
        found = [r for r in found if r.status.is_open]
    elif chosen != "all":
        found = [r for r in found if r.status.value == chosen]
    return render(
        request,
        "rights.html",
        actor=actor,
        csrf=csrf,
        requests=listing(
            found,
            page=page,
            q=q,
            text=lambda r: f"{r.receipt} {r.kind.value} {r.status.value} {r.filed_by}",
            keep={"status": chosen},
        ),
        now=services.clock(),
        chosen=chosen,
        statuses=["open", "all", *[s.value for s in RequestStatus]],
    )


@router.get("/rights/{receipt}", response_class=HTMLResponse)
def rights_request_page(
    receipt: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    actor, csrf = signed_in(request, services, probity_session)
    return _request_view(request, services, actor, csrf, receipt)


def _request_view(
    request: Request,
    services: Services,
    actor: Actor,
    csrf: str,
    receipt: str,
    lookup: list[PhotoMatch] | None = None,
    lookup_error: ProbityError | None = None,
) -> Response:
    """The request page; with ``lookup``, the photo lookup's possible matches as well."""
    found = services.rights.get(actor=actor, receipt=receipt)
    galleries = [g.name for g in services.galleries.all(actor)]
    try:
        threshold = (services.suppression.max_distance, services.suppression.target_fmr)
    except ProbityError:  # no FMR table for the engine's model: no lookup by photo
        threshold = None
    return render(
        request,
        "rights_request.html",
        actor=actor,
        status=lookup_error.status if lookup_error else 200,
        csrf=csrf,
        r=found,
        now=services.clock(),
        galleries=galleries,
        kinds={k: label for k, label, _ in KINDS},
        threshold=threshold,
        lookup=lookup,
        lookup_error=lookup_error.message if lookup_error else None,
        lookup_notice=LOOKUP_NOTICE,
    )


@router.get("/rights/{receipt}/photo")
def rights_photo(
    receipt: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """The request's photo (each view is recorded as ``rights.photo_read``)."""
    actor, _ = signed_in(request, services, probity_session)
    image = services.rights.photo(actor=actor, receipt=receipt)
    return _no_store(Response(image, media_type=image_media_type(image)))


@router.post("/rights/{receipt}/photo-lookup", response_class=HTMLResponse)
def rights_photo_lookup(
    receipt: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    probity_session: SessionCookie = None,
) -> Response:
    """Find by photo: the request page with the gallery records within the suppression
    distance of the request's photo listed (audited as ``rights.photo_lookup``; the list is
    this answer only, sent ``no-store``)."""
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    try:
        matches = services.rights.lookup_by_photo(actor=actor, receipt=receipt)
    except InvalidInput as exc:  # also NoFaceFound, QualityRefused, InvalidImage
        # The photo shows no usable face: said on the request page, next to the button.
        return _request_view(request, services, actor, csrf, receipt, lookup_error=exc)
    return _no_store(_request_view(request, services, actor, csrf, receipt, lookup=matches))


@router.post("/rights/{receipt}/extension")
def rights_extend(
    receipt: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    reason: Annotated[str, Form(max_length=2000)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    services.rights.extend(actor=actor, receipt=receipt, reason=reason)
    return _request_page(receipt)


@router.post("/rights/{receipt}/erasures")
def rights_erase(
    receipt: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    gallery: Annotated[str, Form(max_length=200)] = "",
    reference: Annotated[str, Form(max_length=200)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    confirmed(confirm)
    services.rights.erase_subject(
        actor=actor, receipt=receipt, gallery=gallery, reference=reference.strip()
    )
    return _request_page(receipt)


@router.post("/rights/{receipt}/objection")
def rights_object(
    receipt: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    confirm: Annotated[str, Form(max_length=10)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    confirmed(confirm)
    services.rights.apply_objection(actor=actor, receipt=receipt)
    return _request_page(receipt)


@router.post("/rights/{receipt}/export")
def rights_export(
    receipt: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    gallery: Annotated[str, Form(max_length=200)] = "",
    reference: Annotated[str, Form(max_length=200)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """The access export as a download (a POST: it is recorded on the request and audited)."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    export = services.rights.access_export(
        actor=actor,
        gallery=gallery,
        reference=reference.strip(),
        render_pdf=render_access_export_pdf,
        receipt=receipt,
    )
    name = quote(f"access-{receipt}-{reference.strip()}.zip", safe="")
    return _no_store(
        Response(
            export.data,
            media_type="application/zip",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
        )
    )


@router.post("/rights/{receipt}/closure")
def rights_close(
    receipt: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    decision: Annotated[str, Form(max_length=20)] = "closed",
    outcome: Annotated[str, Form(max_length=5000)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Close (``decision=closed``, with the outcome) or refuse (``refused``, with why)."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    if decision == RequestStatus.REFUSED.value:
        services.rights.refuse(actor=actor, receipt=receipt, reason=outcome)
    else:
        services.rights.close(actor=actor, receipt=receipt, outcome=outcome)
    return _request_page(receipt)

"""Rights requests for privacy officers: file one received by letter or e-mail, list and
read them, extend a deadline once, close or refuse, erase the subject an erasure request
names, apply an objection, download the access export (a zip), and find the person of an
access or erasure request that came with a photo and no reference (``photo-lookup``:
possible matches for the officer to check, shown and never stored).

Members of the public file on the web page ``/privacy`` (no account); everything here needs
``rights.handle``, which the services check.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, Field

from probity.domain.rights import RequestKind, RequestStatus, RightsRequest, parse_identifiers
from probity.errors import InvalidInput
from probity.interfaces.api.deps import ActorDep, PagingDep, ServicesDep
from probity.interfaces.api.links import created
from probity.interfaces.api.schemas import (
    ClosureIn,
    ErasureReceiptOut,
    ExtensionIn,
    Page,
    RequestErasureIn,
    RightsRequestOut,
)
from probity.interfaces.api.uploads import read_upload
from probity.interfaces.render.access_export_pdf import render_access_export_pdf
from probity.services.container import Services
from probity.services.erasure import ErasureReceipt
from probity.services.rights import LOOKUP_NOTICE

router = APIRouter(prefix="/api/v1/rights-requests", tags=["rights requests"])


def request_out(request: RightsRequest, services: Services) -> RightsRequestOut:
    now = services.clock()
    return RightsRequestOut(
        receipt=request.receipt,
        kind=request.kind.value,
        status=request.status.value,
        filed_at=request.filed_at,
        filed_by=request.filed_by,
        due_at=request.due_at,
        overdue=request.overdue(now),
        days_left=request.days_left(now),
        extension_reason=request.extension_reason,
        contact=request.contact,
        identifiers=dict(request.identifiers),
        details=request.details,
        has_photo=request.has_photo,
        closed_at=request.closed_at,
        handled_by=request.handled_by,
        outcome=request.outcome,
        result=dict(request.result),
    )


def _receipt_out(r: ErasureReceipt) -> ErasureReceiptOut:
    return ErasureReceiptOut(
        receipt=r.number,
        at=r.at,
        gallery=r.gallery,
        subject_reference=r.subject_reference,
        cause=r.cause.value,
        request_id=r.request_id,
        enrolments=r.enrolments,
        templates=r.templates,
        blobs=r.blobs,
        index_vectors_removed=r.index_vectors,
    )


@router.post("", response_model=RightsRequestOut, status_code=201)
def file_request(
    response: Response,
    actor: ActorDep,
    services: ServicesDep,
    kind: Annotated[RequestKind, Form(description="access, objection or erasure")],
    contact: Annotated[str, Form(max_length=500, description="how to answer the person")],
    identifier: Annotated[
        list[str] | None,
        Form(description="NAME=VALUE, repeatable: reference=CRN-1, gallery=custody"),
    ] = None,
    details: Annotated[str, Form(max_length=5000)] = "",
    photo: Annotated[
        UploadFile | None,
        File(description="only for an objection, or when no reference finds the person"),
    ] = None,
) -> RightsRequestOut:
    """File a request received another way (letter, e-mail, in person) on the person's
    behalf. The deadline is one calendar month from now."""
    try:
        identifiers = parse_identifiers(identifier or [])
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    image = read_upload(photo, services.settings.limits.max_upload_bytes) if photo else None
    filed = services.rights.file(
        actor=actor,
        kind=kind,
        contact=contact,
        identifiers=identifiers,
        details=details,
        photo=image,
    )
    out = request_out(filed, services)
    created(response, "rights-requests", out.receipt)
    return out


@router.get("", response_model=Page[RightsRequestOut])
def list_requests(
    actor: ActorDep,
    services: ServicesDep,
    paging: PagingDep,
    status: Annotated[RequestStatus | None, Query()] = None,
) -> Page[RightsRequestOut]:
    """Your organisation's requests and those filed on the public page, earliest deadline
    first."""
    found = services.rights.list(actor=actor, status=status)
    return paging.page([request_out(r, services) for r in found])


@router.get("/{receipt}", response_model=RightsRequestOut)
def get_request(receipt: str, actor: ActorDep, services: ServicesDep) -> RightsRequestOut:
    return request_out(services.rights.get(actor=actor, receipt=receipt), services)


@router.post("/{receipt}/extension", response_model=RightsRequestOut)
def extend_request(
    receipt: str, body: ExtensionIn, actor: ActorDep, services: ServicesDep
) -> RightsRequestOut:
    """Extend the deadline once by two further months (GDPR Art 12(3)), within the first
    month, with the reason the person is told."""
    extended = services.rights.extend(actor=actor, receipt=receipt, reason=body.reason)
    return request_out(extended, services)


@router.post("/{receipt}/closure", response_model=RightsRequestOut)
def close_request(
    receipt: str, body: ClosureIn, actor: ActorDep, services: ServicesDep
) -> RightsRequestOut:
    """Close (``closed``, with what was done) or refuse (``refused``, with why). The
    request's photo, if any, is destroyed and that is audited."""
    if body.status == "refused":
        done = services.rights.refuse(actor=actor, receipt=receipt, reason=body.outcome)
    else:
        done = services.rights.close(actor=actor, receipt=receipt, outcome=body.outcome)
    return request_out(done, services)


@router.post("/{receipt}/erasures", response_model=ErasureReceiptOut, status_code=201)
def erase_for_request(
    receipt: str,
    body: RequestErasureIn,
    response: Response,
    actor: ActorDep,
    services: ServicesDep,
) -> ErasureReceiptOut:
    """Erase the subject an erasure request names (gallery and reference): data key, rows,
    blobs, index vectors; the receipt holds no biometric data."""
    done = services.rights.erase_subject(
        actor=actor,
        receipt=receipt,
        gallery=body.gallery,
        reference=body.reference,
        reason=body.reason,
    )
    # The erasure receipt is listed on its request (the API has no receipt resource).
    created(response, "rights-requests", receipt)
    return _receipt_out(done)


@router.post("/{receipt}/objection", response_model=RightsRequestOut)
def apply_objection(receipt: str, actor: ActorDep, services: ServicesDep) -> RightsRequestOut:
    """Put an objection's photo on the suppression list and erase the records it matches."""
    services.rights.apply_objection(actor=actor, receipt=receipt)
    return request_out(services.rights.get(actor=actor, receipt=receipt), services)


class PhotoMatchOut(BaseModel):
    rank: int = Field(description="1 is the closest")
    gallery: str
    subject_reference: str = Field(description="the record's reference in that gallery")
    subject_id: str
    distance: float = Field(description="dlib Euclidean distance; at or under max_distance")


class PhotoLookupOut(BaseModel):
    """Gallery records near a request's photo, for a person to check: never an
    identification, never stored. Export or erase a chosen record with ``export.zip`` or
    ``erasures`` (gallery and subject_reference)."""

    receipt: str
    notice: str = Field(description="records for checking, not an identification")
    max_distance: float = Field(description="the suppression distance the photo was held to")
    target_fmr: float = Field(
        description="1:1 false-match rate of max_distance per record compared (LFW pairs)"
    )
    possible_matches: list[PhotoMatchOut]


@router.post("/{receipt}/photo-lookup", response_model=PhotoLookupOut)
def photo_lookup(
    receipt: str, actor: ActorDep, services: ServicesDep, response: Response
) -> PhotoLookupOut:
    """Compare the photo of an open access or erasure request (one that came with a photo
    because the person has no reference) with every gallery record you handle, by the
    objection's exact scan at the suppression distance (default 0.60: FMR 0.5 % per record
    compared). Returns possible matches, closest first, for a person to check; nothing is
    stored or erased. Audited as ``rights.photo_lookup``. 409 for an objection, a closed
    request or one without a photo; 422 (or 400 for several faces) when the photo does not
    show exactly one usable face."""
    matches = services.rights.lookup_by_photo(actor=actor, receipt=receipt)
    response.headers["Cache-Control"] = "no-store"
    return PhotoLookupOut(
        receipt=receipt.strip().upper(),
        notice=LOOKUP_NOTICE,
        max_distance=services.suppression.max_distance,
        target_fmr=services.suppression.target_fmr,
        possible_matches=[PhotoMatchOut.model_validate(m.as_dict()) for m in matches],
    )


@router.get(
    "/{receipt}/export.zip",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the access export"}},
)
def access_export(
    receipt: str,
    actor: ActorDep,
    services: ServicesDep,
    gallery: Annotated[str, Query(min_length=1, max_length=200)],
    reference: Annotated[str, Query(min_length=1, max_length=200)],
) -> Response:
    """The access export of the subject ``reference`` of ``gallery`` for this access
    request: ``subject.json`` (images' provenance and SHA-256, every search that returned
    them), the images, and ``report.pdf``. Made on demand, kept nowhere (``no-store``)."""
    export = services.rights.access_export(
        actor=actor,
        gallery=gallery,
        reference=reference,
        render_pdf=render_access_export_pdf,
        receipt=receipt,
    )
    name = quote(f"access-{receipt}-{reference}.zip", safe="")
    return Response(
        export.data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "Cache-Control": "no-store",
        },
    )

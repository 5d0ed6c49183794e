"""Rights requests for privacy officers: file one received by letter or e-mail, list and
read them, extend a deadline once, close or refuse, erase the subject an erasure request
names, apply an objection, and download the access export (a zip).

Members of the public file on the web page ``/privacy`` (no account); everything here needs
``rights.handle``, which the services check.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from probity.domain.rights import RequestKind, RequestStatus, RightsRequest, parse_identifiers
from probity.errors import InvalidInput
from probity.interfaces.api.deps import ActorDep, PagingDep, ServicesDep
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
    return request_out(filed, services)


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
    receipt: str, body: RequestErasureIn, actor: ActorDep, services: ServicesDep
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
    return _receipt_out(done)


@router.post("/{receipt}/objection", response_model=RightsRequestOut)
def apply_objection(receipt: str, actor: ActorDep, services: ServicesDep) -> RightsRequestOut:
    """Put an objection's photo on the suppression list and erase the records it matches."""
    services.rights.apply_objection(actor=actor, receipt=receipt)
    return request_out(services.rights.get(actor=actor, receipt=receipt), services)


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

"""Cases, their authorisation, and the case report (JSON and PDF)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from probity.domain.case import Case
from probity.interfaces.api.deps import ActorDep, PagingDep, ServicesDep
from probity.interfaces.api.links import created
from probity.interfaces.api.schemas import (
    AuthorisationIn,
    AuthorisationOut,
    CaseIn,
    CaseOut,
    Page,
)
from probity.interfaces.render.case_report_pdf import render_case_report_pdf
from probity.services.cases import CaseService

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


def case_out(case: Case, cases: CaseService) -> CaseOut:
    decision = cases.search_decision(case)
    a = case.authorisation
    return CaseOut(
        id=case.id,
        reference=case.reference,
        offence=case.offence,
        justification=case.justification,
        authorisation=AuthorisationOut(
            status=a.status,
            reference=a.reference,
            authority=a.authority,
            requested_at=a.requested_at,
        ),
        opened_at=case.opened_at,
        opened_by=case.opened_by,
        searchable=decision.allowed,
        searchable_reason=decision.reason,
    )


@router.post("", response_model=CaseOut, status_code=201)
def open_case(body: CaseIn, response: Response, actor: ActorDep, services: ServicesDep) -> CaseOut:
    """Open a case: offence category, justification, and an authorisation id, or
    ``pending: true`` (searches allowed for 48 h while the authorisation is sought)."""
    case = services.cases.open(
        actor=actor,
        reference=body.reference,
        offence=body.offence,
        justification=body.justification,
        authorisation=body.authorisation,
        pending=body.pending,
        authority=body.authority,
    )
    created(response, "cases", case.reference)
    return case_out(case, services.cases)


@router.get("", response_model=Page[CaseOut])
def list_cases(actor: ActorDep, services: ServicesDep, paging: PagingDep) -> Page[CaseOut]:
    found = [case_out(c, services.cases) for c in services.cases.list(actor)]
    return paging.page(found)


@router.get("/{reference}", response_model=CaseOut)
def get_case(reference: str, actor: ActorDep, services: ServicesDep) -> CaseOut:
    return case_out(services.cases.get(reference, actor=actor), services.cases)


@router.post("/{reference}/authorisation", response_model=CaseOut)
def decide_authorisation(
    reference: str, body: AuthorisationIn, actor: ActorDep, services: ServicesDep
) -> CaseOut:
    """A supervisor records the authorisation's outcome. ``rejected`` stops the case at once
    and deletes its probe images, searches, candidates and reviews."""
    case = services.cases.set_authorisation(
        actor=actor,
        reference=reference,
        status=body.status,
        authorisation=body.authorisation,
        authority=body.authority,
    )
    return case_out(case, services.cases)


@router.get("/{reference}/report")
def case_report(reference: str, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    """Every search of the case (also those with no face or no candidate), every candidate
    with provenance, probe quality, model, threshold and reviews."""
    return services.reports.case_report(actor=actor, case_reference=reference)


@router.get(
    "/{reference}/report.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the report as PDF"}},
)
def case_report_pdf(reference: str, actor: ActorDep, services: ServicesDep) -> Response:
    report = services.reports.case_report(actor=actor, case_reference=reference)
    return Response(
        render_case_report_pdf(report),
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="case-report.pdf"'},
    )

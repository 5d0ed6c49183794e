"""Reports across cases: the annual (transparency) report, as JSON and as PDF.

Both come from one service call (``TransparencyService.annual``), so the two never disagree;
each call is audited as ``report.annual``. (The case report lives with the cases.)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from probity.interfaces.api.deps import ActorDep, ServicesDep
from probity.interfaces.render.annual_report_pdf import render_annual_report_pdf
from probity.services.transparency import FIRST_YEAR, LAST_YEAR

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

YearQuery = Annotated[
    int, Query(ge=FIRST_YEAR, le=LAST_YEAR, description="calendar year (UTC), e.g. 2026")
]


@router.get("/annual")
def annual_report(year: YearQuery, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    """Counts of one calendar year taken from the audit log only (your organisation's
    events): searches by offence and organisation, outcomes, cases, authorisations, purges,
    reviews, leads, enrolments, removals, audit reads and verifications. ``through_seq``
    names the last event counted, so anyone with the log can recount every figure."""
    return services.transparency.annual(actor=actor, year=year).as_dict()


@router.get(
    "/annual.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the report as PDF"}},
)
def annual_report_pdf(year: YearQuery, actor: ActorDep, services: ServicesDep) -> Response:
    report = services.transparency.annual(actor=actor, year=year).as_dict()
    return Response(
        render_annual_report_pdf(report),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="annual-report-{year}.pdf"'},
    )

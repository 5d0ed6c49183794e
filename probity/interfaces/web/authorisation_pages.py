"""Deciding a case's pending authorisation on the web: the form on the case page
(``_authorisation.html``) posts here. Who may decide is the policy's (``case.authorise``:
supervisors of the case's organisation); the case service records the outcome, and a
rejection stops the case at once and deletes its probes, searches and reviews, as in the API
(``POST /api/v1/cases/{reference}/authorisation``)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from probity.domain.case import AuthorisationStatus
from probity.errors import InvalidInput
from probity.interfaces.api.deps import ServicesDep
from probity.interfaces.web.common import SessionCookie, signed_form

router = APIRouter(include_in_schema=False)

DECISIONS = {"grant": AuthorisationStatus.GRANTED, "reject": AuthorisationStatus.REJECTED}


@router.post("/cases/{reference}/authorisation")
def decide_authorisation(
    reference: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    decision: Annotated[str, Form(max_length=10)],
    authorisation: Annotated[str, Form(max_length=200)] = "",
    authority: Annotated[str, Form(max_length=200)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Grant (with the authorisation's id and authority) or reject; back to the case."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    status = DECISIONS.get(decision)
    if status is None:
        raise InvalidInput("decide 'grant' or 'reject'")
    services.cases.set_authorisation(
        actor=actor,
        reference=reference,
        status=status,
        authorisation=authorisation.strip() or None,
        authority=authority.strip() or None,
    )
    return RedirectResponse(f"/cases/{quote(reference, safe='')}", status_code=303)

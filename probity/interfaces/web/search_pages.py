"""The investigator's pages: the case list, a case with its search form, and a search result.

The search form asks what an examiner chooses (galleries, list length, operating point) and
carries an idempotency key made when the page is drawn: the same form sent twice (a double
click, a retry after a slow answer, the back button) gives the one search it made, not a
second audited, rate-counted one (``services/idempotency.py``). The button is disabled with
a progress line while the search runs (``static/probity.js``). A refused form is drawn again
with what was typed or chosen and the reason; only the photo must be chosen again (browsers
never let a page fill a file input).

The result page shows the first searched face's candidates at once, beside the photo on a
wide screen; the other faces are one click away (htmx swaps the panel).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from probity.domain.accounts import Action, Actor
from probity.domain.case import Case
from probity.domain.search import SearchResult
from probity.errors import IdempotencyKeyReused, InvalidInput, ProbityError
from probity.interfaces.api.deps import ServicesDep
from probity.interfaces.api.uploads import read_upload
from probity.interfaces.web.common import SessionCookie, render, signed_form, signed_in
from probity.interfaces.web.listing import listing
from probity.interfaces.web.review_pages import face_panel_context
from probity.services.container import Services
from probity.services.results import find_candidate

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}
"""Pages holding a form key are not cached: the back button draws a fresh key."""

THRESHOLD_OFF = "off"
FPIR_CHOICES = (0.001, 0.01, 0.1)
"""The target FPIRs the case page offers besides investigation mode (the API takes any)."""
PageNumber = Annotated[int, Query(ge=1, le=100_000)]
Filter = Annotated[str, Query(max_length=200)]


def _case_text(case: Case) -> str:
    a = case.authorisation
    return " ".join((case.reference, case.offence, a.status.value, a.reference or ""))


def _cases(
    request: Request,
    services: Services,
    actor: Actor,
    csrf: str,
    *,
    page: int = 1,
    q: str = "",
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    shown = listing(services.cases.list(actor), page=page, q=q, text=_case_text)
    return render(
        request,
        "cases.html",
        actor=actor,
        csrf=csrf,
        cases=[(c, services.cases.search_decision(c)) for c in shown.rows],
        listing=shown,
        offences=services.settings.offence_categories,
        form=form or {},
        error=error,
        status=status,
    )


@router.get("/cases", response_class=HTMLResponse)
def cases_page(
    request: Request,
    services: ServicesDep,
    page: PageNumber = 1,
    q: Filter = "",
    probity_session: SessionCookie = None,
) -> Response:
    actor, csrf = signed_in(request, services, probity_session)
    return _cases(request, services, actor, csrf, page=page, q=q)


@router.post("/cases")
def open_case(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    reference: Annotated[str, Form(max_length=200)],
    offence: Annotated[str, Form(max_length=100)],
    justification: Annotated[str, Form(max_length=5000)],
    authorisation: Annotated[str, Form(max_length=200)] = "",
    pending: Annotated[bool, Form()] = False,
    probity_session: SessionCookie = None,
) -> Response:
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    try:
        case = services.cases.open(
            actor=actor,
            reference=reference,
            offence=offence,
            justification=justification,
            authorisation=authorisation.strip() or None,
            pending=pending,
        )
    except ProbityError as exc:
        typed = {
            "reference": reference,
            "offence": offence,
            "justification": justification,
            "authorisation": authorisation,
            "pending": pending,
        }
        return _cases(
            request, services, actor, csrf, form=typed, error=exc.message, status=exc.status
        )
    return RedirectResponse(f"/cases/{quote(case.reference, safe='')}", status_code=303)


def _search_text(s: SearchResult) -> str:
    when = s.at.strftime("%Y-%m-%d %H:%M:%S") if s.at else ""
    return " ".join((when, s.actor or "", s.outcome.value.replace("_", " ")))


def _case(
    request: Request,
    services: Services,
    actor: Actor,
    csrf: str,
    reference: str,
    *,
    page: int = 1,
    q: str = "",
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    case, searches = services.results.for_case(reference, actor=actor)
    decision = services.cases.search_decision(case)
    leads = []
    if services.access.allows(actor, Action.LEAD_READ):
        by_id: dict[str, SearchResult] = {s.id: s for s in searches}
        for lead in services.reviews.leads(actor=actor, case_reference=case.reference):
            result = by_id.get(lead.candidate.search_id)
            candidate = find_candidate(result, lead.candidate) if result else None
            if result is not None and candidate is not None:
                leads.append((lead, result, candidate))
    can_search = services.access.allows(actor, Action.SEARCH_RUN)
    search = services.settings.search
    visible = services.galleries.all(actor) if can_search else []
    response = render(
        request,
        "case.html",
        actor=actor,
        csrf=csrf,
        case=case,
        searches=listing(searches, page=page, q=q, text=_search_text),
        decision=decision,
        leads=leads,
        can_search=can_search,
        can_report=services.access.allows(actor, Action.REPORT_CASE),
        galleries=[g.name for g in visible],
        fpirs=sorted(set(FPIR_CHOICES) | {search.default_target_fpir or FPIR_CHOICES[0]}),
        default_fpir=search.default_target_fpir,
        default_top_k=search.default_top_k,
        form=form or {},
        form_key=secrets.token_urlsafe(18),
        error=error,
        status=status,
    )
    response.headers.update(NO_STORE)
    return response


@router.get("/cases/{reference}", response_class=HTMLResponse)
def case_page(
    reference: str,
    request: Request,
    services: ServicesDep,
    page: PageNumber = 1,
    q: Filter = "",
    probity_session: SessionCookie = None,
) -> Response:
    actor, csrf = signed_in(request, services, probity_session)
    return _case(request, services, actor, csrf, reference, page=page, q=q)


@router.post("/cases/{reference}/searches")
def run_search(
    reference: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    probe: Annotated[UploadFile, File()],
    galleries: Annotated[list[str] | None, Form()] = None,
    top_k: Annotated[int | None, Form(ge=1, le=100)] = None,
    threshold: Annotated[str, Form(max_length=20)] = "",
    form_key: Annotated[str, Form(max_length=200)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Search every face of the uploaded probe within the case, then show the result. The
    form's ``form_key`` is the search's idempotency key."""
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    chosen = [g for g in galleries or [] if g]
    typed = {"galleries": chosen, "top_k": top_k, "threshold": threshold}
    try:
        off = threshold == THRESHOLD_OFF
        target = None if off or not threshold else _fpir(threshold)
        data = read_upload(probe, services.settings.limits.max_upload_bytes)
        result = services.search.search(
            actor=actor,
            case_reference=reference,
            probe=data,
            galleries=chosen,
            top_k=top_k,
            target_fpir=target,
            threshold_off=off,
            idempotency_key=form_key or None,
        )
    except IdempotencyKeyReused:
        # The form (from the back button) already made a search with another photo or
        # other options: this page's new key makes the next press a new search.
        message = "This form already ran a search. Choose the photo again and press Search."
        return _case(request, services, actor, csrf, reference, form=typed, error=message)
    except ProbityError as exc:
        return _case(
            request,
            services,
            actor,
            csrf,
            reference,
            form=typed,
            error=exc.message,
            status=exc.status,
        )
    return RedirectResponse(f"/searches/{result.id}", status_code=303)


def _fpir(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"'{text}' is not a false positive identification rate") from None


@router.get("/searches/{search_id}", response_class=HTMLResponse)
def search_page(
    search_id: str,
    request: Request,
    services: ServicesDep,
    face: Annotated[int | None, Query(ge=1, le=1000)] = None,
    probity_session: SessionCookie = None,
) -> Response:
    """The probe with every face boxed and numbered (refused faces marked with the reason),
    a face picker with each face's thumbnail, and the picked face's candidates (the first
    searched face's when none is picked) under the investigative-lead banner."""
    actor, csrf = signed_in(request, services, probity_session)
    result = services.results.get(search_id, actor=actor)
    width, height = services.results.probe_size(search_id, actor=actor)
    return render(
        request,
        "search.html",
        actor=actor,
        csrf=csrf,
        width=width,
        height=height,
        **face_panel_context(services, actor, result, face),
    )


@router.get("/searches/{search_id}/probe")
def probe_image(
    search_id: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """The probe photo (decrypted for this response only; never cached by the browser)."""
    actor, _ = signed_in(request, services, probity_session)
    data = services.results.probe_jpeg(search_id, actor=actor)
    return Response(data, media_type="image/jpeg", headers=dict(NO_STORE))

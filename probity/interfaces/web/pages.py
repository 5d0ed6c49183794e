"""The web pages for signing in, cases and searches. Shared machinery (session, CSRF,
rendering, menu) is in ``common``; reviews, galleries, audit and admin pages have their own
modules."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from probity.domain.accounts import Action
from probity.domain.search import SearchResult
from probity.errors import CsrfFailed, ProbityError
from probity.interfaces.api.deps import SESSION_COOKIE, ServicesDep, set_session_cookie
from probity.interfaces.api.security import request_secure
from probity.interfaces.api.uploads import read_upload
from probity.interfaces.web.common import (
    SessionCookie,
    home_for,
    render,
    safe_next,
    signed_form,
    signed_in,
)
from probity.interfaces.web.review_pages import face_panel_context
from probity.services.container import Services
from probity.services.results import find_candidate

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """Each person's starting page: the first of their menu entries in ``HOME_ORDER`` (an
    investigator their cases, an auditor the log, a privacy officer the rights requests)."""
    actor, _ = signed_in(request, services, probity_session)
    return RedirectResponse(home_for(services, actor), status_code=303)


LOGIN_COOKIE = "probity_login"
LOGIN_TOKEN_S = 3600
"""How long a sign-in form stays usable, seconds (then reload it)."""


def _login_form(
    request: Request, services: Services, *, next: str, error: str | None, status: int = 200
) -> Response:
    """The sign-in form with a fresh pre-session token, in the form and in a cookie.

    Login CSRF: without it, a page on another site could post its own username and
    password to /login and sign the visitor's browser in as the attacker (who then reads
    whatever the victim uploads). The cookie is SameSite=Strict, so a post from another
    site arrives without it; the form's copy must match it (double submit)."""
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", actor=None, next=next, error=error, status=status, token=token
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_TOKEN_S,
        httponly=True,
        samesite="strict",
        secure=request_secure(request, services.settings),
        path="/login",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, services: ServicesDep, next: str = "/") -> Response:
    return _login_form(request, services, next=safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    services: ServicesDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=500)] = "/",
    login_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    client = request.client.host if request.client else "unknown"
    expected = request.cookies.get(LOGIN_COOKIE, "")
    try:
        if not (expected and login_token) or not hmac.compare_digest(
            login_token.encode(), expected.encode()
        ):
            raise CsrfFailed("the sign-in form is out of date; reload the page and try again")
        done = services.sessions.login(username=username, password=password, client=client)
    except ProbityError as exc:
        return _login_form(
            request, services, next=safe_next(next), error=exc.message, status=exc.status
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, services, done, request)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    probity_session: SessionCookie = None,
) -> Response:
    signed_form(request, services, probity_session, csrf_token)
    assert probity_session is not None
    services.sessions.logout(probity_session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/cases", response_class=HTMLResponse)
def cases_page(
    request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    actor, csrf = signed_in(request, services, probity_session)
    cases = [(c, services.cases.search_decision(c)) for c in services.cases.list(actor)]
    return render(
        request,
        "cases.html",
        actor=actor,
        csrf=csrf,
        cases=cases,
        offences=services.settings.offence_categories,
    )


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
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    case = services.cases.open(
        actor=actor,
        reference=reference,
        offence=offence,
        justification=justification,
        authorisation=authorisation.strip() or None,
        pending=pending,
    )
    return RedirectResponse(f"/cases/{quote(case.reference, safe='')}", status_code=303)


@router.get("/cases/{reference}", response_class=HTMLResponse)
def case_page(
    reference: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    actor, csrf = signed_in(request, services, probity_session)
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
    return render(
        request,
        "case.html",
        actor=actor,
        csrf=csrf,
        case=case,
        searches=searches,
        decision=decision,
        leads=leads,
        can_search=services.access.allows(actor, Action.SEARCH_RUN),
        can_report=services.access.allows(actor, Action.REPORT_CASE),
    )


@router.post("/cases/{reference}/searches")
def run_search(
    reference: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    probe: Annotated[UploadFile, File()],
    probity_session: SessionCookie = None,
) -> Response:
    """Search every face of the uploaded probe within the case, then show the result."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    data = read_upload(probe, services.settings.limits.max_upload_bytes)
    result = services.search.search(actor=actor, case_reference=reference, probe=data)
    return RedirectResponse(f"/searches/{result.id}", status_code=303)


@router.get("/searches/{search_id}", response_class=HTMLResponse)
def search_page(
    search_id: str,
    request: Request,
    services: ServicesDep,
    face: Annotated[int | None, Query(ge=1, le=1000)] = None,
    probity_session: SessionCookie = None,
) -> Response:
    """The probe with every face boxed and numbered (refused faces marked with the reason),
    a face picker, and the picked face's candidates under the investigative-lead banner."""
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
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

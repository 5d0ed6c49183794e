"""The web pages: sign-in, cases. Thin like the API routes: each page calls the same services
with the signed-in ``Actor``; the policy decides, the page only shows.

Pages use the session cookie from sign-in. Every form that changes something carries the
session's CSRF token in a hidden field, compared in constant time. A page asked for without a
session redirects to /login; errors from the services become an error page with the same
message and code the API and CLI give.
"""

from __future__ import annotations

import hmac
import io
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Cookie, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from PIL import Image, ImageOps

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.domain.accounts import Actor
from probity.errors import CsrfFailed, ProbityError, Unauthenticated
from probity.interfaces.api.deps import SESSION_COOKIE, ServicesDep, set_session_cookie
from probity.interfaces.api.uploads import read_upload
from probity.services.container import Services

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.globals["notice"] = INVESTIGATIVE_LEAD_NOTICE

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """Raised by pages without a valid session: the app answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _session(request: Request, services: Services, cookie: str | None) -> tuple[Actor, str]:
    if not cookie:
        raise LoginRequired(request.url.path)
    try:
        return services.sessions.resume(cookie)
    except Unauthenticated:
        raise LoginRequired(request.url.path) from None


def _check_csrf(sent: str, expected: str) -> None:
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfFailed("the form is out of date; reload the page and try again")


def render(
    request: Request,
    template: str,
    *,
    actor: Actor | None,
    csrf: str = "",
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"actor": actor, "csrf": csrf, **context},
        status_code=status,
    )


SessionCookie = Annotated[str | None, Cookie(alias=SESSION_COOKIE)]


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/cases", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/cases") -> Response:
    return render(request, "login.html", actor=None, next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    services: ServicesDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=500)] = "/cases",
) -> Response:
    client = request.client.host if request.client else "unknown"
    try:
        done = services.sessions.login(username=username, password=password, client=client)
    except ProbityError as exc:
        return render(
            request,
            "login.html",
            actor=None,
            next=_safe_next(next),
            error=exc.message,
            status=exc.status,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, services, done)
    return response


@router.post("/logout")
def logout(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    probity_session: SessionCookie = None,
) -> Response:
    _, csrf = _session(request, services, probity_session)
    _check_csrf(csrf_token, csrf)
    assert probity_session is not None
    services.sessions.logout(probity_session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/cases", response_class=HTMLResponse)
def cases_page(
    request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    actor, csrf = _session(request, services, probity_session)
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
    actor, csrf = _session(request, services, probity_session)
    _check_csrf(csrf_token, csrf)
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
    actor, csrf = _session(request, services, probity_session)
    case, searches = services.results.for_case(reference, actor=actor)
    decision = services.cases.search_decision(case)
    return render(
        request,
        "case.html",
        actor=actor,
        csrf=csrf,
        case=case,
        searches=searches,
        decision=decision,
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
    actor, csrf = _session(request, services, probity_session)
    _check_csrf(csrf_token, csrf)
    data = read_upload(probe, services.settings.limits.max_upload_bytes)
    result = services.search.search(actor=actor, case_reference=reference, probe=data)
    return RedirectResponse(f"/searches/{result.id}", status_code=303)


@router.get("/searches/{search_id}", response_class=HTMLResponse)
def search_page(
    search_id: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """The probe with every face boxed and numbered, each face's outcome, and the
    candidates under the investigative-lead banner."""
    actor, csrf = _session(request, services, probity_session)
    result = services.results.get(search_id, actor=actor)
    probe = services.results.probe_image(search_id, actor=actor)
    with Image.open(io.BytesIO(probe)) as img:
        width, height = ImageOps.exif_transpose(img).size
    return render(
        request,
        "search.html",
        actor=actor,
        csrf=csrf,
        result=result,
        width=width,
        height=height,
    )


@router.get("/searches/{search_id}/probe")
def probe_image(
    search_id: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """The probe photo (decrypted for this response only; never cached by the browser)."""
    actor, _ = _session(request, services, probity_session)
    data = services.results.probe_image(search_id, actor=actor)
    with Image.open(io.BytesIO(data)) as img:
        upright = ImageOps.exif_transpose(img).convert("RGB")
        out = io.BytesIO()
        upright.save(out, format="JPEG", quality=90)
    return Response(out.getvalue(), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _safe_next(path: str) -> str:
    """Only same-site paths: never redirect a signed-in user to another site."""
    return path if path.startswith("/") and not path.startswith("//") else "/cases"


def error_page(request: Request, exc: ProbityError) -> HTMLResponse:
    return render(request, "error.html", actor=None, status=exc.status, error=exc)


def is_page(path: str) -> bool:
    """Whether a path is a web page (HTML errors) rather than the API (problem+json)."""
    return not path.startswith(("/api/", "/health", "/metrics", "/openapi.json", "/docs"))

"""What every page module shares: the templates, the signed-in session, CSRF, rendering and
the main menu.

Pages use the session cookie from sign-in. Every form that changes something carries the
session's CSRF token in a hidden field (``csrf_token``), compared in constant time. A page
asked for without a session redirects to /login (``LoginRequired``); errors from the services
become an error page with the same message and code the API and CLI give.

Page modules stay thin, like the API routes: they call the services with the signed-in
``Actor``; the policy decides, the page only shows.
"""

from __future__ import annotations

import contextlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Cookie, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.domain.accounts import Action, Actor, Resource
from probity.domain.search import threshold_wording
from probity.errors import CsrfFailed, ProbityError, Unauthenticated
from probity.interfaces.api.deps import SESSION_COOKIE
from probity.services.container import Services

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.globals["notice"] = INVESTIGATIVE_LEAD_NOTICE
TEMPLATES.env.filters["threshold_wording"] = threshold_wording

SessionCookie = Annotated[str | None, Cookie(alias=SESSION_COOKIE)]
"""The session cookie as a page parameter: ``probity_session: SessionCookie = None``."""


class LoginRequired(Exception):
    """Raised by pages without a valid session: the app answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True, slots=True)
class MenuItem:
    label: str
    href: str
    action: Action  # shown to people whose roles grant this action


MENU = (
    MenuItem("Cases", "/cases", Action.CASE_READ),
    MenuItem("Review queue", "/reviews/queue", Action.REVIEW_RECORD),
    MenuItem("Galleries", "/galleries", Action.GALLERY_READ),
    MenuItem("Audit", "/audit", Action.AUDIT_READ),
    MenuItem("Reports", "/reports/annual", Action.REPORT_ANNUAL),
    MenuItem("Rights", "/rights", Action.RIGHTS_HANDLE),
    MenuItem("Erasures", "/erasures", Action.RIGHTS_HANDLE),
    MenuItem("Jurisdictions", "/jurisdictions", Action.JURISDICTION_RULE),
    MenuItem("Admin", "/admin", Action.USER_READ),
    MenuItem("API keys", "/admin#keys", Action.KEY_CREATE),
)


HOME_ORDER = ("/cases", "/reviews/queue", "/rights", "/galleries", "/audit", "/admin")
"""Where ``/`` sends a signed-in person: the first of these their menu holds."""


def home_for(services: Services, actor: Actor) -> str:
    hrefs = [m.href for m in menu_for(services, actor)]
    return next((h for h in HOME_ORDER if h in hrefs), "/admin#keys")


def menu_for(services: Services, actor: Actor | None) -> list[MenuItem]:
    """The main menu entries whose action the actor's roles allow (display only: every
    page's service call applies the policy again)."""
    if actor is None:
        return []
    # Asked about the actor's own organisation: a curator may set their organisation's
    # jurisdiction rules, not deployment-wide ones (the same answer for every other entry).
    own = Resource(actor.organisation_id)
    return [m for m in MENU if services.access.allows(actor, m.action, own)]


def allowed(
    request: Request, actor: Actor | None, action: str, organisation_id: str | None = None
) -> bool:
    """For templates: whether the policy lets ``actor`` take ``action`` (its value, e.g.
    ``"case.authorise"``) on a thing of ``organisation_id``. Display only: the service the
    form posts to asks the policy again."""
    if actor is None:
        return False
    services: Services = request.app.state.services
    return services.access.allows(actor, Action(action), Resource(organisation_id))


TEMPLATES.env.globals["allowed"] = allowed


def signed_in(request: Request, services: Services, cookie: str | None) -> tuple[Actor, str]:
    """The signed-in actor and the session's CSRF token, or LoginRequired."""
    if not cookie:
        raise LoginRequired(_path_and_query(request))
    try:
        return services.sessions.resume(cookie)
    except Unauthenticated:
        raise LoginRequired(_path_and_query(request)) from None


def signed_form(
    request: Request, services: Services, cookie: str | None, csrf_token: str
) -> tuple[Actor, str]:
    """A form post from a signed-in person: ``signed_in`` and then ``check_csrf`` on the
    form's ``csrf_token``, the one way every page that changes something starts."""
    actor, csrf = signed_in(request, services, cookie)
    check_csrf(csrf_token, csrf)
    return actor, csrf


def check_csrf(sent: str, expected: str) -> None:
    """Raise CsrfFailed (403) unless the form's token is the session's."""
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
    """Render a page. Every page gets ``actor``, ``csrf`` and ``menu``; pages that show
    candidates must also show ``notice`` (the investigative-lead banner)."""
    services: Services = request.app.state.services
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"actor": actor, "csrf": csrf, "menu": menu_for(services, actor), **context},
        status_code=status,
    )


def safe_next(path: str) -> str:
    """Only same-site paths: never redirect a signed-in user to another site."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


def _path_and_query(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def error_page(request: Request, exc: ProbityError) -> HTMLResponse:
    """The error page: the service's message and code, with the menu if signed in."""
    services: Services = request.app.state.services
    actor: Actor | None = None
    csrf = ""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        # An expired session: show the error without the menu.
        with contextlib.suppress(ProbityError):
            actor, csrf = services.sessions.resume(cookie)
    return render(request, "error.html", actor=actor, csrf=csrf, status=exc.status, error=exc)


def is_page(path: str) -> bool:
    """Whether a path is a web page (HTML errors) rather than the API (problem+json)."""
    return not path.startswith(("/api/", "/health", "/metrics", "/openapi.json", "/docs"))

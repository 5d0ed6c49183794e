"""The web pages for signing in and out. Shared machinery (session, CSRF, rendering, menu)
is in ``common``; cases and searches (``search_pages``), reviews, galleries, audit and admin
pages have their own modules."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from probity.errors import CsrfFailed, ProbityError
from probity.interfaces.api.deps import SESSION_COOKIE, ServicesDep, set_session_cookie
from probity.interfaces.api.security import request_secure
from probity.interfaces.web.common import (
    SessionCookie,
    home_for,
    render,
    safe_next,
    signed_form,
    signed_in,
)
from probity.services.container import Services

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

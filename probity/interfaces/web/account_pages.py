"""Your own account, and a password reset for people who cannot sign in.

- ``/account`` (any signed-in person): change your own password. The current password is
  asked for, so a session left open on a shared desk is not enough to take the account over.
  Every session and API key of the account ends (this one too): the page sends you to sign
  in again with the new password.
- ``/password-reset`` (no session): set a new password with the one-time code an admin
  issued from the user's page (``AccountService.issue_reset``). The code is the proof; wrong,
  used and expired codes get one answer. Like the sign-in form it carries a pre-session token
  in a SameSite=Strict cookie, so a page of another site cannot post it.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from probity.errors import CsrfFailed, InvalidInput, ProbityError
from probity.interfaces.api.deps import SESSION_COOKIE, ServicesDep
from probity.interfaces.api.security import request_secure
from probity.interfaces.web.common import SessionCookie, render, signed_form, signed_in
from probity.services.accounts import MIN_PASSWORD_LENGTH
from probity.services.container import Services

router = APIRouter(include_in_schema=False)

RESET_COOKIE = "probity_reset"
RESET_FORM_S = 3600


@router.get("/account", response_class=HTMLResponse)
def account_page(
    request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    actor, csrf = signed_in(request, services, probity_session)
    return render(
        request, "account.html", actor=actor, csrf=csrf, error=None, min=MIN_PASSWORD_LENGTH
    )


@router.post("/account/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    current: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    confirm: Annotated[str, Form(max_length=1000)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    try:
        if password != confirm:
            raise InvalidInput("the new password and its confirmation differ")
        services.accounts.set_password(
            actor=actor, username=actor.username, password=password, current=current
        )
    except ProbityError as exc:
        return render(
            request,
            "account.html",
            actor=actor,
            csrf=csrf,
            error=exc.message,
            min=MIN_PASSWORD_LENGTH,
            status=exc.status,
        )
    response = RedirectResponse("/login?changed=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _reset_form(
    request: Request,
    services: Services,
    *,
    error: str | None,
    username: str = "",
    status: int = 200,
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "password_reset.html",
        actor=None,
        error=error,
        username=username,
        token=token,
        min=MIN_PASSWORD_LENGTH,
        status=status,
    )
    response.set_cookie(
        RESET_COOKIE,
        token,
        max_age=RESET_FORM_S,
        httponly=True,
        samesite="strict",
        secure=request_secure(request, services.settings),
        path="/password-reset",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/password-reset", response_class=HTMLResponse)
def reset_page(request: Request, services: ServicesDep) -> Response:
    return _reset_form(request, services, error=None)


@router.post("/password-reset", response_class=HTMLResponse)
def reset_submit(
    request: Request,
    services: ServicesDep,
    username: Annotated[str, Form(max_length=100)] = "",
    code: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    confirm: Annotated[str, Form(max_length=1000)] = "",
    form_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    expected = request.cookies.get(RESET_COOKIE, "")
    try:
        if not (expected and form_token) or not hmac.compare_digest(
            form_token.encode(), expected.encode()
        ):
            raise CsrfFailed("the form is out of date; reload the page and try again")
        if password != confirm:
            raise InvalidInput("the new password and its confirmation differ")
        services.accounts.redeem_reset(
            username=username.strip(), code=code.strip(), password=password
        )
    except ProbityError as exc:
        return _reset_form(
            request, services, error=exc.message, username=username, status=exc.status
        )
    response = RedirectResponse("/login?changed=1", status_code=303)
    response.delete_cookie(RESET_COOKIE, path="/password-reset")
    return response

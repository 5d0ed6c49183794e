"""The admin pages: organisations, accounts (create, approve, roles, training expiry,
deactivation) and your own API keys.

``/admin`` is open to every signed-in person, because everyone manages their own API keys
there; the organisation and account sections appear only to those whose roles allow them
(admins and supervisors, the same action, ``user.read``, that puts Admin in the menu). What a
person sees is display only: every form posts to a service call, which applies the policy
again, and a refusal becomes the error page (403, 404, 409) like everywhere else.

Every form carries the session's CSRF token and, on success, redirects (303) back to a page
that shows the result, so reloading never repeats an action. The one exception is creating
an API key: its secret exists only in the service's answer and may not be stored anywhere,
server or cookie, so that answer is rendered directly, once, marked ``no-store``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from probity.domain.accounts import Action, Actor, OrganisationKind, Role
from probity.errors import NotFound
from probity.interfaces.api.deps import ServicesDep
from probity.interfaces.web.common import SessionCookie, render, signed_form, signed_in
from probity.services.accounts import NewApiKey, PasswordReset, UserInfo
from probity.services.container import Services

router = APIRouter(include_in_schema=False)

SHOWN = (
    Action.ORG_READ,
    Action.ORG_CREATE,
    Action.USER_READ,
    Action.USER_CREATE,
    Action.USER_APPROVE,
    Action.USER_UPDATE,
)
"""The actions whose sections and buttons a page shows only to people who may take them."""


def _may(services: Services, actor: Actor) -> dict[str, bool]:
    """Which admin sections to show, keyed by action value (``may["user.create"]``)."""
    return {a.value: services.access.allows(actor, a) for a in SHOWN}


def _end_of_day(day: date | None) -> datetime | None:
    """A training attestation is valid through the whole of its last day (UTC), as in the
    API and the CLI."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC) if day else None


def _back(section: str) -> Response:
    return RedirectResponse(f"/admin#{section}", status_code=303)


def _user_page(username: str) -> Response:
    return RedirectResponse(f"/admin/users/{quote(username, safe='')}", status_code=303)


def _admin_page(
    request: Request,
    services: Services,
    actor: Actor,
    csrf: str,
    *,
    new_key: NewApiKey | None = None,
    new_key_label: str = "",
) -> HTMLResponse:
    may = _may(services, actor)
    accounts = services.accounts
    return render(
        request,
        "admin.html",
        actor=actor,
        csrf=csrf,
        may=may,
        now=services.clock(),
        organisations=accounts.list_organisations(actor=actor) if may["org.read"] else [],
        users=accounts.list_users(actor=actor) if may["user.read"] else [],
        keys=accounts.list_keys(actor=actor, username=actor.username),
        roles=list(Role),
        kinds=list(OrganisationKind),
        new_key=new_key,
        new_key_label=new_key_label,
    )


@router.get("/admin", response_class=HTMLResponse)
def admin_page(
    request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    actor, csrf = signed_in(request, services, probity_session)
    return _admin_page(request, services, actor, csrf)


@router.post("/admin/organisations")
def create_organisation(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    name: Annotated[str, Form(max_length=200)],
    kind: Annotated[OrganisationKind, Form()],
    probity_session: SessionCookie = None,
) -> Response:
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    services.accounts.create_organisation(actor=actor, name=name, kind=kind)
    return _back("organisations")


@router.post("/admin/users")
def create_user(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    username: Annotated[str, Form(max_length=64)],
    organisation: Annotated[str, Form(max_length=200)],
    roles: Annotated[list[Role] | None, Form()] = None,
    training_expires: Annotated[date | None, Form()] = None,
    password: Annotated[str, Form(max_length=1000)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """A new account; no role ticked reaches the service, which says a role is needed. An
    empty password leaves the account without one (issue a reset code later)."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    services.accounts.create_user(
        actor=actor,
        organisation=organisation,
        username=username.strip(),
        roles=roles or [],
        training_expires=_end_of_day(training_expires),
        password=password or None,
    )
    return _back("users")


def _find_user(services: Services, actor: Actor, username: str) -> UserInfo:
    """One account from the list the actor may see (the service applies the policy)."""
    for user in services.accounts.list_users(actor=actor):
        if user.username == username:
            return user
    raise NotFound(f"no user named '{username}'")


def _user_view(
    request: Request,
    services: Services,
    actor: Actor,
    csrf: str,
    username: str,
    reset: PasswordReset | None = None,
) -> HTMLResponse:
    user = _find_user(services, actor, username)
    return render(
        request,
        "admin_user.html",
        actor=actor,
        csrf=csrf,
        may=_may(services, actor),
        now=services.clock(),
        user=user,
        roles=list(Role),
        yourself=user.username == actor.username,
        reset=reset,
    )


@router.get("/admin/users/{username}", response_class=HTMLResponse)
def user_page(
    username: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """One account: its facts, and for admins the form that changes roles, training expiry
    and whether it is active, and the button that issues a password reset code."""
    actor, csrf = signed_in(request, services, probity_session)
    return _user_view(request, services, actor, csrf, username)


@router.post("/admin/users/{username}/password-reset", response_class=HTMLResponse)
def issue_reset(
    username: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    probity_session: SessionCookie = None,
) -> Response:
    """A one-time reset code, shown in this response only (``no-store``, like a new API
    key: it may be kept nowhere for a second request to find)."""
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    reset = services.accounts.issue_reset(actor=actor, username=username)
    page = _user_view(request, services, actor, csrf, username, reset)
    page.headers["Cache-Control"] = "no-store"
    return page


@router.post("/admin/users/{username}")
def update_user(
    username: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    roles: Annotated[list[Role] | None, Form()] = None,
    training_expires: Annotated[date | None, Form()] = None,
    probity_session: SessionCookie = None,
) -> Response:
    """Roles (the ticked set is the complete new set) and the training expiry date."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    current = _find_user(services, actor, username)
    # The form shows dates, the account holds a moment: an unchanged date is no change, so
    # saving the form with only the roles changed does not rewrite the expiry's time of day.
    unchanged = current.training_expires is not None and (
        current.training_expires.date() == training_expires
    )
    services.accounts.update_user(
        actor=actor,
        username=username,
        roles=roles or [],
        training_expires=None if unchanged else _end_of_day(training_expires),
    )
    return _user_page(username)


@router.post("/admin/users/{username}/active")
def set_active(
    username: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    active: Annotated[bool, Form()],
    probity_session: SessionCookie = None,
) -> Response:
    """Deactivate (``active=false``) or reactivate (``active=true``) an account."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    services.accounts.update_user(actor=actor, username=username, active=active)
    return _user_page(username)


@router.post("/admin/users/{username}/approval")
def approve_user(
    username: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    probity_session: SessionCookie = None,
) -> Response:
    """A supervisor approves an account of their own organisation, as themselves."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    services.accounts.approve_user(actor=actor, username=username)
    return _back("users")


@router.post("/admin/keys", response_class=HTMLResponse)
def create_key(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    label: Annotated[str, Form(min_length=1, max_length=200)],
    probity_session: SessionCookie = None,
) -> Response:
    """A new API key for yourself, shown in this response only (see the module docstring:
    no redirect, because the secret may be kept nowhere for a second request to find)."""
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    key = services.accounts.create_api_key(
        actor=actor, username=actor.username, label=label.strip()
    )
    page = _admin_page(request, services, actor, csrf, new_key=key, new_key_label=label.strip())
    page.headers["Cache-Control"] = "no-store"
    return page


@router.post("/admin/keys/{key_id}/revoke")
def revoke_key(
    key_id: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    probity_session: SessionCookie = None,
) -> Response:
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    services.accounts.revoke_key(actor=actor, key_id=key_id)
    return _back("keys")

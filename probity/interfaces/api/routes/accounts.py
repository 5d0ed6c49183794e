"""Sign-in, the signed-in person, organisations, users and API keys."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Cookie, Request, Response, status

from probity.domain.accounts import Organisation
from probity.interfaces.api.deps import (
    CSRF_HEADER,
    SESSION_COOKIE,
    ActorDep,
    PagingDep,
    ServicesDep,
    set_session_cookie,
)
from probity.interfaces.api.links import created
from probity.interfaces.api.schemas import (
    ApiKeyIn,
    ApiKeyInfoOut,
    ApiKeyOut,
    LoginIn,
    LoginOut,
    Me,
    OrganisationIn,
    OrganisationOut,
    Page,
    PasswordChangeIn,
    PasswordResetIn,
    PasswordResetOut,
    UserIn,
    UserOut,
    UserUpdate,
)
from probity.services.accounts import ApiKeyInfo, UserInfo

router = APIRouter(prefix="/api/v1", tags=["accounts"])


@router.post("/auth/login", response_model=LoginOut)
def login(body: LoginIn, request: Request, response: Response, services: ServicesDep) -> LoginOut:
    """Open a web session: sets the HttpOnly session cookie and returns the CSRF token that
    every unsafe request made with the cookie must send as ``X-CSRF-Token``."""
    client = request.client.host if request.client else "unknown"
    done = services.sessions.login(username=body.username, password=body.password, client=client)
    set_session_cookie(response, services, done, request)
    response.headers[CSRF_HEADER] = done.csrf_token
    return LoginOut(
        username=done.actor.username,
        organisation=done.actor.organisation_name,
        roles=sorted(r.value for r in done.actor.roles),
        csrf_token=done.csrf_token,
        expires_in_s=done.expires_in_s,
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    actor: ActorDep,
    services: ServicesDep,
    response: Response,
    probity_session: Annotated[str | None, Cookie()] = None,
) -> None:
    """Close the current web session (API keys have no session to close)."""
    if probity_session:
        services.sessions.logout(probity_session)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.post("/auth/password-reset", status_code=status.HTTP_204_NO_CONTENT)
def redeem_password_reset(body: PasswordResetIn, services: ServicesDep) -> Response:
    """Set a new password with the one-time code an admin issued (no sign-in needed: the
    code is the proof). Every session and API key of the account ends."""
    services.accounts.redeem_reset(username=body.username, code=body.code, password=body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(body: PasswordChangeIn, actor: ActorDep, services: ServicesDep) -> Response:
    """Change your own password (give the current one). Every session and API key of your
    account ends, this one included: sign in again and make new keys."""
    services.accounts.set_password(
        actor=actor, username=actor.username, password=body.password, current=body.current
    )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=Me)
def me(actor: ActorDep) -> Me:
    return Me(
        username=actor.username,
        organisation=actor.organisation_name,
        organisation_kind=actor.organisation_kind,
        roles=sorted(r.value for r in actor.roles),
        training_expires=actor.training_expires,
    )


def _org(o: Organisation) -> OrganisationOut:
    return OrganisationOut(id=o.id, name=o.name, kind=o.kind)


@router.post("/organisations", response_model=OrganisationOut, status_code=201)
def create_organisation(
    body: OrganisationIn, response: Response, actor: ActorDep, services: ServicesDep
) -> OrganisationOut:
    org = services.accounts.create_organisation(actor=actor, name=body.name, kind=body.kind)
    created(response, "organisations", org.id)
    return _org(org)


@router.get("/organisations", response_model=Page[OrganisationOut])
def list_organisations(
    actor: ActorDep, services: ServicesDep, paging: PagingDep
) -> Page[OrganisationOut]:
    found = [_org(o) for o in services.accounts.list_organisations(actor=actor)]
    return paging.page(found)


def _user(u: UserInfo) -> UserOut:
    return UserOut(
        username=u.username,
        organisation=u.organisation,
        roles=list(u.roles),
        approved=u.approved,
        training_expires=u.training_expires,
        active=u.active,
    )


def _end_of_day(day: date | None) -> datetime | None:
    """A training attestation is valid through the whole of its last day (UTC)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC) if day else None


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(
    body: UserIn, response: Response, actor: ActorDep, services: ServicesDep
) -> UserOut:
    """A new account; it can do nothing until a supervisor of its organisation approves it."""
    user = services.accounts.create_user(
        actor=actor,
        organisation=body.organisation,
        username=body.username,
        roles=list(body.roles),
        training_expires=_end_of_day(body.training_expires),
        password=body.password,
    )
    created(response, "users", user.username)
    return _user(user)


@router.post("/users/{username}/password-reset", response_model=PasswordResetOut, status_code=201)
def issue_password_reset(
    username: str, actor: ActorDep, services: ServicesDep, response: Response
) -> PasswordResetOut:
    """An admin of the account's organisation issues a one-time reset code (24 hours, one
    use; a new code replaces the last). The code is in this response only."""
    reset = services.accounts.issue_reset(actor=actor, username=username)
    response.headers["Cache-Control"] = "no-store"
    return PasswordResetOut(username=reset.username, code=reset.code, expires_at=reset.expires_at)


@router.get("/users", response_model=Page[UserOut])
def list_users(actor: ActorDep, services: ServicesDep, paging: PagingDep) -> Page[UserOut]:
    found = [_user(u) for u in services.accounts.list_users(actor=actor)]
    return paging.page(found)


@router.patch("/users/{username}", response_model=UserOut)
def update_user(username: str, body: UserUpdate, actor: ActorDep, services: ServicesDep) -> UserOut:
    """An admin changes an account's roles, training expiry or active state (never their own;
    never the last active supervisor's role or state). Fields left out stay as they are."""
    return _user(
        services.accounts.update_user(
            actor=actor,
            username=username,
            roles=list(body.roles) if body.roles is not None else None,
            training_expires=_end_of_day(body.training_expires),
            active=body.active,
        )
    )


@router.post("/users/{username}/approval", response_model=UserOut)
def approve_user(username: str, actor: ActorDep, services: ServicesDep) -> UserOut:
    """A supervisor approves an account of their own organisation (never their own)."""
    return _user(services.accounts.approve_user(actor=actor, username=username))


@router.post("/keys", response_model=ApiKeyOut, status_code=201)
def create_key(
    body: ApiKeyIn, response: Response, actor: ActorDep, services: ServicesDep
) -> ApiKeyOut:
    """A new API key for yourself. The key is in this response only; it is stored hashed."""
    key = services.accounts.create_api_key(actor=actor, username=actor.username, label=body.label)
    created(response, "keys", key.key_id)
    return ApiKeyOut(key_id=key.key_id, key=key.secret)


def _key(k: ApiKeyInfo) -> ApiKeyInfoOut:
    return ApiKeyInfoOut(
        key_id=k.key_id, label=k.label, created_at=k.created_at, revoked_at=k.revoked_at
    )


@router.get("/keys", response_model=Page[ApiKeyInfoOut])
def list_keys(actor: ActorDep, services: ServicesDep, paging: PagingDep) -> Page[ApiKeyInfoOut]:
    """Your API keys: ids, labels and dates, never the secrets."""
    return paging.page(
        [_key(k) for k in services.accounts.list_keys(actor=actor, username=actor.username)]
    )


@router.delete("/keys/{key_id}", response_model=ApiKeyInfoOut)
def revoke_key(key_id: str, actor: ActorDep, services: ServicesDep) -> ApiKeyInfoOut:
    """Revoke one of your API keys (at once on this process; within 60 s on others)."""
    return _key(services.accounts.revoke_key(actor=actor, key_id=key_id))

"""Dependencies shared by the routes: the services, the signed-in actor and pagination.

Credentials, in the order they are tried:

1. ``Authorization: Bearer pb_<id>_<secret>`` or ``X-API-Key: pb_<id>_<secret>``: an API key
   (for integrations; no CSRF token needed, since browsers never send it on their own);
2. the ``probity_session`` cookie from ``POST /api/v1/auth/login``: then every unsafe request
   (POST, PUT, PATCH, DELETE) must carry the session's token in ``X-CSRF-Token``.

No credential, or a bad one, is 401 problem+json; the access policy itself (roles,
organisation, training) is applied by the services and answers 403.
"""

from __future__ import annotations

import hmac
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request, Response
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from probity.domain.accounts import Actor
from probity.errors import CsrfFailed, Unauthenticated
from probity.interfaces.api.schemas import Page
from probity.interfaces.api.security import cookies_secure
from probity.services.container import Services
from probity.services.sessions import Login

T = TypeVar("T")

SESSION_COOKIE = "probity_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(auto_error=False, description="API key: pb_<id>_<secret>")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def current_actor(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    x_api_key: Annotated[str | None, Depends(api_key_header)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> Actor:
    key = authorization.credentials if authorization is not None else x_api_key
    if key:
        actor = services.accounts.authenticate_key(key)
    elif cookie:
        actor, csrf = services.sessions.resume(cookie)
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), csrf.encode()):
                raise CsrfFailed(f"this request needs the session's {CSRF_HEADER} header")
    else:
        raise Unauthenticated("sign in: send an API key (Authorization: Bearer) or a session")
    request.state.actor = actor.username
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]


class Paging:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000, description="items to skip")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset

    def window(self, items: list[T]) -> list[T]:
        return items[self.offset : self.offset + self.limit]

    def page(self, items: list[T]) -> Page[T]:
        """This page of ``items`` (all of them already filtered for the actor)."""
        return Page(data=self.window(items), count=len(items), limit=self.limit, offset=self.offset)


PagingDep = Annotated[Paging, Depends()]


def set_session_cookie(
    response: Response, services: Services, login: Login, request: Request | None = None
) -> None:
    """The session cookie, the same for the API's login and the sign-in page: HttpOnly,
    SameSite=Strict, for the session's lifetime; Secure as ``security.cookies_secure``
    decides (the setting, else whether ``request`` came over HTTPS)."""
    scheme = request.url.scheme if request is not None else "http"
    response.set_cookie(
        SESSION_COOKIE,
        login.token,
        max_age=login.expires_in_s,
        httponly=True,
        samesite="strict",
        secure=cookies_secure(services.settings, scheme),
        path="/",
    )

"""Security headers on every response, and whether cookies are Secure.

The headers come from the ``secure`` library (its header builders validate each value and
know every header's syntax); this module only chooses the values and adds them in one ASGI
middleware, so a page, an API answer, an error, a redirect and a static file all carry them:

- ``Content-Security-Policy``: scripts, styles, images and connections from this origin only;
  no inline script or style (every script is a file under /static), no plugins, no
  ``<base>``, forms post only here, and ``frame-ancestors 'none'`` so no site can frame a
  page (clickjacking). Images may also be ``data:`` and ``blob:`` (previews of a chosen file).
- ``X-Frame-Options: DENY`` for browsers that predate frame-ancestors.
- ``X-Content-Type-Options: nosniff``: an uploaded file is never run as a script or style.
- ``Referrer-Policy: no-referrer``: addresses hold case references and receipt numbers;
  no other site learns them from a link.
- ``Cross-Origin-Opener-Policy: same-origin`` and a ``Permissions-Policy`` that turns off the
  camera, microphone and location (nothing here uses them).
- ``Strict-Transport-Security`` (one year, subdomains) only when cookies are Secure, i.e.
  when the deployment is served over HTTPS: sent over plain HTTP it would be ignored, and on
  a loopback test server it would pin the browser to HTTPS.

Why ``secure``: it is maintained, typed, has no dependencies and builds each header from
named directives (``csp.frame_ancestors("'none'")``) rather than strings we would have to get
right by hand; its own middleware sets one fixed set of headers, but HSTS here depends on the
request, so this module applies its header values itself.
"""

from __future__ import annotations

import ipaddress

from secure import (
    ContentSecurityPolicy,
    CrossOriginOpenerPolicy,
    PermissionsPolicy,
    ReferrerPolicy,
    Secure,
    StrictTransportSecurity,
    XContentTypeOptions,
    XFrameOptions,
)
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from probity.config import Settings

HSTS_MAX_AGE_S = 31_536_000  # one year, the value browsers' preload lists ask for

SELF = "'self'"
NONE = "'none'"


def _policy() -> ContentSecurityPolicy:
    return (
        ContentSecurityPolicy()
        .default_src(SELF)
        .script_src(SELF)
        .style_src(SELF)
        .img_src(SELF, "data:", "blob:")
        .connect_src(SELF)
        .font_src(SELF)
        .object_src(NONE)
        .base_uri(NONE)
        .form_action(SELF)
        .frame_ancestors(NONE)
    )


def _headers(*, hsts: bool) -> list[tuple[bytes, bytes]]:
    chosen = Secure(
        csp=_policy(),
        xfo=XFrameOptions().deny(),
        xcto=XContentTypeOptions().nosniff(),
        referrer=ReferrerPolicy().no_referrer(),
        coop=CrossOriginOpenerPolicy().same_origin(),
        permissions=PermissionsPolicy().camera().microphone().geolocation(),
        hsts=StrictTransportSecurity().max_age(HSTS_MAX_AGE_S).include_subdomains()
        if hsts
        else None,
    )
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in chosen.headers.items()]


PLAIN = _headers(hsts=False)
WITH_HSTS = _headers(hsts=True)


def loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is this machine only."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def secure_cookies_for_host(setting: bool | None, host: str) -> bool:
    """``server.secure_cookies`` as ``probity serve --host`` resolves it: unset means on
    unless the server listens on loopback only (then only this machine can reach it, over
    plain HTTP; anywhere else it belongs behind TLS)."""
    return (not loopback(host)) if setting is None else setting


def cookies_secure(settings: Settings, scheme: str) -> bool:
    """Whether this request's cookies are Secure (and its answer carries HSTS): the setting
    when it is set (``probity serve`` sets it from the address it listens on), else whether
    the request came over HTTPS."""
    setting = settings.server.secure_cookies
    return scheme in {"https", "wss"} if setting is None else setting


def request_secure(request: Request, settings: Settings) -> bool:
    return cookies_secure(settings, request.url.scheme)


class SecurityHeaders:
    """Adds the headers above to every HTTP response (replacing any a route set)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chosen = WITH_HSTS if cookies_secure(self.settings, scope.get("scheme", "http")) else PLAIN
        names = {name for name, _ in chosen}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = [*kept, *chosen]
            await send(message)

        await self.app(scope, receive, send_with_headers)

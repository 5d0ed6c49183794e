"""The FastAPI application: ``create_app(settings)``.

Routes are thin: they parse the request, call one service with the signed-in ``Actor`` and
shape the answer. Access rules, case rules and the two-person rule live in the services and
the policy, never here. Everything the app needs comes from ``build_services`` (the one
composition root), built when the app is created and closed when it shuts down.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from probity import INVESTIGATIVE_LEAD_NOTICE, __version__
from probity.config import Settings
from probity.engine.types import FaceEngine
from probity.interfaces.api import problems
from probity.interfaces.api.observability import Metrics, monotonic_ms
from probity.interfaces.api.routes import (
    accounts,
    audit,
    cases,
    galleries,
    objections,
    ops,
    privacy_rules,
    reports,
    rights,
    searches,
)
from probity.interfaces.api.security import SecurityHeaders
from probity.interfaces.web import install as web
from probity.services.clock import Clock, system_clock
from probity.services.container import Services, build_services
from probity.services.retention import SweepSchedule

log = logging.getLogger("probity.api")

MULTIPART_OVERHEAD = 1024 * 1024
"""Bytes allowed on top of ``max_upload_bytes`` for multipart headers and form fields."""


BULK_UPLOAD_PATH = re.compile(r"^/(api/v1/)?galleries/[^/]+/jobs$")
"""Bulk uploads (a manifest and its images), page and API: these may send up to
``max_bulk_upload_bytes``; the job service holds each image to ``max_upload_bytes``."""


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (``bulk_max_bytes`` for a POST to a bulk
    upload path) with 413 problem+json: up front from Content-Length, or while streaming a
    chunked body, before the body is parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int, bulk_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.bulk_max_bytes = bulk_max_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bulk = scope["method"] == "POST" and BULK_UPLOAD_PATH.match(scope["path"]) is not None
        limit = self.bulk_max_bytes if bulk else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problems.problem(
            413,
            "request_too_large",
            f"the request body is larger than {limit} bytes",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class RequestLog:
    """One JSON log line and the HTTP metrics per request; echoes or assigns X-Request-ID."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or secrets.token_hex(
            8
        )
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(elapsed)
            state: Any = scope.get("state") or {}
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": monotonic_ms(started),
                    "actor": state.get("actor") if isinstance(state, dict) else None,
                    "client": (scope.get("client") or ("?",))[0],
                },
            )


def _warm(warm: Callable[[], object]) -> None:
    try:
        warm()
    except Exception:  # a search reports the problem in full; the server must start anyway
        log.exception("could not open the indexes at start")


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    engine: FaceEngine | None = None,
    clock: Clock = system_clock,
) -> FastAPI:
    """The API app for an initialised home (``probity init``). ``services`` (tests) or
    ``engine``/``clock`` may be given; the app closes services it built itself."""
    settings = settings or (services.settings if services else Settings())
    owned = services is None
    built = services or build_services(settings, engine=engine, clock=clock)

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        # Bulk jobs whose process died (a crash, a kill) are marked interrupted and their
        # sealed staging folders removed before anything else runs (services.jobs).
        try:
            await run_in_threadpool(built.jobs.recover)
        except Exception:  # a failed clean-up must not keep the server from starting
            log.exception("could not recover interrupted enrolment jobs")
        # The retention sweeper runs in this process on its schedule (every API process runs
        # one; erasure is idempotent, so they never erase a record twice). Stopped before
        # the services close.
        sweeper = SweepSchedule(built.retention, built.settings.retention.sweep_interval_s)
        application.state.sweeper = sweeper
        sweeper.start()
        # Open (and catch up) every gallery's index now, in the background, so the first
        # search does not pay for it: at 1M faces an IVF index opens in about 0.3 s, a flat
        # one took 3-4 s. The server accepts requests meanwhile; a search that arrives first
        # waits for its index like any other reader. Only for services this app built (a
        # served home), not for a test's services, which it would race.
        warm = getattr(built.indexes, "warm", None)
        if owned and callable(warm):
            threading.Thread(target=_warm, args=(warm,), name="index-warm", daemon=True).start()
        try:
            yield
        finally:
            sweeper.stop()
            if owned:
                built.close()

    app = FastAPI(
        title="Probity",
        version=__version__,
        description=(
            "Accountable face search. Every search runs inside a case with an authorisation; "
            f"every result is an investigative lead. {INVESTIGATIVE_LEAD_NOTICE}."
        ),
        lifespan=lifespan,
        # No /docs or /redoc: FastAPI's pages load their scripts and fonts from a CDN (blank
        # offline, and code from elsewhere on a page that holds a session). The OpenAPI
        # document stays at /openapi.json for client generators.
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=problems.operation_id,
    )
    app.state.services = built
    app.state.metrics = Metrics()
    built.search.observers.append(app.state.metrics.observe_search)  # web and API alike
    problems.install(app)
    app.include_router(ops.router)
    web.install(app)
    for module in (
        accounts,
        galleries,
        cases,
        searches,
        audit,
        reports,
        objections,
        rights,
        privacy_rules,
    ):
        app.include_router(module.router)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.limits.max_upload_bytes + MULTIPART_OVERHEAD,
        bulk_max_bytes=settings.limits.max_bulk_upload_bytes + MULTIPART_OVERHEAD,
    )
    app.add_middleware(RequestLog, metrics=app.state.metrics)
    app.add_middleware(SecurityHeaders, settings=built.settings)  # outermost: every answer
    problems.document_errors(app)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several worker processes): settings from the
    ``PROBITY_`` environment, logs as JSON lines."""
    from probity.interfaces.api.observability import configure_json_logging

    configure_json_logging()
    return create_app(Settings())

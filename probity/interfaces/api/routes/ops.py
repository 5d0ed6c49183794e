"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import os
import secrets
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from probity.errors import Unauthenticated
from probity.interfaces.api.deps import ServicesDep
from probity.interfaces.api.observability import Metrics
from probity.interfaces.api.problems import ERROR_RESPONSES
from probity.interfaces.api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """Liveness: the process answers. No credentials needed."""
    return Health(status="ok")


@router.get("/health/ready", response_model=Health, responses={503: {"model": Health}})
def ready(services: ServicesDep) -> Response:
    """Readiness: the database answers and is at the current schema (else the pending
    migrations are named), and the index and blob folders are writable. No credentials
    needed; nothing private is shown."""
    checks: dict[str, str] = {}
    try:
        with services.db.read() as session:
            session.execute(text("SELECT 1"))
        pending = services.db.pending_migrations()
        checks["database"] = (
            "ok"
            if not pending
            else "schema out of date, migrations pending: "
            + "; ".join(f"{revision} ({what})" for revision, what in pending)
            + ". Run 'probity migrate'"
        )
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"unreachable: {type(exc).__name__}"
    for name, path in (
        ("index", services.settings.index_dir),
        ("blobs", services.settings.blob_dir),
    ):
        path.mkdir(parents=True, exist_ok=True)
        checks[name] = "ok" if os.access(path, os.W_OK) else "not writable"
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return Response(
        body.model_dump_json(), status_code=200 if ok else 503, media_type="application/json"
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **{k: v for k, v in ERROR_RESPONSES.items() if k in (401, 500)},
    },
)
def metrics(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Prometheus metrics (search latency histogram, searches by outcome, HTTP requests),
    added up over every server process. The scraper sends the deployment's metrics token
    (``PROBITY_SERVER__METRICS_TOKEN``) as ``Authorization: Bearer <token>``; personal API
    keys are not accepted here, so no person's key sits in the scraper's configuration.
    Without a configured token every scrape is refused (401)."""
    token = services.settings.server.metrics_token
    if token is None:
        raise Unauthenticated(
            "metrics are off: set PROBITY_SERVER__METRICS_TOKEN and scrape with it as the "
            "bearer token"
        )
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        presented.strip().encode(), token.get_secret_value().encode()
    ):
        raise Unauthenticated("the metrics token is missing or wrong")
    registry = request.app.state.metrics
    assert isinstance(registry, Metrics)
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)

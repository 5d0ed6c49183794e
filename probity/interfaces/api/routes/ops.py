"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from probity.interfaces.api.deps import ActorDep, ServicesDep
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
    """Readiness: the database answers and is at the current schema, and the index and blob
    folders are writable. No credentials needed; nothing private is shown."""
    checks: dict[str, str] = {}
    try:
        with services.db.read() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok" if services.db.is_current() else "schema out of date"
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
        **{k: v for k, v in ERROR_RESPONSES.items() if k in (401, 403, 500)},
    },
)
def metrics(request: Request, actor: ActorDep) -> Response:
    """Prometheus metrics (search latency histogram, searches by outcome, HTTP requests).
    Needs credentials like every other endpoint: give the scraper an API key."""
    registry = request.app.state.metrics
    assert isinstance(registry, Metrics)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)

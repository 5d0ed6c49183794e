"""Prometheus metrics and structured JSON logs for the server.

Metrics live in a registry owned by the app (never the process-global one), so tests and
several apps in one process do not share counters. Names follow Prometheus conventions:
seconds for durations, ``_total`` for counters.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

SEARCH_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0)
"""Search latency buckets in seconds: one face takes about 0.5 s on a 2-core CPU, a profile
needing the CNN detector about 8 s."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.search_seconds = Histogram(
            "probity_search_seconds",
            "Wall time of a search request, probe upload to response, in seconds",
            buckets=SEARCH_BUCKETS,
            registry=self.registry,
        )
        self.searches = Counter(
            "probity_searches_total",
            "Searches by outcome (candidates, no_candidate_above_threshold, no_face_found, "
            "or the error code of a refused search)",
            ["outcome"],
            registry=self.registry,
        )
        self.requests = Counter(
            "probity_http_requests_total",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "probity_http_request_seconds",
            "HTTP request wall time in seconds, by route template",
            ["route"],
            registry=self.registry,
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message and any
    ``extra`` fields a caller attached (request id, route, status, duration, actor)."""

    FIELDS = ("request_id", "method", "route", "path", "status", "duration_ms", "actor", "client")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Send Probity's and uvicorn's logs to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("probity", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # our request log replaces it


def monotonic_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)

"""Prometheus metrics and structured JSON logs for the server.

Metrics live in a registry owned by the app (never the process-global one), so tests and
several apps in one process do not share counters. Names follow Prometheus conventions:
seconds for durations, ``_total`` for counters.

Under ``probity serve`` (and the demo) the counters run in prometheus_client's
**multiprocess mode**: every worker process writes its counts to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (``<home>/metrics`` unless the operator set it), and a scrape
of any worker adds up every worker's files, so four searches read as four whichever
process answers. The folder is emptied when the server starts, so counts restart at zero
with the server, as Prometheus expects of a restarted target. Only counters and histograms
are used: they need no per-process clean-up when a worker exits.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

from probity.config import Settings

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

SEARCH_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0)
"""Search latency buckets in seconds: one face takes about 0.5 s on a 2-core CPU, a profile
needing the CNN detector about 8 s."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.search_seconds = Histogram(
            "probity_search_seconds",
            "Wall time of a search (web page or API), decoding the probe to the stored "
            "result, in seconds; refused searches are not timed",
            buckets=SEARCH_BUCKETS,
            registry=self.registry,
        )
        self.searches = Counter(
            "probity_searches_total",
            "Searches from the web pages and the API alike, by outcome (candidates, "
            "no_candidate_above_threshold, no_face_found, or the error code of a refused "
            "search)",
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

    def observe_search(self, outcome: str, seconds: float | None) -> None:
        """One search ended: ``outcome`` is its outcome or the refusal's error code;
        ``seconds`` its wall time (None for a refused search)."""
        self.searches.labels(outcome).inc()
        if seconds is not None:
            self.search_seconds.observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format: every worker's counts in multiprocess mode, this
        app's own registry otherwise."""
        if os.environ.get(MULTIPROCESS_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def prepare_metrics_dir(settings: Settings) -> Path:
    """Switch this process (and the workers it starts, through the environment) to
    multiprocess metrics in ``$PROMETHEUS_MULTIPROC_DIR`` or ``<home>/metrics``, emptied.
    Call before the app is created; the server's start-up does."""
    folder = Path(os.environ.get(MULTIPROCESS_ENV) or settings.home / "metrics")
    folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    # Only prometheus_client's own files (counter_<pid>.db, histogram_<pid>.db, ...): the
    # folder may be one the operator chose, holding other things.
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_ENV] = str(folder)
    # prometheus_client picks its value store when first imported; choose again now that
    # the folder is set, in case something imported it earlier in this process.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return folder


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

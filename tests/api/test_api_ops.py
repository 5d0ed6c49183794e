"""Health, readiness, Prometheus metrics, JSON logs, and ``probity serve`` as a process."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from probity.config import ServerSettings
from probity.interfaces.api.observability import JsonFormatter
from tests.api.conftest import World, enrol_gallery, open_case, search


def test_health_and_readiness_need_no_credentials(sqlite_world: World) -> None:
    assert sqlite_world.client.get("/health").json() == {"status": "ok", "checks": {}}
    ready = sqlite_world.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "index": "ok", "blobs": "ok"}


METRICS_TOKEN = "scraper-token-0123456789abcdef"


def _scrape(w: World) -> str:
    w.services.settings.server.metrics_token = SecretStr(METRICS_TOKEN)
    r = w.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200, r.text
    return r.text


def test_metrics_count_searches_by_outcome_with_a_latency_histogram(sqlite_world: World) -> None:
    w = sqlite_world
    probes = enrol_gallery(w)
    open_case(w)
    search(w, probes["a"])
    search(w, probes["none"])
    search(w, probes["a"], reference="NOPE")
    text = _scrape(w)
    assert 'probity_searches_total{outcome="candidates"} 1.0' in text
    assert 'probity_searches_total{outcome="no_face_found"} 1.0' in text
    assert 'probity_searches_total{outcome="case_not_found"} 1.0' in text
    assert "probity_search_seconds_count 2.0" in text
    assert 'probity_search_seconds_bucket{le="0.5"}' in text
    assert (
        'probity_http_requests_total{method="POST",route="/api/v1/cases/{reference}/searches",'
        'status="201"} 2.0'
    ) in text


def test_searches_are_counted_in_the_service_the_web_pages_call_too(sqlite_world: World) -> None:
    """The pages and the API both call SearchService.search, and that is where searches are
    counted: a search made through the service directly, as a page handler makes it, shows
    up beside an API search."""
    w = sqlite_world
    probes = enrol_gallery(w)
    open_case(w)
    search(w, probes["a"])
    investigator = w.services.accounts.authenticate_key(w.keys["inv"])
    w.services.search.search(actor=investigator, case_reference="OP-1", probe=probes["a"])
    text = _scrape(w)
    assert 'probity_searches_total{outcome="candidates"} 2.0' in text
    assert "probity_search_seconds_count 2.0" in text


def test_metrics_need_the_metrics_token_not_a_personal_key(sqlite_world: World) -> None:
    w = sqlite_world
    off = w.call("GET", "/metrics", "aud")
    assert off.status_code == 401 and "PROBITY_SERVER__METRICS_TOKEN" in off.json()["detail"]
    w.services.settings.server.metrics_token = SecretStr(METRICS_TOKEN)
    assert w.call("GET", "/metrics", "aud").status_code == 401  # a person's API key
    assert w.client.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer " + METRICS_TOKEN[:-1] + "X"}
    assert w.client.get("/metrics", headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert "probity_http_requests_total" in w.client.get("/metrics", headers=right).text


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 24 characters"):
        ServerSettings(metrics_token=SecretStr("short"))


def test_readiness_names_the_pending_migrations(sqlite_world: World) -> None:
    w = sqlite_world
    with w.services.db.transaction() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    ready = w.client.get("/health/ready")
    assert ready.status_code == 503
    database = ready.json()["checks"]["database"]
    assert database.startswith("schema out of date, migrations pending: 0006 (rights requests")
    assert "probity migrate" in database


def test_request_log_lines_are_json_with_request_ids(
    sqlite_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="probity.api"):
        r = sqlite_world.call("GET", "/api/v1/cases", "inv", headers={"X-Request-ID": "req-42"})
    assert r.headers["x-request-id"] == "req-42"
    record = next(rec for rec in caplog.records if getattr(rec, "request_id", None) == "req-42")
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "/api/v1/cases" and line["status"] == 200
    assert line["actor"] == "inv" and line["level"] == "info"
    assert isinstance(line["duration_ms"], float)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_probity_serve_answers_over_loopback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    probity = [sys.executable, "-m", "probity.interfaces.cli.main"]
    env = {**os.environ, "PROBITY_HOME": str(home)}
    subprocess.run([*probity, "init"], env=env, check=True, capture_output=True)
    port = _free_port()
    server = subprocess.Popen(
        [*probity, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "server did not start"
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            time.sleep(0.2)
        assert httpx.get(f"{url}/api/v1/cases").status_code == 401
        schema = httpx.get(f"{url}/openapi.json").json()
        assert "/api/v1/cases/{reference}/searches" in schema["paths"]
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [x for x in lines if x.get("message") == "request"]
    assert any(x["route"] == "/api/v1/cases" and x["status"] == 401 for x in requests), err


def test_metrics_add_up_across_worker_processes(tmp_path: Path) -> None:
    """``probity serve --workers 2``: whichever process answers the scrape, it reports every
    process's requests (multiprocess mode), and counts left from an earlier run are gone."""
    home = tmp_path / "home"
    probity = [sys.executable, "-m", "probity.interfaces.cli.main"]
    env = {**os.environ, "PROBITY_HOME": str(home), "PROBITY_SERVER__METRICS_TOKEN": METRICS_TOKEN}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    subprocess.run([*probity, "init"], env=env, check=True, capture_output=True)
    stale = home / "metrics" / "counter_999999.db"
    stale.parent.mkdir()
    stale.write_bytes(b"left by an earlier run")
    port = _free_port()
    server = subprocess.Popen(
        [*probity, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "server did not start"
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            time.sleep(0.2)
        assert not stale.exists()
        for _ in range(40):  # a new connection each: the kernel spreads them over both
            assert httpx.get(f"{url}/health").status_code == 200
        token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        for _ in range(6):
            text = httpx.get(f"{url}/metrics", headers=token).text
            assert (
                'probity_http_requests_total{method="GET",route="/health",status="200"} 40.0'
                in text
            ), text
    finally:
        server.terminate()
        server.communicate(timeout=30)

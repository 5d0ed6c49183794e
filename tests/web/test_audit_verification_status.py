"""The /audit page and the /audit/verification GET show the stored outcome of the last
verification and never verify on a visit (asserted with the stored result and the log's
``audit.verify`` events, not with timing); the buttons (POST) run one, incremental or full.
The log's count stops past the page (``COUNT_AHEAD``): "at least N", no "Last" link. Through
FastAPI's TestClient, no browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from probity.domain.audit import AuditAction, AuditRecord
from probity.interfaces.web import audit_pages
from probity.storage.repositories import AuditLog
from tests.api.conftest import PASSWORD, World, build_world
from tests.web.conftest import login_form


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from build_world(tmp_path / "home", None)


def _auditor(w: World) -> tuple[TestClient, str]:
    client = TestClient(w.client.app, follow_redirects=False)
    r = client.post("/login", data={"username": "aud", "password": PASSWORD, **login_form(client)})
    assert r.status_code == 303, r.text
    page = client.get("/audit")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client, csrf


def _verifications(w: World) -> list[dict[str, object]]:
    with w.services.db.read() as s:
        return [dict(e.details) for e in AuditLog(s).events(action="audit.verify")]


def test_a_visit_shows_the_stored_result_and_verifies_nothing(world: World) -> None:
    w = world
    client, csrf = _auditor(w)
    assert "Not verified yet" in client.get("/audit").text
    r = client.post("/audit/verification", data={"csrf_token": csrf, "full": "0"})
    assert r.status_code == 200 and "Verified" in r.text and "the whole chain" in r.text
    assert [v["mode"] for v in _verifications(w)] == ["full"]  # nothing passed before
    # Someone alters an already verified event; visits show the stored outcome, verify nothing.
    with w.services.db.transaction() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    for path in ("/audit", "/audit/verification"):
        page = client.get(path).text
        assert "Verified</strong> (last verification)" in page, path
        assert "Broken" not in page
    assert len(_verifications(w)) == 1
    # "Verify new events": incremental, the edit is before the verified point.
    r = client.post("/audit/verification", data={"csrf_token": csrf, "full": "0"})
    assert "Verified" in r.text and "incremental" in r.text
    # "Verify the whole chain" finds it; the next visit shows that, still without verifying.
    r = client.post("/audit/verification", data={"csrf_token": csrf, "full": "1"})
    assert "Broken at event #3" in r.text
    assert [(v["mode"], v["ok"]) for v in _verifications(w)] == [
        ("full", True),
        ("incremental", True),
        ("full", False),
    ]
    page = client.get("/audit").text
    assert "Broken at event #3</strong> (last verification)" in page
    assert len(_verifications(w)) == 3


def test_the_page_counts_only_past_its_last_row(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    client, _ = _auditor(w)
    monkeypatch.setattr(audit_pages, "COUNT_AHEAD", 5)
    with w.services.db.transaction() as s:
        for _ in range(30):
            w.services.audit.record(
                s, AuditRecord(actor="aud", organisation="Met", action=AuditAction.AUDIT_READ)
            )
    page = client.get("/audit?limit=10").text
    assert "At least 15 events match" in page
    assert "Last (newest)" not in page and "Next" in page

"""The retention sweep over the API (``POST /api/v1/retention/sweep``) and the server's own
schedule: a thread started with the app that sweeps on its interval and stops with it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.api.conftest import NOW, PROVENANCE, World, build_world
from tests.fakes import make_image, unit

INTERVAL = "PROBITY_RETENTION__SWEEP_INTERVAL_S"


@pytest.fixture
def quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A world whose schedule is off, so that only the test sweeps."""
    monkeypatch.setenv(INTERVAL, "0")
    yield from build_world(tmp_path / "home", None)


def short_record(w: World, gallery: str, user: str, ref: str, seed: int) -> None:
    body = {"name": gallery, "inclusion_policy": "people charged", "retention_days": 1}
    assert w.call("POST", "/api/v1/galleries", user, json=body).status_code == 201
    image = w.engine.register(make_image(seed), unit(seed))
    r = w.call(
        "POST",
        f"/api/v1/galleries/{gallery}/enrolments",
        user,
        data={"subject": ref, **PROVENANCE, "collected_at": NOW.date().isoformat()},
        files={"image": ("photo.png", image, "image/png")},
    )
    assert r.status_code == 201, r.text


def subjects(w: World) -> set[str]:
    with w.services.db.read() as s:
        return {r[0] for r in s.execute(text("SELECT reference FROM subjects"))}


def test_sweep_over_the_api_erases_what_is_due_in_your_organisations_galleries(
    quiet: World,
) -> None:
    w = quiet
    assert w.services.settings.retention.sweep_interval_s == 0
    short_record(w, "met-short", "cur", "MET-1", 1)
    short_record(w, "other-short", "inv2", "OTHER-1", 2)
    r = w.call("POST", "/api/v1/retention/sweep", "cur")
    assert r.status_code == 200 and r.json()["receipts"] == []

    w.clock.advance(timedelta(days=2))
    assert w.call("POST", "/api/v1/retention/sweep", "adm").status_code == 403
    assert w.call("POST", "/api/v1/retention/sweep", "inv").status_code == 403
    r = w.call("POST", "/api/v1/retention/sweep", "dpo")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["subject_reference"] for x in body["receipts"]] == ["MET-1"]
    assert body["receipts"][0]["cause"] == "retention"
    assert body["enrolments_erased"] == 1 and body["subjects_erased"] == 1
    assert body["as_of"] == (NOW + timedelta(days=2)).date().isoformat()
    assert subjects(w) == {"OTHER-1"}  # another organisation's gallery is theirs to sweep
    r = w.call("POST", "/api/v1/retention/sweep", "inv2")
    assert [x["subject_reference"] for x in r.json()["receipts"]] == ["OTHER-1"]
    assert subjects(w) == set()
    assert w.services.audit.verify(actor="root").ok


def test_the_server_sweeps_on_its_schedule_and_stops_at_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INTERVAL, "0.05")
    world = build_world(tmp_path / "home", None)
    w = next(world)
    sweeper = w.client.app.state.sweeper  # type: ignore[attr-defined]
    assert sweeper.running and sweeper.interval_s == 0.05
    short_record(w, "met-short", "cur", "MET-1", 3)
    w.clock.advance(timedelta(days=2))
    # Wait on the sweeper's own notification (no polling of wall time): the sweep that
    # erased the record has completed, its audit event written, when this returns.
    swept = sweeper.wait_for_sweep(lambda result: bool(result.receipts), timeout_s=120)
    assert swept is not None, "no scheduled sweep erased the record within 120 s"
    assert subjects(w) == set()
    events = w.services.audit.events(actor="root", action="retention.sweep").events
    assert events and events[-1].actor == "retention-sweeper"
    assert events[-1].details["scheduled"] is True
    assert w.services.audit.verify(actor="root").ok
    with pytest.raises(StopIteration):
        next(world)  # the app shuts down
    assert not sweeper.running

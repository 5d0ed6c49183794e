"""Model migration over the API: ``POST /api/v1/galleries/{name}/migration`` answers 202 and
runs the job in the background; ``GET`` on its Location polls. Two fake models (the old one
and ``fake-2``, tests/services/test_migration.py); the real models run in
tests/cli/test_model_migration.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from probity.config import Settings
from probity.domain.accounts import OrganisationKind
from probity.engine.registry import EngineSet
from probity.interfaces.api.app import create_app
from probity.services.clock import ManualClock
from probity.services.container import build_services, initialise
from tests.api.conftest import NOW, OPERATOR, PEOPLE, PROVENANCE, World, seed_people
from tests.fakes import BAD_QUALITY, FAKE_MODEL, make_image, unit
from tests.services.test_migration import NEW_MODEL, NewEngine, OldEngine


def build_two_model_world(home: Path) -> Iterator[tuple[World, NewEngine]]:
    """The seeded server with two fake models installed: the old one (``world.engine``, the
    model of galleries created with it named) and ``fake-2``, the default."""
    clock = ManualClock(NOW)
    old, new = OldEngine(), NewEngine()
    settings = Settings(home=home)
    initialise(settings, actor=OPERATOR, clock=clock)
    engines = EngineSet({FAKE_MODEL.key: old, NEW_MODEL.key: new}, default=NEW_MODEL.key)
    services = build_services(settings, engines=engines, clock=clock)
    keys = seed_people(services, "Met", OrganisationKind.LAW_ENFORCEMENT, PEOPLE, clock)
    with TestClient(create_app(services=services)) as client:
        yield World(services, client, clock, old, keys, settings), new
    services.close()


@pytest.fixture
def two_models(tmp_path: Path) -> Iterator[tuple[World, NewEngine]]:
    yield from build_two_model_world(tmp_path / "home")


def enrol_on_both(w: World, new: NewEngine, ref: str, seed: int, **kw: object) -> None:
    image = w.engine.register(make_image(seed), unit(seed))
    new.register(image, unit(seed + 100), **kw)  # type: ignore[arg-type]
    r = w.call(
        "POST",
        "/api/v1/galleries/custody/enrolments",
        "cur",
        data={"subject": ref, **PROVENANCE},
        files={"image": ("photo.png", image, "image/png")},
    )
    assert r.status_code == 201, r.text


def test_a_migration_over_the_api(two_models: tuple[World, NewEngine]) -> None:
    w, new = two_models
    body = {"name": "custody", "inclusion_policy": "people charged", "retention_days": 365}
    r = w.call("POST", "/api/v1/galleries", "cur", json={**body, "model": "arcface"})
    assert r.status_code == 400 and "unknown model 'arcface'" in r.json()["detail"]
    r = w.call("POST", "/api/v1/galleries", "cur", json={**body, "model": FAKE_MODEL.key})
    assert r.status_code == 201 and r.json()["model"] == FAKE_MODEL.key  # not the default
    enrol_on_both(w, new, "A-1", 10)
    enrol_on_both(w, new, "B-1", 11, quality=BAD_QUALITY)
    url = "/api/v1/galleries/custody/migration"
    assert w.call("GET", url, "cur").status_code == 404
    assert w.call("POST", url, "inv", json={"model": NEW_MODEL.key}).status_code == 403
    r = w.call("POST", url, "cur", json={"model": FAKE_MODEL.key})
    assert r.status_code == 400 and "already uses" in r.json()["detail"]
    r = w.call("POST", url, "cur", json={"model": NEW_MODEL.key})
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == url and r.json()["to_model"] == NEW_MODEL.key
    w.services.migrations.wait("custody")
    got = w.call("GET", url, "cur").json()
    assert got["status"] == "awaiting_decision" and got["embedded"] == 1
    assert [x["subject"] for x in got["refused"]] == ["B-1"]
    assert got["refused"][0]["reasons"]
    assert w.call("GET", "/api/v1/galleries/custody", "cur").json()["model"] == FAKE_MODEL.key
    r = w.call("POST", url, "cur", json={"model": NEW_MODEL.key, "drop_refused": True})
    assert r.status_code == 202, r.text
    w.services.migrations.wait("custody")
    got = w.call("GET", url, "cur").json()
    assert got["status"] == "swapped" and got["error"] is None
    assert len(got["erased_receipts"]) == 1 and got["index_vectors"] == 1
    assert [x["subject"] for x in got["refused"]] == ["B-1"]  # still listed after the swap
    assert w.call("GET", "/api/v1/galleries/custody", "cur").json()["model"] == NEW_MODEL.key

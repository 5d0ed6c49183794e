"""A real Probity on SQLite in tmp_path, with the fake engine and a manual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from probity.config import Settings
from probity.services.clock import ManualClock
from probity.services.container import Services, build_services, initialise
from tests.fakes import FakeEngine

ACTOR = "alice"
PROVENANCE = {
    "source": "custody-suite/118812",
    "lawful_basis": "law_enforcement",
    "collected_at": "2026-10-01",
    "jurisdiction": "GB",
    "collected_by": "PC 1234",
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def make_services(
    tmp_path: Path, clock: ManualClock, fake_engine: FakeEngine
) -> Iterator[Callable[..., Services]]:
    built: list[Services] = []

    def make(database_url: str | None = None, index_backend: str = "ivf") -> Services:
        settings = Settings(
            home=tmp_path / "home", database_url=database_url, index_backend=index_backend
        )
        initialise(settings, actor=ACTOR, clock=clock)
        services = build_services(settings, engine=fake_engine, clock=clock)
        built.append(services)
        return services

    yield make
    for s in built:
        s.close()


@pytest.fixture
def svc(make_services: Callable[..., Services]) -> Services:
    return make_services()


@pytest.fixture
def gallery(svc: Services) -> str:
    svc.galleries.create(
        actor=ACTOR,
        name="custody",
        inclusion_policy="custody images of charged persons",
        retention_days=365,
        jurisdictions=["GB"],
    )
    return "custody"

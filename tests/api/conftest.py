"""API fixtures: a real app (FastAPI + the real services) on SQLite and on PostgreSQL.

The face engine here is the fake one (images registered with descriptors), so the API tests
run in seconds; ``test_api_real_models.py`` runs the real dlib models on NASA photos.

``world`` seeds one law-enforcement organisation with a person in every role, each with an
API key, plus a second organisation ("Elsewhere") to test that organisations are walled off.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from probity.config import Settings
from probity.domain.accounts import OrganisationKind, Role
from probity.interfaces.api.app import create_app
from probity.services.clock import Clock, ManualClock
from probity.services.container import Services, build_services, initialise
from tests.fakes import FakeEngine, make_image, near, unit

OPERATOR = "root-operator"
NOW = datetime.now(UTC).replace(microsecond=0)  # tests must not age: relative to today
PROVENANCE = {
    "source": "custody-suite/118812",
    "lawful_basis": "law_enforcement",
    "collected_at": (NOW - timedelta(days=30)).date().isoformat(),
    "jurisdiction": "GB",
    "collected_by": "PC 1234",
}
PEOPLE = {
    "opr": [Role.OPERATOR],  # the deployment's operator: organisations, accounts anywhere
    "adm": [Role.ADMIN],
    "sup": [Role.SUPERVISOR],
    "cur": [Role.CURATOR],
    "inv": [Role.INVESTIGATOR],
    "ex1": [Role.EXAMINER],
    "ex2": [Role.EXAMINER],
    "aud": [Role.AUDITOR],
    "dpo": [Role.PRIVACY_OFFICER],
}
PASSWORD = "correct horse battery staple"


@dataclass
class World:
    services: Services
    client: TestClient
    clock: ManualClock
    engine: FakeEngine
    keys: dict[str, str]
    settings: Settings
    seen: list[Any] = field(default_factory=list)  # every JSON body received (wording checks)

    def as_(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[user]}"}

    def call(self, method: str, url: str, user: str | None = None, **kw: Any) -> httpx.Response:
        headers = {**(self.as_(user) if user else {}), **kw.pop("headers", {})}
        response = self.client.request(method, url, headers=headers, **kw)
        if response.headers.get("content-type", "").startswith(
            ("application/json", "application/problem")
        ):
            self.seen.append(response.json())
        return response


def seed_people(
    services: Services,
    org: str,
    kind: OrganisationKind,
    people: dict[str, list[Role]],
    clock: Clock,
) -> dict[str, str]:
    """Create an organisation and its approved people with API keys (and passwords)."""
    accounts = services.accounts
    accounts.create_organisation(actor=OPERATOR, name=org, kind=kind)
    keys: dict[str, str] = {}
    expires = clock() + timedelta(days=365)
    for name, roles in people.items():
        accounts.create_user(
            actor=OPERATOR, organisation=org, username=name, roles=roles, training_expires=expires
        )
    supervisor = next(n for n, r in people.items() if Role.SUPERVISOR in r)
    accounts.approve_user(actor=OPERATOR, username=supervisor)
    for name in people:
        if name != supervisor:
            accounts.approve_user(actor=OPERATOR, username=name, supervisor=supervisor)
        # The password first: setting one ends the account's sessions and keys.
        accounts.set_password(actor=OPERATOR, username=name, password=PASSWORD)
        keys[name] = accounts.create_api_key(actor=OPERATOR, username=name, label="tests").secret
    return keys


def build_world(home: Path, database_url: str | None) -> Iterator[World]:
    clock = ManualClock(NOW)
    engine = FakeEngine()
    settings = Settings(home=home, database_url=database_url)
    initialise(settings, actor=OPERATOR, clock=clock)
    services = build_services(settings, engine=engine, clock=clock)
    keys = seed_people(services, "Met", OrganisationKind.LAW_ENFORCEMENT, PEOPLE, clock)
    keys |= seed_people(
        services,
        "Elsewhere",
        OrganisationKind.LAW_ENFORCEMENT,
        {"sup2": [Role.SUPERVISOR], "inv2": [Role.INVESTIGATOR, Role.CURATOR]},
        clock,
    )
    app = create_app(services=services)
    with TestClient(app) as client:
        yield World(services, client, clock, engine, keys, settings)
    services.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A seeded server, once on SQLite and once on the local PostgreSQL server."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    yield from build_world(tmp_path / "home", url)


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    """The same seeded server, SQLite only (for tests about the HTTP layer itself)."""
    yield from build_world(tmp_path / "home", None)


# -- shared steps ----------------------------------------------------------------------------

PERSON_A = unit(1)
PERSON_B = unit(2)


def enrol_gallery(w: World, gallery: str = "custody") -> dict[str, bytes]:
    """Curator creates a gallery and enrols two people; returns probe images (registered
    with the fake engine): 'a' shows person A, 'pair' shows B (left) and A (right)."""
    r = w.call(
        "POST",
        "/api/v1/galleries",
        "cur",
        json={"name": gallery, "inclusion_policy": "people charged", "retention_days": 365},
    )
    assert r.status_code == 201, r.text
    for seed, (ref, vector) in enumerate((("A-1", PERSON_A), ("B-1", PERSON_B)), start=10):
        image = w.engine.register(make_image(seed), vector)
        r = w.call(
            "POST",
            f"/api/v1/galleries/{gallery}/enrolments",
            "cur",
            data={"subject": ref, **PROVENANCE},
            files={"image": ("photo.png", image, "image/png")},
        )
        assert r.status_code == 201, r.text
    return {
        "a": w.engine.register(make_image(20), near(PERSON_A, 0.3, 1)),
        "pair": w.engine.register(make_image(21), near(PERSON_B, 0.35, 2), near(PERSON_A, 0.3, 3)),
        "none": make_image(22),
    }


def open_case(
    w: World, reference: str = "OP-1", *, pending: bool = False, user: str = "inv"
) -> None:
    body: dict[str, Any] = {
        "reference": reference,
        "offence": "robbery",
        "justification": "CCTV still from the robbery at the corner shop",
    }
    body |= {"pending": True} if pending else {"authorisation": "WARRANT-7", "authority": "Judge"}
    r = w.call("POST", "/api/v1/cases", user, json=body)
    assert r.status_code == 201, r.text


def search(
    w: World, probe: bytes, reference: str = "OP-1", user: str = "inv", **form: Any
) -> httpx.Response:
    return w.call(
        "POST",
        f"/api/v1/cases/{reference}/searches",
        user,
        data=form,
        files={"probe": ("probe.png", probe, "image/png")},
    )

"""The same services on a real PostgreSQL server: enrol, search, remove, audit."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from probity.domain.search import SearchOutcome
from probity.services.container import Services
from tests.fakes import FakeEngine, make_image, near, unit
from tests.services.conftest import ACTOR, PROVENANCE

pytestmark = pytest.mark.postgres


def test_full_flow_on_postgres(
    make_services: Callable[..., Services],
    postgres_url: str,
    fake_engine: FakeEngine,
) -> None:
    svc = make_services(database_url=postgres_url)
    svc.galleries.create(
        actor=ACTOR, name="custody", inclusion_policy="charged persons", retention_days=365
    )
    people = {f"P{i}": unit(i) for i in range(4)}
    for i, (ref, v) in enumerate(people.items()):
        svc.enrolment.enrol(
            actor=ACTOR,
            gallery="custody",
            subject=ref,
            image=fake_engine.register(make_image(i), v),
            provenance=PROVENANCE,
        )
    svc.cases.open(
        actor=ACTOR,
        reference="PG-1",
        offence="fraud",
        justification="suspect photographed at the bank counter",
        authorisation="A-1",
    )
    probe = fake_engine.register(make_image(99), near(people["P2"], 0.3, 5))
    result = svc.search.search(actor=ACTOR, case_reference="PG-1", probe=probe)
    assert result.outcome is SearchOutcome.CANDIDATES
    assert result.faces[0].candidates[0].subject_reference == "P2"
    svc.subjects.remove(actor=ACTOR, gallery="custody", reference="P2", reason="erasure request")
    again = svc.search.search(actor=ACTOR, case_reference="PG-1", probe=probe, threshold_off=True)
    assert "P2" not in [c.subject_reference for c in again.faces[0].candidates]
    verification = svc.audit.verify(actor=ACTOR)
    assert verification.ok and verification.events_checked > 8

"""Incremental ``audit verify``: it starts where the last successful verification ended,
re-hashes only the events after it, still catches tampering after that point, at that point
and below it where the point's event or the witness shows it, never moves the point on a
failure, and says which mode ran. A full verification still re-hashes everything.

Tampering is done with raw SQL on a real home (SQLite, and PostgreSQL where a server
answers), as in test_audit_witness.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from probity.config import AuditSettings, Settings
from probity.domain.audit import FULL, INCREMENTAL, AuditEvent, VerifiedPoint
from probity.interfaces.cli.main import main
from probity.services.clock import ManualClock
from probity.services.container import Services, build_services, initialise
from probity.storage.repositories import AuditLog
from tests.fakes import FakeEngine
from tests.services.conftest import ACTOR
from tests.services.test_audit_witness import TAMPERINGS, cut_tail, grow, recompute_from

Factory = Callable[[], Services]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def make(
    tmp_path: Path, clock: ManualClock, fake_engine: FakeEngine, database_url: str | None
) -> Iterator[Factory]:
    built: list[Services] = []

    def factory() -> Services:
        settings = Settings(
            home=tmp_path / "home",
            database_url=database_url,
            audit=AuditSettings(witness_sinks=[], witness_timeout_s=2),
        )
        initialise(settings, actor=ACTOR, clock=clock)
        services = build_services(settings, engine=fake_engine, clock=clock)
        built.append(services)
        return services

    yield factory
    for s in built:
        s.close()


def point(svc: Services) -> VerifiedPoint | None:
    with svc.db.read() as s:
        return AuditLog(s).verified_point()


def head(svc: Services) -> int:
    with svc.db.read() as s:
        return AuditLog(s).head()[0]


def last_verify_event(svc: Services) -> AuditEvent:
    with svc.db.read() as s:
        return list(AuditLog(s).events(action="audit.verify"))[-1]


def test_after_new_events_only_those_are_rehashed(make: Factory) -> None:
    svc = make()
    grow(svc, 160)
    first = svc.audit.verify(actor=ACTOR)  # nothing verified before: a full verification
    assert first.ok and first.mode == FULL and first.from_seq == 0
    assert first.events_checked == 160
    stored = point(svc)
    assert stored is not None and stored.seq == 160 and stored.by == ACTOR
    grow(svc, 161 + 120)  # the verification's own event (#161), then 120 more
    again = svc.audit.verify(actor=ACTOR)
    assert again.ok, again.problems
    assert (again.mode, again.from_seq, again.events_checked) == (INCREMENTAL, 160, 121)
    assert again.checkpoints_checked == 3  # at #160 (the first verification's), #200, #250
    assert last_verify_event(svc).details | {} == {
        "ok": True,
        "mode": INCREMENTAL,
        "from_seq": 160,
        "events_checked": 121,
        "first_broken_seq": None,
    }
    moved = point(svc)
    assert moved is not None and moved.seq == 281
    with svc.db.read() as s:
        assert moved.hash == AuditLog(s).hash_at(281)
    # Nothing new but the last verification's own event: one event re-hashed.
    assert svc.audit.verify(actor=ACTOR).events_checked == 1
    full = svc.audit.verify(actor=ACTOR, full=True)
    assert full.ok and full.mode == FULL and full.events_checked == head(svc) - 1


def test_an_edit_after_the_verified_point_is_caught_and_the_point_stays(make: Factory) -> None:
    svc = make()
    grow(svc, 60)
    assert svc.audit.verify(actor=ACTOR).ok
    before = point(svc)
    assert before is not None and before.seq == 60
    grow(svc, 90)
    with svc.db.transaction() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 75"))
    broken = svc.audit.verify(actor=ACTOR)
    assert not broken.ok and broken.mode == INCREMENTAL and broken.first_broken_seq == 75
    assert "altered" in (broken.reason or "")
    assert point(svc) == before  # a failed verification never moves the point
    with svc.db.read() as s:
        last = AuditLog(s).last_verification()
    assert last is not None and not last.ok and last.first_broken_seq == 75
    assert last.mode == INCREMENTAL and last.from_seq == 60
    details = last_verify_event(svc).details
    assert (details["ok"], details["mode"], details["from_seq"]) == (False, INCREMENTAL, 60)
    # Still broken next time: the verification starts from the same point again.
    assert svc.audit.verify(actor=ACTOR).first_broken_seq == 75
    assert point(svc) == before


def test_a_rewrite_of_the_event_at_the_verified_point_is_caught(make: Factory) -> None:
    svc = make()
    grow(svc, 70)
    assert svc.audit.verify(actor=ACTOR).ok
    before = point(svc)
    assert before is not None and before.seq == 70
    grow(svc, 80)
    # Rewrite #70 and recompute the chain from there, the head included (no key: the
    # checkpoint at #70 cannot be re-signed, so it is deleted).
    with svc.db.transaction() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 70"))
        s.execute(text("DELETE FROM audit_checkpoints WHERE seq >= 70"))
        recompute_from(s, 70)
    broken = svc.audit.verify(actor=ACTOR)
    assert not broken.ok and broken.first_broken_seq == 70
    assert "already verified part of the chain was rewritten" in (broken.reason or "")
    assert point(svc) == before


def test_a_cut_below_the_verified_point_is_caught(make: Factory) -> None:
    svc = make()
    grow(svc, 90)
    assert svc.audit.verify(actor=ACTOR).ok
    before = point(svc)
    with svc.db.transaction() as s:
        cut_tail(s, 80, delete_checkpoints=True)  # the head row rewritten to match
    broken = svc.audit.verify(actor=ACTOR)
    assert not broken.ok and broken.mode == INCREMENTAL
    said = "\n".join(broken.problems)
    assert "event #90" in said and "log truncated" in said, said
    assert point(svc) == before


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_every_witnessed_tampering_is_caught_incrementally(make: Factory, name: str) -> None:
    svc = make()
    grow(svc, 160)
    assert svc.audit.verify(actor=ACTOR).ok
    before = point(svc)
    tamper, _ = TAMPERINGS[name]
    with svc.db.transaction() as s:
        tamper(s)
    result = svc.audit.verify(actor=ACTOR)
    assert not result.ok and result.mode == INCREMENTAL, name
    assert point(svc) == before


def test_only_a_full_verification_finds_an_edit_inside_the_verified_prefix(
    make: Factory,
) -> None:
    """The documented limit: an event before the point altered with its own hash left alone
    (the point's event unchanged) is not re-hashed by an incremental verification."""
    svc = make()
    grow(svc, 60)
    assert svc.audit.verify(actor=ACTOR).ok
    with svc.db.transaction() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 12"))
    assert svc.audit.verify(actor=ACTOR).ok  # incremental: #12 is not re-hashed
    full = svc.audit.verify(actor=ACTOR, full=True)
    assert not full.ok and full.mode == FULL and full.first_broken_seq == 12
    details = last_verify_event(svc).details
    assert (details["mode"], details["from_seq"], details["ok"]) == (FULL, 0, False)


def test_the_witness_is_read_from_where_the_last_verification_stopped(make: Factory) -> None:
    svc = make()
    grow(svc, 120)
    assert svc.audit.verify(actor=ACTOR).ok
    stored = point(svc)
    assert stored is not None
    read = stored.witness_read[str(svc.settings.witness_path)]
    assert read == (svc.settings.witness_path.stat().st_size - _last_line(svc), 2)  # 50, 100
    grow(svc, 160)
    again = svc.audit.verify(actor=ACTOR)
    assert again.ok and again.witness_entries == 2  # #120 (the verification's own), #150
    assert again.witness_seq == 150
    # Lines removed from the witness file (it shrank below what was read): a problem.
    path = svc.settings.witness_path
    path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    broken = svc.audit.verify(actor=ACTOR)
    assert not broken.ok
    assert any("fewer than the" in p for p in broken.problems), broken.problems


def _last_line(svc: Services) -> int:
    """Bytes of the witness's last line (the verification's checkpoint, written after the
    read position was stored)."""
    return len(svc.settings.witness_path.read_bytes().splitlines(keepends=True)[-1])


def test_the_cli_says_which_mode_ran_and_full_finds_the_prefix_edit(
    make: Factory, database_url: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    if database_url:  # the CLI reads the database URL from the environment, not from here
        pytest.skip("the CLI test runs on the SQLite home")
    svc = make()
    grow(svc, 60)
    home = str(svc.settings.home)
    assert main(["audit", "verify", "--home", home]) == 0
    assert "(the whole chain)" in capsys.readouterr().out
    with svc.db.transaction() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 12"))
    assert main(["audit", "verify", "--home", home, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["mode"] == INCREMENTAL and body["from_event"] == 60
    assert main(["audit", "verify", "--home", home]) == 0
    assert "after event #" in capsys.readouterr().out
    assert main(["audit", "verify", "--full", "--home", home]) == 9
    assert "BROKEN at event #12" in capsys.readouterr().err

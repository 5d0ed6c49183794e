"""The retention sweeper through the services (fake engine, manual clock): a one-day
retention rule, the clock moved two days, and the sweep leaves nothing of the expired
records; records still in retention, and a subject's records still in retention, stay."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from probity.domain.accounts import Actor, OrganisationKind, Role
from probity.errors import NotPermitted
from probity.index.vectors import normalise
from probity.services.clock import ManualClock
from probity.services.container import Services
from probity.services.indexes import IndexSlot
from probity.services.retention import SCHEDULED_ACTOR, SweepSchedule
from tests.fakes import FakeEngine, make_image, unit
from tests.services.conftest import ACTOR, PROVENANCE


def enrol(
    svc: Services,
    engine: FakeEngine,
    gallery: str,
    ref: str,
    vector: np.ndarray,
    seed: int,
    collected: date,
) -> None:
    svc.enrolment.enrol(
        actor=ACTOR,
        gallery=gallery,
        subject=ref,
        image=engine.register(make_image(seed), vector),
        provenance={**PROVENANCE, "collected_at": collected.isoformat()},
    )


def count(svc: Services, sql: str, **params: object) -> int:
    with svc.db.read() as s:
        return int(s.execute(text(sql), params).scalar_one())


def stored_bytes(vector: np.ndarray) -> bytes:
    return normalise(vector[None, :], vector.shape[0]).tobytes()


def test_one_day_retention_two_days_later_the_sweep_leaves_nothing(
    svc: Services, clock: ManualClock, fake_engine: FakeEngine
) -> None:
    today = clock().date()
    for name, days in (("short", 1), ("long", 365), ("three", 3)):
        svc.galleries.create(
            actor=ACTOR, name=name, inclusion_policy="custody images", retention_days=days
        )
    gone, kept, part_old, part_new = unit(1), unit(2), unit(3), unit(4)
    enrol(svc, fake_engine, "short", "EXP-1", gone, 1, today)
    enrol(svc, fake_engine, "long", "KEEP-1", kept, 2, today)
    # A subject with one record collected two days ago and one today, in a 3-day gallery.
    enrol(svc, fake_engine, "three", "PART-1", part_old, 3, today - timedelta(days=2))
    enrol(svc, fake_engine, "three", "PART-1", part_new, 4, today)
    short = svc.galleries.get("short")
    with svc.db.read() as s:
        blob = s.execute(text("SELECT image_blob FROM enrolments WHERE gallery_id = :g"),
                         {"g": short.id}).scalar_one()  # fmt: skip
    assert svc.enrolment.vault.blobs.exists(blob)

    nothing = svc.retention.sweep(actor=ACTOR)
    assert nothing.receipts == () and nothing.enrolments == 0

    clock.advance(timedelta(days=2))
    result = svc.retention.sweep(actor=ACTOR)
    by_ref = {r.subject_reference: r for r in result.receipts}
    assert set(by_ref) == {"EXP-1", "PART-1"}
    assert all(r.cause.value == "retention" for r in result.receipts)
    assert result.enrolments == 2 and result.subjects_erased == 1
    assert result.as_of == today + timedelta(days=2)

    # Nothing of the expired records is left: rows, key, template, blob, index vector.
    assert count(svc, "SELECT count(*) FROM subjects WHERE reference = 'EXP-1'") == 0
    assert count(svc, "SELECT count(*) FROM enrolments WHERE gallery_id = :g", g=short.id) == 0
    assert count(svc, "SELECT count(*) FROM templates WHERE gallery_id = :g", g=short.id) == 0
    assert not svc.enrolment.vault.blobs.exists(blob)
    assert svc.indexes.size(IndexSlot.of(short)) == 0
    assert stored_bytes(gone) not in svc.indexes.path(IndexSlot.of(short)).read_bytes()
    three = svc.galleries.get("three")
    assert svc.indexes.size(IndexSlot.of(three)) == 1
    three_bytes = svc.indexes.path(IndexSlot.of(three)).read_bytes()
    # Sealed: neither the erased nor the kept vector is in the file in the clear.
    assert stored_bytes(part_old) not in three_bytes and stored_bytes(part_new) not in three_bytes
    kept = svc.indexes.get(IndexSlot.of(three)).search(np.stack([part_new]), 1)[0]
    assert kept and kept[0].similarity > 0.999
    assert count(svc, "SELECT count(*) FROM enrolments WHERE gallery_id = :g", g=three.id) == 1
    # What stays in retention stays.
    long = svc.galleries.get("long")
    assert svc.indexes.size(IndexSlot.of(long)) == 1
    assert count(svc, "SELECT count(*) FROM enrolments WHERE gallery_id = :g", g=long.id) == 1

    # Idempotent: the next sweep has nothing to do.
    assert svc.retention.sweep(actor=ACTOR).receipts == ()
    sweeps = svc.audit.events(actor=ACTOR, action="retention.sweep").events
    assert len(sweeps) == 3 and sweeps[1].details["enrolments"] == 2
    assert [e.action for e in svc.audit.events(actor=ACTOR, action="enrolment.erase").events]
    assert svc.audit.verify(actor=ACTOR).ok


def test_sweep_as_of_a_given_time_and_scheduled_sweeps_stay_quiet(
    svc: Services, clock: ManualClock, fake_engine: FakeEngine
) -> None:
    svc.galleries.create(actor=ACTOR, name="short", inclusion_policy="custody", retention_days=1)
    enrol(svc, fake_engine, "short", "EXP-1", unit(7), 7, clock().date())
    before = len(svc.audit.events(actor=ACTOR, action="retention.sweep").events)
    assert svc.retention.sweep(actor=ACTOR, scheduled=True).receipts == ()
    after = svc.audit.events(actor=ACTOR, action="retention.sweep").events
    assert len(after) == before  # an empty scheduled sweep is not an event
    later = clock() + timedelta(days=1)  # retention_until is the first day not kept
    result = svc.retention.sweep(actor=ACTOR, now=later, scheduled=True)
    assert [r.subject_reference for r in result.receipts] == ["EXP-1"]
    events = svc.audit.events(actor=ACTOR, action="retention.sweep").events
    assert events[-1].details["scheduled"] is True


def test_the_schedule_sweeps_in_the_background_and_stops(
    svc: Services, clock: ManualClock, fake_engine: FakeEngine
) -> None:
    svc.galleries.create(actor=ACTOR, name="short", inclusion_policy="custody", retention_days=1)
    enrol(svc, fake_engine, "short", "EXP-1", unit(8), 8, clock().date())
    schedule = SweepSchedule(svc.retention, 0.02)
    schedule.start()
    try:
        assert schedule.running
        clock.advance(timedelta(days=2))
        deadline = time.monotonic() + 10
        while count(svc, "SELECT count(*) FROM subjects") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert count(svc, "SELECT count(*) FROM subjects") == 0
    finally:
        schedule.stop()
    assert not schedule.running and schedule.runs >= 1
    events = svc.audit.events(actor=ACTOR, action="retention.sweep").events
    assert [e.actor for e in events] == [SCHEDULED_ACTOR]
    disabled = SweepSchedule(svc.retention, 0)
    disabled.start()
    assert not disabled.running
    assert svc.audit.verify(actor=ACTOR).ok


def test_server_accounts_sweep_only_what_they_may_erase(svc: Services) -> None:
    auditor = Actor(
        user_id="u1",
        organisation_id="org-1",
        organisation_kind=OrganisationKind.LAW_ENFORCEMENT,
        roles=frozenset({Role.AUDITOR}),
        approved=True,
    )
    with pytest.raises(NotPermitted, match=r"subject\.remove"):
        svc.retention.sweep(actor=auditor)


def test_a_damaged_record_that_stays_does_not_hold_up_the_erasure(
    svc: Services, clock: ManualClock, fake_engine: FakeEngine
) -> None:
    svc.galleries.create(actor=ACTOR, name="three", inclusion_policy="custody", retention_days=3)
    today = clock().date()
    enrol(svc, fake_engine, "three", "PART-1", unit(9), 9, today - timedelta(days=2))
    enrol(svc, fake_engine, "three", "PART-1", unit(10), 10, today)
    with svc.db.read() as s:
        kept_blob = s.execute(
            text("SELECT image_blob FROM enrolments WHERE collected_at = :d"), {"d": today}
        ).scalar_one()
    svc.enrolment.vault.blobs.delete(kept_blob)  # the record that stays is damaged
    clock.advance(timedelta(days=2))
    result = svc.retention.sweep(actor=ACTOR)
    assert result.enrolments == 1
    assert count(svc, "SELECT count(*) FROM enrolments") == 1
    erased = svc.audit.events(actor=ACTOR, action="enrolment.erase").events
    assert erased[-1].details["rekeyed"] is False
    assert svc.audit.verify(actor=ACTOR).ok

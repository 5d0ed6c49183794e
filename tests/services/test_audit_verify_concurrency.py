"""``audit verify`` walks the chain in a read transaction, so audited writes made meanwhile
go through (issue "Scale": at 100k events a write waited 30.9 s behind verify's write
transaction and failed with "database is locked"); the events appended during the walk are
then checked under the head's lock, so a tampered tail is still caught.

The write is made *inside* the walk, from the same thread, through the services' own
database (another connection): with the walk in a write transaction it would wait for the
busy timeout and fail, so no thread and no wall-clock wait is needed to tell the two apart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from probity.domain.audit import AuditAction, AuditEvent, AuditRecord
from probity.services.container import Services
from probity.storage.repositories import AuditLog
from tests.services.conftest import ACTOR


def _fill(svc: Services, count: int) -> None:
    for i in range(count):
        svc.audit.record_alone(
            AuditRecord(actor=ACTOR, action=AuditAction.AUDIT_READ, details={"i": i})
        )


def _write_during_walk(
    monkeypatch: pytest.MonkeyPatch, svc: Services, *, tamper: bool = False
) -> list[int]:
    """Make the verification's walk append one audited event half-way through (and, with
    ``tamper``, then alter it with raw SQL as an attacker would); returns its seq."""
    made: list[int] = []
    original = AuditLog.events_between

    def walking(self: AuditLog, after: int = 0, upto: int | None = None) -> Iterator[AuditEvent]:
        for n, event in enumerate(original(self, after, upto)):
            if n == 3 and not made and after == 0:
                written = svc.audit.record_alone(
                    AuditRecord(actor="bob", action=AuditAction.AUDIT_READ, details={"x": 1})
                )
                made.append(written.seq)
                if tamper:
                    with svc.db.transaction() as session:
                        session.execute(
                            text("UPDATE audit_events SET actor = 'mallory' WHERE seq = :s"),
                            {"s": written.seq},
                        )
            yield event

    monkeypatch.setattr(AuditLog, "events_between", walking)
    return made


def test_an_audited_write_during_verify_goes_through_and_is_verified(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(svc, 10)
    made = _write_during_walk(monkeypatch, svc)
    result = svc.audit.verify(actor=ACTOR)
    assert made, "the walk did not reach the write"
    assert result.ok, result.problems
    # The chain verified ends at the head as it was under the lock: the write included.
    with svc.db.read() as session:
        head_seq, _ = AuditLog(session).head()
    assert result.events_checked == head_seq - 1  # the verification's own event comes after
    assert made[0] <= result.events_checked
    monkeypatch.undo()
    assert svc.audit.verify(actor=ACTOR).ok


def test_an_event_tampered_with_during_verify_is_caught(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(svc, 10)
    made = _write_during_walk(monkeypatch, svc, tamper=True)
    result = svc.audit.verify(actor=ACTOR)
    assert made and not result.ok
    assert result.first_broken_seq == made[0]
    assert "altered" in (result.reason or "")

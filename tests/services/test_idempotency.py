"""Idempotency keys (services/idempotency.py) on a real SQLite database: once per person and
key, a repeat replays, a different request is refused, a running first attempt is not run
twice, a failed one releases its key, and keys expire."""

from __future__ import annotations

from datetime import timedelta

import pytest

from probity.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidInput
from probity.services.clock import ManualClock
from probity.services.container import Services
from probity.services.idempotency import (
    KEY_LIFETIME,
    STALE_RESERVATION,
    IdempotencyService,
    fingerprint,
)


class Counter:
    def __init__(self) -> None:
        self.runs = 0

    def __call__(self) -> str:
        self.runs += 1
        return f"made-{self.runs}"


def once(service: IdempotencyService, actor: str, key: str, request: str, perform: Counter) -> str:
    return service.once(
        actor=actor,
        operation="search",
        key=key,
        request=request,
        perform=perform,
        made=lambda r: r,
        replay=lambda rid: f"replayed {rid}",
    )


def test_repeat_replays_and_other_request_is_refused(svc: Services, clock: ManualClock) -> None:
    service = IdempotencyService(db=svc.db, clock=clock)
    work = Counter()
    a, b = fingerprint(probe=b"one"), fingerprint(probe=b"two")
    assert once(service, "alice", "k1", a, work) == "made-1"
    assert once(service, "alice", "k1", a, work) == "replayed made-1"
    with pytest.raises(IdempotencyKeyReused):
        once(service, "alice", "k1", b, work)
    # Another person's key of the same name is theirs.
    assert once(service, "bob", "k1", a, work) == "made-2"
    assert work.runs == 2


def test_a_running_first_attempt_is_not_run_twice(svc: Services, clock: ManualClock) -> None:
    service = IdempotencyService(db=svc.db, clock=clock)
    request = fingerprint(probe=b"one")
    seen: list[type[Exception]] = []

    def first() -> str:
        try:
            once(service, "alice", "k2", request, Counter())
        except IdempotencyInProgress as exc:
            seen.append(type(exc))
        return "made-first"

    assert (
        service.once(
            actor="alice",
            operation="search",
            key="k2",
            request=request,
            perform=first,
            made=lambda r: r,
            replay=lambda rid: rid,
        )
        == "made-first"
    )
    assert seen == [IdempotencyInProgress]


def test_a_failed_attempt_releases_the_key(svc: Services, clock: ManualClock) -> None:
    service = IdempotencyService(db=svc.db, clock=clock)
    request = fingerprint(probe=b"one")

    def fails() -> str:
        raise RuntimeError("engine down")

    with pytest.raises(RuntimeError):
        service.once(
            actor="alice", operation="search", key="k3", request=request,
            perform=fails, made=lambda r: r, replay=lambda rid: rid,
        )  # fmt: skip
    work = Counter()
    assert once(service, "alice", "k3", request, work) == "made-1"


def test_abandoned_reservations_and_old_keys_are_taken_over(
    svc: Services, clock: ManualClock
) -> None:
    service = IdempotencyService(db=svc.db, clock=clock)
    request = fingerprint(probe=b"one")
    inner = Counter()

    def crashes_silently() -> str:
        # While this attempt "hangs", time passes beyond the stale limit: a retry runs.
        clock.advance(STALE_RESERVATION + timedelta(seconds=1))
        assert once(service, "alice", "k4", request, inner) == "made-1"
        return "late"

    service.once(
        actor="alice", operation="search", key="k4", request=request,
        perform=crashes_silently, made=lambda r: r, replay=lambda rid: rid,
    )  # fmt: skip
    assert inner.runs == 1
    # The late first attempt did not overwrite what the retry made.
    assert once(service, "alice", "k4", request, Counter()) == "replayed made-1"
    # After KEY_LIFETIME the key may name a new request.
    clock.advance(KEY_LIFETIME + timedelta(seconds=1))
    assert once(service, "alice", "k4", fingerprint(probe=b"two"), Counter()) == "made-1"
    assert service.prune() == 0  # that row is new; the old one was replaced


def test_bad_keys_are_refused(svc: Services, clock: ManualClock) -> None:
    service = IdempotencyService(db=svc.db, clock=clock)
    for key in ("", " ", "x" * 201, "tab\there"):
        with pytest.raises(InvalidInput):
            once(service, "alice", key, "r", Counter())

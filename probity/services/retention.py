"""The retention sweeper: erase every enrolment whose retention has run out, exactly as an
erasure does, and the schedule the server runs it on.

Each enrolment carries ``retention_until`` (its collection date plus the gallery's retention
days, fixed at enrolment). ``sweep`` finds those due on the clock's UTC date
(``policy.retention.is_due``: on or after that day) and hands them to
``ErasureService.erase_enrolments`` with cause ``retention``: rows, templates, blobs and index
vectors go, the subject is re-keyed, and a subject with nothing left is erased whole. Every
subject touched gets a receipt.

Each sweep first completes any erasure work a crash left behind (index catch-up, blobs,
retired key files: ``services/erasure_work.py``), so an interrupted erasure is finished
within one sweep interval even on a server that never restarts.

The sweep also forgets how to reach the people behind long-closed rights requests
(``RightsService.forget_closed``: contact details, identifiers and what they wrote, once
``PROBITY_RIGHTS__KEEP_CLOSED_DAYS`` have passed since closing), so that happens with no one
having to remember it.

Several API processes each run their own schedule against the same database. That is safe:
an erasure locks the rows it erases and skips what is already gone, so two sweeps at once
erase each record once and issue one receipt for it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from probity.domain.accounts import Action, Resource
from probity.domain.audit import AuditAction, AuditRecord
from probity.policy.retention import is_due
from probity.services.access import AccessGuard, Who, name_of, organisation_id_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.erasure import ErasureCause, ErasureReceipt, ErasureService
from probity.services.galleries import GalleryService
from probity.storage.db import Database
from probity.storage.pruning import EnrolmentPruning, HeldEnrolment
from probity.storage.repositories import Subjects

log = logging.getLogger("probity.retention")

SCHEDULED_ACTOR = "retention-sweeper"
"""The name the server's scheduled sweep acts and is audited under (as the local operator:
the schedule is the deployment's own, configured by whoever runs the server)."""


class ClosedRequests(Protocol):
    """The rights-request service as the sweeper uses it (services/rights.py)."""

    def forget_closed(self, *, actor: Who, now: datetime | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep erased: a receipt per subject touched (no biometric data)."""

    at: datetime
    as_of: date  # records kept until this day or earlier were due
    receipts: tuple[ErasureReceipt, ...]
    enrolments: int  # enrolments erased
    subjects_erased: int  # subjects left with nothing, erased whole
    requests_forgotten: int = 0  # closed rights requests whose contact details were blanked

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "enrolments_erased": self.enrolments,
            "subjects_erased": self.subjects_erased,
            "receipts": [r.as_dict() for r in self.receipts],
            "rights_requests_forgotten": self.requests_forgotten,
        }


class RetentionService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        galleries: GalleryService,
        erasure: ErasureService,
        guard: AccessGuard,
        rights: ClosedRequests | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.galleries = galleries
        self.erasure = erasure
        self.guard = guard
        self.rights = rights

    def sweep(
        self, *, actor: Who, now: datetime | None = None, scheduled: bool = False
    ) -> SweepResult:
        """Erase every enrolment due on ``now``'s date (default: the clock's), in the
        galleries the actor may erase from (every gallery for the local operator). Audited
        as ``retention.sweep`` whenever it erased something; a sweep someone asked for is
        audited even when nothing was due, a ``scheduled`` one is not (the hourly schedule
        would otherwise fill the log with empty sweeps).

        Then the closed rights requests past their keep period are forgotten
        (``RightsService.forget_closed``, audited as ``rights.forget`` when it blanks any),
        when the actor may handle rights requests: the local operator and the schedule
        always, a server account only with ``rights.handle``."""
        self.guard.check(actor, Action.SUBJECT_REMOVE, Resource(organisation_id_of(actor)))
        # What an interrupted erasure (a crash after its commit) left is finished first.
        self.erasure.work.complete_pending()
        at = now or self.clock()
        today = at.date()
        due = self._due(actor, today)
        receipts: list[ErasureReceipt] = []
        if due:
            receipts = self.erasure.erase_enrolments(
                actor=actor,
                enrolment_ids=[e.id for e in due],
                reason=f"retention period ended (records kept until {today} or earlier)",
                cause=ErasureCause.RETENTION,
            )
        with self.db.read() as session:
            left = Subjects(session).get_many(r.subject_id for r in receipts)
        result = SweepResult(
            at=at,
            as_of=today,
            receipts=tuple(receipts),
            enrolments=sum(r.enrolments for r in receipts),
            subjects_erased=sum(1 for r in receipts if r.subject_id not in left),
        )
        if receipts or not scheduled:
            self.audit.record_alone(
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.RETENTION_SWEEP,
                    galleries=tuple(sorted({r.gallery for r in receipts})),
                    subject_ids=tuple(sorted({r.subject_id for r in receipts})),
                    details={
                        "as_of": today.isoformat(),
                        "scheduled": scheduled,
                        "enrolments": result.enrolments,
                        "subjects_erased": result.subjects_erased,
                        "receipts": [r.number for r in receipts],
                    },
                )
            )
        if self.rights is not None and (
            isinstance(actor, str) or self.guard.allows(actor, Action.RIGHTS_HANDLE)
        ):
            forgotten = self.rights.forget_closed(actor=actor, now=at)
            result = dataclasses.replace(result, requests_forgotten=forgotten)
        return result

    def due(self, *, actor: Who, now: datetime | None = None) -> dict[str, int]:
        """How many enrolments a sweep on ``now``'s date (default: the clock's) would erase,
        by gallery id, in the galleries the actor may erase from; galleries with none due
        are absent. Erases nothing, and is not audited (counts only, as the gallery list)."""
        self.guard.check(actor, Action.SUBJECT_REMOVE, Resource(organisation_id_of(actor)))
        counts: dict[str, int] = {}
        for e in self._due(actor, (now or self.clock()).date()):
            counts[e.gallery_id] = counts.get(e.gallery_id, 0) + 1
        return counts

    def _due(self, actor: Who, today: date) -> list[HeldEnrolment]:
        """The enrolments due on ``today`` in the galleries ``actor`` sees: what a sweep
        erases and what ``due`` counts."""
        galleries = {g.id: g for g in self.galleries.all(actor)}
        with self.db.read() as session:
            return [
                e
                for e in EnrolmentPruning(session).due(today, galleries)
                if is_due(e.retention_until, today)
            ]


class SweepSchedule:
    """Runs ``RetentionService.sweep`` in a background thread: once at start, then every
    ``interval_s`` seconds, until ``stop``. An interval of 0 means no schedule (``start``
    does nothing). A failed sweep is logged and the next one runs on time: an erasure that
    failed part-way leaves nothing readable and is simply finished by the next sweep."""

    def __init__(
        self, retention: RetentionService, interval_s: float, *, actor: str = SCHEDULED_ACTOR
    ) -> None:
        self.retention = retention
        self.interval_s = interval_s
        self.actor = actor
        self.runs = 0  # sweeps completed (tests and the status of a long-running server)
        self.last: SweepResult | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ran = threading.Condition()  # notified after every sweep, for waiters

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.interval_s <= 0 or self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="probity-sweeper", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the thread to stop and wait for it (a sweep in progress finishes first; after
        ``timeout_s`` the daemon thread is left to end with the process)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def wait_for_sweep(
        self, done: Callable[[SweepResult], bool], timeout_s: float
    ) -> SweepResult | None:
        """Block until a sweep whose result satisfies ``done`` has completed (its audit
        event written), or ``timeout_s`` passes; returns that result, or None. Waits on a
        condition the sweeper notifies, so a test never polls on wall-clock time."""
        with self._ran:
            self._ran.wait_for(lambda: self.last is not None and done(self.last), timeout_s)
            return self.last if self.last is not None and done(self.last) else None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.retention.sweep(actor=self.actor, scheduled=True)
                with self._ran:
                    self.last = result
                    self.runs += 1
                    self._ran.notify_all()
                if self.last.receipts:
                    log.info(
                        "retention sweep",
                        extra={
                            "enrolments": self.last.enrolments,
                            "receipts": len(self.last.receipts),
                        },
                    )
            except Exception:
                log.exception("retention sweep failed; the next one runs on schedule")
            if self._stop.wait(self.interval_s):
                break

"""The audit trail: every action appends a hash-chained event in the same transaction as the
action itself, so an action without its event (or the reverse) cannot be committed.

The hash chain alone shows that the log was altered, unless the whole chain after the change
was recomputed by someone who can write to the database. Signed checkpoints close that gap: every
CHECKPOINT_EVERY events, and at every verification, the head (seq, hash) is signed with an
Ed25519 key derived from the master key, which is never in the database. ``verify`` checks
every checkpoint's signature and that the event it names still has the signed hash.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from probity.domain.accounts import Action
from probity.domain.audit import (
    CHECKPOINT_EVERY,
    AuditAction,
    AuditEvent,
    AuditRecord,
    ChainVerification,
    Checkpoint,
    canonical_bytes,
    chain_hash,
    checkpoint_message,
    verify_chain,
)
from probity.domain.review import CandidateRef, Review
from probity.services.access import AccessGuard, Who, could_still_review, name_of, organisation_of
from probity.services.clock import Clock
from probity.storage.casework import Reviews, StoredSearches
from probity.storage.db import Database
from probity.storage.keyring import CheckpointSigner
from probity.storage.repositories import AuditLog, Cases


def record(
    session: Session,
    entry: AuditRecord,
    *,
    at: datetime,
    organisation: str,
    signer: CheckpointSigner,
) -> AuditEvent:
    """Append one event inside the caller's transaction (the head row is locked until commit),
    and a signed checkpoint every CHECKPOINT_EVERY events."""
    log = AuditLog(session)
    seq, prev = log.lock_head()
    seq += 1
    details = dict(entry.details or {})
    org = entry.organisation or organisation
    body = canonical_bytes(
        seq=seq,
        at=at,
        actor=entry.actor,
        organisation=org,
        action=entry.action.value,
        case_reference=entry.case_reference,
        galleries=entry.galleries,
        subject_ids=entry.subject_ids,
        details=details,
    )
    event = AuditEvent(
        seq=seq,
        at=at,
        actor=entry.actor,
        organisation=org,
        action=entry.action.value,
        case_reference=entry.case_reference,
        galleries=tuple(entry.galleries),
        subject_ids=tuple(entry.subject_ids),
        details=details,
        prev_hash=prev,
        hash=chain_hash(prev, body),
    )
    log.append(event)
    if seq % CHECKPOINT_EVERY == 0:
        sign_checkpoint(log, signer, seq=seq, event_hash=event.hash, at=at)
    return event


def sign_checkpoint(
    log: AuditLog, signer: CheckpointSigner, *, seq: int, event_hash: str, at: datetime
) -> None:
    stamp = at.isoformat()
    log.add_checkpoint(
        Checkpoint(
            seq=seq,
            hash=event_hash,
            at=stamp,
            public_key=signer.public_hex,
            signature=signer.sign(checkpoint_message(seq, event_hash, stamp)),
        )
    )


def check_checkpoints(log: AuditLog, signer: CheckpointSigner) -> tuple[int, str | None, int]:
    """(checkpoints checked, reason of the first failure or None, its seq)."""
    checked = 0
    for cp in log.checkpoints():
        checked += 1
        if cp.public_key != signer.public_hex:
            return checked, f"checkpoint at event #{cp.seq} was signed by another key", cp.seq
        if not signer.verify(cp.message(), cp.signature):
            return checked, f"checkpoint at event #{cp.seq} has an invalid signature", cp.seq
        if log.hash_at(cp.seq) != cp.hash:
            return (
                checked,
                f"event #{cp.seq} no longer has the hash its signed checkpoint records "
                "(the chain was rewritten)",
                cp.seq,
            )
    return checked, None, 0


class AuditService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        organisation: str,
        signer: CheckpointSigner,
        guard: AccessGuard | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.organisation = organisation
        self.signer = signer
        # Without a guard (``initialise``) only the local operator can act.
        self.guard = guard or AccessGuard(clock, frozenset())

    def record(self, session: Session, entry: AuditRecord) -> AuditEvent:
        return record(
            session, entry, at=self.clock(), organisation=self.organisation, signer=self.signer
        )

    def record_alone(self, entry: AuditRecord) -> AuditEvent:
        """Record an event in a transaction of its own (e.g. a refused action)."""
        with self.db.transaction() as session:
            return self.record(session, entry)

    def verify(self, *, actor: Who) -> ChainVerification:
        """Re-hash the whole chain, compare its end with the stored head (catches truncation),
        and record the verification itself as an audit event."""
        self.guard.check(actor, Action.AUDIT_VERIFY)
        with self.db.transaction() as session:
            log = AuditLog(session)
            head_seq, head_hash = log.lock_head()
            result = verify_chain(log.events())
            # The walk proves each event fits its predecessor; comparing the end with the head
            # row also catches events deleted from the end of the log.
            if result.ok and (
                result.events_checked != head_seq or (head_seq and result.last_hash != head_hash)
            ):
                result = ChainVerification(
                    False,
                    result.events_checked,
                    result.events_checked + 1,
                    f"log truncated or head altered: the head records {head_seq} events, "
                    f"{result.events_checked} found",
                )
            if result.ok:
                checked, failure, at_seq = check_checkpoints(log, self.signer)
                result = (
                    ChainVerification(
                        True,
                        result.events_checked,
                        last_hash=result.last_hash,
                        checkpoints_checked=checked,
                    )
                    if failure is None
                    else ChainVerification(False, result.events_checked, at_seq, failure)
                )
            if result.ok and head_seq:
                sign_checkpoint(
                    log, self.signer, seq=head_seq, event_hash=head_hash, at=self.clock()
                )
            self.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.AUDIT_VERIFY,
                    details={
                        "ok": result.ok,
                        "events_checked": result.events_checked,
                        "first_broken_seq": result.first_broken_seq,
                    },
                ),
            )
        return result

    def events(
        self,
        *,
        actor: Who,
        action: str | None = None,
        case_reference: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> AuditPage:
        """Read events (oldest first), filtered by action, case, acting user (``by``) and time
        (``since`` inclusive, ``until`` exclusive). A person signed in to the server sees only
        their own organisation's events. Reading the log is itself audited."""
        self.guard.check(actor, Action.AUDIT_READ)
        scope = None if isinstance(actor, str) else (actor.organisation_name or "?")
        filters: dict[str, Any] = {
            "action": action,
            "case_reference": case_reference,
            "since": since,
            "until": until,
            "actor": by,
            "organisation": scope,
        }
        with self.db.transaction() as session:
            log = AuditLog(session)
            total = log.count_matching(**filters)
            found = _blind(
                session, self.guard, actor, list(log.events(limit=limit, offset=offset, **filters))
            )
            self.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.AUDIT_READ,
                    details={
                        "filter_action": action,
                        "filter_case": case_reference,
                        "filter_actor": by,
                        "since": since.isoformat() if since else None,
                        "until": until.isoformat() if until else None,
                        "returned": len(found),
                    },
                ),
            )
        return AuditPage(found, total)


WITHHELD = "withheld until you record your own review (blind review)"
_DECISIONS = {AuditAction.REVIEW.value: "decision", AuditAction.LEAD.value: "confirmed_by"}
"""Audit events that carry review decisions, and the detail that holds them."""


def _blind(
    session: Session, guard: AccessGuard, actor: Who, events: list[AuditEvent]
) -> list[AuditEvent]:
    """Blind review in the audit log: a reader who could still review a candidate (an
    examiner who is also an auditor, say) sees that reviews happened and by whom, never
    their decisions, until they have recorded their own (as on the review pages). The
    stored event is untouched; only this reader's copy says WITHHELD."""
    refs = {
        e.seq: CandidateRef(str(e.details["search_id"]), int(e.details["face"]), e.subject_ids[0])
        for e in events
        if e.action in _DECISIONS and e.subject_ids and "search_id" in e.details
    }
    if isinstance(actor, str) or not refs:
        return events
    search_ids = {r.search_id for r in refs.values()}
    grouped: dict[CandidateRef, list[Review]] = {ref: [] for ref in refs.values()}
    for review in Reviews(session).for_searches(search_ids):
        grouped.setdefault(review.candidate, []).append(review)
    owners: dict[str, str | None] = {}
    for search_id in search_ids:
        stored = StoredSearches(session).get(search_id)
        case = Cases(session).get(stored.case_id) if stored else None
        if case is not None:  # a rejected case's searches are gone: nobody reviews them
            owners[search_id] = case.organisation_id
    hidden = {
        ref
        for ref in grouped
        if ref.search_id in owners
        and could_still_review(guard, actor, owners[ref.search_id], grouped[ref])
    }
    return [
        replace(e, details={**e.details, _DECISIONS[e.action]: WITHHELD})
        if refs.get(e.seq) in hidden
        else e
        for e in events
    ]


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    total: int  # events matching the filter, before limit and offset

"""The audit trail: every action appends a hash-chained event in the same transaction as the
action itself, so an action without its event (or the reverse) cannot be committed.

The hash chain alone shows that the log was altered, unless the whole chain after the change
was recomputed by someone who can write to the database. Signed checkpoints close that gap: every
CHECKPOINT_EVERY events, and at every verification, the head (seq, hash) is signed with an
Ed25519 key derived from the master key, which is never in the database. ``verify`` checks
every checkpoint's signature and that the event it names still has the signed hash.

Checkpoints live in the same database, so someone who can write to it can still delete the
tail of the log together with the checkpoints that named it. Each checkpoint is therefore
also appended to a witness outside the database (the home's ``audit-witness.jsonl`` and the
configured sinks) after its transaction commits, and ``verify`` compares the database with
every witness entry: services/witness.py has the order of writes and what is reported,
docs/audit.md the threat model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from probity.domain.accounts import Action
from probity.domain.audit import (
    CHECKPOINT_EVERY,
    FULL,
    INCREMENTAL,
    AuditAction,
    AuditEvent,
    AuditRecord,
    ChainVerification,
    Checkpoint,
    LastVerification,
    VerifiedPoint,
    canonical_bytes,
    chain_hash,
    checkpoint_message,
    verify_chain,
)
from probity.domain.review import CandidateRef, Review
from probity.services.access import AccessGuard, Who, could_still_review, name_of, organisation_of
from probity.services.clock import Clock
from probity.services.witness import (
    HashesAt,
    SignatureCache,
    Verifier,
    WitnessComparison,
    WitnessRead,
    compare,
    publish_after_commit,
    read_witness,
)
from probity.storage.casework import Reviews, StoredSearches
from probity.storage.db import Database
from probity.storage.keyring import CheckpointSigner
from probity.storage.repositories import AuditLog, Cases
from probity.storage.witness import Witness, WitnessPosition


def record(
    session: Session,
    entry: AuditRecord,
    *,
    at: datetime,
    organisation: str,
    signer: CheckpointSigner,
    witness: Witness | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction (the head row is locked until commit),
    and a signed checkpoint every CHECKPOINT_EVERY events (witnessed once the caller's
    transaction commits)."""
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
        sign_checkpoint(log, signer, seq=seq, event_hash=event.hash, at=at, witness=witness)
    return event


def sign_checkpoint(
    log: AuditLog,
    signer: CheckpointSigner,
    *,
    seq: int,
    event_hash: str,
    at: datetime,
    witness: Witness | None = None,
) -> None:
    """Sign (seq, hash) and store the checkpoint in the caller's transaction; with a witness,
    the checkpoint goes to it after that transaction commits (never if it rolls back)."""
    stamp = at.isoformat()
    checkpoint = Checkpoint(
        seq=seq,
        hash=event_hash,
        at=stamp,
        public_key=signer.public_hex,
        signature=signer.sign(checkpoint_message(seq, event_hash, stamp)),
    )
    if log.add_checkpoint(checkpoint) and witness is not None:
        publish_after_commit(log.s, witness, checkpoint)


def check_checkpoints(
    log: AuditLog,
    signer: Verifier,
    checkpoints: list[Checkpoint] | None = None,
    hashes: dict[int, str] | None = None,
) -> tuple[int, str | None, int]:
    """(checkpoints checked, reason of the first failure or None, its seq). ``hashes``: every
    event hash at the checkpoints' seqs, read during a complete chain walk (a seq missing
    from it has no event); without it each is read with a query."""
    checked = 0
    for cp in log.checkpoints() if checkpoints is None else checkpoints:
        checked += 1
        if cp.public_key != signer.public_hex:
            return checked, f"checkpoint at event #{cp.seq} was signed by another key", cp.seq
        if not signer.verify(cp.message(), cp.signature):
            return checked, f"checkpoint at event #{cp.seq} has an invalid signature", cp.seq
        held = hashes.get(cp.seq) if hashes is not None else log.hash_at(cp.seq)
        if held != cp.hash:
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
        witness: Witness | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.organisation = organisation
        self.signer = signer
        # None: no witness is written or checked (the backup/restore tools' one-off events;
        # verify then checks the database alone, as before the witness existed).
        self.witness = witness
        # Without a guard (``initialise``) only the local operator can act.
        self.guard = guard or AccessGuard(clock, frozenset())

    def record(self, session: Session, entry: AuditRecord) -> AuditEvent:
        return record(
            session,
            entry,
            at=self.clock(),
            organisation=self.organisation,
            signer=self.signer,
            witness=self.witness,
        )

    def record_alone(self, entry: AuditRecord) -> AuditEvent:
        """Record an event in a transaction of its own (e.g. a refused action)."""
        with self.db.transaction() as session:
            return self.record(session, entry)

    def verify(self, *, actor: Who, full: bool = False) -> ChainVerification:
        """Verify the chain and record the verification itself as an audit event.

        **Incremental** (the default, once a verification has passed): start at the stored
        verified point (``AuditLog.verified_point``: event #P had hash H when the last
        successful verification ended there). Check that event #P still has hash H, re-hash
        only the events after #P (each must continue the chain from H), compare the end
        with the stored head (catches truncation), check the signatures and hashes of the
        signed checkpoints at or after #P, and compare the database with the witness lines
        appended since that verification. The cost is the new events and checkpoints, not
        the log: about 1,000 new events on a 10M-event log take well under a second.

        What incremental does *not* prove: events #1..#P are not re-hashed, so an edit
        inside that prefix that leaves event #P's stored hash as it was (an altered event
        whose own ``hash`` column was left alone, a deleted older checkpoint, a rewritten
        witness line before the stored read position) is caught only by a full verification
        (``full=True``: it re-hashes the prefix and compares every witness entry), or by
        someone comparing an off-host witness with the database. A consistent rewrite of the
        prefix (the chain recomputed from the edit on) changes event #P's hash, so it is
        caught, as are a cut below #P and any change after #P.

        **Full** (``full=True``, or no verification has passed yet): re-hash the whole chain
        from the first event, check every signed checkpoint, and compare with every witness
        entry, as before the verified point existed (one pass over the events and one over
        each witness file: ~40 s at 100k events on SQLite).

        Either way the events are read in a read transaction, so audited writes (searches,
        enrolments) go on meanwhile; only the final step takes the head's lock: it checks
        the events appended during the walk, signs a checkpoint, stores the outcome (and,
        when it passed, the new verified point: a failed verification never moves it), and
        records the ``audit.verify`` event, whose details say which mode ran from which seq.
        """
        self.guard.check(actor, Action.AUDIT_VERIFY)
        home_failures = self._home_failures()
        with self.db.read() as session:
            log = AuditLog(session)
            point = None if full else log.verified_point()
            walked = self._walk_all(log) if point is None else self._walk_from(log, point)
        result = walked.result
        with self.db.transaction() as session:
            log = AuditLog(session)
            now_seq, now_hash = log.lock_head()
            if result.ok and (now_seq, now_hash) != (walked.head_seq, walked.head_hash):
                result = _with_tail(
                    result, log, walked.head_seq, walked.head_hash, now_seq, now_hash
                )
            if result.ok and walked.found is not None and self.witness is not None:
                # Catch the witness up (a crash before a witness write, a home that predates
                # the witness): the database's newer checkpoints were just verified.
                for cp in walked.checkpoints:
                    if cp.seq > walked.witness_known:
                        publish_after_commit(session, self.witness, cp)
            if result.ok and now_seq:
                sign_checkpoint(
                    log,
                    self.signer,
                    seq=now_seq,
                    event_hash=now_hash,
                    at=self.clock(),
                    witness=self.witness,
                )
            now = self.clock()
            passed = None
            if result.ok and now_seq:
                passed = VerifiedPoint(
                    seq=now_seq,
                    hash=now_hash,
                    at=now,
                    by=name_of(actor),
                    witness_seq=walked.witness_known or None,
                    witness_read={
                        path: (at.bytes, at.lines)
                        for path, at in (walked.found.read if walked.found else {}).items()
                    },
                )
            log.save_verification(
                LastVerification(
                    at=now,
                    by=name_of(actor),
                    ok=result.ok,
                    mode=result.mode,
                    from_seq=result.from_seq,
                    events_checked=result.events_checked,
                    first_broken_seq=result.first_broken_seq,
                    reason=result.reason,
                ),
                passed,
            )
            self.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.AUDIT_VERIFY,
                    details={
                        "ok": result.ok,
                        "mode": result.mode,
                        "from_seq": result.from_seq,
                        "events_checked": result.events_checked,
                        "first_broken_seq": result.first_broken_seq,
                    },
                ),
            )
        # The verification's own checkpoint was witnessed after the commit above.
        if self._home_failures() > home_failures and self.witness is not None:
            error = self.witness.failures[self.witness.home.name].last_error
            result = replace(
                result,
                notes=(
                    *result.notes,
                    f"this verification's checkpoint could not be written to the witness "
                    f"{self.witness.home.path}: {error}",
                ),
            )
        return result

    def last_verification(self, *, actor: Who) -> LastVerification | None:
        """The most recent verification's outcome (passed or failed, when, by whom, which
        mode), read from one row: what the /audit page shows, instead of verifying on every
        visit. Not audited: it reads no event, only the status the verification recorded."""
        self.guard.check(actor, Action.AUDIT_VERIFY)
        with self.db.read() as session:
            return AuditLog(session).last_verification()

    def _walk_all(self, log: AuditLog) -> _Walked:
        """The full mode's read part: re-hash every event up to the head read now. One pass
        over the events and one over each witness file."""
        head_seq, head_hash = log.head()
        signatures = SignatureCache(self.signer)
        found = read_witness(self.witness, signatures) if self.witness else None
        checkpoints = log.checkpoints()
        # The walk keeps the hashes at every witnessed or checkpointed seq: no query each.
        wanted = {cp.seq for cp in checkpoints}
        wanted |= {seq for seq, _ in found.entries} if found else set()
        walk = HashesAt(log.events_between(0, head_seq), wanted)
        result = verify_chain(walk)
        walked_all = result.ok
        problems: list[str] = []
        first_seq: list[int] = []
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
        if not result.ok:
            problems.append(result.reason or "broken")
            first_seq.append(result.first_broken_seq or 0)
        notes: list[str] = []
        if found is not None and self.witness is not None:
            hashes: dict[int, str | None] = {seq: walk.hashes.get(seq) for seq, _ in found.entries}
            if not walked_all:  # the walk stopped at a broken event: query the rest
                for seq in {seq for seq, _ in found.entries} - walk.hashes.keys():
                    hashes[seq] = log.hash_at(seq)
            compared = self._compare(
                found, walk.last_seq if walked_all else log.last_seq(), hashes, checkpoints
            )
            problems += compared.problems
            notes += compared.notes
            if compared.first_seq is not None:
                first_seq.append(compared.first_seq)
        checked = 0
        if result.ok:
            checked, failure, at_seq = check_checkpoints(
                log, signatures, checkpoints, walk.hashes if walked_all else None
            )
            if failure is not None:
                problems.append(failure)
                first_seq.append(at_seq)
        notes += self._sink_notes()
        newest = found.newest if found else None
        verified = ChainVerification(
            not problems,
            result.events_checked,
            min(first_seq, default=None) if problems else None,
            problems[0] if problems else None,
            last_hash=result.last_hash if not problems else None,
            checkpoints_checked=checked,
            problems=tuple(problems),
            notes=tuple(notes),
            witness_entries=len(found.entries) if found else 0,
            witness_seq=newest.seq if newest else None,
            mode=FULL,
            from_seq=0,
        )
        return _Walked(
            verified, head_seq, head_hash, checkpoints, found, newest.seq if newest else 0
        )

    def _walk_from(self, log: AuditLog, point: VerifiedPoint) -> _Walked:
        """The incremental mode's read part (see ``verify``): event #P's stored hash, the
        events after #P, the checkpoints at or after #P, the witness lines appended since
        the last successful verification. A handful of indexed reads plus the new events."""
        head_seq, head_hash = log.head()
        signatures = SignatureCache(self.signer)
        since = {path: WitnessPosition(*at) for path, at in point.witness_read.items()}
        found = read_witness(self.witness, signatures, since) if self.witness else None
        witnessed = {seq for seq, _ in found.entries} if found else set()
        # New witness lines name checkpoints at or after #P (the last verification's own is
        # at #P); an older one (a sink catching up) needs the database's row at its seq.
        checkpoints = log.checkpoints(since=min(witnessed | {point.seq}))
        problems: list[str] = []
        first_seq: list[int] = []
        held = log.hash_at(point.seq)
        if held != point.hash:
            now = f"has hash {held[:12]}…" if held else "is missing"
            problems.append(
                f"event #{point.seq}, where the verification by {point.by} at "
                f"{point.at.isoformat()} ended, {now}; it had {point.hash[:12]}… then: the "
                "already verified part of the chain was rewritten or cut"
            )
            first_seq.append(point.seq)
        wanted = {cp.seq for cp in checkpoints} | witnessed
        walk = HashesAt(log.events_between(point.seq, head_seq), wanted)
        result = verify_chain(walk, after_seq=point.seq, after_hash=point.hash)
        walked_all = result.ok
        end = point.seq + result.events_checked
        if result.ok and (end != head_seq or (result.last_hash or point.hash) != head_hash):
            result = ChainVerification(
                False,
                result.events_checked,
                min(end, head_seq) + 1,
                f"log truncated or head altered: the head records {head_seq} events, {end} found",
            )
        if not result.ok:
            problems.append(result.reason or "broken")
            first_seq.append(result.first_broken_seq or 0)
        # Hashes at the seqs the checkpoints and witness name: from the walk after #P, one
        # query each at or before #P (normally only #P itself, already read).
        hashes: dict[int, str | None] = dict(walk.hashes)
        for seq in wanted:
            if seq == point.seq:
                hashes[seq] = held
            elif seq < point.seq or (not walked_all and seq not in hashes):
                hashes[seq] = log.hash_at(seq)
        notes: list[str] = []
        known = max(found.newest.seq if found and found.newest else 0, point.witness_seq or 0)
        if found is not None and self.witness is not None:
            # The events actually stored (one indexed max): a cut below #P leaves none
            # after it to walk, so the walk's end would say nothing about it.
            compared = self._compare(found, log.last_seq(), hashes, checkpoints, known)
            problems += compared.problems
            notes += compared.notes
            if compared.first_seq is not None:
                first_seq.append(compared.first_seq)
        checked = 0
        if result.ok:
            exact = {seq: h for seq, h in hashes.items() if h is not None}
            checked, failure, at_seq = check_checkpoints(log, signatures, checkpoints, exact)
            if failure is not None:
                problems.append(failure)
                first_seq.append(at_seq)
        notes += self._sink_notes()
        verified = ChainVerification(
            not problems,
            result.events_checked,
            min(first_seq, default=None) if problems else None,
            problems[0] if problems else None,
            last_hash=(result.last_hash or point.hash) if not problems else None,
            checkpoints_checked=checked,
            problems=tuple(problems),
            notes=tuple(notes),
            witness_entries=len(found.entries) if found else 0,
            witness_seq=known or None,
            mode=INCREMENTAL,
            from_seq=point.seq,
        )
        return _Walked(verified, head_seq, head_hash, checkpoints, found, known)

    def _compare(
        self,
        found: WitnessRead,
        db_last_seq: int,
        hashes: dict[int, str | None],
        checkpoints: list[Checkpoint],
        known_seq: int = 0,
    ) -> WitnessComparison:
        """The witness comparison, fed from the chain walk (``hashes``: the database's hash
        at every witnessed seq, None where there is no such event)."""
        assert self.witness is not None
        return compare(
            found,
            home_path=str(self.witness.home.path),
            db_last_seq=db_last_seq,
            db_hash_at=hashes,
            db_checkpoints={cp.seq: cp for cp in checkpoints},
            known_seq=known_seq,
        )

    def _home_failures(self) -> int:
        if self.witness is None:
            return 0
        failed = self.witness.failures.get(self.witness.home.name)
        return failed.count if failed else 0

    def _sink_notes(self) -> list[str]:
        """Witness writes that failed in this process (a sink down, the home file unwritable)."""
        if self.witness is None:
            return []
        return [
            f"witness {name} failed {f.count} time(s) since this process started; last: "
            f"{f.last_error}"
            for name, f in self.witness.failures.items()
        ]

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
        count_upto: int | None = None,
    ) -> AuditPage:
        """Read events (oldest first), filtered by action, case, acting user (``by``) and time
        (``since`` inclusive, ``until`` exclusive). A person signed in to the server sees only
        their own organisation's events. Reading the log is itself audited.

        ``count_upto``: stop counting the matching events there (``AuditPage.capped`` says
        the total is then a lower bound). An exact count reads every matching row, seconds
        on a 10M-event log; a page shown to a person needs only "more than N"."""
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
            total = log.count_matching(**filters, upto=count_upto)
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
        return AuditPage(found, total, capped=count_upto is not None and total >= count_upto)


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
class _Walked:
    """What the read part of a verification found: the result up to the head it read
    (``head_seq``, ``head_hash``), the checkpoints it checked (the witness is caught up with
    them when it passed), the witness read, and the newest seq the witness is known to hold
    (this read's entries or, incrementally, the last verification's)."""

    result: ChainVerification
    head_seq: int
    head_hash: str
    checkpoints: list[Checkpoint]
    found: WitnessRead | None
    witness_known: int


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    total: int  # events matching the filter, before limit and offset
    capped: bool = False  # counting stopped at ``total``: more may match


def _with_tail(
    result: ChainVerification,
    log: AuditLog,
    head_seq: int,
    head_hash: str,
    now_seq: int,
    now_hash: str,
) -> ChainVerification:
    """``result`` (the chain verified up to ``head_seq``) extended by the events appended
    while it was walked, checked under the head's lock: they must continue the chain from
    ``head_hash`` and end exactly at the head row (``now_seq``, ``now_hash``); a head that
    moved back, or events beyond it, is reported as the truncation check reports it."""
    tail = verify_chain(log.events_between(head_seq), after_seq=head_seq, after_hash=head_hash)
    events = result.events_checked + tail.events_checked
    end = result.from_seq + events  # the last seq verified (an incremental walk began later)
    reason: str | None = None
    first: int | None = None
    if not tail.ok:
        reason, first = tail.reason, tail.first_broken_seq
    elif end != now_seq or (now_seq and (tail.last_hash or head_hash) != now_hash):
        reason = f"log truncated or head altered: the head records {now_seq} events, {end} found"
        first = min(end, now_seq) + 1
    if reason is None:
        return replace(result, events_checked=events, last_hash=tail.last_hash or head_hash)
    return replace(
        result,
        ok=False,
        events_checked=events,
        first_broken_seq=first,
        reason=reason,
        last_hash=None,
        problems=(reason, *result.problems),
    )

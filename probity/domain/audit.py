"""Audit events and the hash chain.

Each event's hash is ``sha256(prev_hash || canonical(event))`` where ``canonical`` is compact
JSON with sorted keys and UTF-8 text. Changing, inserting, removing or reordering any event
breaks the chain from that event on; ``verify_chain`` names the first event that no longer
fits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

GENESIS_HASH = "0" * 64


class AuditAction(StrEnum):
    INIT = "system.init"
    BACKUP = "system.backup"  # probity backup: where the data and the keys went
    RESTORE = "system.restore"  # probity restore: a home recreated from a backup
    DOCTOR_REPAIR = "doctor.repair"  # probity doctor repaired the home: what it found and did
    GALLERY_CREATE = "gallery.create"
    GALLERY_MIGRATE_START = "gallery.migrate_start"  # a model migration begun
    GALLERY_MIGRATE_REFUSED = "gallery.migrate_refused"  # the new model refused a face
    GALLERY_MIGRATE_SWAP = "gallery.migrate_swap"  # the gallery moved to the new model
    MODEL_CALIBRATED = "model.calibrated"  # a deployment FMR table written (probity calibrate)
    MODEL_CALIBRATION_RESET = "model.calibration_reset"  # back to the model's shipped table
    ENROL = "enrolment.create"
    ENROL_BULK = "enrolment.bulk"
    SUBJECT_REMOVE = "subject.remove"
    CASE_OPEN = "case.open"
    CASE_AUTHORISATION = "case.authorisation"
    SEARCH = "search.run"
    SEARCH_DENIED = "search.denied"
    VERIFY = "search.verify"  # 1:1: one probe face against one named subject
    AUDIT_VERIFY = "audit.verify"
    AUDIT_READ = "audit.read"
    INDEX_REBUILD = "index.rebuild"
    ORG_CREATE = "organisation.create"
    USER_CREATE = "user.create"
    USER_APPROVE = "user.approve"
    USER_UPDATE = "user.update"
    KEY_CREATE = "apikey.create"
    KEY_REVOKE = "apikey.revoke"
    PASSWORD_SET = "user.password"
    PASSWORD_RESET_ISSUE = "user.password_reset_issued"
    PASSWORD_RESET = "user.password_reset"
    LOGIN = "session.login"
    LOGIN_FAILED = "session.login_failed"
    LOGOUT = "session.logout"
    CASE_PURGE = "case.purge"
    REVIEW = "review.record"
    LEAD = "lead.confirmed"
    REPORT_CASE = "report.case"
    REPORT_ANNUAL = "report.annual"
    JURISDICTION_EXCLUDE = "jurisdiction.exclude"  # a jurisdiction rule added
    JURISDICTION_LIFT = "jurisdiction.lift"  # a jurisdiction rule removed (purged stays purged)
    JURISDICTION_PURGE = "jurisdiction.purge"  # the purge run and the erasures it led to
    RETENTION_SWEEP = "retention.sweep"  # a sweep that erased records (or was asked for)
    ENROLMENT_ERASE = "enrolment.erase"  # some of a subject's enrolments erased, not the subject
    OBJECTION_RECORD = "objection.record"  # a suppression template stored (no biometrics)
    OBJECTION_APPLIED = "objection.applied"  # the gallery scan and the erasures it led to
    ENROL_REFUSED_OBJECTION = "enrolment.refused_objection"  # a face on the suppression list
    RIGHTS_FILE = "rights.file"  # a rights request filed (kind, receipt, deadline)
    RIGHTS_EXTEND = "rights.extend"  # the deadline extended once, with the reason
    RIGHTS_CLOSE = "rights.close"  # closed or refused: outcome and handling time
    RIGHTS_PHOTO_READ = "rights.photo_read"  # an officer looked at a request's photo
    RIGHTS_PHOTO_DELETED = "rights.photo_deleted"  # its photo and key destroyed at closing
    RIGHTS_EXPORT = "rights.export"  # an access export made (counts and digest, no images)
    RIGHTS_PHOTO_LOOKUP = "rights.photo_lookup"  # a request's photo compared with galleries
    RIGHTS_FORGET = "rights.forget"  # contact details of long-closed requests blanked


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What a service asks to have recorded; the audit service adds sequence, time and hashes.

    ``details`` must hold no biometric data: probe digests, ids and scores only.
    """

    actor: str
    action: AuditAction
    organisation: str | None = None
    case_reference: str | None = None
    galleries: tuple[str, ...] = ()
    subject_ids: tuple[str, ...] = ()
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    at: datetime
    actor: str
    organisation: str | None
    action: str
    case_reference: str | None
    galleries: tuple[str, ...]
    subject_ids: tuple[str, ...]
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def canonical(self) -> bytes:
        return canonical_bytes(
            seq=self.seq,
            at=self.at,
            actor=self.actor,
            organisation=self.organisation,
            action=self.action,
            case_reference=self.case_reference,
            galleries=self.galleries,
            subject_ids=self.subject_ids,
            details=self.details,
        )


def canonical_bytes(
    *,
    seq: int,
    at: datetime,
    actor: str,
    organisation: str | None,
    action: str,
    case_reference: str | None,
    galleries: Iterable[str],
    subject_ids: Iterable[str],
    details: Mapping[str, Any],
) -> bytes:
    """The exact bytes that are hashed for one event (timestamps as ISO 8601 in UTC)."""
    body = {
        "seq": seq,
        "at": at.isoformat(),
        "actor": actor,
        "organisation": organisation,
        "action": action,
        "case": case_reference,
        "galleries": list(galleries),
        "subjects": list(subject_ids),
        "details": details,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


CHECKPOINT_EVERY = 50
"""A signed checkpoint is written every this many events, and at every verification."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    public_key: str
    signature: bytes

    def message(self) -> bytes:
        return checkpoint_message(self.seq, self.hash, self.at)


def checkpoint_message(seq: int, event_hash: str, at: str) -> bytes:
    """The bytes a checkpoint signs."""
    return f"probity-audit-checkpoint|{seq}|{event_hash}|{at}".encode()


FULL = "full"
"""Verification mode: re-hash every event from the first."""
INCREMENTAL = "incremental"
"""Verification mode: re-hash only the events after the last successful verification's end
(see ``VerifiedPoint``); what it does not prove is in services/audit.py and docs/audit.md."""


@dataclass(frozen=True, slots=True)
class VerifiedPoint:
    """Where the last successful verification ended: the chain up to event ``seq`` was found
    intact and event ``seq`` had hash ``hash``. ``witness_read`` says how far each witness
    file was read then ({path: (bytes, lines)}); ``witness_seq`` the newest entry seen."""

    seq: int
    hash: str
    at: datetime
    by: str
    witness_seq: int | None = None
    witness_read: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LastVerification:
    """The outcome of the most recent verification, passed or failed (what the /audit page
    shows instead of verifying on every visit)."""

    at: datetime
    by: str
    ok: bool
    mode: str
    from_seq: int
    events_checked: int
    first_broken_seq: int | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class ChainVerification:
    ok: bool
    events_checked: int
    first_broken_seq: int | None = None
    reason: str | None = None
    last_hash: str | None = None  # hash of the last event checked, when the chain is intact
    checkpoints_checked: int = 0
    problems: tuple[str, ...] = ()  # every failure found (``reason`` is the first)
    notes: tuple[str, ...] = ()  # not failures: a witness behind, a failing witness sink
    witness_entries: int = 0  # witness entries checked against the database
    witness_seq: int | None = None  # the newest event a witness entry names
    mode: str = "full"  # FULL or INCREMENTAL: what this verification re-hashed
    from_seq: int = 0  # it re-hashed the events after this one (0: from the first)


def verify_chain(
    events: Iterable[AuditEvent], *, after_seq: int = 0, after_hash: str = GENESIS_HASH
) -> ChainVerification:
    """Walk the events in sequence order; report the first that does not fit the chain.
    ``after_seq`` / ``after_hash``: the events continue a chain already verified up to that
    event (the tail appended while a verification read the rest)."""
    prev = after_hash
    expected_seq = after_seq + 1
    count = 0
    for event in events:
        count += 1
        if event.seq != expected_seq:
            return ChainVerification(
                False, count, event.seq, f"sequence gap: expected {expected_seq}, found {event.seq}"
            )
        if event.prev_hash != prev:
            return ChainVerification(
                False, count, event.seq, "prev_hash does not equal the previous event's hash"
            )
        if chain_hash(prev, event.canonical()) != event.hash:
            return ChainVerification(
                False, count, event.seq, "content does not match its hash (event altered)"
            )
        prev = event.hash
        expected_seq += 1
    return ChainVerification(True, count, last_hash=prev if count else None)

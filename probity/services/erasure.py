"""Erasure of subjects: the one path every deletion of a person's data takes (a privacy
officer's erasure, an objection, the retention sweeper, a jurisdiction purge, a curator's
removal), so that each reaches every copy the same way and leaves the same proof.

What one erasure does, in this order (it finishes or rolls back, even across a crash):

1. One database transaction deletes the subject's data key (crypto-shredding), templates,
   enrolments and the subject row, writes an **erasure receipt** (no biometric data: the
   reference the gallery knew them by, counts, cause, reason) and the audit event, and
   rotates the key-encryption keys (``Vault.rotate``, the KEK tree): the erased subjects'
   buckets get new KEKs (the other data keys of those buckets are re-wrapped, about N /
   4,096 each) and every bucket KEK is re-sealed under a new root, so a copy of the database
   taken before the erasure (a backup) no longer opens the erased subject's key with the
   current keys either. In the same transaction it journals what is left to
   do outside the database (``services/erasure_work.py``).
2. After the commit, the journal row is completed: every index file catches up with the
   template log (the erased vectors go) and is resealed under the new epoch, the sealed
   image blobs are deleted, the retired key-encryption key files are shredded, and SQLite's
   write-ahead log is checkpointed and truncated (``secure_delete`` is on, so freed pages
   are zeroed). A crash before that is finished at the next start of any process, by the
   next retention sweep, or by ``probity doctor``.

Face crops and probe images shown by the web pages are made per response and sent
``no-store``; nothing about a subject is cached on disk, so there is no thumbnail to purge.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from probity.domain.accounts import Action, Resource
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.gallery import Gallery
from probity.errors import InvalidInput, SubjectNotFound
from probity.index.factory import erasure_statement
from probity.services.access import AccessGuard, Who, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.erasure_work import ErasureWork, PendingErasure, record_work
from probity.services.galleries import GalleryService
from probity.services.indexes import IndexSlot
from probity.storage.db import Database
from probity.storage.jobs import Jobs
from probity.storage.pruning import forget_subject
from probity.storage.repositories import Enrolments, Subjects, Templates
from probity.storage.tables import ErasureReceiptRow, GalleryRow, SubjectRow
from probity.storage.vault import Vault

if TYPE_CHECKING:
    from probity.config import MilvusSettings

MIN_REASON = 3

IndexStatement = Callable[[Gallery, datetime], str]
"""What the index erasure of a gallery's templates guarantees, as the receipt states it
(``index_statement_for``): the gallery, the erasure's time -> one paragraph."""


def index_statement_for(backend: str, milvus: MilvusSettings | None) -> IndexStatement:
    """The ``IndexStatement`` of a home whose indexes are on ``backend`` (with ``milvus``,
    the home's Milvus settings). The statement names the index of the gallery's own model
    (``IndexSlot.of``); the text itself is the index layer's (``erasure_statement``), so it
    says only what that backend's code does."""

    def statement(gallery: Gallery, at: datetime) -> str:
        return erasure_statement(backend, milvus, at=at, slot=IndexSlot.of(gallery).name)

    return statement


class ErasureCause(StrEnum):
    """Why a subject was erased (recorded on the receipt and in the audit event)."""

    REQUEST = "request"  # a data subject's erasure request
    OBJECTION = "objection"  # an objection (opt-out by face) matched them
    RETENTION = "retention"  # the retention sweeper: their records were due
    JURISDICTION = "jurisdiction"  # a jurisdiction rule excludes their records
    REMOVAL = "removal"  # a curator's or privacy officer's decision


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """Proof of one erasure. ``number`` is what the person or the officer is given."""

    number: str
    at: datetime
    actor: str
    organisation: str | None
    gallery: str
    subject_id: str
    subject_reference: str
    cause: ErasureCause
    reason: str
    request_id: str | None
    enrolments: int
    templates: int
    blobs: int
    index_vectors: int
    audit_seq: int
    index_statement: str | None = None
    """What the index erasure guarantees for the home's backend (``IndexStatement``);
    None on receipts written before it was recorded (migration 0018)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "receipt": self.number,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "organisation": self.organisation,
            "gallery": self.gallery,
            "subject_id": self.subject_id,
            "subject_reference": self.subject_reference,
            "cause": self.cause.value,
            "reason": self.reason,
            "request_id": self.request_id,
            "enrolments": self.enrolments,
            "templates": self.templates,
            "blobs": self.blobs,
            "index_vectors_removed": self.index_vectors,
            "audit_seq": self.audit_seq,
            "index_statement": self.index_statement,
        }


def new_receipt_number(prefix: str, at: datetime) -> str:
    """``ER-2026-7F3A9C21D4``: a prefix, the year, and 40 random bits (no sequence, so a
    receipt says nothing about how many others exist)."""
    return f"{prefix}-{at.year}-{secrets.token_hex(5).upper()}"


def store_receipt(session: Session, receipt: ErasureReceipt) -> None:
    """Write the receipt in the erasure's own transaction (it outlives everything else)."""
    session.add(
        ErasureReceiptRow(
            id=receipt.number,
            at=receipt.at,
            actor=receipt.actor,
            organisation=receipt.organisation,
            gallery=receipt.gallery,
            subject_id=receipt.subject_id,
            subject_reference=receipt.subject_reference,
            cause=receipt.cause.value,
            reason=receipt.reason,
            request_id=receipt.request_id,
            enrolments=receipt.enrolments,
            templates=receipt.templates,
            blobs=receipt.blobs,
            index_vectors=receipt.index_vectors,
            audit_seq=receipt.audit_seq,
            index_statement=receipt.index_statement,
        )
    )


def _receipt(row: ErasureReceiptRow) -> ErasureReceipt:
    return ErasureReceipt(
        number=row.id,
        at=row.at,
        actor=row.actor,
        organisation=row.organisation,
        gallery=row.gallery,
        subject_id=row.subject_id,
        subject_reference=row.subject_reference,
        cause=ErasureCause(row.cause),
        reason=row.reason,
        request_id=row.request_id,
        enrolments=row.enrolments,
        templates=row.templates,
        blobs=row.blobs,
        index_vectors=row.index_vectors,
        audit_seq=row.audit_seq,
        index_statement=row.index_statement,
    )


class ErasureService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        galleries: GalleryService,
        vault: Vault,
        work: ErasureWork,
        guard: AccessGuard,
        index_statement: IndexStatement,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.galleries = galleries
        self.vault = vault
        self.work = work  # completes what each erasure journals (services/erasure_work.py)
        self.guard = guard
        # What the receipt says the index erasure guarantees (the home's index backend).
        self.index_statement = index_statement

    def erase(
        self,
        *,
        actor: Who,
        gallery: str,
        reference: str,
        reason: str,
        cause: ErasureCause = ErasureCause.REMOVAL,
        request_id: str | None = None,
    ) -> ErasureReceipt:
        """Erase the subject ``reference`` of ``gallery`` (needs SUBJECT_REMOVE on it)."""
        target = self.galleries.get(gallery, actor=actor, action=Action.SUBJECT_REMOVE)
        with self.db.read() as session:
            subject = Subjects(session).find(target.id, reference)
        if subject is None:
            raise SubjectNotFound(f"no subject '{reference}' in gallery '{gallery}'")
        return self.erase_subjects(
            actor=actor,
            subject_ids=[subject.id],
            reason=reason,
            cause=cause,
            request_id=request_id,
        )[0]

    def erase_subjects(
        self,
        *,
        actor: Who,
        subject_ids: Iterable[str],
        reason: str,
        cause: ErasureCause,
        request_id: str | None = None,
    ) -> list[ErasureReceipt]:
        """Erase several subjects (the sweeper, a purge, an objection matching several
        records): one receipt each, one key rotation and one index rewrite per gallery for
        the lot. Access is checked per subject's gallery. Unknown ids are skipped (already
        erased by someone else: erasure is idempotent).

        Once the transaction has committed the erasure stands: its journal row is completed
        at once (indexes, blobs, retired key files, WAL). If that fails the error is raised
        and the row stays, completed by the next start, sweep or ``probity doctor``."""
        if len(reason.strip()) < MIN_REASON:
            raise InvalidInput("a reason for the erasure is required")
        wanted = list(dict.fromkeys(subject_ids))
        galleries: dict[str, Gallery] = {g.id: g for g in self.galleries.all()}
        receipts: list[ErasureReceipt] = []
        blobs: list[str] = []
        touched: set[str] = set()
        work: PendingErasure | None = None
        with self.db.transaction() as session:
            rows = (
                list(session.scalars(select(SubjectRow).where(SubjectRow.id.in_(wanted))))
                if wanted
                else []
            )
            for row in rows:
                target = galleries[row.gallery_id]
                self.guard.check(actor, Action.SUBJECT_REMOVE, Resource(target.organisation_id))
            for row in sorted(rows, key=lambda r: (r.gallery_id, r.reference)):
                target = galleries[row.gallery_id]
                receipt, subject_blobs = self._erase_one(
                    session, actor, target, row, reason.strip(), cause, request_id
                )
                receipts.append(receipt)
                blobs.extend(subject_blobs)
                touched.add(target.id)
            if rows:
                # Only the erased subjects' buckets of the KEK tree (storage/vault.py).
                epoch = self.vault.rotate(
                    session, buckets=self.vault.subject_buckets(r.id for r in rows)
                )
                work = record_work(
                    session, at=self.clock(), blobs=blobs, galleries=touched, kek_floor=epoch
                )
        if work is not None:
            self.work.finish(work)
        return receipts

    def _erase_one(
        self,
        session: Session,
        actor: Who,
        target: Gallery,
        row: SubjectRow,
        reason: str,
        cause: ErasureCause,
        request_id: str | None,
    ) -> tuple[ErasureReceipt, list[str]]:
        now = self.clock()
        enrolments = Enrolments(session)
        blobs = [blob for _, blob in enrolments.for_subject(row.id)]
        templates = Templates(session)
        template_ids = [int(t) for t in templates.ids_for_subject(row.id)]
        subjects = Subjects(session)
        enrolments.delete_for_subject(row.id)
        templates.delete_for_subject(row.id)
        subjects.delete(row.id)  # the data key first: the shredding
        # A model migration's records of them and any suppression hold go too.
        forget_subject(session, row.id)
        # Bulk-upload reports name refused rows by subject reference: those go too.
        Jobs(session).forget_subject(target.id, row.reference)
        number = new_receipt_number("ER", now)
        event = self.audit.record(
            session,
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=AuditAction.SUBJECT_REMOVE,
                galleries=(target.name,),
                subject_ids=(row.id,),
                details={
                    "receipt": number,
                    "reference": row.reference,
                    "cause": cause.value,
                    "reason": reason,
                    "request_id": request_id,
                    "enrolments": len(blobs),
                    "templates": len(template_ids),
                },
            ),
        )
        receipt = ErasureReceipt(
            number=number,
            at=now,
            actor=name_of(actor),
            organisation=organisation_of(actor),
            gallery=target.name,
            subject_id=row.id,
            subject_reference=row.reference,
            cause=cause,
            reason=reason,
            request_id=request_id,
            enrolments=len(blobs),
            templates=len(template_ids),
            blobs=len(blobs),
            # The index holds one vector per template; its catch-up removes them all.
            index_vectors=len(template_ids),
            audit_seq=event.seq,
            index_statement=self.index_statement(target, now),
        )
        store_receipt(session, receipt)
        return receipt, blobs

    def erase_enrolments(
        self,
        *,
        actor: Who,
        enrolment_ids: Iterable[str],
        reason: str,
        cause: ErasureCause,
        request_id: str | None = None,
    ) -> list[ErasureReceipt]:
        """Erase some enrolments (the retention sweeper, a jurisdiction purge: rules about
        records, not people). A subject left with none is erased whole (``erase_subjects``);
        one that keeps some loses the others' rows, templates, blobs and index vectors, is
        re-keyed (so backups of what went cannot be opened with the current keys) and gets a
        receipt of the same shape, audited as ``enrolment.erase``. Access is checked per
        enrolment's gallery (SUBJECT_REMOVE); ids already gone are skipped (idempotent).
        The work is in ``services/partial_erasure.py``."""
        # Imported here: partial_erasure uses this module's receipt types.
        from probity.services.partial_erasure import erase_enrolments

        return erase_enrolments(
            self,
            actor=actor,
            enrolment_ids=enrolment_ids,
            reason=reason,
            cause=cause,
            request_id=request_id,
        )

    def receipt(self, number: str, *, actor: Who) -> ErasureReceipt:
        """One receipt by number (for privacy officers and the local operator), within the
        actor's organisation (see ``receipts``); another organisation's reads as unknown."""
        self.guard.check(actor, Action.RIGHTS_HANDLE)
        with self.db.read() as session:
            stmt = _scoped(select(ErasureReceiptRow), actor).where(ErasureReceiptRow.id == number)
            row = session.scalars(stmt).first()
            if row is None:
                raise SubjectNotFound(f"no erasure receipt '{number}'")
            return _receipt(row)

    def receipts(self, *, actor: Who, request_id: str | None = None) -> list[ErasureReceipt]:
        """Receipts, newest first; those of one rights request when ``request_id`` is set.
        A signed-in person sees their organisation's only (see ``_scoped``)."""
        self.guard.check(actor, Action.RIGHTS_HANDLE)
        with self.db.read() as session:
            stmt = _scoped(select(ErasureReceiptRow), actor)
            stmt = stmt.order_by(ErasureReceiptRow.at.desc())
            if request_id is not None:
                stmt = stmt.where(ErasureReceiptRow.request_id == request_id)
            return [_receipt(r) for r in session.scalars(stmt)]


def _scoped(stmt: Select[Any], actor: Who) -> Select[Any]:
    """Receipts ``actor`` may see: those of galleries their organisation holds, and of the
    deployment's shared galleries those their organisation's people made (the receipt names
    the erasing organisation). The local operator sees every receipt. A receipt whose gallery
    is gone is the local operator's only."""
    if isinstance(actor, str):
        return stmt
    owner = GalleryRow.organisation_id
    return stmt.join(GalleryRow, GalleryRow.name == ErasureReceiptRow.gallery).where(
        or_(
            owner == actor.organisation_id,
            and_(owner.is_(None), ErasureReceiptRow.organisation == actor.organisation_name),
        )
    )

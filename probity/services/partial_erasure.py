"""Erasing some of a subject's enrolments while the subject stays: the retention sweeper
(each enrolment has its own ``retention_until``) and a jurisdiction purge (a rule is about
where a record was collected, not about the person). Called as
``ErasureService.erase_enrolments``; it reaches every copy as a whole-subject erasure does
and leaves the same receipt.

Why the subject is re-keyed: a subject's images and templates share one data key. Deleting
an enrolment's blob is not enough, because a backup of the blob store would still open with
that key, which the subject keeps. So the subject gets a new data key, the enrolments that
stay are sealed again under it (new image blobs, re-sealed templates), and the old key is
destroyed with the row's old value. Then the key-wrapping key is rotated, as after every
erasure, so an old copy of the database cannot unwrap anything with the current keys.
Cost: one decrypt and one encrypt of each *remaining* image of the subject (a few).

The erased blobs and the superseded copies of what stays are journalled in the erasing
transaction with the new epoch, and deleted after the commit with the index catch-up and the
retired key files, as for a whole erasure (``services/erasure_work.py``): a crash after the
commit is finished at the next start.

A subject left with no enrolment is erased whole through ``erase_subjects`` (its usual
receipt, ``subject.remove`` in the audit log). For the subjects that keep something, the
decision is taken again inside the erasing transaction (rows locked), so an enrolment erased
by someone else meanwhile is neither counted twice nor missed. One window stays open: an
enrolment added to a subject in the moment between the check and ``erase_subjects`` goes
with the subject (too much erased, never too little; the curator can enrol it again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from probity.domain.accounts import Action, Resource
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.gallery import Gallery
from probity.domain.ids import new_id
from probity.errors import InvalidInput, ProbityError
from probity.services.access import Who, name_of, organisation_of
from probity.services.erasure_work import PendingErasure, record_work
from probity.storage.pruning import EnrolmentPruning, HeldEnrolment
from probity.storage.repositories import Subjects
from probity.storage.vault import Vault

if TYPE_CHECKING:
    from probity.services.erasure import ErasureCause, ErasureReceipt, ErasureService

log = logging.getLogger("probity.erasure")


def erase_enrolments(
    service: ErasureService,
    *,
    actor: Who,
    enrolment_ids: Iterable[str],
    reason: str,
    cause: ErasureCause,
    request_id: str | None = None,
) -> list[ErasureReceipt]:
    """See ``ErasureService.erase_enrolments``."""
    from probity.services.erasure import MIN_REASON

    if len(reason.strip()) < MIN_REASON:
        raise InvalidInput("a reason for the erasure is required")
    wanted = list(dict.fromkeys(enrolment_ids))
    if not wanted:
        return []
    galleries: dict[str, Gallery] = {g.id: g for g in service.galleries.all()}
    with service.db.read() as session:
        pruning = EnrolmentPruning(session)
        found = pruning.get_many(wanted)
        by_subject: dict[str, list[HeldEnrolment]] = {}
        for e in found:
            by_subject.setdefault(e.subject_id, []).append(e)
        whole = [
            sid
            for sid, targets in by_subject.items()
            if {e.id for e in pruning.of_subject(sid)} <= {e.id for e in targets}
        ]
    for e in found:  # every check before anything is erased
        service.guard.check(
            actor, Action.SUBJECT_REMOVE, Resource(galleries[e.gallery_id].organisation_id)
        )
    receipts = service.erase_subjects(
        actor=actor, subject_ids=whole, reason=reason, cause=cause, request_id=request_id
    )
    partial = {sid: targets for sid, targets in by_subject.items() if sid not in whole}
    if partial:
        done, emptied = _erase_parts(service, actor, galleries, partial, reason, cause, request_id)
        receipts += done
        if emptied:
            receipts += service.erase_subjects(
                actor=actor, subject_ids=emptied, reason=reason, cause=cause, request_id=request_id
            )
    return receipts


def _erase_parts(
    service: ErasureService,
    actor: Who,
    galleries: dict[str, Gallery],
    partial: dict[str, list[HeldEnrolment]],
    reason: str,
    cause: ErasureCause,
    request_id: str | None,
) -> tuple[list[ErasureReceipt], list[str]]:
    """One transaction for every subject that keeps some enrolments. Returns the receipts
    and the subjects found to have nothing left after all (for a whole erasure)."""
    receipts: list[ErasureReceipt] = []
    emptied: list[str] = []
    erased_blobs: list[str] = []
    superseded: list[str] = []
    written: list[str] = []
    touched: set[str] = set()
    work: PendingErasure | None = None
    try:
        with service.db.transaction() as session:
            pruning = EnrolmentPruning(session)
            for subject_id in sorted(partial):
                targets = pruning.get_many([e.id for e in partial[subject_id]], lock=True)
                if not targets:
                    continue  # erased meanwhile by someone else
                gone = {e.id for e in targets}
                kept = [e for e in pruning.of_subject(subject_id, lock=True) if e.id not in gone]
                if not kept:
                    emptied.append(subject_id)
                    continue
                new = _rekey(service.vault, session, pruning, subject_id, kept, superseded)
                written += new or []
                pruning.delete(targets)  # a migration's new templates too (logged for the index)
                gallery = galleries[targets[0].gallery_id]
                receipts.append(
                    _record(
                        service, session, actor, gallery, subject_id, targets, len(kept),
                        new is not None, reason.strip(), cause, request_id,
                    )
                )  # fmt: skip
                erased_blobs += [e.image_blob for e in targets]
                touched.add(gallery.id)
            if receipts:
                # The buckets of the subjects whose old data key was dropped (re-keyed).
                epoch = service.vault.rotate(
                    session, buckets=service.vault.subject_buckets(partial)
                )
                work = record_work(
                    session,
                    at=service.clock(),
                    blobs=erased_blobs + superseded,
                    galleries=touched,
                    kek_floor=epoch,
                )
    except BaseException:
        for blob in written:  # sealed under a key that was never committed
            service.vault.blobs.delete(blob)
        raise
    if work is not None:
        service.work.finish(work)
    return receipts, emptied


def _rekey(
    vault: Vault,
    session: Session,
    pruning: EnrolmentPruning,
    subject_id: str,
    kept: list[HeldEnrolment],
    superseded: list[str],
) -> list[str] | None:
    """Give the subject a new data key and seal what it keeps under it. Returns the new
    blob ids; the old blob ids are appended to ``superseded`` (deleted after the commit).

    Returns None, having changed nothing, when what the subject keeps cannot be read (a
    missing blob, a failed decryption): the erasure then goes ahead without re-keying (the
    erased records' rows, blobs and vectors still go; the audit event says
    ``rekeyed: false``), so one damaged record cannot hold up every erasure after it."""
    try:
        old = vault.subject_key(session, subject_id)
        opened = [(e, vault.get_image(old, subject_id, e.image_blob)) for e in kept]
        # Every template of the subject, not only the kept enrolments' own: a model
        # migration in progress holds a second one per enrolment, sealed under the same key.
        vectors = []
        for template_id in pruning.templates_of_subject(subject_id):
            sealed = pruning.sealed_vector(template_id)
            if sealed is not None:
                vectors.append((template_id, Vault.open_vector(old, subject_id, sealed)))
    except ProbityError as exc:
        log.warning("subject %s not re-keyed: %s", subject_id, exc.message)
        return None
    new, wrapped = vault.new_wrapped_key(session, subject_id)
    written: list[str] = []
    for e, image in opened:
        blob = new_id()
        vault.put_image(new, subject_id, blob, image)
        written.append(blob)
        superseded.append(e.image_blob)
        pruning.set_image_blob(e.id, blob)
    for template_id, vector in vectors:
        pruning.set_sealed_vector(template_id, Vault.seal_vector(new, subject_id, vector))
    pruning.set_wrapped_key(subject_id, wrapped)
    return written


def _record(
    service: ErasureService,
    session: Session,
    actor: Who,
    gallery: Gallery,
    subject_id: str,
    targets: list[HeldEnrolment],
    remaining: int,
    rekeyed: bool,
    reason: str,
    cause: ErasureCause,
    request_id: str | None,
) -> ErasureReceipt:
    """The ``enrolment.erase`` audit event and the receipt (no biometric data)."""
    from probity.services.erasure import ErasureReceipt, new_receipt_number, store_receipt

    now = service.clock()
    subject = Subjects(session).get_many([subject_id])[subject_id]
    number = new_receipt_number("ER", now)
    event = service.audit.record(
        session,
        AuditRecord(
            actor=name_of(actor),
            organisation=organisation_of(actor),
            action=AuditAction.ENROLMENT_ERASE,
            galleries=(gallery.name,),
            subject_ids=(subject_id,),
            details={
                "receipt": number,
                "reference": subject.reference,
                "cause": cause.value,
                "reason": reason,
                "request_id": request_id,
                "enrolment_ids": [e.id for e in targets],
                "enrolments": len(targets),
                "templates": len(targets),
                "remaining_enrolments": remaining,
                "rekeyed": rekeyed,
            },
        ),
    )
    receipt = ErasureReceipt(
        number=number,
        at=now,
        actor=name_of(actor),
        organisation=organisation_of(actor),
        gallery=gallery.name,
        subject_id=subject_id,
        subject_reference=subject.reference,
        cause=cause,
        reason=reason,
        request_id=request_id,
        enrolments=len(targets),
        templates=len(targets),  # one template per enrolment
        blobs=len(targets),
        index_vectors=len(targets),
        audit_seq=event.seq,
        index_statement=service.index_statement(gallery, now),
    )
    store_receipt(session, receipt)
    return receipt

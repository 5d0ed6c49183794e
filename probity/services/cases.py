"""Cases: every search happens inside one, with an offence category, a justification and a
legal authorisation (granted, or pending for at most 48 h)."""

from __future__ import annotations

from probity.domain.accounts import Action, Resource
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.case import Authorisation, AuthorisationStatus, Case
from probity.domain.ids import CaseId, new_id
from probity.errors import AlreadyExists, CaseNotFound, Conflict, InvalidInput
from probity.policy.cases import case_search_decision
from probity.policy.decision import Decision
from probity.services.access import AccessGuard, Who, name_of, organisation_id_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.storage.casework import StoredSearches
from probity.storage.db import Database
from probity.storage.repositories import Cases
from probity.storage.vault import Vault


class CaseService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        offences: list[str],
        guard: AccessGuard,
        vault: Vault,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.offences = offences
        self.guard = guard
        self.vault = vault

    def open(
        self,
        *,
        actor: Who,
        reference: str,
        offence: str,
        justification: str,
        authorisation: str | None,
        pending: bool = False,
        authority: str | None = None,
    ) -> Case:
        """Open a case. Exactly one of ``authorisation`` (its id: granted) or ``pending``.
        The case belongs to the opener's organisation and gets a data key for its probes."""
        self.guard.check(actor, Action.CASE_OPEN)
        reference = reference.strip()
        if not reference:
            raise InvalidInput("a case reference is required")
        if offence not in self.offences:
            raise InvalidInput(
                f"offence '{offence}' is not a configured category: {', '.join(self.offences)}"
            )
        if len(justification.strip()) < 10:
            raise InvalidInput("the justification must say why the search is needed")
        if bool(authorisation) == pending:
            raise InvalidInput("give either an authorisation id or 'pending', not both or neither")
        now = self.clock()
        case = Case(
            id=CaseId(new_id()),
            reference=reference,
            offence=offence,
            justification=justification.strip(),
            authorisation=Authorisation(
                status=AuthorisationStatus.PENDING if pending else AuthorisationStatus.GRANTED,
                requested_at=now,
                reference=authorisation,
                authority=authority,
            ),
            opened_at=now,
            opened_by=name_of(actor),
            organisation_id=organisation_id_of(actor),
        )
        with self.db.transaction() as session:
            cases = Cases(session)
            if cases.by_reference(reference) is not None:
                raise AlreadyExists(f"case '{reference}' already exists")
            _, wrapped = self.vault.new_case_key(session, case.id)
            cases.add(case, wrapped_probe_key=wrapped)
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.CASE_OPEN,
                    case_reference=reference,
                    details={
                        "offence": offence,
                        "justification": case.justification,
                        "authorisation_status": case.authorisation.status.value,
                        "authorisation": authorisation,
                        "authority": authority,
                    },
                ),
            )
        return case

    def get(
        self, reference: str, *, actor: Who | None = None, action: Action | None = None
    ) -> Case:
        """The case ``reference``; with ``actor``, only if they may take ``action`` (by
        default, read) on it. Another organisation's case reads as not found, so references
        do not leak across organisations."""
        with self.db.read() as session:
            case = Cases(session).by_reference(reference)
        if case is None or (actor is not None and not self.guard.sees(actor, case.organisation_id)):
            raise CaseNotFound(f"no case with reference '{reference}'")
        if actor is not None:
            self.guard.check(actor, action or Action.CASE_READ, Resource(case.organisation_id))
        return case

    def set_authorisation(
        self,
        *,
        actor: Who,
        reference: str,
        status: AuthorisationStatus,
        authorisation: str | None = None,
        authority: str | None = None,
    ) -> Case:
        """Record the outcome of an authorisation (granted needs its id).

        A rejection stops the case at once: in the same transaction its searches, their
        candidates and reviews and its probe rows are deleted (the audit log keeps the record
        that they happened, with digests and ids only), then the encrypted probe images are
        deleted from the blob store."""
        if status is AuthorisationStatus.GRANTED and not authorisation:
            raise InvalidInput("a granted authorisation needs its id")
        if status is AuthorisationStatus.PENDING:
            raise InvalidInput("an authorisation can be granted, rejected or expired, not pending")
        self.get(reference, actor=actor, action=Action.CASE_AUTHORISE)
        purged_blobs: list[str] = []
        with self.db.transaction() as session:
            cases = Cases(session)
            case = cases.by_reference(reference)
            if case is None:
                raise CaseNotFound(f"no case with reference '{reference}'")
            if case.authorisation.status is AuthorisationStatus.REJECTED:
                raise Conflict(f"case '{reference}' was rejected; a rejection is final")
            updated = Authorisation(
                status=status,
                requested_at=case.authorisation.requested_at,
                reference=authorisation or case.authorisation.reference,
                authority=authority or case.authorisation.authority,
            )
            cases.set_authorisation(case.id, updated)
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.CASE_AUTHORISATION,
                    case_reference=reference,
                    details={"status": status.value, "authorisation": updated.reference},
                ),
            )
            if status is AuthorisationStatus.REJECTED:
                searches, purged_blobs = StoredSearches(session).purge_case(case.id)
                self.audit.record(
                    session,
                    AuditRecord(
                        actor=name_of(actor),
                        organisation=organisation_of(actor),
                        action=AuditAction.CASE_PURGE,
                        case_reference=reference,
                        details={
                            "reason": "authorisation rejected",
                            "searches_deleted": searches,
                            "probes_deleted": len(purged_blobs),
                        },
                    ),
                )
        for blob in purged_blobs:
            self.vault.blobs.delete(blob)
        return Case(
            case.id,
            case.reference,
            case.offence,
            case.justification,
            updated,
            case.opened_at,
            case.opened_by,
            case.organisation_id,
        )

    def search_decision(self, case: Case) -> Decision:
        """Whether the case may search now, and why not (shown on case lists and pages; the
        search service applies the same rule)."""
        return case_search_decision(case, self.clock())

    def list(self, actor: Who | None = None) -> list[Case]:
        """Every case, or, for a server account, their organisation's."""
        if actor is not None:
            self.guard.check(actor, Action.CASE_READ)
        with self.db.read() as session:
            return Cases(session).all(
                None if actor is None or isinstance(actor, str) else actor.organisation_id
            )

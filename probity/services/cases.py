"""Cases: every search happens inside one, with an offence category, a justification and a
legal authorisation (granted, or pending for at most 48 h)."""

from __future__ import annotations

from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.case import Authorisation, AuthorisationStatus, Case
from probity.domain.ids import CaseId, new_id
from probity.errors import AlreadyExists, CaseNotFound, InvalidInput
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.storage.db import Database
from probity.storage.repositories import Cases


class CaseService:
    def __init__(
        self, *, db: Database, audit: AuditService, clock: Clock, offences: list[str]
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.offences = offences

    def open(
        self,
        *,
        actor: str,
        reference: str,
        offence: str,
        justification: str,
        authorisation: str | None,
        pending: bool = False,
        authority: str | None = None,
    ) -> Case:
        """Open a case. Exactly one of ``authorisation`` (its id: granted) or ``pending``."""
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
            opened_by=actor,
        )
        with self.db.transaction() as session:
            cases = Cases(session)
            if cases.by_reference(reference) is not None:
                raise AlreadyExists(f"case '{reference}' already exists")
            cases.add(case)
            self.audit.record(
                session,
                AuditRecord(
                    actor=actor,
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

    def get(self, reference: str) -> Case:
        with self.db.read() as session:
            case = Cases(session).by_reference(reference)
        if case is None:
            raise CaseNotFound(f"no case with reference '{reference}'")
        return case

    def set_authorisation(
        self,
        *,
        actor: str,
        reference: str,
        status: AuthorisationStatus,
        authorisation: str | None = None,
        authority: str | None = None,
    ) -> Case:
        """Record the outcome of a pending authorisation (granted needs its id)."""
        if status is AuthorisationStatus.GRANTED and not authorisation:
            raise InvalidInput("a granted authorisation needs its id")
        with self.db.transaction() as session:
            cases = Cases(session)
            case = cases.by_reference(reference)
            if case is None:
                raise CaseNotFound(f"no case with reference '{reference}'")
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
                    actor=actor,
                    action=AuditAction.CASE_AUTHORISATION,
                    case_reference=reference,
                    details={"status": status.value, "authorisation": updated.reference},
                ),
            )
        return Case(
            case.id,
            case.reference,
            case.offence,
            case.justification,
            updated,
            case.opened_at,
            case.opened_by,
        )

    def list(self) -> list[Case]:
        with self.db.read() as session:
            return Cases(session).all()

"""Jurisdiction rules: exclude a place, and the records collected there are refused at
enrolment, never returned by search, and erased by a purge.

Who may:

- a curator or privacy officer sets rules for their organisation's galleries;
- an admin, or the local operator (the CLI), sets deployment-wide rules, which bind every
  gallery, shared ones included (``policy.access`` rule 6);
- purging erases records, so it needs SUBJECT_REMOVE (curators, privacy officers, the local
  operator): an admin sets a deployment-wide rule, and each organisation's curator or
  privacy officer (or the local operator, for everything) runs the purge.

Where a rule applies (``policy.jurisdiction.binding``): a deployment-wide rule to every
gallery, an organisation's rule to that organisation's galleries. The same test is used at
enrolment, in search, when stored results are read back and by the purge, so what search
hides is exactly what the purge erases.

What the purge erases: the excluded *enrolments*, not the whole person. A rule is about where
a record was collected; the same subject's enrolment collected lawfully elsewhere stays. A
subject left with no enrolment is erased whole. Either way the erasure is the one erasure
path's (``ErasureService.erase_enrolments``), with a receipt for each subject.

Lifting a rule is allowed (a rule set by mistake, an order that was overturned), with a
reason, audited. It is not an undo: records already purged stay purged (their keys are
destroyed; nothing can bring them back), and it only ends the refusal at enrolment and lets
records that were hidden but not yet purged be returned by search again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from sqlalchemy.orm import Session

from probity.domain.accounts import Action, Resource
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.gallery import Enrolment, Gallery
from probity.domain.ids import GalleryId
from probity.domain.jurisdiction import JurisdictionRule
from probity.errors import AlreadyExists, InvalidInput, JurisdictionExcluded, NotFound
from probity.policy.jurisdiction import Exclusions, binding, normalise
from probity.services.access import AccessGuard, Who, name_of, organisation_id_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.erasure import ErasureCause, ErasureReceipt, ErasureService
from probity.services.galleries import GalleryService
from probity.storage.db import Database
from probity.storage.jurisdiction_rules import JurisdictionRules
from probity.storage.pruning import EnrolmentPruning, HeldEnrolment

MIN_REASON = 3

K = TypeVar("K")


class JurisdictionService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        galleries: GalleryService,
        erasure: ErasureService,
        guard: AccessGuard,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.galleries = galleries
        self.erasure = erasure
        self.guard = guard

    # -- the rules -----------------------------------------------------------------------------

    def exclude(
        self, *, actor: Who, code: str, reason: str, deployment_wide: bool = False
    ) -> JurisdictionRule:
        """Exclude records collected in ``code`` (and its subdivisions, for a country) from
        the actor's organisation's galleries, or from every gallery when ``deployment_wide``
        (admins; the local operator's rules are always deployment-wide). Takes effect at
        once for enrolment and search; ``purge`` erases what is already held."""
        organisation = self._scope(actor, deployment_wide)
        self.guard.check(actor, Action.JURISDICTION_RULE, Resource(organisation))
        normal = normalise(code)
        why = _reason(reason)
        rule = JurisdictionRule(
            code=normal,
            reason=why,
            created_at=self.clock(),
            created_by=name_of(actor),
            organisation_id=organisation,
        )
        with self.db.transaction() as session:
            rules = JurisdictionRules(session)
            if rules.get(normal, organisation) is not None:
                raise AlreadyExists(f"{normal} is already excluded ({_scope_label(rule)})")
            rules.add(rule)
            held = len(self._held(session, Exclusions([rule]), self.galleries.all()))
            self._audit(
                session,
                actor,
                AuditAction.JURISDICTION_EXCLUDE,
                {**rule.as_dict(), "held_records_excluded": held},
            )
        return rule

    def lift(
        self, *, actor: Who, code: str, reason: str, deployment_wide: bool = False
    ) -> JurisdictionRule:
        """Remove a rule (with a reason, audited). Records already purged stay purged: this
        ends the refusal at enrolment, and records hidden but not yet purged are returned by
        search again. Raises NotFound when there is no such rule in that scope."""
        organisation = self._scope(actor, deployment_wide)
        self.guard.check(actor, Action.JURISDICTION_RULE, Resource(organisation))
        normal = normalise(code)
        why = _reason(reason)
        with self.db.transaction() as session:
            rules = JurisdictionRules(session)
            rule = rules.get(normal, organisation)
            if rule is None:
                scope = "deployment-wide" if organisation is None else "for your organisation"
                raise NotFound(f"no jurisdiction rule {normal} {scope}")
            rules.delete(normal, organisation)
            self._audit(
                session,
                actor,
                AuditAction.JURISDICTION_LIFT,
                {**rule.as_dict(), "lift_reason": why},
            )
        return rule

    def rules(self, *, actor: Who) -> list[JurisdictionRule]:
        """The rules that bind the actor's organisation's galleries (deployment-wide ones and
        its own); every rule for the local operator."""
        self.guard.check(actor, Action.JURISDICTION_RULE, Resource(organisation_id_of(actor)))
        with self.db.read() as session:
            found = JurisdictionRules(session).all()
        if isinstance(actor, str):
            return found
        return binding(found, actor.organisation_id)

    def exclusions(self) -> Exclusions:
        """Every rule in force, for enrolment, search and results to ask (no access check:
        it decides what is withheld, and shows nothing)."""
        with self.db.read() as session:
            return Exclusions(JurisdictionRules(session).all())

    def withheld(
        self,
        enrolments: Mapping[K, Enrolment],
        galleries: Mapping[GalleryId, Gallery],
        *,
        exclusions: Exclusions | None = None,
    ) -> set[K]:
        """The keys of ``enrolments`` (by template id in search, by enrolment id in stored
        results) whose records a rule excludes: left out of every candidate list, at any
        rank. ``galleries`` by id, for each enrolment's organisation. One query, unless the
        caller passes the ``exclusions`` it already read (``exclusions()``)."""
        if not enrolments:
            return set()
        if exclusions is None:
            exclusions = self.exclusions()
        if not exclusions:
            return set()
        return {
            key
            for key, e in enrolments.items()
            if exclusions.hides(e.provenance.jurisdiction, _owner(galleries.get(e.gallery_id)))
        }

    def check_enrolment(self, gallery: Gallery, code: str) -> None:
        """Raise JurisdictionExcluded when a record collected in ``code`` may not be enrolled
        into ``gallery``."""
        rule = self.exclusions().rule_for(code, gallery.organisation_id)
        if rule is not None:
            raise JurisdictionExcluded(
                f"records collected in {code} are excluded from gallery '{gallery.name}' by "
                f"the jurisdiction rule {rule.code} ({_scope_label(rule)}): {rule.reason}"
            )

    # -- the purge -----------------------------------------------------------------------------

    def held(self, *, actor: Who) -> list[HeldEnrolment]:
        """Enrolments held against a rule in the galleries the actor may erase from (not yet
        purged; search already withholds them)."""
        self.guard.check(actor, Action.SUBJECT_REMOVE, Resource(organisation_id_of(actor)))
        exclusions = self.exclusions()
        with self.db.read() as session:
            return self._held(session, exclusions, self.galleries.all(actor))

    def purge(self, *, actor: Who) -> list[ErasureReceipt]:
        """Erase every enrolment held against a rule, in every gallery the actor may see
        (all of them for the local operator), through the one erasure path: subjects left
        with nothing are erased whole, the others lose the excluded enrolments only. One
        receipt per subject; the purge itself is audited as ``jurisdiction.purge``."""
        self.guard.check(actor, Action.SUBJECT_REMOVE, Resource(organisation_id_of(actor)))
        exclusions = self.exclusions()
        galleries = self.galleries.all(actor)
        with self.db.read() as session:
            held = self._held(session, exclusions, galleries)
        organisations: dict[str, str | None] = {g.id: g.organisation_id for g in galleries}
        matched: dict[str, JurisdictionRule] = {}
        for e in held:
            rule = exclusions.rule_for(e.jurisdiction, organisations[e.gallery_id])
            if rule is not None:
                matched[f"{rule.organisation_id}/{rule.code}"] = rule
        receipts: list[ErasureReceipt] = []
        if held:
            reason = "excluded jurisdiction: " + "; ".join(
                f"{r.code} ({r.reason})" for r in sorted(matched.values(), key=lambda r: r.code)
            )
            receipts = self.erasure.erase_enrolments(
                actor=actor,
                enrolment_ids=[e.id for e in held],
                reason=reason,
                cause=ErasureCause.JURISDICTION,
            )
        self.audit.record_alone(
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=AuditAction.JURISDICTION_PURGE,
                galleries=tuple(sorted({r.gallery for r in receipts})),
                subject_ids=tuple(sorted({r.subject_id for r in receipts})),
                details={
                    "rules": [r.as_dict() for r in matched.values()],
                    "enrolments": sum(r.enrolments for r in receipts),
                    "receipts": [r.number for r in receipts],
                },
            )
        )
        return receipts

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _scope(actor: Who, deployment_wide: bool) -> str | None:
        return None if deployment_wide else organisation_id_of(actor)

    @staticmethod
    def _held(
        session: Session, exclusions: Exclusions, galleries: list[Gallery]
    ) -> list[HeldEnrolment]:
        pruning = EnrolmentPruning(session)
        found: list[HeldEnrolment] = []
        for gallery in galleries:
            codes = [r.code for r in binding(exclusions.rules, gallery.organisation_id)]
            found += [
                e
                for e in pruning.collected_in(gallery.id, codes)
                if exclusions.hides(e.jurisdiction, gallery.organisation_id)
            ]
        return found

    def _audit(
        self, session: Session, actor: Who, action: AuditAction, details: dict[str, object]
    ) -> None:
        self.audit.record(
            session,
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=action,
                details=details,
            ),
        )


def _reason(reason: str) -> str:
    text = reason.strip()
    if len(text) < MIN_REASON:
        raise InvalidInput("a reason is required (the order, decision or policy behind it)")
    return text


def _owner(gallery: Gallery | None) -> str | None:
    return None if gallery is None else gallery.organisation_id


def _scope_label(rule: JurisdictionRule) -> str:
    return "deployment-wide" if rule.deployment_wide else "your organisation's rule"

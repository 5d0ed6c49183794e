"""Reviews and leads: the two-person rule.

Anyone whose role records reviews (investigators and examiners) may record one decision per
candidate. A candidate becomes a lead once two *different* people have each recorded
*possible match* (``domain.review.is_lead``). Reviews are blind: someone who could still
review a candidate sees how many reviews exist, never their decisions or notes, until they
have recorded their own. Supervisors and others who cannot review see everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from probity.domain.accounts import Action, Actor, Resource
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.case import AuthorisationStatus, Case
from probity.domain.ids import new_id
from probity.domain.review import CandidateRef, Review, ReviewDecision, is_lead
from probity.errors import (
    AlreadyReviewed,
    CandidateNotFound,
    CaseNotFound,
    CaseNotSearchable,
    InvalidInput,
    NotPermitted,
    SearchNotFound,
)
from probity.services.access import AccessGuard, Who, could_still_review
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.storage.casework import Reviews, StoredSearch, StoredSearches
from probity.storage.db import Database
from probity.storage.repositories import Cases

MAX_NOTE = 4000


@dataclass(frozen=True, slots=True)
class CandidateReviews:
    """What one person may see of a candidate's reviews.

    ``hidden``: True while the viewer could still record their own review; then ``reviews``
    is empty and only ``count`` says how many exist. ``own``: the viewer's own review."""

    candidate: CandidateRef
    count: int
    hidden: bool
    reviews: tuple[Review, ...]
    own: Review | None
    lead: bool

    @property
    def may_review(self) -> bool:
        """Whether the viewer may still record a review: exactly when the others' decisions
        are withheld from them (blind review), so pages need not ask the policy again."""
        return self.hidden


@dataclass(frozen=True, slots=True)
class Lead:
    candidate: CandidateRef
    case_reference: str
    confirmed_by: tuple[str, ...]


class ReviewService:
    def __init__(
        self, *, db: Database, audit: AuditService, clock: Clock, guard: AccessGuard
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.guard = guard

    def record(
        self,
        *,
        actor: Who,
        candidate: CandidateRef,
        decision: ReviewDecision,
        note: str = "",
    ) -> CandidateReviews:
        """Record ``actor``'s decision on a candidate. Only named server accounts review:
        the two-person rule needs two identifiable people."""
        if isinstance(actor, str):
            raise NotPermitted("reviews are recorded by named accounts through the server")
        if len(note) > MAX_NOTE:
            raise InvalidInput(f"a review note holds at most {MAX_NOTE} characters")
        with self.db.transaction() as session:
            _, case = self._candidate(session, actor, candidate)
            reviews = Reviews(session)
            before = reviews.for_candidate(candidate)
            self.guard.check(
                actor,
                Action.REVIEW_RECORD,
                Resource(case.organisation_id, frozenset(r.reviewer_id for r in before)),
            )
            if case.authorisation.status is AuthorisationStatus.REJECTED:
                raise CaseNotSearchable("the case's authorisation was rejected")
            review = Review(
                id=new_id(),
                candidate=candidate,
                reviewer_id=actor.user_id,
                reviewer=actor.username,
                decision=decision,
                note=note.strip(),
                at=self.clock(),
            )
            try:
                reviews.add(review)
            except SqlIntegrityError:  # a concurrent second review by the same person
                raise AlreadyReviewed("you have already reviewed this candidate") from None
            after = [*before, review]
            self._audit(session, actor, case, AuditAction.REVIEW, candidate, decision.value)
            if is_lead(after) and not is_lead(before):
                confirmers = sorted(
                    {r.reviewer for r in after if r.decision is ReviewDecision.POSSIBLE_MATCH}
                )
                self._audit(session, actor, case, AuditAction.LEAD, candidate, confirmers)
        return CandidateReviews(candidate, len(after), False, tuple(after), review, is_lead(after))

    def view(self, *, actor: Who, candidate: CandidateRef) -> CandidateReviews:
        """The candidate's reviews as ``actor`` may see them (blind until they review)."""
        with self.db.read() as session:
            _, case = self._candidate(session, actor, candidate)
            self.guard.check(actor, Action.LEAD_READ, Resource(case.organisation_id))
            found = Reviews(session).for_candidate(candidate)
        return self._visible(actor, case.organisation_id, candidate, found)

    def for_search(self, *, actor: Who, search_id: str) -> dict[CandidateRef, CandidateReviews]:
        """Every reviewed candidate of one search as ``actor`` may see it (blind rules as in
        ``view``), in one query: what a candidate list shows next to each candidate.
        Candidates nobody has reviewed are absent."""
        with self.db.read() as session:
            stored = StoredSearches(session).get(search_id)
            case = Cases(session).get(stored.case_id) if stored else None
            if stored is None or case is None or not self.guard.sees(actor, case.organisation_id):
                raise SearchNotFound(f"no search with id '{search_id}'")
            self.guard.check(actor, Action.LEAD_READ, Resource(case.organisation_id))
            found = Reviews(session).for_searches([search_id])
        grouped: dict[CandidateRef, list[Review]] = {}
        for r in found:
            grouped.setdefault(r.candidate, []).append(r)
        return {
            ref: self._visible(actor, case.organisation_id, ref, rs) for ref, rs in grouped.items()
        }

    def _visible(
        self, actor: Who, organisation_id: str | None, ref: CandidateRef, found: list[Review]
    ) -> CandidateReviews:
        """Blind review: while ``actor`` could still review, only the count is shown."""
        own = next(
            (r for r in found if not isinstance(actor, str) and r.reviewer_id == actor.user_id),
            None,
        )
        hidden = own is None and could_still_review(self.guard, actor, organisation_id, found)
        return CandidateReviews(
            ref, len(found), hidden, () if hidden else tuple(found), own, is_lead(found)
        )

    def leads(self, *, actor: Who, case_reference: str) -> list[Lead]:
        """The case's confirmed leads."""
        with self.db.read() as session:
            case = Cases(session).by_reference(case_reference)
            if case is None or not self.guard.sees(actor, case.organisation_id):
                raise CaseNotFound(f"no case with reference '{case_reference}'")
            self.guard.check(actor, Action.LEAD_READ, Resource(case.organisation_id))
            searches = [s.id for s in StoredSearches(session).for_case(case.id)]
            found = Reviews(session).for_searches(searches)
        return _leads(found, case.reference)

    def queue(self, *, actor: Actor) -> list[CandidateReviews]:
        """Candidates in the actor's organisation that someone else has reviewed, that are
        not yet leads and that ``actor`` has not reviewed: the second-review queue. The
        first decision is not shown."""
        self.guard.check(actor, Action.REVIEW_RECORD)
        with self.db.read() as session:
            cases = {c.id: c for c in Cases(session).all(actor.organisation_id)}
            searches = StoredSearches(session)
            ids = [s.id for c in cases.values() for s in searches.for_case(c.id)]
            found = Reviews(session).for_searches(ids)
        grouped: dict[CandidateRef, list[Review]] = {}
        for r in found:
            grouped.setdefault(r.candidate, []).append(r)
        return [
            CandidateReviews(ref, len(rs), True, (), None, False)
            for ref, rs in grouped.items()
            if not is_lead(rs) and all(r.reviewer_id != actor.user_id for r in rs)
        ]

    def _candidate(
        self, session: Session, actor: Who, ref: CandidateRef
    ) -> tuple[StoredSearch, Case]:
        stored = StoredSearches(session).get(ref.search_id)
        case = Cases(session).get(stored.case_id) if stored else None
        if stored is None or case is None or not self.guard.sees(actor, case.organisation_id):
            raise SearchNotFound(f"no search with id '{ref.search_id}'")
        if not any(
            c.face == ref.face and c.subject_id == ref.subject_id for c in stored.candidates
        ):
            raise CandidateNotFound(
                f"subject {ref.subject_id} is not a candidate for face {ref.face} of this search"
            )
        return stored, case

    def _audit(
        self,
        session: Session,
        actor: Actor,
        case: Case,
        action: AuditAction,
        ref: CandidateRef,
        outcome: object,
    ) -> None:
        key = "decision" if action is AuditAction.REVIEW else "confirmed_by"
        self.audit.record(
            session,
            AuditRecord(
                actor=actor.username,
                organisation=actor.organisation_name,
                action=action,
                case_reference=case.reference,
                subject_ids=(ref.subject_id,),
                details={"search_id": ref.search_id, "face": ref.face, key: outcome},
            ),
        )


def _leads(reviews: list[Review], case_reference: str) -> list[Lead]:
    grouped: dict[CandidateRef, list[Review]] = {}
    for r in reviews:
        grouped.setdefault(r.candidate, []).append(r)
    return [
        Lead(
            ref,
            case_reference,
            tuple(sorted({r.reviewer for r in rs if r.decision is ReviewDecision.POSSIBLE_MATCH})),
        )
        for ref, rs in grouped.items()
        if is_lead(rs)
    ]

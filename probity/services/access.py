"""Who is acting, and the one place services ask the access policy.

Services take ``actor: Who``:

- an :class:`~probity.domain.accounts.Actor` (a person signed in to the server, by API key
  or session): every action goes through ``policy.access.ensure`` with the resource's
  organisation, so the API and the web pages cannot skip a rule;
- a plain string: the *local operator*, someone with a shell on the server running the CLI
  against the home folder. They already hold the master key and the database file, so the
  policy cannot stop them; the CLI still records their name in every audit event. Case and
  search rules (authorisations, 48 h) apply to them all the same, in the services.
"""

from __future__ import annotations

from dataclasses import dataclass

from probity.domain.accounts import Action, Actor, OrganisationKind, Resource
from probity.domain.review import Review
from probity.policy.access import Context, decide, ensure
from probity.services.clock import Clock

Who = str | Actor


def name_of(who: Who) -> str:
    """The name recorded as the audit event's actor."""
    return who if isinstance(who, str) else (who.username or who.user_id)


def organisation_of(who: Who) -> str | None:
    """The organisation name recorded in audit events (None: the deployment's own)."""
    return None if isinstance(who, str) else (who.organisation_name or None)


def organisation_id_of(who: Who) -> str | None:
    """The owning organisation for things the actor creates (None for the local operator)."""
    return None if isinstance(who, str) else who.organisation_id


@dataclass(frozen=True)
class AccessGuard:
    clock: Clock
    searching_kinds: frozenset[OrganisationKind]

    def check(self, who: Who, action: Action, resource: Resource | None = None) -> None:
        """Raise NotPermitted unless ``who`` may take ``action`` on ``resource``."""
        if isinstance(who, str):
            return
        ensure(
            who,
            action,
            resource or Resource(),
            Context(now=self.clock(), searching_kinds=self.searching_kinds),
        )

    def allows(self, who: Actor, action: Action, resource: Resource | None = None) -> bool:
        """``decide`` without raising, for what a page or report shows a person."""
        return decide(
            who,
            action,
            resource or Resource(),
            Context(now=self.clock(), searching_kinds=self.searching_kinds),
        ).allowed

    @staticmethod
    def sees(who: Who, organisation_id: str | None) -> bool:
        """Whether a list shown to ``who`` may include a thing owned by ``organisation_id``
        (their own organisation's, or the deployment's shared ones)."""
        return isinstance(who, str) or organisation_id in (None, who.organisation_id)


def could_still_review(
    guard: AccessGuard, actor: Who, organisation_id: str | None, reviews: list[Review]
) -> bool:
    """Whether ``actor`` may yet record a review of this candidate, and so must not see the
    others' decisions anywhere: review pages, reports, the audit log (blind review). The
    local operator never reviews."""
    if isinstance(actor, str):
        return False
    reviewed = frozenset(r.reviewer_id for r in reviews)
    return guard.allows(actor, Action.REVIEW_RECORD, Resource(organisation_id, reviewed))

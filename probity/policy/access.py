"""The one access decision: ``decide(actor, action, resource, context) -> Decision``.

Every interface calls the services, and the services call this (never the routes), so a
rule lives in exactly one place. The rules, in the order they are checked:

1. The account must be approved by a supervisor and active.
2. One of the actor's roles must grant the action (``ROLE_ACTIONS``).
3. Resources of an organisation are reachable only from inside it. Admins manage the
   accounts of their own organisation; only a deployment operator (``Role.OPERATOR``) acts
   across organisations: creating organisations, and accounts in any of them. Nobody but an
   operator grants the operator role (an organisation's admin must not raise someone above
   the wall they themselves stand behind).
4. Searching needs an organisation whose kind may search (deployment configuration, default
   law enforcement only) and a training attestation that has not lapsed.
5. A reviewer may review a candidate once: a second review must come from someone else.
6. Jurisdiction rules: curators and privacy officers set them for their organisation's
   galleries; a deployment-wide rule (no organisation) is a deployment operator's (or the
   local operator's, who is not asked), because it binds every organisation's galleries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from probity.domain.accounts import Action, Actor, OrganisationKind, Resource, Role
from probity.errors import NotPermitted
from probity.policy.decision import Decision

A = Action
ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = {
    Role.OPERATOR: frozenset(
        {
            A.ORG_CREATE, A.ORG_READ, A.USER_CREATE, A.USER_READ, A.USER_UPDATE, A.KEY_CREATE,
            A.JURISDICTION_RULE,
        }
    ),
    Role.ADMIN: frozenset(
        {A.ORG_READ, A.USER_CREATE, A.USER_READ, A.USER_UPDATE, A.KEY_CREATE}
    ),
    Role.SUPERVISOR: frozenset(
        {
            A.ORG_READ, A.USER_APPROVE, A.USER_READ, A.KEY_CREATE, A.GALLERY_READ,
            A.CASE_READ, A.CASE_AUTHORISE, A.SEARCH_READ, A.LEAD_READ, A.AUDIT_READ,
            A.AUDIT_VERIFY, A.REPORT_CASE, A.REPORT_ANNUAL,
        }
    ),
    Role.CURATOR: frozenset(
        {
            A.KEY_CREATE, A.GALLERY_CREATE, A.GALLERY_READ, A.ENROL, A.SUBJECT_REMOVE,
            A.INDEX_REBUILD, A.JURISDICTION_RULE,
        }
    ),
    Role.INVESTIGATOR: frozenset(
        {
            A.KEY_CREATE, A.GALLERY_READ, A.CASE_OPEN, A.CASE_READ, A.SEARCH_RUN,
            A.SEARCH_READ, A.REVIEW_RECORD, A.LEAD_READ, A.REPORT_CASE,
        }
    ),
    Role.EXAMINER: frozenset(
        {A.KEY_CREATE, A.CASE_READ, A.SEARCH_READ, A.REVIEW_RECORD, A.LEAD_READ}
    ),
    Role.AUDITOR: frozenset(
        {A.KEY_CREATE, A.AUDIT_READ, A.AUDIT_VERIFY, A.REPORT_CASE, A.REPORT_ANNUAL}
    ),
    Role.PRIVACY_OFFICER: frozenset(
        {
            A.KEY_CREATE, A.GALLERY_READ, A.SUBJECT_REMOVE, A.RIGHTS_HANDLE, A.AUDIT_READ,
            A.JURISDICTION_RULE,
        }
    ),
}  # fmt: skip

DEPLOYMENT_ACTIONS = frozenset(
    {A.ORG_CREATE, A.ORG_READ, A.USER_CREATE, A.USER_READ, A.USER_UPDATE}
)
"""Actions on the deployment itself: a deployment operator may take them for any
organisation (an admin only for their own)."""


@dataclass(frozen=True, slots=True)
class Context:
    now: datetime
    searching_kinds: frozenset[OrganisationKind] = field(
        default_factory=lambda: frozenset({OrganisationKind.LAW_ENFORCEMENT})
    )


def decide(actor: Actor, action: Action, resource: Resource, context: Context) -> Decision:
    if not actor.active:
        return Decision.deny("the account is deactivated")
    if not actor.approved:
        return Decision.deny("the account has not been approved by a supervisor")
    granting = sorted(r.value for r in actor.roles if action in ROLE_ACTIONS[r])
    if not granting:
        roles = ", ".join(sorted(r.value for r in actor.roles)) or "no role"
        return Decision.deny(f"{action.value} is not allowed for {roles}")
    foreign = resource.organisation_id not in (None, actor.organisation_id)
    operating = action in DEPLOYMENT_ACTIONS and Role.OPERATOR in actor.roles
    if foreign and not operating:
        return Decision.deny("the resource belongs to another organisation")
    if Role.OPERATOR in resource.grants and Role.OPERATOR not in actor.roles:
        return Decision.deny("only a deployment operator may grant the operator role")
    if action is A.SEARCH_RUN:
        if actor.organisation_kind not in context.searching_kinds:
            kinds = ", ".join(sorted(k.value for k in context.searching_kinds))
            return Decision.deny(
                f"organisations of kind {actor.organisation_kind.value} may not search "
                f"(this deployment allows: {kinds})"
            )
        if actor.training_expires is None:
            return Decision.deny("no training attestation on file")
        if actor.training_expires <= context.now:
            return Decision.deny(
                f"the training attestation lapsed on {actor.training_expires.date()}"
            )
    if (
        action is A.JURISDICTION_RULE
        and resource.organisation_id is None
        and Role.OPERATOR not in actor.roles
    ):
        return Decision.deny(
            "a deployment-wide jurisdiction rule is set by a deployment operator; curators "
            "and privacy officers set rules for their organisation's galleries"
        )
    if action is A.REVIEW_RECORD and actor.user_id in resource.reviewed_by:
        return Decision.deny(
            "you have already reviewed this candidate; the second review must come from "
            "another examiner"
        )
    return Decision.allow(f"{action.value} allowed as {', '.join(granting)}")


def ensure(actor: Actor, action: Action, resource: Resource, context: Context) -> None:
    """``decide``, raising NotPermitted with the reason when denied."""
    decision = decide(actor, action, resource, context)
    if not decision.allowed:
        raise NotPermitted(decision.reason)

"""The whole role × action matrix, table-driven, plus the rules on top of it.

``EXPECTED`` is written out by hand (not derived from ROLE_ACTIONS), so a change to the policy
table fails here until the matrix is changed on purpose."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from probity.domain.accounts import Action, Actor, OrganisationKind, Resource, Role
from probity.errors import NotPermitted
from probity.policy.access import Context, decide, ensure

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CTX = Context(now=NOW)

# One letter per role, in this order: operator, admin, supervisor, curator, investigator,
# examiner, auditor, privacy officer. "x" = allowed, "." = denied.
ORDER = [
    Role.OPERATOR,
    Role.ADMIN,
    Role.SUPERVISOR,
    Role.CURATOR,
    Role.INVESTIGATOR,
    Role.EXAMINER,
    Role.AUDITOR,
    Role.PRIVACY_OFFICER,
]
EXPECTED = {
    Action.ORG_CREATE:     "x.......",
    Action.ORG_READ:       "xxx.....",
    Action.USER_CREATE:    "xx......",
    Action.USER_APPROVE:   "..x.....",
    Action.USER_READ:      "xxx.....",
    Action.USER_UPDATE:    "xx......",
    Action.KEY_CREATE:     "xxxxxxxx",
    Action.GALLERY_CREATE: "...x....",
    Action.GALLERY_READ:   "..xxx..x",
    Action.ENROL:          "...x....",
    Action.SUBJECT_REMOVE: "...x...x",
    Action.INDEX_REBUILD:  "...x....",
    Action.CASE_OPEN:      "....x...",
    Action.CASE_READ:      "..x.xx..",
    Action.CASE_AUTHORISE: "..x.....",
    Action.SEARCH_RUN:     "....x...",
    Action.SEARCH_READ:    "..x.xx..",
    Action.REVIEW_RECORD:  "....xx..",
    Action.LEAD_READ:      "..x.xx..",
    Action.AUDIT_READ:     "..x...xx",
    Action.AUDIT_VERIFY:   "..x...x.",
    Action.REPORT_CASE:    "..x.x.x.",
    Action.REPORT_ANNUAL:  "..x...x.",
    Action.RIGHTS_HANDLE:  ".......x",
    Action.JURISDICTION_RULE: "x..x...x",
}  # fmt: skip


def actor(*roles: Role, **changes: object) -> Actor:
    base: dict[str, object] = {
        "user_id": "u1",
        "organisation_id": "org-police",
        "organisation_kind": OrganisationKind.LAW_ENFORCEMENT,
        "roles": frozenset(roles),
        "approved": True,
        "training_expires": NOW + timedelta(days=200),
    }
    return Actor(**{**base, **changes})  # type: ignore[arg-type]


def test_every_action_is_in_the_matrix() -> None:
    assert set(EXPECTED) == set(Action)


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
@pytest.mark.parametrize("role", ORDER, ids=lambda r: r.value)
def test_role_action_matrix(role: Role, action: Action) -> None:
    want = EXPECTED[action][ORDER.index(role)] == "x"
    decision = decide(actor(role), action, Resource(organisation_id="org-police"), CTX)
    assert decision.allowed is want, decision.reason
    assert decision.reason  # a denial always says why


def test_unapproved_and_deactivated_accounts_can_do_nothing() -> None:
    for a in Action:
        assert not decide(actor(*ORDER, approved=False), a, Resource(), CTX).allowed
        assert not decide(actor(*ORDER, active=False), a, Resource(), CTX).allowed
    reason = decide(actor(Role.INVESTIGATOR, approved=False), Action.SEARCH_RUN, Resource(), CTX)
    assert "approved by a supervisor" in reason.reason


def test_other_organisations_resources_are_out_of_reach() -> None:
    foreign = Resource(organisation_id="org-other")
    assert not decide(actor(Role.INVESTIGATOR), Action.CASE_READ, foreign, CTX).allowed
    assert not decide(actor(Role.SUPERVISOR), Action.AUDIT_READ, foreign, CTX).allowed
    # An organisation's admin manages their own organisation's accounts only; the
    # deployment operator crosses organisations (issue 13: another organisation's admin
    # changed our users' roles).
    assert not decide(actor(Role.ADMIN), Action.USER_CREATE, foreign, CTX).allowed
    assert not decide(actor(Role.ADMIN), Action.USER_UPDATE, foreign, CTX).allowed
    assert decide(actor(Role.OPERATOR), Action.USER_CREATE, foreign, CTX).allowed
    assert decide(actor(Role.OPERATOR), Action.USER_UPDATE, foreign, CTX).allowed
    assert not decide(actor(Role.SUPERVISOR), Action.USER_UPDATE, Resource(), CTX).allowed
    assert not decide(actor(Role.ADMIN), Action.ORG_READ, foreign, CTX).allowed


def test_only_an_operator_grants_the_operator_role() -> None:
    own = Resource(organisation_id="org-police", grants=frozenset({Role.OPERATOR}))
    denied = decide(actor(Role.ADMIN), Action.USER_UPDATE, own, CTX)
    assert not denied.allowed and "operator" in denied.reason
    assert decide(actor(Role.OPERATOR), Action.USER_UPDATE, own, CTX).allowed


def test_search_needs_a_searching_organisation_and_current_training() -> None:
    res = Resource(organisation_id="org-police")
    council = actor(Role.INVESTIGATOR, organisation_kind=OrganisationKind.PUBLIC_BODY)
    denied = decide(council, Action.SEARCH_RUN, res, CTX)
    assert not denied.allowed and "public_body may not search" in denied.reason
    wider = Context(
        now=NOW,
        searching_kinds=frozenset({OrganisationKind.LAW_ENFORCEMENT, OrganisationKind.PUBLIC_BODY}),
    )
    assert decide(council, Action.SEARCH_RUN, res, wider).allowed
    lapsed = actor(Role.INVESTIGATOR, training_expires=NOW - timedelta(days=1))
    assert "lapsed" in decide(lapsed, Action.SEARCH_RUN, res, CTX).reason
    untrained = actor(Role.INVESTIGATOR, training_expires=None)
    assert "no training" in decide(untrained, Action.SEARCH_RUN, res, CTX).reason
    # Lapsed training blocks searching only, not reading the case.
    assert decide(lapsed, Action.CASE_READ, res, CTX).allowed


def test_the_same_person_cannot_review_a_candidate_twice() -> None:
    res = Resource(organisation_id="org-police", reviewed_by=frozenset({"u1"}))
    assert not decide(actor(Role.EXAMINER), Action.REVIEW_RECORD, res, CTX).allowed
    other = actor(Role.EXAMINER, user_id="u2")
    assert decide(other, Action.REVIEW_RECORD, res, CTX).allowed


def test_ensure_raises_with_the_reason() -> None:
    with pytest.raises(NotPermitted, match="not allowed for auditor"):
        ensure(actor(Role.AUDITOR), Action.SEARCH_RUN, Resource(), CTX)


def test_deployment_wide_jurisdiction_rules_are_an_operators() -> None:
    deployment = Resource()
    assert decide(actor(Role.OPERATOR), Action.JURISDICTION_RULE, deployment, CTX).allowed
    assert not decide(actor(Role.ADMIN), Action.JURISDICTION_RULE, deployment, CTX).allowed
    for role in (Role.CURATOR, Role.PRIVACY_OFFICER):
        denied = decide(actor(role), Action.JURISDICTION_RULE, deployment, CTX)
        assert not denied.allowed and "deployment-wide" in denied.reason
        own = Resource(organisation_id="org-police")
        assert decide(actor(role), Action.JURISDICTION_RULE, own, CTX).allowed
        foreign = Resource(organisation_id="org-other")
        assert not decide(actor(role), Action.JURISDICTION_RULE, foreign, CTX).allowed

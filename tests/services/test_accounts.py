"""Organisations, accounts (approval, roles, training, deactivation) and API keys through the
services (real SQLite)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text

from probity.domain.accounts import Action, Actor, OrganisationKind, Resource, Role
from probity.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    NotPermitted,
    Unauthenticated,
)
from probity.policy.access import Context, decide
from probity.services.accounts import actor_for
from probity.services.clock import ManualClock
from probity.services.container import Services
from probity.storage.accounts import Users

OPERATOR = "root"


@pytest.fixture
def org(svc: Services) -> str:
    svc.accounts.create_organisation(
        actor=OPERATOR, name="Met Police", kind=OrganisationKind.LAW_ENFORCEMENT
    )
    return "Met Police"


def test_new_accounts_wait_for_a_supervisor(svc: Services, org: str, clock: ManualClock) -> None:
    expires = clock() + timedelta(days=365)
    svc.accounts.create_user(
        actor=OPERATOR,
        organisation=org,
        username="sup",
        roles=[Role.SUPERVISOR],
        training_expires=expires,
    )
    svc.accounts.create_user(
        actor=OPERATOR,
        organisation=org,
        username="ann",
        roles=[Role.INVESTIGATOR],
        training_expires=expires,
    )
    with pytest.raises(NotPermitted, match="not approved"):
        svc.accounts.create_api_key(actor=OPERATOR, username="ann", label="x")
    # The first supervisor is approved by the local operator (bootstrap) ...
    svc.accounts.approve_user(actor=OPERATOR, username="sup", supervisor=None)
    # ... after which a named supervisor must approve, never the user themself.
    with pytest.raises(NotPermitted, match="name the one approving"):
        svc.accounts.approve_user(actor=OPERATOR, username="ann", supervisor=None)
    with pytest.raises(NotPermitted, match="own account"):
        svc.accounts.approve_user(actor=OPERATOR, username="ann", supervisor="ann")
    with pytest.raises(NotPermitted, match="not an approved supervisor"):
        svc.accounts.approve_user(actor=OPERATOR, username="ann", supervisor="ghost")
    svc.accounts.approve_user(actor=OPERATOR, username="ann", supervisor="sup")
    with pytest.raises(AlreadyExists):
        svc.accounts.approve_user(actor=OPERATOR, username="ann", supervisor="sup")
    events = svc.audit.events(actor="auditor", action="user.approve").events
    assert "bootstrap" in events[0].details["approved_by"]
    assert events[1].details["approved_by"] == "sup"


def test_api_key_is_shown_once_stored_hashed_and_authenticates(
    svc: Services, org: str, clock: ManualClock
) -> None:
    svc.accounts.create_user(
        actor=OPERATOR,
        organisation=org,
        username="ann",
        roles=[Role.INVESTIGATOR],
        training_expires=clock() + timedelta(days=30),
    )
    svc.accounts.approve_user(actor=OPERATOR, username="ann", supervisor=None)
    key = svc.accounts.create_api_key(actor=OPERATOR, username="ann", label="integration")
    assert key.secret.startswith(f"pb_{key.key_id}_")
    with svc.db.read() as s:
        stored = s.execute(text("SELECT secret_hash FROM api_keys")).scalar_one()
    secret = key.secret.split("_", 2)[2]
    assert secret not in stored and stored.startswith("$argon2")
    actor = svc.accounts.authenticate_key(key.secret)
    assert actor.roles == frozenset({Role.INVESTIGATOR}) and actor.approved
    assert decide(actor, Action.SEARCH_RUN, Resource(), Context(now=clock())).allowed
    clock.advance(timedelta(days=31))
    assert "lapsed" in decide(actor, Action.SEARCH_RUN, Resource(), Context(now=clock())).reason
    for wrong in (key.secret[:-1] + "x", f"pb_000000000000_{secret}", "garbage", ""):
        with pytest.raises(Unauthenticated, match="invalid API key"):
            svc.accounts.authenticate_key(wrong)


def test_account_input_errors(svc: Services, org: str) -> None:
    with pytest.raises(InvalidInput, match="username"):
        svc.accounts.create_user(
            actor=OPERATOR,
            organisation=org,
            username="Bad Name",
            roles=[Role.AUDITOR],
            training_expires=None,
        )
    with pytest.raises(InvalidInput, match="role"):
        svc.accounts.create_user(
            actor=OPERATOR, organisation=org, username="bob", roles=[], training_expires=None
        )
    with pytest.raises(NotFound, match="no organisation"):
        svc.accounts.create_user(
            actor=OPERATOR,
            organisation="Nope",
            username="bob",
            roles=[Role.AUDITOR],
            training_expires=None,
        )
    with pytest.raises(AlreadyExists):
        svc.accounts.create_organisation(
            actor=OPERATOR, name=org, kind=OrganisationKind.LAW_ENFORCEMENT
        )
    with pytest.raises(NotFound):
        svc.accounts.approve_user(actor=OPERATOR, username="ghost", supervisor=None)
    assert svc.audit.verify(actor=OPERATOR).ok


def _people(svc: Services, org: str, clock: ManualClock, **people: list[Role]) -> None:
    """Approved accounts in ``org``; the first named must be a supervisor (bootstrap)."""
    first = next(iter(people))
    for name, roles in people.items():
        svc.accounts.create_user(
            actor=OPERATOR,
            organisation=org,
            username=name,
            roles=roles,
            training_expires=clock() + timedelta(days=30),
        )
    svc.accounts.approve_user(actor=OPERATOR, username=first)
    for name in people:
        if name != first:
            svc.accounts.approve_user(actor=OPERATOR, username=name, supervisor=first)


def _signed_in(svc: Services, username: str) -> Actor:
    with svc.db.read() as s:
        user = Users(s).by_username(username)
        assert user is not None
        return actor_for(s, user)


def test_admin_changes_roles_and_training_and_it_is_audited(
    svc: Services, org: str, clock: ManualClock
) -> None:
    _people(svc, org, clock, sup=[Role.SUPERVISOR], adm=[Role.ADMIN], ann=[Role.INVESTIGATOR])
    adm = _signed_in(svc, "adm")
    later = clock() + timedelta(days=400)
    info = svc.accounts.update_user(
        actor=adm,
        username="ann",
        roles=[Role.EXAMINER, Role.INVESTIGATOR],
        training_expires=later,
    )
    assert info.roles == ("examiner", "investigator") and info.training_expires == later
    assert info.approved and info.active  # still approved: approval vouches for the person
    again = _signed_in(svc, "ann")
    assert again.roles == frozenset({Role.EXAMINER, Role.INVESTIGATOR})
    assert again.training_expires == later
    # The same values again change nothing and record nothing.
    svc.accounts.update_user(actor=adm, username="ann", roles=[Role.INVESTIGATOR, Role.EXAMINER])
    (event,) = svc.audit.events(actor=OPERATOR, action="user.update").events
    assert event.actor == "adm" and event.details["user"] == "ann"
    assert event.details["before"]["roles"] == ["investigator"]
    assert event.details["after"]["roles"] == ["examiner", "investigator"]
    assert event.details["after"]["training_expires"] == later.isoformat()
    assert svc.audit.verify(actor=OPERATOR).ok


def test_deactivated_accounts_can_do_nothing_until_reactivated(
    svc: Services, org: str, clock: ManualClock
) -> None:
    _people(svc, org, clock, sup=[Role.SUPERVISOR], adm=[Role.ADMIN], ann=[Role.INVESTIGATOR])
    adm = _signed_in(svc, "adm")
    ann = _signed_in(svc, "ann")
    key = svc.accounts.create_api_key(actor=OPERATOR, username="ann", label="x")
    assert not svc.accounts.update_user(actor=adm, username="ann", active=False).active
    with pytest.raises(Unauthenticated, match="invalid API key"):  # revoked: her keys stop
        svc.accounts.authenticate_key(key.secret)
    # An Actor made before the change (a request in flight) is refused by the policy too.
    deactivated = replace(ann, active=False)
    reason = decide(deactivated, Action.CASE_OPEN, Resource(), Context(now=clock())).reason
    assert "deactivated" in reason
    assert not {u.username: u for u in svc.accounts.list_users(actor=adm)}["ann"].active
    svc.accounts.update_user(actor=adm, username="ann", active=True)
    with pytest.raises(Unauthenticated):  # revoked at deactivation: a new key is needed
        svc.accounts.authenticate_key(key.secret)
    assert _signed_in(svc, "ann").active
    events = svc.audit.events(actor=OPERATOR, action="user.update").events
    assert [e.details["after"] for e in events] == [{"active": False}, {"active": True}]
    assert events[0].details["keys_revoked"] == [key.key_id]


def test_account_changes_that_are_refused(svc: Services, org: str, clock: ManualClock) -> None:
    _people(
        svc,
        org,
        clock,
        sup=[Role.SUPERVISOR],
        adm=[Role.ADMIN],
        boss=[Role.ADMIN, Role.SUPERVISOR],
    )
    adm, sup = _signed_in(svc, "adm"), _signed_in(svc, "sup")
    with pytest.raises(NotPermitted, match="their own"):
        svc.accounts.update_user(actor=adm, username="adm", roles=[Role.ADMIN, Role.SUPERVISOR])
    with pytest.raises(NotPermitted, match="not allowed for supervisor"):
        svc.accounts.update_user(actor=sup, username="adm", active=False)
    with pytest.raises(InvalidInput, match="at least one role"):
        svc.accounts.update_user(actor=adm, username="sup", roles=[])
    with pytest.raises(InvalidInput, match="nothing to change"):
        svc.accounts.update_user(actor=adm, username="sup")
    with pytest.raises(NotFound):
        svc.accounts.update_user(actor=adm, username="ghost", active=False)
    # Two active supervisors: one may go; the last one may neither lose the role nor leave.
    svc.accounts.update_user(actor=adm, username="boss", roles=[Role.ADMIN])
    with pytest.raises(Conflict, match="last active supervisor"):
        svc.accounts.update_user(actor=adm, username="sup", roles=[Role.AUDITOR])
    with pytest.raises(Conflict, match="last active supervisor"):
        svc.accounts.update_user(actor=adm, username="sup", active=False)
    svc.accounts.update_user(actor=adm, username="boss", roles=[Role.ADMIN, Role.SUPERVISOR])
    svc.accounts.update_user(actor=adm, username="sup", active=False)
    assert len(svc.audit.events(actor=OPERATOR, action="user.update").events) == 3


def test_operators_manage_accounts_of_every_organisation_admins_only_their_own(
    svc: Services, org: str, clock: ManualClock
) -> None:
    _people(svc, org, clock, sup=[Role.SUPERVISOR], adm=[Role.ADMIN], opr=[Role.OPERATOR])
    svc.accounts.create_organisation(actor=OPERATOR, name="Other", kind=OrganisationKind.OTHER)
    _people(svc, "Other", clock, sup9=[Role.SUPERVISOR], bob=[Role.AUDITOR])
    with pytest.raises(NotFound):  # another organisation's admin: the account reads as absent
        svc.accounts.update_user(
            actor=_signed_in(svc, "adm"), username="bob", roles=[Role.PRIVACY_OFFICER]
        )
    info = svc.accounts.update_user(
        actor=_signed_in(svc, "opr"), username="bob", roles=[Role.PRIVACY_OFFICER]
    )
    assert info.organisation == "Other" and info.roles == ("privacy_officer",)
    with pytest.raises(NotFound):  # another organisation's account reads as absent
        svc.accounts.update_user(actor=_signed_in(svc, "sup"), username="bob", active=False)

"""Organisations, accounts, approval and API keys through the services (real SQLite)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from probity.domain.accounts import Action, OrganisationKind, Resource, Role
from probity.errors import AlreadyExists, InvalidInput, NotFound, NotPermitted, Unauthenticated
from probity.policy.access import Context, decide
from probity.services.clock import ManualClock
from probity.services.container import Services

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

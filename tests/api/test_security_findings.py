"""The security findings of issue 13, each reproduced as it was found (every test here failed
on the code before the fix): organisation walls for erasure receipts and account
administration, the login limiter, blind review in the audit log, sessions and keys that end
at a password change or deactivation, API docs, and single-use public form tokens."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from probity.domain.accounts import Actor, Role
from probity.errors import CsrfFailed
from tests.api.conftest import (
    OPERATOR,
    PASSWORD,
    World,
    enrol_gallery,
    open_case,
    search,
)


def _person(w: World, org: str, name: str, roles: list[Role], approver: str) -> str:
    """A new approved account in ``org`` with a password; returns its API key."""
    accounts = w.services.accounts
    accounts.create_user(
        actor=OPERATOR,
        organisation=org,
        username=name,
        roles=roles,
        training_expires=w.clock() + timedelta(days=365),
    )
    accounts.approve_user(actor=OPERATOR, username=name, supervisor=approver)
    accounts.set_password(actor=OPERATOR, username=name, password=PASSWORD)
    key = accounts.create_api_key(actor=OPERATOR, username=name, label="tests").secret
    w.keys[name] = key
    return key


def _actor(w: World, name: str) -> Actor:
    return w.services.accounts.authenticate_key(w.keys[name])


def _login(w: World, username: str, password: str = PASSWORD, client: str | None = None) -> int:
    if client is None:
        return w.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        ).status_code
    try:
        w.services.sessions.login(username=username, password=password, client=client)
    except Exception as exc:  # the service's error classes carry the HTTP status
        return int(getattr(exc, "status", 500))
    return 200


# -- organisation walls ----------------------------------------------------------------------


def test_another_organisations_privacy_officer_sees_none_of_our_erasure_receipts(
    sqlite_world: World,
) -> None:
    w = sqlite_world
    enrol_gallery(w)
    r = w.call("DELETE", "/api/v1/galleries/custody/subjects/A-1?reason=court+order", "dpo")
    assert r.status_code == 200, r.text
    number = r.json()["receipt"]
    _person(w, "Elsewhere", "dpo2", [Role.PRIVACY_OFFICER], "sup2")
    ours = w.services.erasure.receipts(actor=_actor(w, "dpo"))
    assert [x.number for x in ours] == [number]
    assert w.services.erasure.receipts(actor=_actor(w, "dpo2")) == []
    with pytest.raises(Exception, match="no erasure receipt"):
        w.services.erasure.receipt(number, actor=_actor(w, "dpo2"))
    # The local operator still sees every receipt.
    assert [x.number for x in w.services.erasure.receipts(actor=OPERATOR)] == [number]


def test_another_organisations_admin_cannot_manage_our_accounts(sqlite_world: World) -> None:
    w = sqlite_world
    _person(w, "Elsewhere", "adm2", [Role.ADMIN], "sup2")
    r = w.call("PATCH", "/api/v1/users/inv", "adm2", json={"roles": ["auditor"]})
    assert r.status_code == 404, r.text
    r = w.call("PATCH", "/api/v1/users/inv", "adm2", json={"active": False})
    assert r.status_code == 404
    assert w.call("GET", "/api/v1/me", "inv").json()["roles"] == ["investigator"]
    body = {"organisation": "Met", "username": "mole", "roles": ["investigator"]}
    assert w.call("POST", "/api/v1/users", "adm2", json=body).status_code in (403, 404)
    listed = {u["username"] for u in w.call("GET", "/api/v1/users", "adm2").json()["data"]}
    assert listed == {"sup2", "inv2", "adm2"}
    # Our own admin manages our accounts, and only ours.
    assert w.call("PATCH", "/api/v1/users/inv2", "adm", json={"active": False}).status_code == 404


def test_a_deployment_operator_manages_accounts_across_organisations(sqlite_world: World) -> None:
    w = sqlite_world  # "opr" holds the operator role (tests/api/conftest.py)
    assert w.call("GET", "/api/v1/me", "opr").json()["roles"] == [Role.OPERATOR.value]
    r = w.call("PATCH", "/api/v1/users/inv2", "opr", json={"roles": ["investigator"]})
    assert r.status_code == 200, r.text
    body = {"name": "Border Agency", "kind": "public_body"}
    assert w.call("POST", "/api/v1/organisations", "opr", json=body).status_code == 201
    # An organisation's admin neither creates organisations nor grants the operator role.
    body = {"name": "Rogue", "kind": "other"}
    assert w.call("POST", "/api/v1/organisations", "adm", json=body).status_code == 403
    r = w.call("PATCH", "/api/v1/users/inv", "adm", json={"roles": ["operator"]})
    assert r.status_code == 403 and "operator" in r.json()["detail"]


# -- the login limiter -----------------------------------------------------------------------


def test_a_successful_login_does_not_reset_the_address_limit(sqlite_world: World) -> None:
    """57 failures with no 429: the attacker signed in to their own account between rounds,
    which cleared the per-address count."""
    w = sqlite_world
    per_user = w.settings.server.login_attempts
    statuses = []
    for round_ in range(15):
        for _ in range(per_user - 1):  # under the per-username limit of each name
            statuses.append(_login(w, f"victim{round_}", "guess"))
        assert _login(w, "aud") in (200, 429)
    assert 429 in statuses


def test_failures_from_one_address_do_not_lock_the_account_at_another(
    sqlite_world: World,
) -> None:
    w = sqlite_world
    for _ in range(w.settings.server.login_attempts * 3):
        _login(w, "inv", "guess", client="203.0.113.9")
    assert _login(w, "inv", "guess", client="203.0.113.9") == 429
    # The attacker's failures cannot keep the investigator out from their own desk.
    assert _login(w, "inv", client="10.0.0.7") == 200


def test_a_lockout_decays(sqlite_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import limits.storage.memory as memory

    class FakeTime:
        now = 1_000_000.0

        @classmethod
        def time(cls) -> float:
            return cls.now

    monkeypatch.setattr(memory, "time", FakeTime)
    w = sqlite_world
    for _ in range(w.settings.server.login_attempts):
        _login(w, "inv", "guess", client="198.51.100.4")
    assert _login(w, "inv", client="198.51.100.4") == 429
    FakeTime.now += w.settings.server.login_window_s + 1
    assert _login(w, "inv", client="198.51.100.4") == 200


# -- blind review in the audit log -----------------------------------------------------------


def test_the_audit_log_withholds_decisions_from_who_may_still_review(world: World) -> None:
    w = world
    probes = enrol_gallery(w)
    open_case(w)
    body = search(w, probes["pair"]).json()
    subject = body["faces"][1]["candidates"][0]["subject_id"]
    url = f"/api/v1/searches/{body['search_id']}/faces/2/candidates/{subject}/reviews"
    r = w.call("POST", url, "inv", json={"decision": "not_a_match", "note": "no scar"})
    assert r.status_code == 201
    _person(w, "Met", "exa", [Role.EXAMINER, Role.AUDITOR], "sup")
    log = w.call("GET", "/api/v1/audit?action=review.record", "exa").json()
    assert log["count"] == 1
    assert "not_a_match" not in json.dumps(log)
    # A plain auditor (who cannot review) reads the decision.
    plain = w.call("GET", "/api/v1/audit?action=review.record", "aud").json()
    assert "not_a_match" in json.dumps(plain)
    # Once exa has recorded their own review, the log shows them both.
    assert w.call("POST", url, "exa", json={"decision": "inconclusive"}).status_code == 201
    after = w.call("GET", "/api/v1/audit?action=review.record", "exa").json()
    assert "not_a_match" in json.dumps(after) and "inconclusive" in json.dumps(after)


# -- sessions and keys end -------------------------------------------------------------------


def test_a_password_change_ends_sessions_and_keys(sqlite_world: World) -> None:
    w = sqlite_world
    other = w.client.__class__(w.client.app)
    r = other.post("/api/v1/auth/login", json={"username": "inv", "password": PASSWORD})
    assert r.status_code == 200
    assert other.get("/api/v1/me").status_code == 200
    w.services.accounts.set_password(
        actor=_actor(w, "inv"), username="inv", password="a brand new passphrase", current=PASSWORD
    )
    assert other.get("/api/v1/me").status_code == 401
    assert w.call("GET", "/api/v1/me", "inv").status_code == 401


def test_a_deactivated_account_cannot_sign_in_and_its_keys_stop(sqlite_world: World) -> None:
    w = sqlite_world
    other = w.client.__class__(w.client.app)
    assert (
        other.post("/api/v1/auth/login", json={"username": "ex2", "password": PASSWORD}).status_code
        == 200
    )
    r = w.call("PATCH", "/api/v1/users/ex2", "adm", json={"active": False})
    assert r.status_code == 200
    assert w.call("GET", "/api/v1/me", "ex2").status_code == 401
    assert other.get("/api/v1/me").status_code == 401
    assert _login(w, "ex2") == 401


# -- API docs --------------------------------------------------------------------------------


def test_api_docs_load_nothing_from_elsewhere_and_need_a_session(sqlite_world: World) -> None:
    w = sqlite_world
    for path in ("/docs", "/redoc"):
        r = w.client.get(path, follow_redirects=False)
        assert r.status_code in (303, 401, 404), (path, r.status_code)
        assert "cdn" not in r.text.lower()


# -- public form tokens ----------------------------------------------------------------------


def test_a_public_form_token_works_once(sqlite_world: World) -> None:
    rights = sqlite_world.services.rights
    token = rights.form_token()
    rights.check_form_token(token)
    with pytest.raises(CsrfFailed):
        rights.check_form_token(token)

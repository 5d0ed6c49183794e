"""Passwords through the API: a first password at account creation, changing your own (the
current one is asked for), and an admin's one-time reset code (one use, one organisation)."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import OPERATOR, PASSWORD, World


def _login(w: World, username: str, password: str) -> int:
    r = w.client.post("/api/v1/auth/login", json={"username": username, "password": password})
    return r.status_code


def test_a_first_password_at_creation_and_changing_your_own(sqlite_world: World) -> None:
    w = sqlite_world
    body = {"organisation": "Met", "username": "newbie", "roles": ["auditor"]}
    short = w.call("POST", "/api/v1/users", "adm", json={**body, "password": "too short"})
    assert short.status_code == 400 and "12 characters" in short.json()["detail"]
    r = w.call("POST", "/api/v1/users", "adm", json={**body, "password": "first password 1"})
    assert r.status_code == 201, r.text
    w.services.accounts.approve_user(actor=OPERATOR, username="newbie", supervisor="sup")
    assert _login(w, "newbie", "first password 1") == 200
    key = w.services.accounts.create_api_key(actor=OPERATOR, username="newbie", label="k")
    auth = {"Authorization": f"Bearer {key.secret}"}

    change = {"current": "not it at all", "password": "second password 2"}
    r = w.call("POST", "/api/v1/me/password", headers=auth, json=change)
    assert r.status_code == 401 and "current password" in r.json()["detail"]
    change["current"] = "first password 1"
    assert w.call("POST", "/api/v1/me/password", headers=auth, json=change).status_code == 204
    assert w.call("GET", "/api/v1/me", headers=auth).status_code == 401  # the key ended
    assert _login(w, "newbie", "first password 1") == 401
    assert _login(w, "newbie", "second password 2") == 200


def test_an_admins_reset_code_works_once_and_only_in_their_organisation(
    sqlite_world: World,
) -> None:
    w = sqlite_world
    r = w.call("POST", "/api/v1/users/inv/password-reset", "adm")
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    code = r.json()["code"]
    assert r.json()["expires_at"].startswith((w.clock() + timedelta(hours=24)).date().isoformat())
    redeem = {"username": "inv", "code": code, "password": "a new passphrase 3"}
    assert w.client.post("/api/v1/auth/password-reset", json=redeem).status_code == 204
    assert w.call("GET", "/api/v1/me", "inv").status_code == 401  # keys end at a reset
    assert _login(w, "inv", PASSWORD) == 401
    assert _login(w, "inv", "a new passphrase 3") == 200
    again = w.client.post("/api/v1/auth/password-reset", json={**redeem, "password": "x" * 20})
    assert again.status_code == 401 and "used or expired" in again.json()["detail"]

    # Expired codes, another organisation's admin, your own account, other roles: refused.
    code = w.call("POST", "/api/v1/users/aud/password-reset", "adm").json()["code"]
    w.clock.advance(timedelta(hours=25))
    late = {"username": "aud", "code": code, "password": "a new passphrase 4"}
    assert w.client.post("/api/v1/auth/password-reset", json=late).status_code == 401
    assert w.call("POST", "/api/v1/users/inv2/password-reset", "adm").status_code == 404
    assert w.call("POST", "/api/v1/users/adm/password-reset", "adm").status_code == 403
    assert w.call("POST", "/api/v1/users/ex1/password-reset", "sup").status_code == 403
    assert w.call("POST", "/api/v1/users/inv2/password-reset", "opr").status_code == 201

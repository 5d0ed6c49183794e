"""Authentication: 401 everywhere but health and login, API keys, web sessions with CSRF,
and the login rate limit."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import PASSWORD, World

OPEN = {"/health", "/health/ready", "/api/v1/auth/login", "/api/v1/auth/password-reset"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_endpoint_but_health_and_login_needs_credentials(sqlite_world: World) -> None:
    schema = sqlite_world.client.get("/openapi.json").json()
    checked = 0
    for path, operations in schema["paths"].items():
        for method in operations:
            r = sqlite_world.client.request(method.upper(), _concrete(path))
            if path in OPEN:
                assert r.status_code != 401, (method, path)
                continue
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "unauthenticated"
            assert r.headers["www-authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 25  # every resource router is covered, not just a few paths


@pytest.mark.parametrize(
    "header",
    [
        {"Authorization": "Bearer pb_000000000000_wrong"},
        {"Authorization": "Bearer not-a-key"},
        {"X-API-Key": "pb_abc_def"},
    ],
)
def test_a_bad_key_is_401(sqlite_world: World, header: dict[str, str]) -> None:
    r = sqlite_world.client.get("/api/v1/me", headers=header)
    assert r.status_code == 401 and r.json()["detail"] == "invalid API key"


def test_a_key_in_either_header(sqlite_world: World) -> None:
    key = sqlite_world.keys["inv"]
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        me = sqlite_world.client.get("/api/v1/me", headers=headers).json()
        assert me["username"] == "inv" and me["organisation"] == "Met"
        assert me["roles"] == ["investigator"]


def test_session_login_needs_csrf_on_unsafe_requests(sqlite_world: World) -> None:
    client = sqlite_world.client
    r = client.post("/api/v1/auth/login", json={"username": "sup", "password": PASSWORD})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf_token"]
    cookie = r.cookies.get("probity_session")
    assert cookie and "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=strict" in r.headers["set-cookie"].lower()
    assert client.get("/api/v1/me").json()["username"] == "sup"
    body = {"name": "Council", "kind": "public_body"}
    # A supervisor may not create organisations, but first: no CSRF token -> 403 csrf_failed.
    r = client.post("/api/v1/keys", json={"label": "mine"})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    r = client.post("/api/v1/keys", json={"label": "mine"}, headers={"X-CSRF-Token": "nope"})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    r = client.post("/api/v1/keys", json={"label": "mine"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201 and r.json()["key"].startswith("pb_")
    r = client.post("/api/v1/organisations", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and r.json()["code"] == "not_permitted"
    # Logout closes the session for good.
    r = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    client.cookies.set("probity_session", cookie)
    assert client.get("/api/v1/me").status_code == 401


def test_wrong_and_unknown_users_get_the_same_answer_and_are_rate_limited(
    sqlite_world: World,
) -> None:
    client = sqlite_world.client
    unknown = client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x"})
    wrong = client.post("/api/v1/auth/login", json={"username": "aud", "password": "wrong"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"] == "wrong username or password"
    limit = sqlite_world.settings.server.login_attempts
    for _ in range(limit - 1):
        assert (
            client.post(
                "/api/v1/auth/login", json={"username": "aud", "password": "wrong"}
            ).status_code
            == 401
        )
    # Now even the right password is refused until the window passes.
    r = client.post("/api/v1/auth/login", json={"username": "aud", "password": PASSWORD})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) > 0
    # The failures are on the audit record: the organisation's auditor sees those against
    # its accounts; the unknown name is in the deployment's log.
    failed = sqlite_world.call("GET", "/api/v1/audit?action=session.login_failed", "aud").json()
    assert failed["count"] == limit and {e["actor"] for e in failed["data"]} == {"aud"}
    events = sqlite_world.services.audit.events(actor="t", action="session.login_failed")
    assert events.total == limit + 1


def test_unapproved_and_lapsed_accounts(sqlite_world: World) -> None:
    from datetime import timedelta

    from probity.domain.accounts import Role

    accounts = sqlite_world.services.accounts
    accounts.create_user(
        actor="op",
        organisation="Met",
        username="newbie",
        roles=[Role.INVESTIGATOR],
        training_expires=sqlite_world.clock() + timedelta(days=1),
    )
    accounts.set_password(actor="op", username="newbie", password=PASSWORD)
    r = sqlite_world.client.post(
        "/api/v1/auth/login", json={"username": "newbie", "password": PASSWORD}
    )
    assert r.status_code == 200  # may sign in, but can do nothing until approved
    r = sqlite_world.client.get("/api/v1/cases")
    assert r.status_code == 403 and "approved" in r.json()["detail"]


def test_keys_can_be_listed_and_revoked_by_their_owner(sqlite_world: World) -> None:
    w = sqlite_world
    created = w.call("POST", "/api/v1/keys", "inv", json={"label": "laptop"}).json()
    mine = w.call("GET", "/api/v1/keys", "inv").json()
    assert {k["label"] for k in mine["data"]} == {"tests", "laptop"}
    assert "key" not in mine["data"][0] and created["key"] not in str(mine)
    new = {"Authorization": f"Bearer {created['key']}"}
    assert w.client.get("/api/v1/me", headers=new).status_code == 200
    # Someone else cannot revoke it (and cannot tell it exists).
    assert w.call("DELETE", f"/api/v1/keys/{created['key_id']}", "ex1").status_code == 404
    r = w.call("DELETE", f"/api/v1/keys/{created['key_id']}", "inv")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert w.client.get("/api/v1/me", headers=new).status_code == 401  # at once, despite the cache
    assert w.call("GET", "/api/v1/me", "inv").status_code == 200  # the other key still works
    revoked = w.call("GET", "/api/v1/audit?action=apikey.revoke", "aud").json()
    assert revoked["count"] == 1 and revoked["data"][0]["actor"] == "inv"

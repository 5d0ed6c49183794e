"""``PATCH /api/v1/users/{username}``: an admin changes roles, training expiry and whether an
account is active; the policy and the service's rules answer with problem+json."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import OPERATOR, World


def test_admin_changes_roles_training_and_state(sqlite_world: World) -> None:
    w = sqlite_world
    day = (w.clock() + timedelta(days=500)).date().isoformat()
    r = w.call(
        "PATCH",
        "/api/v1/users/ex2",
        "adm",
        json={"roles": ["examiner", "investigator"], "training_expires": day},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["roles"] == ["examiner", "investigator"] and body["active"] is True
    assert body["training_expires"].startswith(f"{day}T23:59:59")
    assert w.call("GET", "/api/v1/me", "ex2").json()["roles"] == ["examiner", "investigator"]

    # Deactivated: the account's keys are revoked and its sessions closed (issue 13).
    r = w.call("PATCH", "/api/v1/users/ex2", "adm", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    r = w.call("GET", "/api/v1/cases", "ex2")
    assert r.status_code == 401 and "invalid API key" in r.json()["detail"]
    listed = {u["username"]: u for u in w.call("GET", "/api/v1/users", "adm").json()["data"]}
    assert listed["ex2"]["active"] is False
    r = w.call("PATCH", "/api/v1/users/ex2", "adm", json={"active": True})
    assert r.status_code == 200
    # Reactivated, the person signs in again and makes a new key; the old one stays dead.
    assert w.call("GET", "/api/v1/cases", "ex2").status_code == 401
    fresh = w.services.accounts.create_api_key(actor=OPERATOR, username="ex2", label="new")
    r = w.call("GET", "/api/v1/cases", headers={"Authorization": f"Bearer {fresh.secret}"})
    assert r.status_code == 200

    events = w.services.audit.events(actor=OPERATOR, action="user.update").events
    assert [e.details["after"].keys() for e in events] == [
        {"roles", "training_expires"},
        {"active"},
        {"active"},
    ]
    assert all(e.actor == "adm" for e in events)


def test_refused_account_changes(sqlite_world: World) -> None:
    w = sqlite_world
    r = w.call("PATCH", "/api/v1/users/inv", "sup", json={"active": False})
    assert r.status_code == 403 and r.json()["code"] == "not_permitted"
    r = w.call("PATCH", "/api/v1/users/adm", "adm", json={"roles": ["admin", "supervisor"]})
    assert r.status_code == 403 and "their own" in r.json()["detail"]
    r = w.call("PATCH", "/api/v1/users/sup", "adm", json={"roles": ["auditor"]})
    assert r.status_code == 409 and "last active supervisor" in r.json()["detail"]
    r = w.call("PATCH", "/api/v1/users/sup", "adm", json={"active": False})
    assert r.status_code == 409
    assert w.call("PATCH", "/api/v1/users/ghost", "adm", json={"active": False}).status_code == 404
    assert w.call("PATCH", "/api/v1/users/inv", "adm", json={}).status_code == 400
    r = w.call("PATCH", "/api/v1/users/inv", "adm", json={"roles": []})
    assert r.status_code == 422
    r = w.call("PATCH", "/api/v1/users/inv", "adm", json={"roles": ["emperor"]})
    assert r.status_code == 422
    # An admin manages their own organisation's accounts (another's read as 404); the
    # deployment operator every organisation's; a supervisor elsewhere reads as 404.
    assert w.call("PATCH", "/api/v1/users/inv2", "adm", json={"active": False}).status_code == 404
    assert w.call("PATCH", "/api/v1/users/inv2", "opr", json={"active": False}).status_code == 200
    assert w.call("PATCH", "/api/v1/users/inv", "sup2", json={"active": False}).status_code == 404
    assert w.services.audit.events(actor=OPERATOR, action="user.update").total == 1

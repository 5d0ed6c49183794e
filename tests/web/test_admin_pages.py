"""The admin pages in a real Chromium: the deployment operator creates an organisation and an
account, a supervisor approves it, the operator changes its roles, training and state (the
service and the audit log agree); an investigator sees no Admin menu and is refused every
admin action; an API key is shown once and stops working when revoked; the pages read at
390 px."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.api.conftest import NOW, OPERATOR, PASSWORD
from tests.web.conftest import LiveServer


def _login(page: Any, live: LiveServer, user: str) -> None:
    page.goto(f"{live.url}/admin")
    assert page.url.startswith(f"{live.url}/login")  # no session: sent to sign in
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live.url}/admin")


def _csrf(page: Any) -> str:
    value = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert value
    return str(value)


def test_admin_creates_supervisor_approves_admin_changes(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = live.world
    admin = browser.new_context(viewport={"width": 1280, "height": 900})
    page = admin.new_page()
    _login(page, live, "opr")  # the deployment operator: organisations too
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").count()

    # An organisation, from the keyboard: type the name, Tab to the kind, choose, Enter.
    page.get_by_label("Organisation name", exact=True).focus()
    page.keyboard.type("Border Agency")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "org-kind"
    page.get_by_label("Kind").select_option("public_body")
    page.get_by_label("Organisation name", exact=True).press("Enter")
    page.wait_for_url(f"{live.url}/admin#organisations")
    assert "public body" in page.get_by_test_id("org-Border Agency").inner_text()

    # An account in Met: it waits for a supervisor, and an admin cannot approve it.
    training = (NOW + timedelta(days=200)).date()
    page.get_by_label("Username").fill("newbie")
    page.get_by_label("Organisation", exact=True).select_option("Met")
    page.get_by_label("investigator").check()
    page.get_by_label("Training attestation valid until").fill(training.isoformat())
    page.get_by_role("button", name="Create user").click()
    page.wait_for_url(f"{live.url}/admin#users")
    row = page.get_by_test_id("user-newbie")
    assert "awaiting approval" in page.get_by_test_id("approved-newbie").inner_text()
    assert page.get_by_test_id("training-newbie").inner_text() == training.isoformat()
    assert "investigator" in row.inner_text() and "Met" in row.inner_text()
    assert page.get_by_role("button", name="Approve newbie").count() == 0
    page.screenshot(path=str(screenshots / "admin.png"), full_page=True)

    # The supervisor of Met approves it; they may not change accounts.
    supervisor = browser.new_context(viewport={"width": 1280, "height": 900})
    sup = supervisor.new_page()
    _login(sup, live, "sup")
    assert sup.get_by_role("button", name="Create user").count() == 0
    assert sup.get_by_role("link", name="Change newbie").count() == 0
    assert sup.get_by_test_id("user-inv2").count() == 0  # another organisation's account
    sup.get_by_role("button", name="Approve newbie").click()
    sup.wait_for_url(f"{live.url}/admin#users")
    assert sup.get_by_test_id("approved-newbie").inner_text() == "yes"
    supervisor.close()

    # The admin changes the roles and the training expiry.
    page.goto(f"{live.url}/admin")
    page.get_by_role("link", name="Change newbie").click()
    page.wait_for_url(f"{live.url}/admin/users/newbie")
    later = (NOW + timedelta(days=700)).date()
    page.get_by_label("examiner").check()
    page.get_by_label("Training attestation valid until").fill(later.isoformat())
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(f"{live.url}/admin/users/newbie")
    assert page.get_by_test_id("user-roles").inner_text() == "examiner, investigator"
    assert page.get_by_test_id("user-training").inner_text() == later.isoformat()
    listed = {u["username"]: u for u in w.call("GET", "/api/v1/users", "adm").json()["data"]}
    assert listed["newbie"]["roles"] == ["examiner", "investigator"]
    assert listed["newbie"]["approved"] is True
    assert listed["newbie"]["training_expires"].startswith(later.isoformat())
    (event,) = w.services.audit.events(actor=OPERATOR, action="user.update").events
    assert event.actor == "opr" and event.details["user"] == "newbie"
    assert event.details["before"]["roles"] == ["investigator"]
    assert event.details["after"]["roles"] == ["examiner", "investigator"]
    assert event.details["after"]["training_expires"].startswith(later.isoformat())

    # Deactivate and reactivate; the last supervisor of Met cannot be deactivated (409).
    page.get_by_role("button", name="Deactivate newbie").click()
    page.wait_for_url(f"{live.url}/admin/users/newbie")
    assert page.get_by_test_id("user-active").inner_text() == "deactivated"
    assert listed["newbie"]["active"] is True
    page.get_by_role("button", name="Reactivate newbie").click()
    page.wait_for_url(f"{live.url}/admin/users/newbie")
    assert page.get_by_test_id("user-active").inner_text() == "yes"
    page.goto(f"{live.url}/admin/users/sup")
    page.get_by_role("button", name="Deactivate sup").click()
    assert "last active supervisor of 'Met'" in page.get_by_role("alert").inner_text()
    assert "HTTP 409" in page.locator("main").inner_text()

    # Your own account: no form to change it.
    page.goto(f"{live.url}/admin/users/opr")
    assert "your own account" in page.locator("main").inner_text()
    assert page.get_by_role("button", name="Save changes").count() == 0
    admin.close()


def test_investigator_has_no_admin_menu_and_is_refused_admin_actions(
    live: LiveServer, browser: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "inv")
    menu = page.get_by_role("navigation", name="Main")
    assert menu.get_by_role("link", name="Cases").count() == 1
    assert menu.get_by_role("link", name="Admin").count() == 0
    # /admin itself serves everyone their own API keys, and nothing else.
    assert page.get_by_role("heading", name="Your API keys").is_visible()
    assert page.get_by_role("heading", name="Users").count() == 0
    csrf = _csrf(page)
    posts = {
        "/admin/organisations": {"name": "Rogue", "kind": "other"},
        "/admin/users": {"username": "sneaky", "organisation": "Met", "roles": "admin"},
        "/admin/users/ex1/approval": {},
        "/admin/users/ex1": {"roles": "admin"},
        "/admin/users/ex1/active": {"active": "false"},
    }
    for path, form in posts.items():
        response = page.request.post(f"{live.url}{path}", form={"csrf_token": csrf, **form})
        assert response.status == 403, (path, response.status)
        text = response.text()
        assert "Something stopped this request" in text and "not allowed for investigator" in text
    response = page.request.get(f"{live.url}/admin/users/ex1")
    assert response.status == 403
    forged = page.request.post(
        f"{live.url}/admin/keys", form={"csrf_token": "forged", "label": "x"}
    )
    assert forged.status == 403 and "out of date" in forged.text()
    users = {
        u["username"]: u for u in live.world.call("GET", "/api/v1/users", "adm").json()["data"]
    }
    assert "sneaky" not in users and users["ex1"]["roles"] == ["examiner"]
    assert users["ex1"]["active"] is True
    orgs = live.world.call("GET", "/api/v1/organisations", "adm").json()["data"]
    assert "Rogue" not in {o["name"] for o in orgs}
    context.close()


def test_api_key_is_shown_once_and_revoking_stops_it(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    client = live.world.client
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "inv")
    page.get_by_label("Label").focus()  # from the keyboard: type, Enter submits
    page.keyboard.type("laptop")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/admin/keys")
    ) as created:
        page.keyboard.press("Enter")
    assert created.value.headers["cache-control"] == "no-store"
    secret = page.get_by_test_id("new-key-secret").inner_text()
    assert secret.startswith("pb_")
    assert "cannot be shown again" in page.get_by_test_id("new-key").inner_text()
    assert page.evaluate("document.activeElement.id") == "new-key"  # focus lands on it
    page.screenshot(path=str(screenshots / "admin-key.png"))
    key_id = secret.split("_")[1]
    assert "laptop" in page.get_by_test_id(f"key-{key_id}").inner_text()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["username"] == "inv"

    # Shown once: the admin page never shows it again, and no page stores it.
    page.goto(f"{live.url}/admin")
    assert page.get_by_test_id("new-key").count() == 0
    assert secret not in page.content()

    revoke = page.get_by_role("button", name=f"Revoke key {key_id}")
    revoke.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.url}/admin#keys")
    assert "revoked" in page.get_by_test_id(f"key-{key_id}").inner_text()
    assert page.get_by_role("button", name=f"Revoke key {key_id}").count() == 0
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 401
    context.close()


def test_admin_pages_read_at_390_px(live: LiveServer, browser: Any, screenshots: Path) -> None:
    for user, paths in (("adm", ["/admin", "/admin/users/inv"]), ("inv", ["/admin"])):
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        _login(page, live, user)
        for path in paths:
            page.goto(f"{live.url}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} as {user} scrolls sideways at 390 px ({width} px)"
        if user == "adm":
            page.goto(f"{live.url}/admin")
            page.screenshot(path=str(screenshots / "admin-390.png"), full_page=True)
        context.close()

"""Issue 13's security findings on the pages, in a real Chromium: login CSRF from another
site, framing by another site, the Content-Security-Policy on every page (no inline script
to refuse, no violation reported), blind review in the audit page, the erasure receipts of
another organisation, and the account pages (password at creation, reset code, change your
own, deciding a pending authorisation on the case page). The first five failed before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from probity.domain.accounts import Role
from tests.api.conftest import OPERATOR, PASSWORD, enrol_gallery, open_case, search
from tests.web.conftest import LiveServer

EVERY_PAGE = ["/cases", "/cases/OP-1", "/reviews/queue", "/galleries", "/audit", "/admin"]


def _login(page: Any, live: LiveServer, user: str, password: str = PASSWORD) -> None:
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


class Attacker:
    """Another site (``localhost`` on its own port, so another origin and another site than
    the ``127.0.0.1`` server): a page that posts our sign-in form with its own account, and
    a page that frames ours."""

    def __init__(self, target: str, token: str) -> None:
        login = f"""<form id="f" method="post" action="{target}/login">
            <input name="username" value="inv"><input name="password" value="{PASSWORD}">
            <input name="login_token" value="{token}"><input name="next" value="/cases">
            </form><script>document.getElementById("f").submit()</script>"""
        frame = f'<iframe id="victim" src="{target}/login" width="600" height="400"></iframe>'
        app = Starlette(
            routes=[
                Route("/login-csrf", lambda _: HTMLResponse(login)),
                Route("/frame", lambda _: HTMLResponse(frame)),
            ]
        )
        self.server = LiveServer(app=app)
        self.url = self.server.url.replace("127.0.0.1", "localhost")


@pytest.fixture
def attacker(live: LiveServer) -> Iterator[Attacker]:
    # The attacker may fetch a sign-in form for themselves: its token is theirs, not the
    # victim's, and the victim's browser holds no cookie to match it.
    found = live.world.client.get("/login").text.split('name="login_token" value="')
    token = found[1].split('"')[0] if len(found) > 1 else ""
    a = Attacker(live.url, token)
    with a.server:
        yield a


def test_a_page_on_another_site_cannot_sign_the_browser_in(
    live: LiveServer, attacker: Attacker, browser: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{attacker.url}/login-csrf")
    page.wait_for_load_state("networkidle")
    page.goto(f"{live.url}/cases")
    assert page.url.startswith(f"{live.url}/login"), "the attacker's form signed us in"
    assert not [c for c in context.cookies() if c["name"] == "probity_session"]
    context.close()


def test_no_other_site_may_frame_a_page(live: LiveServer, attacker: Attacker, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{attacker.url}/frame")
    page.wait_for_load_state("networkidle")
    frame = page.frame_locator("#victim")
    assert frame.get_by_label("Username").count() == 0, "our sign-in page was framed"
    context.close()


def test_every_page_carries_the_headers_and_breaks_no_rule_of_its_policy(
    live: LiveServer, browser: Any
) -> None:
    w = live.world
    probes = enrol_gallery(w)
    open_case(w)
    found = search(w, probes["pair"]).json()
    subject = found["faces"][0]["candidates"][0]["subject_id"]
    result = f"/searches/{found['search_id']}"
    r = w.client.get("/login")
    policy = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in r.headers  # plain HTTP on loopback
    for path in ("/health", "/api/v1/me", "/static/probity.css", "/no-such-page"):
        assert w.client.get(path).headers["x-content-type-options"] == "nosniff", path
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    _login(page, live, "sup")
    compare = f"{result}/faces/1/candidates/{subject}"
    for path in [*EVERY_PAGE, result, f"{result}?face=2", compare, "/account", "/privacy"]:
        page.goto(f"{live.url}{path}")
        page.wait_for_load_state("networkidle")
    assert violations == []
    context.close()


def test_hsts_and_secure_cookies_when_secure_cookies_are_on(live: LiveServer) -> None:
    w = live.world
    w.settings.server.secure_cookies = True
    r = w.client.post("/api/v1/auth/login", json={"username": "inv", "password": PASSWORD})
    assert r.status_code == 200
    assert "secure" in r.headers["set-cookie"].lower()
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")


def test_secure_cookies_are_on_by_default_unless_serving_on_loopback() -> None:
    from probity.interfaces.api.security import secure_cookies_for_host

    assert secure_cookies_for_host(None, "0.0.0.0") is True
    assert secure_cookies_for_host(None, "192.0.2.10") is True
    assert secure_cookies_for_host(None, "127.0.0.1") is False
    assert secure_cookies_for_host(None, "::1") is False
    assert secure_cookies_for_host(None, "localhost") is False
    assert secure_cookies_for_host(False, "0.0.0.0") is False


def test_the_audit_page_withholds_decisions_from_who_may_still_review(
    live: LiveServer, browser: Any
) -> None:
    w = live.world
    probes = enrol_gallery(w)
    open_case(w)
    body = search(w, probes["pair"]).json()
    subject = body["faces"][1]["candidates"][0]["subject_id"]
    url = f"/api/v1/searches/{body['search_id']}/faces/2/candidates/{subject}/reviews"
    assert w.call("POST", url, "inv", json={"decision": "not_a_match"}).status_code == 201
    accounts = w.services.accounts
    accounts.create_user(
        actor=OPERATOR,
        organisation="Met",
        username="exa",
        roles=[Role.EXAMINER, Role.AUDITOR],
        training_expires=w.clock() + timedelta(days=30),
        password=PASSWORD,
    )
    accounts.approve_user(actor=OPERATOR, username="exa", supervisor="sup")
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "exa")
    page.goto(f"{live.url}/audit?action=review.record")
    html = page.locator("main").inner_html()  # folded details included
    assert "review.record" in html
    assert "not_a_match" not in html and "withheld" in html
    context.close()


def test_another_organisations_privacy_officer_sees_none_of_our_receipts(
    live: LiveServer, browser: Any
) -> None:
    w = live.world
    enrol_gallery(w)
    r = w.call("DELETE", "/api/v1/galleries/custody/subjects/A-1?reason=court+order", "dpo")
    number = r.json()["receipt"]
    accounts = w.services.accounts
    accounts.create_user(
        actor=OPERATOR,
        organisation="Elsewhere",
        username="dpo2",
        roles=[Role.PRIVACY_OFFICER],
        training_expires=None,
        password=PASSWORD,
    )
    accounts.approve_user(actor=OPERATOR, username="dpo2", supervisor="sup2")
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "dpo2")
    page.goto(f"{live.url}/erasures")
    assert number not in page.locator("main").inner_text()
    response = page.request.get(f"{live.url}/erasures/{number}")
    assert response.status == 404
    context.close()


# -- accounts --------------------------------------------------------------------------------


def test_admin_sets_a_first_password_and_issues_a_reset_code(
    live: LiveServer, browser: Any
) -> None:
    w = live.world
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "adm")
    # An organisation's admin: no organisation form, and only their organisation's users.
    assert page.get_by_label("Organisation name", exact=True).count() == 0
    assert page.get_by_test_id("user-inv2").count() == 0
    page.get_by_label("Username").fill("newbie")
    page.get_by_label("investigator").check()
    page.get_by_label("First password").fill("first password 1")
    page.get_by_role("button", name="Create user").click()
    page.wait_for_url(f"{live.url}/admin#users")
    w.services.accounts.approve_user(actor=OPERATOR, username="newbie", supervisor="sup")
    person = browser.new_context()
    theirs = person.new_page()
    _login(theirs, live, "newbie", "first password 1")
    assert theirs.url.startswith(f"{live.url}/cases")

    # Forgotten: the admin issues a one-time code; using it signs the old session out.
    page.goto(f"{live.url}/admin/users/newbie")
    page.get_by_role("button", name="Issue a reset code for newbie").click()
    code = page.get_by_test_id("reset-code-value").inner_text()
    assert len(code) >= 16
    anonymous = browser.new_context().new_page()
    anonymous.goto(f"{live.url}/password-reset")
    anonymous.get_by_label("Username").fill("newbie")
    anonymous.get_by_label("Reset code").fill(code)
    anonymous.get_by_label("New password", exact=True).fill("second password 2")
    anonymous.get_by_label("New password again").fill("second password 2")
    anonymous.get_by_role("button", name="Set new password").click()
    anonymous.wait_for_url(f"{live.url}/login?changed=1")
    theirs.goto(f"{live.url}/cases")
    assert theirs.url.startswith(f"{live.url}/login")  # the old session ended
    # The code works once.
    anonymous.goto(f"{live.url}/password-reset")
    anonymous.get_by_label("Username").fill("newbie")
    anonymous.get_by_label("Reset code").fill(code)
    anonymous.get_by_label("New password", exact=True).fill("third password 33")
    anonymous.get_by_label("New password again").fill("third password 33")
    anonymous.get_by_role("button", name="Set new password").click()
    assert "wrong, used or expired" in anonymous.get_by_role("alert").inner_text()
    _login(theirs, live, "newbie", "second password 2")
    assert theirs.url.startswith(f"{live.url}/cases")
    context.close()
    person.close()


def test_change_your_own_password_on_the_web(live: LiveServer, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "ex1")
    page.get_by_role("link", name="Your account").click()
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill("a new passphrase 9")
    page.get_by_label("New password again").fill("a new passphrase 9")
    page.get_by_role("button", name="Change password").click()
    assert "current password is wrong" in page.get_by_role("alert").inner_text()
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("a new passphrase 9")
    page.get_by_label("New password again").fill("a new passphrase 9")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(f"{live.url}/login?changed=1")
    _login(page, live, "ex1", "a new passphrase 9")
    assert "/login" not in page.url
    context.close()


def test_a_supervisor_grants_a_pending_authorisation_on_the_case_page(
    live: LiveServer, browser: Any
) -> None:
    w = live.world
    open_case(w, "OP-P", pending=True)
    context = browser.new_context()
    inv = context.new_page()
    _login(inv, live, "inv")
    inv.goto(f"{live.url}/cases/OP-P")
    assert inv.get_by_test_id("authorisation-decision").count() == 0  # not theirs to decide
    context.close()
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "sup")
    page.goto(f"{live.url}/cases/OP-P")
    assert page.get_by_test_id("authorisation").inner_text().startswith("pending")
    page.get_by_label("Authorisation id").fill("WARRANT-99")
    page.get_by_label("Authority").fill("Judge Rinder")
    page.get_by_role("button", name="Grant the authorisation").click()
    page.wait_for_url(f"{live.url}/cases/OP-P")
    assert "granted (WARRANT-99, Judge Rinder)" in page.get_by_test_id("authorisation").inner_text()
    assert page.get_by_test_id("authorisation-decision").count() == 0
    case = w.call("GET", "/api/v1/cases/OP-P", "sup").json()
    assert case["authorisation"]["status"] == "granted"
    context.close()

"""Sign-in and cases in a real Chromium: who is signed in is always visible, fields are
labelled, a case opens from the form, the page reads at 390 px."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.conftest import PASSWORD, enrol_gallery, open_case
from tests.web.conftest import LiveServer


def _login(page: Any, live: LiveServer, user: str) -> None:
    page.goto(f"{live.url}/cases")
    assert page.url.startswith(f"{live.url}/login")  # no session: sent to sign in
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live.url}/cases")


def test_investigator_signs_in_and_opens_a_case(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").fill("inv")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    assert "wrong username or password" in page.get_by_role("alert").inner_text()

    _login(page, live, "inv")
    who = page.get_by_test_id("who").inner_text()
    assert "inv" in who and "Met" in who and "investigator" in who

    page.get_by_label("Case reference").fill("WEB-1")
    page.get_by_label("Offence category").select_option("robbery")
    page.get_by_label("Justification").fill("CCTV still from the robbery at the corner shop")
    page.get_by_label("Authorisation id").fill("WARRANT-42")
    page.get_by_role("button", name="Open case").click()
    page.wait_for_url(f"{live.url}/cases/WEB-1")
    assert page.get_by_role("heading", name="Case WEB-1").is_visible()
    assert "granted (WARRANT-42)" in page.get_by_test_id("authorisation").inner_text()
    assert page.get_by_test_id("searchable").inner_text() == "allowed"
    page.screenshot(path=str(screenshots / "case.png"), full_page=True)

    # The case was opened through the same service: the API sees it, in Met's organisation.
    api = live.world.call("GET", "/api/v1/cases/WEB-1", "sup").json()
    assert api["opened_by"] == "inv"
    assert live.world.call("GET", "/api/v1/cases/WEB-1", "inv2").status_code == 404

    # A pending case that is refused: the error page gives the service's reason.
    page.goto(f"{live.url}/cases")
    page.get_by_label("Case reference").fill("WEB-2")
    page.get_by_label("Justification").fill("another reason for a search")
    page.get_by_role("button", name="Open case").click()
    assert "either an authorisation id or 'pending'" in page.get_by_role("alert").inner_text()

    # Logging out ends the session: the cases page sends us to sign in again.
    page.goto(f"{live.url}/cases")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live.url}/login")
    page.goto(f"{live.url}/cases")
    assert page.url.startswith(f"{live.url}/login")
    context.close()


def test_pages_read_at_390_px_and_work_from_the_keyboard(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").focus()
    page.keyboard.type("sup")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.url}/cases")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the cases page scrolls sideways at 390 px ({width} px wide)"
    page.screenshot(path=str(screenshots / "cases-390.png"), full_page=True)
    context.close()


def test_forms_without_the_csrf_token_are_refused(live: LiveServer, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "inv")
    response = page.request.post(
        f"{live.url}/cases",
        form={
            "csrf_token": "forged",
            "reference": "X-1",
            "offence": "robbery",
            "justification": "long enough reason",
            "authorisation": "A-1",
        },
    )
    assert response.status == 403 and "out of date" in response.text()
    assert live.world.call("GET", "/api/v1/cases/X-1", "sup").status_code == 404
    context.close()


def test_search_page_boxes_every_face_under_the_banner(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = live.world
    probes = enrol_gallery(w)
    open_case(w, "WEB-S")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "inv")
    page.goto(f"{live.url}/cases/WEB-S")
    # Drag and drop: a file dropped on the zone fills the probe input.
    page.get_by_test_id("dropzone").evaluate(
        """(zone, bytes) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], "pair.png", {type: "image/png"}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }""",
        list(probes["pair"]),
    )
    assert page.get_by_label("Probe photo").evaluate("(input) => input.files[0].name") == "pair.png"
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"{live.url}/searches/*")
    banner = page.get_by_test_id("banner").inner_text()
    assert banner == "Investigative lead — not an identification"
    assert page.get_by_test_id("face-box-1").is_visible()
    assert page.get_by_test_id("face-box-2").is_visible()
    # Two faces: the first face's candidates are shown without a click.
    assert "B-1" in page.get_by_test_id("candidate-1-1").inner_text()
    assert page.get_by_test_id("pick-face-1").get_attribute("aria-current") == "true"
    page.get_by_test_id("pick-face-2").click()
    page.wait_for_url("**face=2")
    card = page.get_by_test_id("candidate-2-1")
    assert "A-1" in card.inner_text() and "custody-suite/118812" in card.inner_text()
    assert page.get_by_test_id("banner").inner_text() == banner
    # The candidate's thumbnail is the matching gallery image, decrypted, not cached.
    thumb = card.get_by_role("img")
    # A lazy image loads once it is near the viewport, after the page's own load event:
    # wait for its load (a condition, not a delay; it failed under load when read at once).
    thumb.scroll_into_view_if_needed()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    # The probe is served decrypted to the signed-in page, never cached, and never to others.
    probe_url = page.url.split("?")[0] + "/probe"
    response = page.request.get(probe_url)
    assert response.status == 200 and response.headers["cache-control"] == "no-store"
    page.screenshot(path=str(screenshots / "search.png"), full_page=True)
    # The case page lists the search; a search with no face says so.
    page.goto(f"{live.url}/cases/WEB-S")
    page.get_by_label("Probe photo").set_input_files(
        files=[{"name": "none.png", "mimeType": "image/png", "buffer": probes["none"]}]
    )
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"{live.url}/searches/*")
    assert "No face found" in page.locator("figcaption").inner_text()
    assert page.get_by_test_id("banner").is_visible()
    context.close()
    anonymous = browser.new_context()
    r = anonymous.new_page().request.get(probe_url, max_redirects=0)
    assert r.status == 303 and "/login" in r.headers["location"]
    anonymous.close()

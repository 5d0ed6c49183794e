"""The search page as an examiner wants it, in a real Chromium (issue 13, item 4): search
options on the page, a double click that makes one search, the first face's candidates
beside the photo without a click, legible face numbers, face thumbnails, zoom on the compare
view, refused forms that keep what was typed, and lists with a filter and pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from probity.domain.audit import AuditAction
from tests.api.conftest import PASSWORD, World, enrol_gallery, open_case
from tests.web.conftest import LiveServer


def _login(page: Any, live: LiveServer, user: str, path: str) -> None:
    page.goto(f"{live.url}{path}")
    assert page.url.startswith(f"{live.url}/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live.url}{path}")


def _searches(w: World, case: str) -> int:
    return int(w.call("GET", f"/api/v1/cases/{case}/searches", "sup").json()["count"])


def _audited_searches(w: World) -> int:
    return w.services.audit.events(actor="root", action=AuditAction.SEARCH.value).total


def _choose(page: Any, name: str, data: bytes) -> None:
    page.get_by_label("Probe photo").set_input_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": data}]
    )


def test_double_click_makes_one_search_and_face_one_shows_at_once(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = live.world
    assert w is not None
    probes = enrol_gallery(w)
    open_case(w, "WEB-D")
    before = _audited_searches(w)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "inv", "/cases/WEB-D")
    _choose(page, "pair.png", probes["pair"])
    # The options are on the page: list length and the operating point.
    page.get_by_text("Options: galleries, list length, marking").click()
    page.get_by_label("Candidates per face (list length)").fill("1")
    page.get_by_label("Marking").select_option("off")
    page.get_by_test_id("search-button").dblclick()
    page.wait_for_url(f"{live.url}/searches/*")
    assert _searches(w, "WEB-D") == 1 and _audited_searches(w) == before + 1

    # Face 1's candidates without a click, beside the photo on a wide screen.
    card = page.get_by_test_id("candidate-1-1")
    assert "B-1" in card.inner_text()
    assert page.get_by_test_id("candidate-1-2").count() == 0  # the list length asked for
    assert "Investigation mode" in page.get_by_test_id("threshold").inner_text()
    photo = page.locator("figure.probe").bounding_box()
    panel = page.locator("#face-panel").bounding_box()
    assert panel["x"] >= photo["x"] + photo["width"] - 1, (photo, panel)
    assert panel["y"] < photo["y"] + photo["height"]
    # Face numbers sit on a dark box; the picker shows each face's thumbnail.
    for face in (1, 2):  # face 1 is the picked one (amber), face 2 plain (black)
        fill = page.locator(f"[data-testid=face-box-{face}] rect.label").evaluate(
            "(r) => getComputedStyle(r).fill"
        )
        channels = [float(x) for x in re.findall(r"[\d.]+", fill)[:3]]
        assert sum(channels) / 3 < 90, fill  # dark under the white number
    text = page.get_by_test_id("face-label-2").evaluate("(t) => getComputedStyle(t).fill")
    assert text == "rgb(255, 255, 255)"
    for face in (1, 2):
        thumb = page.get_by_test_id(f"face-thumb-{face}")
        thumb.scroll_into_view_if_needed()
        thumb.evaluate("(img) => img.decode()")
        assert thumb.evaluate("(img) => img.naturalWidth") > 0
    page.screenshot(path=str(screenshots / "search-wide.png"), full_page=True)

    # Compare view: both images zoom together.
    card.get_by_role("link", name="Compare and review").click()
    page.wait_for_url("**/candidates/*")
    image = page.get_by_test_id("candidate-face")
    image.evaluate("(img) => img.decode()")
    before_width = image.evaluate("(img) => img.getBoundingClientRect().width")
    page.get_by_test_id("zoom-in").click()
    page.get_by_test_id("zoom-in").click()
    assert page.get_by_test_id("zoom-level").inner_text() == "200 %"
    after = image.evaluate("(img) => img.getBoundingClientRect().width")
    probe_after = page.get_by_test_id("probe-face").evaluate(
        "(img) => img.getBoundingClientRect().width"
    )
    assert after > 1.9 * before_width and probe_after > 1.9 * before_width
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.screenshot(path=str(screenshots / "compare-zoomed.png"), full_page=True)
    context.close()


def test_the_button_waits_and_a_resent_form_gives_the_same_search(
    live: LiveServer, browser: Any
) -> None:
    w = live.world
    assert w is not None
    probes = enrol_gallery(w)
    open_case(w, "WEB-K")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "inv", "/cases/WEB-K")
    form = page.locator("form.search-form")
    # On submit, in the same turn: the button is disabled and the progress line shows;
    # a second submit of the form is held back by the page.
    _choose(page, "a.png", probes["a"])
    state = form.evaluate(
        """(f) => {
            const button = f.querySelector("[data-testid=search-button]");
            f.requestSubmit(button);
            const busy = f.querySelector("[data-testid=search-busy]");
            const held = !f.dispatchEvent(new Event("submit", {cancelable: true, bubbles: true}));
            return {disabled: button.disabled, hidden: busy.hidden, text: busy.textContent,
                    held: held};
        }"""
    )
    assert state["disabled"] and not state["hidden"] and state["held"], state
    assert "Searching" in state["text"]
    page.wait_for_url(f"{live.url}/searches/*")
    assert _searches(w, "WEB-K") == 1

    # Without the page's script, the same form sent twice (a retry): one search.
    page.goto(f"{live.url}/cases/WEB-K")
    fields = {
        name: form.locator(f"input[name={name}]").get_attribute("value")
        for name in ("csrf_token", "form_key")
    }
    multipart = {
        **fields,
        "top_k": "5",
        "probe": {"name": "a.png", "mimeType": "image/png", "buffer": probes["a"]},
    }
    url = f"{live.url}/cases/WEB-K/searches"
    first = page.request.post(url, multipart=multipart, max_redirects=0)
    again = page.request.post(url, multipart=multipart, max_redirects=0)
    assert first.status == 303 and again.status == 303
    assert first.headers["location"] == again.headers["location"]
    assert _searches(w, "WEB-K") == 2
    # The same key with another photo: the page says so and draws a fresh key.
    other = page.request.post(
        url,
        multipart={
            **multipart,
            "probe": {"name": "p.png", "mimeType": "image/png", "buffer": probes["pair"]},
        },
    )
    assert other.status == 200 and "already ran a search" in other.text()
    assert fields["form_key"] not in other.text()
    assert _searches(w, "WEB-K") == 2
    context.close()


def test_refused_forms_keep_their_input(live: LiveServer, browser: Any) -> None:
    w = live.world
    assert w is not None
    enrol_gallery(w)
    open_case(w, "WEB-R")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "inv", "/cases")
    # A case reference in use: refused, what was typed is still there.
    page.get_by_label("Case reference").fill("WEB-R")
    page.get_by_label("Justification").fill("a long justification typed with care")
    page.get_by_label("Authorisation id").fill("WARRANT-77")
    page.get_by_role("button", name="Open case").click()
    assert "WEB-R" in page.get_by_test_id("form-error").inner_text()
    assert page.get_by_label("Justification").input_value() == (
        "a long justification typed with care"
    )
    assert page.get_by_label("Authorisation id").input_value() == "WARRANT-77"
    # A search of something that is not a photo: refused, the options kept.
    page.goto(f"{live.url}/cases/WEB-R")
    page.get_by_label("Probe photo").set_input_files(
        files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}]
    )
    page.get_by_text("Options: galleries, list length, marking").click()
    page.get_by_label("Candidates per face (list length)").fill("7")
    page.get_by_label("Marking").select_option("0.01")
    page.get_by_test_id("search-button").click()
    page.get_by_test_id("search-error").wait_for()
    assert page.get_by_label("Candidates per face (list length)").input_value() == "7"
    assert page.get_by_label("Marking").input_value() == "0.01"
    assert "Choose the photo again" in page.locator("#probe-hint").inner_text()
    assert _searches(w, "WEB-R") == 0
    context.close()


def test_lists_have_a_filter_and_pages(live: LiveServer, browser: Any) -> None:
    w = live.world
    assert w is not None
    for n in range(27):
        open_case(w, f"LIST-{n:02d}")
    open_case(w, "OTHER-1")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "inv", "/cases")
    table = page.get_by_role("table", name="Cases")
    assert table.locator("tbody tr").count() == 25
    assert "28 cases; showing 1–25" in page.get_by_test_id("list-count").inner_text()
    page.get_by_role("link", name="Next").click()
    page.wait_for_url("**/cases?page=2")
    assert table.locator("tbody tr").count() == 3
    page.get_by_label("Find a case").fill("other")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/cases?q=other")
    assert table.locator("tbody tr").count() == 1
    assert "OTHER-1" in table.inner_text()
    context.close()

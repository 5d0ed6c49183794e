"""The privacy pages in a real Chromium: a member of the public files a request on /privacy
with no account and gets a receipt number and the deadline; a mistake comes back on the
form with the fields kept; the status lookup shows the status and dates only. The privacy
officer's /rights list shows the deadline clocks with an overdue request highlighted; on a
request page they erase the record an erasure request names and close it, and download an
access request's export; "Find by photo" lists possible matches, each erased only once the
officer confirms they compared the photos. Every page reads at 390 px without sideways
scrolling."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from probity.domain.rights import due_at
from probity.storage.rights import RightsRequests
from tests.api.conftest import PASSWORD, PERSON_A, World, enrol_gallery, open_case, search
from tests.fakes import make_image, near
from tests.web.conftest import LiveServer


def _world(live: LiveServer) -> World:
    assert live.world is not None
    return live.world


def _login(page: Any, live: LiveServer, user: str, path: str) -> None:
    page.goto(f"{live.url}{path}")
    assert page.url.startswith(f"{live.url}/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live.url}{path}")


def _fits(page: Any, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{what} scrolls sideways at 390 px ({width} px)"


def test_the_public_files_and_checks_a_request_without_an_account(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = _world(live)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    response = page.goto(f"{live.url}/privacy")
    assert response is not None and response.status == 200
    assert page.url == f"{live.url}/privacy"  # no redirect to /login
    assert page.get_by_role("heading", name="Your privacy rights").is_visible()
    page.screenshot(path=str(screenshots / "privacy.png"), full_page=True)

    # An objection without a photo: refused on the same form, the fields kept.
    page.get_by_label("Objection (opt out by face)").check()
    page.get_by_label("How should we answer you?").fill("jo@example.org")
    page.get_by_role("button", name="Send request").click()
    alert = page.get_by_test_id("privacy-error")
    alert.wait_for()
    assert "needs one photo" in alert.inner_text()
    assert page.get_by_label("How should we answer you?").input_value() == "jo@example.org"
    assert page.get_by_label("Objection (opt out by face)").is_checked()

    # With the photo: filed, and the photo is sealed for the request.
    page.get_by_label("Photo of your face").set_input_files(
        files=[{"name": "me.png", "mimeType": "image/png", "buffer": make_image(40)}]
    )
    page.get_by_role("button", name="Send request").click()
    page.get_by_role("heading", name="Request received").wait_for()
    objection = page.get_by_test_id("receipt").inner_text().strip()
    assert w.services.rights.get(actor="test", receipt=objection).has_photo
    assert "sealed with its own key" in page.content()

    page.goto(f"{live.url}/privacy")
    page.get_by_label("How should we answer you?").fill("jo@example.org")
    page.get_by_label("Erasure").check()
    page.get_by_label("Reference number (if you have one)").fill("A-1")
    page.get_by_role("button", name="Send request").click()
    page.get_by_role("heading", name="Request received").wait_for()
    receipt = page.get_by_test_id("receipt").inner_text().strip()
    request = w.services.rights.get(actor="test", receipt=receipt)
    assert request.filed_by == "public" and request.identifiers == {"reference": "A-1"}
    assert page.get_by_test_id("due").inner_text() == due_at(request.filed_at).date().isoformat()
    assert context.cookies() == []  # no session was ever made

    page.goto(f"{live.url}/privacy")
    page.get_by_label("Receipt number").fill(receipt.lower())
    page.get_by_role("button", name="Check status").click()
    result = page.get_by_test_id("status-result")
    result.wait_for()
    assert page.get_by_test_id("status-value").inner_text() == "open"
    assert "jo@example.org" not in page.content() and "A-1" not in result.inner_text()
    page.get_by_label("Receipt number").fill("RR-2026-0000000000")
    page.get_by_role("button", name="Check status").click()
    assert "no request" in page.get_by_test_id("status-error").inner_text()

    # A forged or stale form token is refused.
    forged = page.request.post(
        f"{live.url}/privacy",
        multipart={"form_token": "1.2.3", "kind": "access", "contact": "x@y.z", "reference": "1"},
    )
    assert forged.status == 403 and "reload the page" in forged.text()
    context.close()

    small = browser.new_context(viewport={"width": 390, "height": 844})
    page = small.new_page()
    page.goto(f"{live.url}/privacy")
    _fits(page, "/privacy")
    small.close()


def test_the_privacy_officer_handles_requests(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = _world(live)
    probes = enrol_gallery(w)
    open_case(w)
    assert search(w, probes["a"]).status_code == 201
    rights = w.services.rights
    erasure = rights.file(
        actor="public", kind="erasure", contact="jo@example.org", identifiers={"reference": "A-1"}
    )
    access = rights.file(
        actor="public", kind="access", contact="al@example.org",
        identifiers={"reference": "B-1", "gallery": "custody"},
    )  # fmt: skip
    late = rights.file(
        actor="public", kind="access", contact="late@example.org", identifiers={"reference": "X"}
    )
    with w.services.db.transaction() as session:  # filed long ago: now overdue
        RightsRequests(session).update(
            late.receipt,
            filed_at=late.filed_at - timedelta(days=40),
            due_at=due_at(late.filed_at - timedelta(days=40)),
        )

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "dpo", "/rights")
    assert page.get_by_role("link", name="Rights").first.is_visible()
    rows = page.locator("tr[data-testid^='request-']")
    assert rows.count() == 3
    assert rows.first.get_attribute("data-testid") == f"request-{late.receipt}"  # earliest due
    overdue = page.get_by_test_id(f"request-{late.receipt}")
    assert "overdue" in (overdue.get_attribute("class") or "")
    assert page.get_by_test_id(f"clock-{late.receipt}").inner_text().startswith("Overdue by")
    assert "days left" in page.get_by_test_id(f"clock-{erasure.receipt}").inner_text()
    page.screenshot(path=str(screenshots / "rights.png"), full_page=True)

    # The erasure request: erase the record it names, then close it.
    page.get_by_role("link", name=erasure.receipt).click()
    page.wait_for_url(f"**/rights/{erasure.receipt}")
    assert page.get_by_label("The record's reference in that gallery").input_value() == "A-1"
    # The confirmation step: the required box holds the erasure back until ticked.
    page.get_by_role("button", name="Erase record").click()
    assert w.services.erasure.receipts(actor="test", request_id=erasure.id) == []
    page.get_by_test_id("confirm-erasure").check()
    page.get_by_role("button", name="Erase record").click()
    page.wait_for_url(f"**/rights/{erasure.receipt}")
    (receipt,) = w.services.erasure.receipts(actor="test", request_id=erasure.id)
    assert page.get_by_test_id(f"erasure-{receipt.number}").is_visible()
    page.get_by_label("Outcome, or the reason for a refusal").fill("record A-1 erased")
    page.get_by_role("button", name="Close request").click()
    page.wait_for_url(f"**/rights/{erasure.receipt}")
    assert page.get_by_test_id("status").inner_text() == "closed"
    assert page.get_by_test_id("outcome").inner_text() == "record A-1 erased"

    # The access request: the export downloads as a zip.
    page.goto(f"{live.url}/rights/{access.receipt}")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download export").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    document = json.loads(archive.read("subject.json"))
    assert document["subject"]["reference"] == "B-1" and "report.pdf" in archive.namelist()
    page.goto(f"{live.url}/rights/{access.receipt}")
    assert page.get_by_test_id("export-1").is_visible()

    # The overdue request can no longer be extended (the first month has run out).
    page.goto(f"{live.url}/rights/{late.receipt}")
    assert page.get_by_role("button", name="Extend by two months").count() == 0
    context.close()

    small = browser.new_context(viewport={"width": 390, "height": 844})
    page = small.new_page()
    _login(page, live, "dpo", "/rights")
    _fits(page, "/rights")
    for receipt_number in (erasure.receipt, access.receipt, late.receipt):
        page.goto(f"{live.url}/rights/{receipt_number}")
        _fits(page, f"/rights/{receipt_number}")
    page.screenshot(path=str(screenshots / "rights-request-390.png"), full_page=True)
    small.close()

    # Another role does not see the pages.
    other = browser.new_context()
    page = other.new_page()
    _login(page, live, "inv", "/cases")
    response = page.goto(f"{live.url}/rights")
    assert response is not None and response.status == 403
    assert page.get_by_role("link", name="Rights").count() == 0
    other.close()
    assert w.services.audit.verify(actor="test").ok


def test_the_privacy_officer_finds_a_person_by_the_requests_photo(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = _world(live)
    enrol_gallery(w)
    photo = w.engine.register(make_image(41), near(PERSON_A, 0.3, 41))
    request = w.services.rights.file(
        actor="public", kind="erasure", contact="jo@example.org", photo=photo, client="x"
    )  # no reference: only the photo finds the record
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    _login(page, live, "dpo", f"/rights/{request.receipt}")
    page.get_by_role("button", name="Find by photo").click()
    section = page.get_by_test_id("photo-lookup")
    section.wait_for()
    assert "not an identification" in section.inner_text()
    assert page.get_by_test_id("banner").is_visible()
    row = page.get_by_test_id("lookup-1")
    assert "A-1" in row.inner_text() and page.get_by_test_id("lookup-2").count() == 0
    page.screenshot(path=str(screenshots / "rights-photo-lookup-390.png"), full_page=True)
    _fits(page, "the photo lookup")
    assert w.services.rights.get(actor="test", receipt=request.receipt).result == {}

    # Erasing a possible match asks the officer to confirm they compared the photos.
    row.get_by_role("button", name="Erase A-1").click()
    assert page.get_by_test_id("lookup-1").is_visible()  # the required box stopped it
    row.get_by_label("I compared the photos myself").check()
    row.get_by_role("button", name="Erase A-1").click()
    page.wait_for_url(f"**/rights/{request.receipt}")
    (receipt,) = w.services.erasure.receipts(actor="test", request_id=request.id)
    assert page.get_by_test_id(f"erasure-{receipt.number}").is_visible()
    assert page.get_by_test_id("photo-lookup").count() == 0  # the list was never stored

    # A photo without a usable face says so on the page.
    blank = w.services.rights.file(
        actor="public", kind="access", contact="al@example.org", photo=make_image(42), client="y"
    )
    page.goto(f"{live.url}/rights/{blank.receipt}")
    page.get_by_role("button", name="Find by photo").click()
    page.get_by_test_id("lookup-error").wait_for()
    assert "no face" in page.get_by_test_id("lookup-error").inner_text()
    context.close()
    assert len(w.services.audit.events(actor="test", action="rights.photo_lookup").events) == 2
    assert w.services.audit.verify(actor="test").ok

"""The auditor's pages in a real Chromium: the log filtered by action and case shows exactly
the matching events, the chain's status loads with htmx and names the first altered event,
other roles are refused, the annual report's figures equal counts taken from the log, and
both pages read at 390 px."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import text

from probity.domain.audit import AuditEvent
from probity.storage.repositories import AuditLog
from tests.api.conftest import PASSWORD, World, enrol_gallery, open_case, search
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


def _log(w: World, **filters: Any) -> list[AuditEvent]:
    """Events straight from the log repository (no audit service, so no read is recorded)."""
    with w.services.db.read() as session:
        return list(AuditLog(session).events(**filters))


def _seed(w: World) -> None:
    """Two cases, searches with candidates and without a face, a lead."""
    probes = enrol_gallery(w)
    open_case(w, "AUD-1")
    open_case(w, "AUD-2")
    first = search(w, probes["a"], "AUD-1").json()
    search(w, probes["none"], "AUD-1")
    search(w, probes["a"], "AUD-2")
    subject = first["faces"][0]["candidates"][0]["subject_id"]
    url = f"/api/v1/searches/{first['search_id']}/faces/1/candidates/{subject}/reviews"
    for examiner in ("ex1", "ex2"):
        r = w.call("POST", url, examiner, json={"decision": "possible_match", "note": "same"})
        assert r.status_code in (200, 201), r.text


def test_auditor_filters_the_log_and_sees_the_chain_verified_then_broken(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = _world(live)
    _seed(w)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "aud", "/audit")
    status = page.get_by_test_id("chain-status")
    # A visit does not verify: nothing has, yet. The button runs one (the first is full).
    assert status.inner_text().startswith("Not verified yet")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Verify new events").click()
    assert answer.value.status == 200
    # The answer is swapped into the page after it arrives: wait for that (Playwright's
    # expect retries until it holds), not just for the response.
    status = page.get_by_test_id("chain-status")
    expect(status).to_have_text(re.compile(r"^Verified"))
    assert "checkpoint" in status.inner_text()
    assert "the whole chain" in page.get_by_test_id("chain-mode").inner_text()

    page.get_by_label("Action").select_option("search.run")
    page.get_by_label("Case reference").fill("AUD-1")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/audit?*case=AUD-1*")
    expected = _log(w, action="search.run", case_reference="AUD-1", organisation="Met")
    assert len(expected) == 2
    rows = page.locator("tr[data-testid^='event-']")
    assert rows.count() == len(expected)
    for event in expected:
        row = page.get_by_test_id(f"event-{event.seq}")
        assert "search.run" in row.inner_text() and "AUD-1" in row.inner_text()
        assert event.hash[:12] in row.inner_text() and event.hash not in row.inner_text()
    assert page.get_by_test_id("match-count").inner_text().startswith("2 events match")
    page.screenshot(path=str(screenshots / "audit.png"), full_page=True)

    # The acting-user filter, from the actor's link: only that person's events.
    page.get_by_test_id(f"event-{expected[0].seq}").get_by_role("link", name="inv").click()
    page.wait_for_url("**/audit?by=inv")
    by_inv = _log(w, actor="inv", organisation="Met")
    assert page.locator("tr[data-testid^='event-']").count() == min(len(by_inv), 50)

    # Dates are UTC days, "until" inclusive of its day; a malformed date is refused.
    today = w.clock().date()
    met_so_far = len(_log(w, organisation="Met"))
    page.goto(f"{live.url}/audit?since={today}&until={today}")
    assert page.get_by_test_id("match-count").inner_text().startswith(f"{met_so_far} events")
    page.goto(f"{live.url}/audit?until={today - timedelta(days=1)}")
    assert page.get_by_test_id("match-count").inner_text().startswith("0 events")
    response = page.goto(f"{live.url}/audit?since=31/01/2026")
    assert response is not None and response.status == 400
    assert "2026-01-31" in page.get_by_role("alert").inner_text()

    # Pages of five (Met's events only): next and previous.
    met = _log(w, organisation="Met", limit=6)
    page.goto(f"{live.url}/audit?limit=5")
    assert page.get_by_test_id(f"event-{met[4].seq}").is_visible()
    assert page.get_by_test_id(f"event-{met[5].seq}").count() == 0
    page.get_by_role("link", name="Next").first.click()
    page.wait_for_url("**offset=5*")
    assert page.get_by_test_id(f"event-{met[5].seq}").is_visible()
    assert page.get_by_role("link", name="Previous").first.is_visible()

    # Someone with write access to the database alters one search event.
    altered = expected[1].seq
    with w.services.db.transaction() as session:
        session.execute(
            text("UPDATE audit_events SET actor = 'mallory' WHERE seq = :seq"), {"seq": altered}
        )
    before = len(_log(w, action="audit.verify"))
    page.goto(f"{live.url}/audit")
    # The visit shows the stored result of the last verification and verifies nothing.
    status = page.get_by_test_id("chain-status")
    assert status.inner_text().startswith("Verified (last verification)")
    assert len(_log(w, action="audit.verify")) == before
    # "Verify new events" re-hashes only the events after the last verified one: the edit
    # is before it, so only verifying the whole chain finds it.
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Verify new events").click()
    assert answer.value.status == 200
    expect(page.get_by_test_id("chain-mode")).to_contain_text("incremental")
    assert page.get_by_test_id("chain-status").inner_text().startswith("Verified")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Verify the whole chain").click()
    assert answer.value.status == 200
    status = page.get_by_test_id("chain-status")
    expect(status).to_have_text(re.compile(rf"^Broken at event #{altered}\b"))
    assert "altered" in status.inner_text()
    verifications = _log(w, action="audit.verify", organisation="Met")
    assert [(e.details["ok"], e.details["mode"]) for e in verifications][-3:] == [
        (True, "full"),
        (True, "incremental"),
        (False, "full"),
    ]
    # The next visit shows that failure, from the stored result.
    page.goto(f"{live.url}/audit")
    shown = page.get_by_test_id("chain-status").inner_text()
    assert shown.startswith(f"Broken at event #{altered}") and "last verification" in shown
    context.close()


def test_an_investigator_is_refused_the_auditor_pages(live: LiveServer, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "inv", "/cases")
    assert "Audit" not in page.get_by_role("navigation", name="Main").inner_text()
    for path in ("/audit", "/audit/verification", "/reports/annual"):
        response = page.goto(f"{live.url}{path}")
        assert response is not None and response.status == 403, path
        assert page.get_by_role("alert").is_visible()
    context.close()


def test_the_annual_report_page_counts_what_the_log_holds(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = _world(live)
    _seed(w)
    year = w.clock().year
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "aud", "/reports/annual")
    assert page.get_by_role("heading", name=f"Annual report {year}").is_visible()
    through = int(page.get_by_test_id("through-seq").inner_text())
    events = [
        e
        for e in _log(
            w,
            organisation="Met",
            since=datetime(year, 1, 1, tzinfo=UTC),
            until=datetime(year + 1, 1, 1, tzinfo=UTC),
        )
        if e.seq <= through
    ]

    def figure(test_id: str) -> int:
        return int(page.get_by_test_id(test_id).inner_text())

    def count(action: str) -> int:
        return sum(1 for e in events if e.action == action)

    assert figure("total-events") == len(events)
    assert figure("total-searches") == count("search.run") == 3
    assert figure("total-cases_opened") == count("case.open") == 2
    assert figure("total-reviews") == count("review.record") == 2
    assert figure("total-leads_confirmed") == count("lead.confirmed") == 1
    assert figure("total-audit_reads") == count("audit.read")
    assert figure("searches_by_offence-robbery") == 3
    assert figure("searches-Met-robbery") == 3
    assert figure("search_outcomes-no_face_found") == 1
    assert figure("search_outcomes-candidates") == 2
    assert figure("rights-erasure") == 0
    page.screenshot(path=str(screenshots / "annual-report.png"), full_page=True)

    # The JSON and PDF downloads are the same report, for the signed-in person.
    def download(test_id: str) -> Any:
        return page.request.get(live.url + page.get_by_test_id(test_id).get_attribute("href"))

    data = download("download-json").json()
    assert data["year"] == year and data["totals"]["searches"] == 3
    pdf = download("download-pdf")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")

    # The year picker: the year before holds nothing of Met's.
    page.get_by_label("Year").fill(str(year - 1))
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**/reports/annual?year={year - 1}")
    assert figure("total-searches") == 0
    assert "No searches in this year." in page.locator("main").inner_text()
    context.close()


def test_auditor_pages_read_at_390_px(live: LiveServer, browser: Any, screenshots: Path) -> None:
    _seed(_world(live))
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    _login(page, live, "aud", "/audit")
    page.get_by_test_id("chain-status").wait_for()
    for path, shot in (("/audit", "audit-390.png"), ("/reports/annual", "annual-report-390.png")):
        page.goto(f"{live.url}{path}")
        if path == "/audit":
            page.get_by_test_id("chain-status").wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways at 390 px ({width} px wide)"
        page.screenshot(path=str(screenshots / shot), full_page=True)
    context.close()

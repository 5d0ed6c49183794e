"""The jurisdiction, retention and erasure-receipt pages in a real Chromium: the privacy
officer excludes a jurisdiction through the page, sees how many held records a purge would
erase, purges them after a confirmation step and sees the receipts, and the records are gone;
a sweep after the clock passes a retention date erases what is due; the erasure receipts
page lists both, one receipt downloads as JSON with no biometric data; an investigator gets
no menu entry and a 403 on every form. Every page reads at 390 px without sideways
scrolling."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.api.conftest import NOW, PASSWORD, PROVENANCE, World, enrol_gallery
from tests.fakes import make_image, unit
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


def _enrol(w: World, gallery: str, ref: str, seed: int, **provenance: str) -> None:
    image = w.engine.register(make_image(seed), unit(seed))
    r = w.call(
        "POST",
        f"/api/v1/galleries/{gallery}/enrolments",
        "cur",
        data={"subject": ref, **PROVENANCE, **provenance},
        files={"image": ("photo.png", image, "image/png")},
    )
    assert r.status_code == 201, r.text


def _references(w: World) -> set[str]:
    with w.services.db.read() as s:
        return {r[0] for r in s.execute(text("SELECT reference FROM subjects"))}


def test_the_privacy_officer_excludes_a_jurisdiction_and_purges_it(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = _world(live)
    enrol_gallery(w)  # A-1 and B-1, collected in GB
    _enrol(w, "custody", "FR-1", 50, jurisdiction="FR")
    assert _references(w) == {"A-1", "B-1", "FR-1"}

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "dpo", "/jurisdictions")
    menu = page.get_by_role("navigation", name="Main")
    assert menu.get_by_role("link", name="Jurisdictions").is_visible()
    assert menu.get_by_role("link", name="Erasures").is_visible()
    assert "No jurisdiction is excluded." in page.get_by_test_id("rules").inner_text()
    assert page.get_by_test_id("held-count").inner_text() == "0"

    # Exclude GB (lower case is fine) with a reason.
    page.get_by_label("Jurisdiction code (ISO 3166)").fill("gb")
    page.get_by_label("Reason (the order, decision or policy behind it)").fill(
        "ICO enforcement notice, 2022"
    )
    page.get_by_role("button", name="Exclude").click()
    page.wait_for_url("**/jurisdictions?excluded=GB#held")
    assert "GB is excluded" in page.get_by_test_id("excluded").inner_text()
    rule = page.get_by_test_id("rule-GB")
    assert "this organisation's galleries" in rule.inner_text()
    assert "ICO enforcement notice, 2022" in rule.inner_text()
    assert "dpo" in rule.inner_text()
    assert page.get_by_test_id("held-count").inner_text() == "2"
    assert "a purge would erase them" in page.get_by_test_id("held").inner_text()
    (held,) = w.services.jurisdictions.rules(actor="test")
    assert held.code == "GB" and held.organisation_id is not None
    page.screenshot(path=str(screenshots / "jurisdictions.png"), full_page=True)

    # The purge: a confirmation with the count, then the receipts.
    page.get_by_role("link", name="Purge now").click()
    page.wait_for_url("**/jurisdictions/purge")
    assert "will erase 2 records of 2 people" in page.get_by_test_id("purge-count").inner_text()
    assert _references(w) == {"A-1", "B-1", "FR-1"}  # nothing erased yet
    page.get_by_role("button", name="Erase 2 records").click()
    result = page.get_by_test_id("purge-result")
    result.wait_for()
    assert result.inner_text().startswith("2 records erased, 2 receipts issued")
    rows = page.locator("tr[data-testid^='receipt-']")
    assert rows.count() == 2
    records = {rows.nth(i).get_by_test_id("record").inner_text() for i in range(2)}
    assert records == {"A-1", "B-1"}
    assert {rows.nth(i).get_by_test_id("cause").inner_text() for i in range(2)} == {"jurisdiction"}
    # The records are gone; the one collected elsewhere stays.
    assert _references(w) == {"FR-1"}
    assert w.services.jurisdictions.held(actor="test") == []
    receipts = w.services.erasure.receipts(actor="test")
    assert {r.subject_reference for r in receipts} == {"A-1", "B-1"}
    assert all(r.cause.value == "jurisdiction" and r.index_vectors == 1 for r in receipts)

    # The erasure receipts page lists them, newest first, and one downloads as JSON.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Erasures").click()
    page.wait_for_url("**/erasures")
    listed = page.locator("tr[data-testid^='receipt-']")
    assert [listed.nth(i).get_attribute("data-testid") for i in range(2)] == [
        f"receipt-{r.number}" for r in receipts
    ]
    assert "2 receipts: 2 images" in page.get_by_test_id("erasure-totals").inner_text()
    audit = listed.first.get_by_role("link", name=f"event #{receipts[0].audit_seq}")
    assert "by=dpo" in (audit.get_attribute("href") or "")
    page.screenshot(path=str(screenshots / "erasures.png"), full_page=True)
    first = receipts[0]
    page.get_by_role("link", name=first.number).click()
    page.wait_for_url(f"**/erasures/{first.number}")
    assert page.get_by_test_id("receipt-number").inner_text() == first.number
    assert page.get_by_test_id("record").inner_text() == first.subject_reference
    assert "key-wrapping key rotated" in page.content()
    # What the index erasure guarantees on this home's backend, as the receipt states it.
    assert first.index_statement is not None
    assert page.get_by_test_id("index-statement").inner_text() == first.index_statement
    subject_remove = page.get_by_role("link", name="subject.remove")
    assert "action=subject.remove" in (subject_remove.get_attribute("href") or "")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download receipt (JSON)").click()
    body = json.loads(Path(download.value.path()).read_text())
    assert body["receipt"] == first.number and body["cause"] == "jurisdiction"
    assert body["index_vectors_removed"] == 1
    assert body["index_statement"] == first.index_statement
    assert not {"vector", "template", "image", "embedding"} & set(body)
    context.close()

    # Every page reads at 390 px, with the rule still in force.
    small = browser.new_context(viewport={"width": 390, "height": 844})
    page = small.new_page()
    _login(page, live, "dpo", "/jurisdictions")
    for path in (
        "/jurisdictions",
        "/jurisdictions/purge",
        "/retention",
        "/erasures",
        f"/erasures/{first.number}",
    ):
        page.goto(f"{live.url}{path}")
        _fits(page, path)
    page.goto(f"{live.url}/jurisdictions")
    page.screenshot(path=str(screenshots / "jurisdictions-390.png"), full_page=True)

    # Lifting the rule, with a reason: FR-1 was never touched; nothing comes back.
    page.get_by_label("Reason for lifting GB").fill("order overturned on appeal")
    page.get_by_role("button", name="Lift GB").click()
    page.wait_for_url("**/jurisdictions?lifted=GB")
    assert "stay purged" in page.get_by_test_id("lifted").inner_text()
    assert page.get_by_test_id("rule-GB").count() == 0
    assert w.services.jurisdictions.rules(actor="test") == []
    small.close()
    assert _references(w) == {"FR-1"}
    assert w.services.audit.verify(actor="test").ok


def test_a_sweep_erases_what_is_due_and_an_investigator_may_not(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = _world(live)
    enrol_gallery(w)  # custody: 365 days, collected 30 days ago
    body = {"name": "short", "inclusion_policy": "people charged", "retention_days": 1}
    assert w.call("POST", "/api/v1/galleries", "cur", json=body).status_code == 201
    _enrol(w, "short", "S-1", 60, collected_at=NOW.date().isoformat())
    w.clock.advance(timedelta(days=2))  # past S-1's retention date

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "dpo", "/retention")
    assert page.get_by_test_id("retention-short").get_by_test_id("due").inner_text() == "1"
    assert page.get_by_test_id("retention-custody").get_by_test_id("due").inner_text() == "0"
    assert "1 day from collection" in page.get_by_test_id("retention-short").inner_text()
    assert page.get_by_test_id("due-total").inner_text().startswith("1 record due")
    page.get_by_role("button", name="Sweep now").click()  # the confirmation box holds it
    assert page.get_by_test_id("sweep-result").count() == 0
    page.get_by_test_id("confirm-erasure").check()
    page.get_by_role("button", name="Sweep now").click()
    result = page.get_by_test_id("sweep-result")
    result.wait_for()
    assert "1 erased, 1 person erased whole, 1 receipt issued" in result.inner_text()
    (row,) = page.locator("tr[data-testid^='receipt-']").all()
    assert row.get_by_test_id("record").inner_text() == "S-1"
    assert row.get_by_test_id("cause").inner_text() == "retention"
    assert _references(w) == {"A-1", "B-1"}  # only what was due
    counts = {g.name: s for g, s, _ in w.services.galleries.list()}
    assert counts == {"custody": 2, "short": 0}

    # Back on the page nothing is due; the receipts page lists the sweep's receipt.
    page.goto(f"{live.url}/retention")
    assert page.get_by_test_id("retention-short").get_by_test_id("due").inner_text() == "0"
    page.goto(f"{live.url}/erasures")
    (receipt,) = w.services.erasure.receipts(actor="test")
    assert receipt.cause.value == "retention" and receipt.subject_reference == "S-1"
    assert page.get_by_test_id(f"receipt-{receipt.number}").is_visible()
    page.get_by_label("Cause").select_option("jurisdiction")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/erasures?cause=jurisdiction")
    assert page.get_by_test_id(f"receipt-{receipt.number}").count() == 0
    context.close()

    # An investigator: no menu entry, and a 403 on every form (with a valid CSRF token).
    other = browser.new_context()
    page = other.new_page()
    _login(page, live, "inv", "/cases")
    menu = page.get_by_role("navigation", name="Main")
    for label in ("Jurisdictions", "Erasures", "Rights"):
        assert menu.get_by_role("link", name=label).count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert csrf
    for path, form in (
        ("/jurisdictions", {"code": "FR", "reason": "not mine to set"}),
        ("/jurisdictions/GB/lift", {"reason": "not mine to lift"}),
        ("/jurisdictions/purge", {}),
        ("/retention/sweep", {"confirm": "yes"}),
    ):
        response = page.request.post(f"{live.url}{path}", form={"csrf_token": csrf, **form})
        assert response.status == 403 and "not_permitted" in response.text(), path
    for path in ("/jurisdictions", "/jurisdictions/purge", "/retention", "/erasures"):
        response = page.goto(f"{live.url}{path}")
        assert response is not None and response.status == 403, path
    forged = page.request.post(f"{live.url}/retention/sweep", form={"csrf_token": "forged"})
    assert forged.status == 403 and "out of date" in forged.text()
    other.close()
    assert _references(w) == {"A-1", "B-1"}
    assert w.services.jurisdictions.rules(actor="test") == []
    assert w.services.audit.verify(actor="test").ok

"""Issue 4's acceptance run, in a real Chromium against the real dlib models on real photos.

An investigator opens a case, uploads the two-person NASA photo (read in place from
../shared/faces, never copied into the project), sees both faces boxed, picks the right-hand
face, finds Hague at rank 1 and records "possible match"; a second examiner finds the
candidate in their queue without the first decision, confirms it, and it becomes a lead; an
auditor finds both reviews and the lead in the log and the chain verified. Screenshots of the
search, compare, queue and audit pages are saved (PROBITY_SCREENSHOTS keeps them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.config import Settings
from probity.domain.accounts import OrganisationKind, Role
from probity.interfaces.api.app import create_app
from probity.services.clock import system_clock
from probity.services.container import Services, build_services
from tests.api.conftest import PASSWORD, seed_people
from tests.cli.conftest import NasaHome, shared_faces
from tests.web.conftest import LiveServer

PEOPLE = {
    "wsup": [Role.SUPERVISOR],
    "winv": [Role.INVESTIGATOR],
    "wex": [Role.EXAMINER],
    "waud": [Role.AUDITOR],
}


@pytest.fixture(scope="module")
def real_live(nasa_home: NasaHome) -> Iterator[tuple[LiveServer, Services]]:
    """The server on the shared NASA home (gallery 'crew' enrolled with the real models),
    with one organisation's people, under uvicorn."""
    services = build_services(Settings(home=nasa_home.home))  # every installed model, as served
    seed_people(
        services, "Web Crew Security", OrganisationKind.LAW_ENFORCEMENT, PEOPLE, system_clock
    )
    with LiveServer(app=create_app(services=services)) as server:
        yield server, services
    services.close()


def login(page: Any, live: LiveServer, user: str) -> None:
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def logout(page: Any, live: LiveServer) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live.url}/login")


def banner_with_every_candidate(page: Any) -> None:
    """No page shows a candidate without the investigative-lead banner."""
    if page.locator("[data-candidate]").count():
        assert page.get_by_test_id("banner").inner_text() == INVESTIGATIVE_LEAD_NOTICE


def shows_image(page: Any, img: Any) -> None:
    """The <img> loads a decrypted JPEG that the browser is told not to keep."""
    img.scroll_into_view_if_needed()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=img.element_handle()
    )
    response = page.request.get(page.url.split("/searches/")[0] + img.get_attribute("src"))
    assert response.status == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "no-store"


def test_probe_to_lead_to_audit_in_the_browser(
    real_live: tuple[LiveServer, Services], browser: Any, screenshots: Path
) -> None:
    live, services = real_live
    probe = shared_faces() / "multi_morgan_hague.jpg"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    # Investigator: open a case, upload the probe.
    login(page, live, "winv")
    assert page.url == f"{live.url}/cases"  # an investigator starts at their cases
    page.get_by_label("Case reference").fill("WEB-REAL-1")
    page.get_by_label("Offence category").select_option("kidnapping")
    page.get_by_label("Justification").fill("photo of two people seen with the missing person")
    page.get_by_label("Authorisation id").fill("AUTH-WEB-1")
    page.get_by_role("button", name="Open case").click()
    page.wait_for_url(f"{live.url}/cases/WEB-REAL-1")
    page.get_by_label("Probe photo").set_input_files(str(probe))
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"{live.url}/searches/*", timeout=120_000)

    # Both faces boxed and numbered left to right; face 1's candidates shown at once.
    boxes = [page.get_by_test_id(f"face-box-{n}") for n in (1, 2)]
    assert all(b.is_visible() for b in boxes)
    assert page.get_by_test_id("face-box-3").count() == 0
    left, right = (float(b.locator("rect.box").get_attribute("x") or "nan") for b in boxes)
    assert left < right
    assert page.get_by_test_id("candidate-1-1").get_by_test_id("subject").inner_text() == "MORGAN"

    # Pick the right-hand face on the photo: Hague at rank 1, under the banner, with his
    # gallery image.
    page.get_by_test_id("face-box-2").click()
    page.wait_for_url("**face=2")
    top = page.get_by_test_id("candidate-2-1")
    assert top.get_by_test_id("subject").inner_text() == "HAGUE"
    banner_with_every_candidate(page)
    shows_image(page, top.get_by_role("img"))
    page.screenshot(path=str(screenshots / "search.png"), full_page=True)

    # Compare side by side and record "possible match".
    top.get_by_role("link", name="Compare and review").click()
    page.wait_for_url("**/candidates/*")
    assert page.get_by_role("heading", level=1).inner_text().endswith("candidate HAGUE")
    banner_with_every_candidate(page)
    for testid in ("probe-face", "candidate-face"):
        shows_image(page, page.get_by_test_id(testid))
    facts = page.get_by_test_id("compare-facts").inner_text()
    assert "Lawful basis" in facts and "Distance" in facts
    compare_url = page.url
    page.get_by_label("Note").fill("ear shape and hairline agree")
    page.get_by_role("button", name="Possibly the same person").click()
    page.wait_for_url(compare_url)
    assert "Possibly the same person" in page.get_by_test_id("own-review").inner_text()
    assert page.get_by_test_id("lead").count() == 0  # one person never makes a lead
    page.screenshot(path=str(screenshots / "compare.png"), full_page=True)
    logout(page, live)

    # Second examiner: the queue shows the candidate, not the first decision.
    login(page, live, "wex")
    page.get_by_role("link", name="Review queue").click()
    page.wait_for_url(f"{live.url}/reviews/queue")
    row = page.get_by_test_id("queue-1")
    assert "HAGUE" in row.inner_text() and "WEB-REAL-1" in row.inner_text()
    queue_text = page.locator("main").inner_text()
    assert "Possibly the same person" not in queue_text and "ear shape" not in queue_text
    banner_with_every_candidate(page)
    page.screenshot(path=str(screenshots / "queue.png"), full_page=True)
    row.get_by_role("link", name="Review").click()
    page.wait_for_url(compare_url)
    assert page.get_by_test_id("reviews-hidden").is_visible()
    assert "ear shape" not in page.locator("main").inner_text()
    page.get_by_label("Note").fill("independent comparison agrees")
    page.get_by_role("button", name="Possibly the same person").click()
    page.wait_for_url(compare_url)
    assert page.get_by_test_id("lead").is_visible()
    reviews = page.get_by_test_id("reviews").inner_text()
    assert "winv" in reviews and "wex" in reviews  # visible now that wex has decided
    page.goto(f"{live.url}/reviews/queue")
    assert page.get_by_test_id("queue-empty").is_visible()
    page.goto(f"{live.url}/cases/WEB-REAL-1")
    assert "HAGUE" in page.get_by_test_id("leads").inner_text()
    banner_with_every_candidate(page)
    logout(page, live)

    # Auditor: both reviews and the lead in the log, the chain verified.
    login(page, live, "waud")
    assert page.url.startswith(f"{live.url}/audit")  # an auditor starts at the log
    page.get_by_label("Case reference").fill("WEB-REAL-1")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    log = page.locator("main").inner_text()
    assert log.count("review.record") >= 2 and "lead.confirmed" in log
    assert "winv" in log and "wex" in log
    status = page.get_by_test_id("chain-status")
    status.wait_for()
    assert "verified" in status.inner_text().lower()
    page.screenshot(path=str(screenshots / "audit.png"), full_page=True)
    context.close()

    # The same facts through the services: a lead, confirmed by the two of them.
    leads = services.reviews.leads(actor="tests", case_reference="WEB-REAL-1")
    assert [lead.confirmed_by for lead in leads] == [("wex", "winv")]

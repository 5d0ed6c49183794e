"""The search and compare pages on the real dlib models with the photos committed in
tests/data (so this runs wherever the project is checked out, ../shared/faces or not), at
1280 px and at 390 px. Its 1280 px screenshot of the search page is the one the README shows
(``docs/search-page.png``; regenerate with ``PROBITY_SCREENSHOTS=DIR scripts/test -k
committed_photos`` and copy ``readme-search.png``).

The probe is made here from two committed photos side by side: Obama (obama2.jpg, a different
photo from the enrolled obama.jpg) on the left and Eileen Collins (astronaut.png, not in the
gallery) on the right. Face 1 must find Obama at rank 1; Collins's face must say "no candidate
above the threshold" rather than offer the nearest stranger; the false face the HOG detector
finds on her mission patch must be boxed as refused, with the reason.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.config import Settings
from probity.domain.accounts import OrganisationKind, Role
from probity.engine.dlib_engine import DlibEngine
from probity.interfaces.api.app import create_app
from probity.services.clock import system_clock
from probity.services.container import build_services, initialise
from tests.api.conftest import PASSWORD, PROVENANCE, seed_people
from tests.web.conftest import LiveServer

DATA = Path(__file__).resolve().parents[1] / "data"
PEOPLE = {"csup": [Role.SUPERVISOR], "ccur": [Role.CURATOR], "cinv": [Role.INVESTIGATOR]}


def side_by_side(left: Path, right: Path, height: int = 600) -> bytes:
    """Two photos scaled to one height, left to right, as one JPEG."""
    parts = []
    for path in (left, right):
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            parts.append(rgb.resize((round(rgb.width * height / rgb.height), height)))
    canvas = Image.new("RGB", (sum(p.width for p in parts) + 40, height), "white")
    canvas.paste(parts[0], (0, 0))
    canvas.paste(parts[1], (parts[0].width + 40, 0))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def committed_live(
    tmp_path_factory: pytest.TempPathFactory, engine: DlibEngine
) -> Iterator[LiveServer]:
    settings = Settings(home=tmp_path_factory.mktemp("committed") / "home")
    initialise(settings, actor="tests")
    services = build_services(settings, engine=engine)
    keys = seed_people(services, "Met", OrganisationKind.LAW_ENFORCEMENT, PEOPLE, system_clock)
    app = create_app(services=services)
    with TestClient(app) as client:
        cur = {"Authorization": f"Bearer {keys['ccur']}"}
        r = client.post(
            "/api/v1/galleries",
            headers=cur,
            json={"name": "custody", "inclusion_policy": "people charged", "retention_days": 365},
        )
        assert r.status_code == 201, r.text
        for photo, ref in (("obama.jpg", "CRN-OBAMA"), ("biden.jpg", "CRN-BIDEN")):
            r = client.post(
                "/api/v1/galleries/custody/enrolments",
                headers=cur,
                data={"subject": ref, **PROVENANCE},
                files={"image": (photo, (DATA / photo).read_bytes(), "image/jpeg")},
            )
            assert r.status_code == 201, r.text
        with LiveServer(app=app) as server:
            yield server
    services.close()


def test_search_and_compare_on_committed_photos_at_1280_and_390(
    committed_live: LiveServer, browser: Any, screenshots: Path
) -> None:
    live = committed_live
    probe = side_by_side(DATA / "obama2.jpg", DATA / "astronaut.png")
    wide = browser.new_context(viewport={"width": 1280, "height": 900})
    page = wide.new_page()
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").fill("cinv")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live.url}/cases")
    page.get_by_label("Case reference").fill("COMMITTED-1")
    page.get_by_label("Justification").fill("still from the doorbell camera at the scene")
    page.get_by_label("Authorisation id").fill("WARRANT-9")
    page.get_by_role("button", name="Open case").click()
    page.wait_for_url(f"{live.url}/cases/COMMITTED-1")
    page.get_by_label("Probe photo").set_input_files(
        files=[{"name": "doorbell.jpg", "mimeType": "image/jpeg", "buffer": probe}]
    )
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"{live.url}/searches/*", timeout=120_000)
    search_url = page.url

    # Three detections: Obama, the false "face" HOG finds on Collins's mission patch (refused
    # by the probe quality floor, its box dashed and the reason given), and Collins herself,
    # a stranger to the gallery: in investigation mode (the default) still a ranked list
    # under the banner, no row marked, with the rows a stranger produces by chance.
    assert page.get_by_test_id("face-box-3").is_visible()
    assert "refused" in (page.get_by_test_id("face-box-2").get_attribute("class") or "")
    page.get_by_test_id("pick-face-2").click()
    page.wait_for_url("**face=2")
    assert "detector confidence" in page.get_by_test_id("refused").inner_text()
    page.get_by_test_id("pick-face-3").click()
    page.wait_for_url("**face=3")
    assert "by chance" in page.get_by_test_id("expected-false").inner_text()
    assert page.locator("[data-candidate]").count() >= 1
    assert page.get_by_test_id("within").count() == 0
    assert "Investigation mode" in page.get_by_test_id("threshold").inner_text()
    # Obama's face: the enrolled photo at rank 1.
    page.get_by_test_id("pick-face-1").click()
    page.wait_for_url("**face=1")
    top = page.get_by_test_id("candidate-1-1")
    assert top.get_by_test_id("subject").inner_text() == "CRN-OBAMA"
    # The picked face is marked on the photo and in the list, the others not.
    assert "picked" in (page.get_by_test_id("face-box-1").get_attribute("class") or "")
    assert "picked" not in (page.get_by_test_id("face-box-3").get_attribute("class") or "")
    assert page.get_by_test_id("pick-face-1").get_attribute("aria-current") == "true"
    assert page.get_by_test_id("banner").inner_text() == INVESTIGATIVE_LEAD_NOTICE
    thumb = top.get_by_role("img")
    page.wait_for_function("(i) => i.complete && i.naturalWidth > 0", arg=thumb.element_handle())
    page.screenshot(path=str(screenshots / "readme-search.png"), full_page=True)
    top.get_by_role("link", name="Compare and review").click()
    page.wait_for_url("**/candidates/*")
    compare_url = page.url
    wide.close()

    # The same pages at 390 px (a phone): no sideways scrolling, the banner still there.
    narrow = browser.new_context(viewport={"width": 390, "height": 844})
    page = narrow.new_page()
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").fill("cinv")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live.url}/cases")
    for url, name in ((search_url + "?face=1", "search-390"), (compare_url, "compare-390")):
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} scrolls sideways at 390 px ({width} px wide)"
        assert page.get_by_test_id("banner").is_visible()
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    narrow.close()

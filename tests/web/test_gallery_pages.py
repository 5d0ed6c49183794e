"""The curator's pages in a real Chromium: a gallery is created from the form, a manifest and
its images are uploaded, the progress bar (htmx polling) reaches 100 %, the summary and the
list of refused images give the reasons, uploading again skips everything, the staging
folder is gone; an investigator sees no upload form and is refused the POST; the pages read
at 390 px and every field is labelled."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from probity.storage.jobs import Jobs
from tests.api.conftest import OPERATOR, PASSWORD, PROVENANCE
from tests.fakes import BAD_QUALITY, make_image, unit
from tests.web.conftest import LiveServer

HEADER = "path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by"


def _login(page: Any, live: LiveServer, user: str, start: str = "/galleries") -> None:
    page.goto(f"{live.url}{start}")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live.url}{start}")


def _row(path: str, subject: str, **changes: str) -> str:
    p = {**PROVENANCE, **changes}
    fields = ("source", "lawful_basis", "collected_at", "jurisdiction", "collected_by")
    return ",".join([path, subject, *(p[f] for f in fields)])


def _intake(live: LiveServer) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Five rows: three people (one photo also shows a poor second face), a corrupt file and
    a row without its source. The manifest names folders; the browser sends names only."""
    engine = live.world.engine
    images = {
        "a.png": engine.register(make_image(31), unit(31)),
        "b.png": engine.register(make_image(32), unit(32)),
        "c.png": engine.register(make_image(33), unit(33)),
        "broken.jpg": b"\xff\xd8\xff\xe0 this is not a jpeg",
        "d.png": engine.register(make_image(34), unit(34)),
    }
    engine.add_face(images["c.png"], unit(35), BAD_QUALITY)
    manifest = "\n".join(
        [
            HEADER,
            _row("intake/a.png", "CRN-1"),
            _row("intake/b.png", "CRN-2"),
            _row("intake/c.png", "CRN-3"),
            _row("intake/broken.jpg", "CRN-4"),
            _row("intake/d.png", "CRN-5", source=""),
        ]
    )
    return (
        {"name": "intake.csv", "mimeType": "text/csv", "buffer": manifest.encode()},
        [
            {
                "name": n,
                "mimeType": "image/jpeg" if n.endswith(".jpg") else "image/png",
                "buffer": b,
            }
            for n, b in images.items()
        ],
    )


def _upload(page: Any, manifest: dict[str, Any], images: list[dict[str, Any]]) -> list[str]:
    """Submit the bulk form, then watch the progress until the job is done; returns every
    percentage the page showed, in order."""
    page.get_by_label("Manifest (CSV)").set_input_files(files=[manifest])
    page.get_by_label("Image files the manifest names").set_input_files(files=images)
    page.get_by_role("button", name="Upload and enrol").click()
    page.wait_for_url("**/jobs/*")
    page.evaluate("window.sameDocument = true")  # gone if the page reloaded instead of htmx
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while True:
        # One read of the whole fragment: htmx may swap it between two reads.
        status, percent = page.evaluate(
            """[document.querySelector('[data-testid=job-status]').innerText,
                document.querySelector('[data-testid=job-percent]').innerText]"""
        )
        if not seen or seen[-1] != percent:
            seen.append(percent)
        if status.startswith("Done"):
            break
        assert time.monotonic() < deadline, f"the job did not finish: {seen}"
        time.sleep(0.1)
    assert page.evaluate("window.sameDocument") is True
    return seen


def _slow_engine(live: LiveServer, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    engine = live.world.engine
    analyse = engine.analyse

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return analyse(*args, **kwargs)

    monkeypatch.setattr(engine, "analyse", slow)


def test_curator_creates_a_gallery_and_bulk_uploads_with_a_progress_bar(
    live: LiveServer, browser: Any, screenshots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "cur")
    page.get_by_label("Gallery name").fill("intake")
    page.get_by_label("Inclusion policy").fill("custody images of charged persons")
    page.get_by_label("Retention (days)").fill("365")
    page.get_by_label("Jurisdictions").fill("gb, GB-SCT")
    page.get_by_role("button", name="Create gallery").click()
    page.wait_for_url(f"{live.url}/galleries/intake")
    facts = page.get_by_test_id("gallery-facts").inner_text()
    assert "custody images of charged persons" in facts and "GB, GB-SCT" in facts

    _slow_engine(live, monkeypatch, 0.75)  # four photos reach the engine: about 3 s
    manifest, images = _intake(live)
    seen = _upload(page, manifest, images)
    assert seen[-1] == "100 %" and len(seen) >= 2, seen  # the bar moved without a reload
    bar = page.get_by_test_id("job-progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == "5"
    assert page.get_by_test_id("job-enrolled").inner_text() == "3"
    assert page.get_by_test_id("job-skipped").inner_text() == "0"
    assert page.get_by_test_id("job-refused").inner_text() == "2"
    refused = page.get_by_test_id("job-refused-rows").inner_text()
    assert "intake/broken.jpg" in refused and "CRN-4" in refused and "corrupt" in refused
    assert "intake/d.png" in refused and "source" in refused
    faces = page.get_by_test_id("job-faces-refused").inner_text()
    assert "intake/c.png" in faces and "confidence" in faces
    assert page.get_by_test_id("job").get_attribute("hx-trigger") is None  # polling stopped
    page.screenshot(path=str(screenshots / "bulk-upload.png"), full_page=True)

    # The images were staged privately and removed when the job ended.
    staging = live.world.settings.staging_dir
    assert staging.is_dir() and list(staging.iterdir()) == []

    # The gallery counts three subjects, and lists the refused images with their reasons.
    page.get_by_role("link", name="Gallery intake").click()
    assert page.get_by_test_id("subjects").inner_text() == "3"
    listed = page.get_by_test_id("refused").inner_text()
    assert "line 5" in listed and "line 6" in listed and "corrupt" in listed
    assert ".img" not in listed and "staging" not in listed  # the staging names never show

    # The same upload again: the three enrolled rows are skipped.
    live.world.clock.advance(timedelta(minutes=1))
    seen = _upload(page, manifest, images)
    assert page.get_by_test_id("job-enrolled").inner_text() == "0"
    assert page.get_by_test_id("job-skipped").inner_text() == "3"
    assert page.get_by_test_id("job-refused").inner_text() == "2"
    page.goto(f"{live.url}/galleries/intake/refused")
    rows = page.get_by_test_id("refused").locator("tbody tr")
    assert rows.count() == 4

    page.goto(f"{live.url}/galleries")
    row = page.get_by_test_id("gallery-intake")
    assert row.get_by_test_id("subjects").inner_text() == "3"
    assert row.get_by_test_id("enrolments").inner_text() == "3"
    assert "custody images of charged persons" in row.inner_text()
    page.screenshot(path=str(screenshots / "galleries.png"), full_page=True)

    # The API reads the same job, through the same service.
    w = live.world
    latest = w.services.jobs.recent(actor=OPERATOR, gallery="intake")[0]
    r = w.call("GET", f"/api/v1/galleries/intake/jobs/{latest.id}", "inv")
    assert r.status_code == 200 and r.json()["skipped"] == 3
    context.close()


def test_a_single_refused_image_is_explained_and_listed(live: LiveServer, browser: Any) -> None:
    w = live.world
    r = w.call(
        "POST",
        "/api/v1/galleries",
        "cur",
        json={"name": "custody", "inclusion_policy": "charged", "retention_days": 365},
    )
    assert r.status_code == 201, r.text
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "cur", "/galleries/custody")

    def fill(image: bytes, subject: str) -> None:
        page.get_by_label("Photo of the subject").set_input_files(
            files=[{"name": f"{subject}.png", "mimeType": "image/png", "buffer": image}]
        )
        page.get_by_label("Subject reference").fill(subject)
        page.get_by_label("Source system and record id").fill(PROVENANCE["source"])
        page.get_by_label("Lawful basis", exact=True).select_option("law_enforcement")
        page.get_by_label("Collected on").fill(PROVENANCE["collected_at"])
        page.get_by_label("Jurisdiction (ISO 3166)").fill("GB")
        page.get_by_label("Collected by (optional)").fill("PC 1234")
        page.get_by_role("button", name="Enrol image").click()

    fill(make_image(41), "S-NOFACE")
    assert "no face" in page.get_by_test_id("enrol-error").inner_text()
    assert page.get_by_label("Subject reference").input_value() == "S-NOFACE"  # kept filled
    listed = page.get_by_test_id("refused").inner_text()
    assert "S-NOFACE.png" in listed and "single upload" in listed and "no face" in listed

    fill(w.engine.register(make_image(42), unit(42)), "S-OK")
    page.wait_for_url("**/galleries/custody?enrolled=S-OK*")
    assert "Enrolled an image of S-OK" in page.get_by_test_id("enrol-done").inner_text()
    assert page.get_by_test_id("subjects").inner_text() == "1"
    context.close()


def test_an_investigator_sees_no_upload_form_and_is_refused_the_post(
    live: LiveServer, browser: Any
) -> None:
    w = live.world
    r = w.call(
        "POST",
        "/api/v1/galleries",
        "cur",
        json={"name": "custody", "inclusion_policy": "charged", "retention_days": 365},
    )
    assert r.status_code == 201, r.text
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "inv")
    assert page.get_by_label("Gallery name").count() == 0  # no create form
    page.goto(f"{live.url}/galleries/custody")
    assert page.get_by_role("heading", name="Gallery custody").is_visible()
    assert page.get_by_label("Manifest (CSV)").count() == 0
    assert page.get_by_label("Photo of the subject").count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    manifest = f"{HEADER}\n{_row('a.png', 'A')}".encode()
    response = page.request.post(
        f"{live.url}/galleries/custody/jobs",
        multipart={
            "csrf_token": csrf,
            "manifest": {"name": "m.csv", "mimeType": "text/csv", "buffer": manifest},
            "images": {"name": "a.png", "mimeType": "image/png", "buffer": make_image(1)},
        },
    )
    assert response.status == 403 and "not_permitted" in response.text()
    response = page.request.post(
        f"{live.url}/galleries/custody/enrolments",
        multipart={
            "csrf_token": csrf,
            "subject": "A",
            "image": {"name": "a.png", "mimeType": "image/png", "buffer": make_image(1)},
        },
    )
    assert response.status == 403
    assert not w.settings.staging_dir.exists() or not any(w.settings.staging_dir.iterdir())
    # Another organisation's curator does not see the gallery at all.
    other = browser.new_context()
    page2 = other.new_page()
    _login(page2, live, "inv2")
    assert page2.get_by_test_id("gallery-custody").count() == 0
    assert page2.request.get(f"{live.url}/galleries/custody").status == 404
    other.close()
    context.close()


def test_a_forged_upload_is_refused(live: LiveServer, browser: Any) -> None:
    w = live.world
    w.call(
        "POST",
        "/api/v1/galleries",
        "cur",
        json={"name": "custody", "inclusion_policy": "charged", "retention_days": 365},
    )
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "cur")
    response = page.request.post(
        f"{live.url}/galleries/custody/jobs",
        multipart={
            "csrf_token": "forged",
            "manifest": {"name": "m.csv", "mimeType": "text/csv", "buffer": HEADER.encode()},
        },
    )
    assert response.status == 403 and "out of date" in response.text()
    context.close()


def test_upload_problems_are_shown_next_to_the_form(live: LiveServer, browser: Any) -> None:
    w = live.world
    w.call(
        "POST",
        "/api/v1/galleries",
        "cur",
        json={"name": "custody", "inclusion_policy": "charged", "retention_days": 365},
    )
    context = browser.new_context()
    page = context.new_page()
    _login(page, live, "cur", "/galleries/custody")
    manifest = f"{HEADER}\n{_row('x/a.png', 'A')}\n{_row('x/b.png', 'B')}".encode()
    page.get_by_label("Manifest (CSV)").set_input_files(
        files=[{"name": "m.csv", "mimeType": "text/csv", "buffer": manifest}]
    )
    page.get_by_label("Image files the manifest names").set_input_files(
        files=[{"name": "a.png", "mimeType": "image/png", "buffer": make_image(1)}]
    )
    page.get_by_role("button", name="Upload and enrol").click()
    error = page.get_by_test_id("upload-error").inner_text()
    assert "not uploaded: x/b.png (line 3)" in error
    with w.services.db.read() as session:
        assert Jobs(session).count() == 0
    context.close()


def test_gallery_pages_read_at_390_px_with_every_field_labelled(
    live: LiveServer, browser: Any, screenshots: Path
) -> None:
    w = live.world
    w.call(
        "POST",
        "/api/v1/galleries",
        "cur",
        json={
            "name": "custody suite images",
            "inclusion_policy": "custody images of persons charged with a recordable offence",
            "retention_days": 2190,
            "jurisdictions": ["GB", "GB-SCT", "GB-NIR"],
        },
    )
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    _login(page, live, "cur")
    manifest, images = _intake(live)
    page.goto(f"{live.url}/galleries/custody%20suite%20images")
    _upload(page, manifest, images)
    job_url = page.url
    for path in ("/galleries", "/galleries/custody%20suite%20images", job_url):
        page.goto(path if path.startswith("http") else f"{live.url}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways at 390 px ({width} px wide)"
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
               .filter(e => e.labels.length === 0).map(e => e.name)"""
        )
        assert unlabelled == [], f"{path}: fields without a label: {unlabelled}"
    page.goto(f"{live.url}/galleries/custody%20suite%20images")
    page.screenshot(path=str(screenshots / "gallery-390.png"), full_page=True)
    context.close()


def test_the_forms_work_from_the_keyboard(live: LiveServer, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live, "cur")
    page.get_by_label("Gallery name").focus()
    page.keyboard.type("keyboard")
    page.keyboard.press("Tab")
    page.keyboard.type("people charged")
    page.keyboard.press("Tab")
    page.keyboard.type("30")
    page.keyboard.press("Tab")
    page.keyboard.type("GB")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.url}/galleries/keyboard")
    # The single-enrolment form's fields follow one another in Tab order (the date field
    # takes one Tab per part: day, month, year).
    page.get_by_label("Subject reference").focus()
    order: list[str] = []
    for _ in range(12):
        focused = page.evaluate("document.activeElement.id")
        if not order or order[-1] != focused:
            order.append(focused)
        page.keyboard.press("Tab")
    assert order[:7] == [
        "enrol-subject",
        "enrol-source",
        "enrol-lawful-basis",
        "enrol-basis-reference",
        "enrol-collected-at",
        "enrol-jurisdiction",
        "enrol-collected-by",
    ]
    context.close()

"""The search, compare and review pages refuse bad input with a precise error page (the
service's code and status) and lose nothing; reviews are blind until you record your own."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from probity.domain.review import CandidateRef
from tests.api.conftest import PASSWORD, World, build_world, enrol_gallery, open_case, search
from tests.web.conftest import login_form


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from build_world(tmp_path / "home", None)


def _page_client(w: World, user: str) -> tuple[TestClient, str]:
    """A browser-like client signed in as ``user``, and its CSRF token."""
    client = TestClient(w.client.app, follow_redirects=False)
    r = client.post("/login", data={"username": user, "password": PASSWORD, **login_form(client)})
    assert r.status_code == 303
    token = w.services.sessions.resume(client.cookies["probity_session"])[1]
    return client, token


def test_bad_ids_and_bad_reviews_get_precise_error_pages(world: World) -> None:
    w = world
    probes = enrol_gallery(w)
    open_case(w, "OP-E")
    body = search(w, probes["pair"], "OP-E").json()
    sid = body["search_id"]
    face = body["faces"][1]
    subject = face["candidates"][0]["subject_id"]
    inv, csrf = _page_client(w, "inv")
    compare = f"/searches/{sid}/faces/{face['face']}/candidates/{subject}"

    for path, status, code in (
        ("/searches/nope", 404, "search_not_found"),
        (f"/searches/{sid}?face=9", 400, "invalid_input"),
        (f"/searches/{sid}/faces/9/candidates/{subject}", 404, "candidate_not_found"),
        (f"/searches/{sid}/faces/{face['face']}/candidates/nobody", 404, "candidate_not_found"),
        (f"/searches/{sid}/faces/9/probe.jpg", 404, "candidate_not_found"),
        ("/cases/NOPE/report.pdf", 404, "case_not_found"),
    ):
        r = inv.get(path)
        assert r.status_code == status, (path, r.text)
        assert r.headers["content-type"].startswith("text/html") and code in r.text, path

    # The case page's report link: the case report as a PDF, with the notice, audited.
    pdf = inv.get("/cases/OP-E/report.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "no-store"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Investigative lead" in text and "OP-E" in text
    assert "report.pdf" in inv.get("/cases/OP-E").text

    review = compare + "/reviews"
    r = inv.post(review, data={"csrf_token": "forged", "decision": "possible_match"})
    assert r.status_code == 403 and "out of date" in r.text
    r = inv.post(review, data={"csrf_token": csrf, "decision": "identified"})
    assert r.status_code == 400 and "decision must be one of" in r.text
    assert (
        w.services.reviews.view(
            actor="op", candidate=CandidateRef(sid, face["face"], subject)
        ).count
        == 0
    )

    r = inv.post(review, data={"csrf_token": csrf, "decision": "not_a_match", "note": "ears"})
    assert r.status_code == 303 and r.headers["location"] == compare
    r = inv.post(review, data={"csrf_token": csrf, "decision": "possible_match"})
    assert r.status_code == 403 and "already reviewed this candidate" in r.text

    # Blind: the examiner sees that one review exists, not what it says, until theirs.
    ex, ex_csrf = _page_client(w, "ex1")
    page = ex.get(compare).text
    assert (
        "1 review(s) recorded" in page
        and "ears" not in page
        and "Not the same person</li" not in page
    )
    assert (
        ex.post(review, data={"csrf_token": ex_csrf, "decision": "inconclusive"}).status_code == 303
    )
    page = ex.get(compare).text
    assert "ears" in page and "inv" in page
    # A supervisor, who cannot review, sees both decisions; an investigator of another
    # organisation cannot see the search at all.
    assert "ears" in _page_client(w, "sup")[0].get(compare).text
    other, _ = _page_client(w, "inv2")
    assert other.get(compare).status_code == 404

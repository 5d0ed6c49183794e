"""The annual report over the API: JSON and PDF from one service call, scoped to the
caller's organisation, guarded by the report.annual permission, audited."""

from __future__ import annotations

import io

import pypdf

from tests.api.conftest import NOW, World, enrol_gallery, open_case, search


def _seed(w: World) -> None:
    probes = enrol_gallery(w)
    open_case(w, "REP-1")
    assert search(w, probes["a"], "REP-1").status_code == 201
    assert search(w, probes["none"], "REP-1").status_code == 201


def test_annual_report_json_counts_the_organisations_year(world: World) -> None:
    _seed(world)
    r = world.call("GET", f"/api/v1/reports/annual?year={NOW.year}", "aud")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["organisation"] == "Met" and report["year"] == NOW.year
    assert report["totals"]["searches"] == 2 and report["totals"]["cases_opened"] == 1
    assert report["breakdowns"]["searches_by_offence"] == {"robbery": 2}
    assert report["breakdowns"]["search_outcomes"]["no_face_found"] == 1
    assert report["searches_by_organisation_and_offence"] == [
        {"organisation": "Met", "offence": "robbery", "searches": 2}
    ]
    assert report["rights_requests"]["erasure"] == 0
    assert report["definitions"]["searches"] == "search.run"
    # Another organisation's supervisor sees none of Met's work.
    other = world.call("GET", f"/api/v1/reports/annual?year={NOW.year}", "sup2").json()
    assert other["organisation"] == "Elsewhere" and other["totals"]["searches"] == 0
    # Producing it is audited, with the last event it counted.
    log = world.call("GET", "/api/v1/audit?action=report.annual", "aud").json()["data"]
    assert log[0]["actor"] == "aud" and log[0]["details"]["through_seq"] == report["through_seq"]


def test_annual_report_is_refused_without_the_permission_or_a_valid_year(world: World) -> None:
    assert world.call("GET", f"/api/v1/reports/annual?year={NOW.year}", "inv").status_code == 403
    assert world.call("GET", f"/api/v1/reports/annual?year={NOW.year}").status_code == 401
    assert world.call("GET", "/api/v1/reports/annual?year=1800", "aud").status_code == 422
    assert world.call("GET", "/api/v1/reports/annual", "aud").status_code == 422


def test_annual_report_pdf_shows_the_same_figures(world: World) -> None:
    _seed(world)
    r = world.call("GET", f"/api/v1/reports/annual.pdf?year={NOW.year}", "sup")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert f"annual-report-{NOW.year}.pdf" in r.headers["content-disposition"]
    pages = pypdf.PdfReader(io.BytesIO(r.content)).pages
    text = "\n".join(p.extract_text() for p in pages)
    assert f"Annual report {NOW.year}" in text and "organisation Met" in text
    assert "Searches run" in text and "search.run" in text
    assert "Met robbery 2" in " ".join(text.split())
    assert "Rights requests" in text
    assert f"of {len(pages)}" in pages[-1].extract_text()

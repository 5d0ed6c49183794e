"""The case report PDF: every search is shown, every page carries the notice, and the text never
claims an identification."""

from __future__ import annotations

import copy
import io
import re
from typing import Any

import pypdf
import pytest

from probity.interfaces.render.case_report_pdf import latin1_text, render_case_report_pdf

NOTICE = (
    "Investigative lead — not an identification. Candidates must be reviewed by two trained "
    "examiners and corroborated by independent evidence before any action is taken."
)
SHA_1 = "3f1a9c0b7d2e4f5a6b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"
SHA_2 = "a0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeeff"
JUSTIFICATION = (
    "Armed robbery of a convenience store on 14 November 2026 at 22:40. The offender was "
    "recorded by the in-store camera at the till from a distance of about two metres, face "
    "uncovered for roughly four seconds. Witness statements describe a man in his thirties with "
    "a scar over the left eyebrow. No suspect has been named by any witness and the vehicle seen "
    "leaving the scene was reported stolen the same evening. A face search against the custody "
    "gallery of charged persons is necessary and proportionate because other lines of enquiry "
    "(door-to-door, vehicle, forensic) have not produced a lead, the offence involved a firearm, "
    "and the risk of further armed offences is high; authorisation was granted by the duty "
    "superintendent."
)
NOTE = "Scar matches position; ear shape differs slightly — résumé of comparison in file 7."


def _provenance(record: str) -> dict[str, Any]:
    return {
        "source": f"custody-system/{record}",
        "lawful_basis": "law_enforcement: PACE s.64A",
        "collected_at": "2024-03-02T09:15:00+00:00",
        "jurisdiction": "GB-EAW",
        "retention_until": None,
    }


def _candidate(rank: int, ref: str, reviews: list[dict[str, Any]], lead: bool) -> dict[str, Any]:
    return {
        "rank": rank,
        "subject_id": f"subj-{rank:04d}",
        "subject_reference": ref,
        "gallery": "custody-charged",
        "score": 0.91234 - rank / 100,
        "distance": 0.31234 + rank / 100,
        "provenance": _provenance(f"REC-{rank}"),
        "reviews": reviews,
        "lead": lead,
    }


def _report() -> dict[str, Any]:
    reviews_lead = [
        {
            "reviewer": "bob.examiner",
            "decision": "possible_match",
            "note": NOTE,
            "at": "2026-11-21T11:00:00+00:00",
        },
        {
            "reviewer": "carol.second",
            "decision": "possible_match",
            "note": "Independent comparison agrees.",
            "at": "2026-11-21T15:30:00+00:00",
        },
    ]
    reviews_other = [
        {
            "reviewer": "dave.reviewer",
            "decision": "not_a_match",
            "note": "Different nose bridge.",
            "at": "2026-11-21T12:00:00+00:00",
        }
    ]
    face_ok = {
        "face": 0,
        "box": {"left": 120, "top": 80, "right": 260, "bottom": 220},
        "outcome": "candidates",
        "quality": {"inter_eye_px": 48.2, "sharpness": 131.5, "detector": "hog", "yaw": None},
        "refusal_reasons": [],
        "candidates": [
            _candidate(1, "CUST-2024-000117", reviews_lead, True),
            _candidate(2, "CUST-2023-004512", reviews_other, False),
        ],
    }
    face_refused = {
        "face": 1,
        "box": {"left": 400, "top": 90, "right": 430, "bottom": 120},
        "outcome": "refused_quality",
        "quality": {"inter_eye_px": 9.5, "sharpness": 12.0},
        "refusal_reasons": ["inter-eye distance 9.5 px below 20", "sharpness 12.0 below 40"],
        "candidates": [],
    }
    return {
        "notice": NOTICE,
        "generated_at": "2026-11-22T10:00:00+00:00",
        "generated_by": "alice",
        "case": {
            "reference": "OP-KESTREL-2026-0042",
            "offence": "robbery",
            "justification": JUSTIFICATION,
            "organisation": "Northshire Police",
            "opened_at": "2026-11-20T08:00:00+00:00",
            "opened_by": "alice",
            "authorisation": {
                "status": "granted",
                "reference": "AUTH-7781",
                "authority": "Supt. Hale",
                "requested_at": "2026-11-20T08:05:00+00:00",
            },
        },
        "summary": {
            "searches": 2,
            "with_candidates": 1,
            "no_candidate": 0,
            "no_face": 1,
            "reviews": 3,
            "leads": 1,
        },
        "searches": [
            {
                "id": "srch-7c1e5a0d-94b2-4f3e-8a61-2d9b0c4e7f11",
                "at": "2026-11-21T10:12:00+00:00",
                "actor": "alice",
                "probe_sha256": SHA_1,
                "model": "dlib-resnet-v1",
                "galleries": ["custody-charged"],
                "threshold": {
                    "target_fmr": 0.001,
                    "max_distance": 0.55,
                    "wording": "Gallery of 20,000 people (21,000 templates); target FPIR 0.01",
                },
                "top_k": 10,
                "outcome": "candidates",
                "faces": [face_ok, face_refused],
            },
            {
                "id": "srch-0b9f3d22-1c7a-4e58-9d40-6a2e8f1b3c55",
                "at": "2026-11-21T10:40:00+00:00",
                "actor": "alice",
                "probe_sha256": SHA_2,
                "model": "dlib-resnet-v1",
                "galleries": ["custody-charged"],
                "threshold": {"target_fmr": None, "max_distance": None},
                "top_k": 20,
                "outcome": "no_face_found",
                "faces": [],
            },
        ],
    }


def _pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def rendered() -> tuple[bytes, list[str]]:
    data = render_case_report_pdf(_report())
    return data, _pages(data)


def test_it_is_a_pdf_with_the_notice_on_every_page(rendered: tuple[bytes, list[str]]) -> None:
    data, pages = rendered
    assert data.startswith(b"%PDF")
    assert len(pages) >= 2  # the long justification and two searches do not fit on one page
    notice = _squash(latin1_text(NOTICE))
    for number, page in enumerate(pages, start=1):
        assert notice in _squash(page), f"notice missing on page {number}"
        assert f"Page {number} of {len(pages)}" in page
        assert "OP-KESTREL-2026-0042" in page


def test_every_search_face_and_candidate_is_listed(rendered: tuple[bytes, list[str]]) -> None:
    _, pages = rendered
    text = "\n".join(pages)
    flat = _squash(text)
    report = _report()
    for search in report["searches"]:
        assert _squash(search["id"]) in flat
        assert search["probe_sha256"] in flat
    assert "No face found" in text
    assert "threshold off: full ranked list" in text
    assert "Gallery of 20,000 people (21,000 templates); target FPIR 0.01" in text
    assert "CUST-2024-000117" in text and "CUST-2023-004512" in text
    for reviewer in ("bob.examiner", "carol.second", "dave.reviewer"):
        assert reviewer in text
    assert "Lead: confirmed by two different reviewers" in text
    assert "Not a lead" in text
    assert "possibly the same person" in text and "not the same person" in text
    assert "0.902" in text and "0.3223" in text  # score to 3 decimals, distance to 4
    assert "sharpness 12.0 below 40" in text  # the refused face says why
    assert "PACE s.64A" in text and "GB-EAW" in text  # provenance
    assert "Supt. Hale" in text and "AUTH-7781" in text


def test_long_text_wraps_and_non_latin1_is_made_printable(
    rendered: tuple[bytes, list[str]],
) -> None:
    _, pages = rendered
    flat = _squash("\n".join(pages))
    assert _squash(JUSTIFICATION) in flat  # all of it, wrapped rather than cut off
    assert _squash("ear shape differs slightly - résumé of comparison") in flat


def test_no_identification_language(rendered: tuple[bytes, list[str]]) -> None:
    _, pages = rendered
    text = " ".join(pages).lower()
    assert "identified" not in text
    assert "match: true" not in text
    assert text.count("identification") == text.count("not an identification")


def test_a_case_with_no_searches_still_renders() -> None:
    report = _report()
    report["searches"] = []
    report["summary"] = dict.fromkeys(report["summary"], 0)
    pages = _pages(render_case_report_pdf(report))
    text = "\n".join(pages)
    assert "No searches were run" in text
    assert "OP-KESTREL-2026-0042" in text


def test_sixty_candidates_spill_over_several_pages_with_the_notice_on_each() -> None:
    report = _report()
    search = copy.deepcopy(report["searches"][0])
    face = search["faces"][0]
    face["candidates"] = [
        _candidate(rank, f"CUST-BULK-{rank:03d}", [], False) for rank in range(1, 61)
    ]
    search["faces"] = [face]
    report["searches"] = [search]
    pages = _pages(render_case_report_pdf(report))
    assert len(pages) >= 4
    notice = _squash(latin1_text(NOTICE))
    assert all(notice in _squash(page) for page in pages)
    text = "\n".join(pages)
    assert "CUST-BULK-001" in text and "CUST-BULK-060" in text


def test_latin1_text_keeps_accents_and_replaces_the_rest() -> None:
    assert latin1_text("é — “x” ✓") == 'é - "x" ?'
    assert latin1_text(None) == ""

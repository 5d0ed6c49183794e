"""The annual report PDF: every figure and table of the JSON report is printed, long
reports run onto numbered pages, and text outside latin-1 is made printable."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime

import pypdf

from probity.interfaces.render.annual_report_pdf import render_annual_report_pdf
from probity.services.transparency import TOTALS, Tally, build_report


def _text(pdf: bytes) -> tuple[list[str], str]:
    pages = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]
    return pages, " ".join(" ".join(pages).split())


def test_every_figure_is_printed_and_long_reports_spill_over_pages() -> None:
    tally = Tally()
    tally.events = Counter({"search.run": 7, "case.open": 1})
    tally.searches_by_case = Counter({("Polizei München — Süd", "K-1"): 7})
    tally.offences = {"K-1": "robbery"}
    tally.enrolments_by_gallery = Counter({f"gallery-{i:03d}": i for i in range(1, 80)})
    tally.rights_filed = Counter({"erasure": 2})
    tally.rights_outcomes = Counter({("erasure", "closed"): 2})
    tally.rights_handling_days = [3.0, 10.0]
    report = build_report(
        tally,
        year=2026,
        organisation="Polizei München — Süd",
        through_seq=412,
        generated_at=datetime(2027, 1, 2, tzinfo=UTC),
        generated_by="aud",
    ).as_dict()
    pages, text = _text(render_annual_report_pdf(report))
    assert len(pages) > 2
    assert all(f"of {len(pages)}" in page for page in pages)
    assert "organisation Polizei München - Süd" in text  # the dash made printable
    assert "up to event #412" in text
    for m in TOTALS:
        assert m.label in text, m.label
    assert "Polizei München - Süd robbery 7" in text
    assert "gallery-079 79" in text
    assert "Rights requests" in text and "rights.file" in text
    assert "Erasure requests 2" in text and "erasure 2 0 0" in text
    assert "Median handling time (days) 6.5" in text and "Longest handling time (days) 10.0" in text

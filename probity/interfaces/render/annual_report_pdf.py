"""The annual (transparency) report as a PDF: the same figures as the JSON report
(``AnnualReport.as_dict()``), laid out as tables in the house style of the case report
(A4, core fonts, "Page N of M" in the footer).

Each figure is printed with the audit events it counts, so a reader holding the log can
recount it; the report says up to which event (``through_seq``) it was taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from probity.interfaces.render.case_report_pdf import latin1_text
from probity.interfaces.render.pdf_base import FONT, HousePDF
from probity.services.transparency import (
    BREAKDOWNS,
    RIGHTS_HANDLING,
    RIGHTS_OUTCOMES,
    RIGHTS_REQUESTS,
    TOTALS,
    Measure,
)


def scope_label(organisation: str | None) -> str:
    """Whose events a report counts, in words."""
    return f"organisation {organisation}" if organisation else "every organisation"


class _AnnualReportPDF(HousePDF):
    """A4 pages whose header names the year and scope, and whose footer numbers the pages."""

    def counts_table(
        self, headings: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[float]
    ) -> None:
        """A table whose last column is a count (right-aligned); the heading row repeats on
        a new page."""
        self.set_font(FONT, "", 9)
        with self.table(col_widths=tuple(widths), text_align="LEFT", line_height=5) as table:
            row = table.row()
            for heading in headings:
                row.cell(latin1_text(heading))
            for values in rows:
                row = table.row()
                for i, value in enumerate(values):
                    align = "RIGHT" if i == len(values) - 1 else "LEFT"
                    row.cell(latin1_text(value), align=align)
        self.ln(2)


def render_annual_report_pdf(report: Mapping[str, Any]) -> bytes:
    """Render the JSON annual report (a plain dict) as the bytes of an A4 PDF document."""
    title = f"Probity annual report {report['year']}: {scope_label(report['organisation'])}"
    pdf = _AnnualReportPDF(title)
    pdf.set_title(latin1_text(title))
    pdf.set_creator("Probity")
    pdf.add_page()
    pdf.heading(f"Annual report {report['year']}", size=16)
    period = report["period"]
    pdf.para(
        f"Counted from the audit log: events from {period['start']} (inclusive) to "
        f"{period['end_exclusive']} (exclusive), {scope_label(report['organisation'])}, "
        f"up to event #{report['through_seq']}.",
        size=9,
    )
    pdf.para(f"Generated at {report['generated_at']} by {report['generated_by']}.", size=9)

    totals: Mapping[str, int] = report["totals"]
    pdf.heading("Totals")
    pdf.counts_table(
        ("Figure", "Audit events counted", "Count"),
        [(m.label, m.counts, totals.get(m.key, 0)) for m in TOTALS],
        (90, 64, 26),
    )

    pdf.heading("Searches by organisation and offence")
    both: Sequence[Mapping[str, Any]] = report["searches_by_organisation_and_offence"]
    if both:
        pdf.counts_table(
            ("Organisation", "Offence category", "Searches"),
            [(r["organisation"], r["offence"], r["searches"]) for r in both],
            (70, 84, 26),
        )
    else:
        pdf.para("No searches in this year.", style="I")

    breakdowns: Mapping[str, Mapping[str, int]] = report["breakdowns"]
    for measure in BREAKDOWNS:
        _breakdown(pdf, measure, breakdowns.get(measure.key, {}))

    rights: Mapping[str, Any] = report["rights_requests"]
    pdf.heading("Rights requests")
    pdf.counts_table(
        ("Request", "Count"),
        [(m.label, rights.get(m.key, 0)) for m in RIGHTS_REQUESTS],
        (154, 26),
    )
    outcomes: Mapping[str, Mapping[str, int]] = rights.get("by_outcome") or {}
    if outcomes:
        pdf.counts_table(
            ("Kind", *RIGHTS_OUTCOMES),
            [
                (kind, *(counts.get(o, 0) for o in RIGHTS_OUTCOMES))
                for kind, counts in outcomes.items()
            ],
            (90, 30, 30, 30),
        )
    handling: Mapping[str, Any] = rights.get("handling_days") or {}
    if handling:
        pdf.counts_table(
            ("Handling (filed to closed)", "Value"),
            [
                (m.label, "-" if handling.get(m.key) is None else handling[m.key])
                for m in RIGHTS_HANDLING
            ],
            (154, 26),
        )
    pdf.para(rights.get("note", ""), style="I", size=9)
    return bytes(pdf.output())


def _breakdown(pdf: _AnnualReportPDF, measure: Measure, counts: Mapping[str, int]) -> None:
    pdf.heading(measure.label, size=11)
    pdf.para(f"Counted from: {measure.counts}", size=8)
    if not counts:
        pdf.para("None in this year.", style="I")
        return
    pdf.counts_table(
        ("Kind", "Count"), [(key.replace("_", " "), n) for key, n in counts.items()], (154, 26)
    )

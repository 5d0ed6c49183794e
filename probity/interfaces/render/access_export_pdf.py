"""The access export's ``report.pdf``: the facts of ``subject.json`` for a reader (the person
who asked for them), in the house style of the case report (A4, core fonts, "Page N of M").

It lists every enrolled image with its provenance and every search in which the person was
returned as a candidate: when, by which organisation, in which case, and at what rank. The
images themselves are files next to it in the zip; the PDF names each one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fpdf.enums import XPos, YPos

from probity.interfaces.render.case_report_pdf import latin1_text
from probity.interfaces.render.pdf_base import FONT, MONO, HousePDF
from probity.interfaces.render.pdf_base import LINE as _LINE

_LABEL_WIDTH = 48.0

_BASES = {
    "law_enforcement": "law enforcement",
    "legal_obligation": "legal obligation",
    "public_task": "public task",
    "consent": "consent",
    "vital_interests": "vital interests",
    "court_order": "court order",
}


class _ExportPDF(HousePDF):
    """A4 pages headed "Your data: <gallery> / <reference>", numbered in the footer."""

    def field(self, label: str, value: object, mono: bool = False) -> None:
        if self.will_page_break(_LINE):
            self.add_page()
        self.set_font(FONT, "B", 10)
        self.cell(_LABEL_WIDTH, _LINE, latin1_text(label))
        self.set_font(MONO, "", 8) if mono else self.set_font(FONT, "", 10)
        text = "-" if value is None or value == "" else value
        self.multi_cell(0, _LINE, latin1_text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render_access_export_pdf(export: Mapping[str, Any]) -> bytes:
    """Render the export's document (the content of ``subject.json``) as an A4 PDF."""
    gallery: Mapping[str, Any] = export["gallery"]
    subject: Mapping[str, Any] = export["subject"]
    title = f"Your data in Probity: gallery {gallery['name']}, record {subject['reference']}"
    pdf = _ExportPDF(title)
    pdf.set_title(latin1_text(title))
    pdf.set_creator("Probity")
    pdf.add_page()
    pdf.heading("Access to your data", size=16)
    pdf.para(export["notice"])
    pdf.para(
        f"Made at {export['generated_at']} by {export['generated_by']}"
        + (f" in answer to request {export['request']}." if export.get("request") else "."),
        size=9,
    )

    pdf.heading("The gallery")
    pdf.field("Gallery", gallery["name"])
    pdf.field("Who may be in it", gallery["inclusion_policy"])
    pdf.field("Kept for", f"{gallery['retention_days']} days from collection")
    pdf.field("Your record", subject["reference"])
    pdf.field("Record created", subject["created_at"])

    enrolments: Sequence[Mapping[str, Any]] = export["enrolments"]
    pdf.heading(f"Images held ({len(enrolments)})")
    if not enrolments:
        pdf.para("No images are held.", style="I")
    for number, entry in enumerate(enrolments, start=1):
        p: Mapping[str, Any] = entry["provenance"]
        pdf.heading(f"Image {number}: {entry['file']}", size=10)
        pdf.field("SHA-256", entry["image_sha256"], mono=True)
        pdf.field("Source record", p["source"])
        basis = _BASES.get(p["lawful_basis"], p["lawful_basis"])
        if p.get("lawful_basis_reference"):
            basis = f"{basis} ({p['lawful_basis_reference']})"
        pdf.field("Lawful basis", basis)
        pdf.field("Collected", f"{p['collected_at']} by {p.get('collected_by') or '-'}")
        pdf.field("Jurisdiction", p["jurisdiction"])
        pdf.field("Kept until", p["retention_until"])
        pdf.field("Enrolled", f"{entry['enrolled_at']} by {entry['enrolled_by']}")

    searches: Sequence[Mapping[str, Any]] = export["searches"]
    pdf.heading(f"Searches that returned you as a candidate ({len(searches)})")
    pdf.para(
        "Every search recorded in the audit log in which this record was on a candidate "
        "list, including searches whose results were deleted since. A candidate is an "
        "investigative lead for a person to check, not an identification.",
        size=9,
    )
    if not searches:
        pdf.para("None.", style="I")
        return bytes(pdf.output())
    pdf.set_font(FONT, "", 9)
    with pdf.table(col_widths=(44, 46, 50, 40), text_align="LEFT", line_height=5) as table:
        row = table.row()
        for heading in ("Date (UTC)", "Organisation", "Case reference", "Rank (distance)"):
            row.cell(heading)
        for s in searches:
            row = table.row()
            places = "; ".join(
                f"{p['rank']} ({p['distance']:.3f})"
                if isinstance(p.get("distance"), int | float)
                else str(p["rank"])
                for p in s.get("returned_as") or []
            )
            for value in (s["at"][:19].replace("T", " "), s["organisation"], s["case_reference"]):
                row.cell(latin1_text(value or "-"))
            row.cell(latin1_text(places or "-"))
    return bytes(pdf.output())

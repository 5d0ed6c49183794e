"""The case report as a PDF: the same facts as the JSON case report, laid out for a file.

Every page carries the investigative-lead notice at the top and "Page N of M" with the case
reference at the bottom. Each search is listed, including those that found no face or no
candidate, so a reader can see everything that was done in the case, not only what found
something.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

# Why latin-1: fpdf2's built-in (core) fonts only cover latin-1, and we do not want the report
# to depend on a TTF file that may be missing on a fresh server, nor to ship one. So every
# string goes through ``latin1_text`` before it is drawn: common typographic characters get
# a plain equivalent ("—" becomes "-", curly quotes become straight ones) and anything else
# outside latin-1 becomes "?". Accented Latin letters such as "é" are latin-1 and stay as they
# are. The JSON case report remains the exact record; the PDF is its printable view.
_PLAIN_EQUIVALENTS = str.maketrans(
    {
        "\u2014": "-",  # em dash
        "\u2013": "-",  # en dash
        "\u2012": "-",
        "\u2010": "-",
        "\u2011": "-",
        "\u2212": "-",  # minus sign
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2026": "...",
        "\u2022": "*",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\t": "    ",
    }
)

_DECISIONS = {
    "possible_match": "possibly the same person",
    "not_a_match": "not the same person",
    "inconclusive": "inconclusive",
}
_OUTCOMES = {
    "candidates": "Candidates returned",
    "no_candidate_above_threshold": "No candidate above threshold",
    "no_face_found": "No face found in the probe",
    "refused_quality": "Refused: the probe face is below the quality floor",
}
_FONT = "Helvetica"
_MONO = "Courier"
_LINE = 5.0
_LABEL_WIDTH = 48.0


def latin1_text(value: object) -> str:
    """Return ``value`` as text that the PDF core fonts can draw (see the note above)."""
    text = unicodedata.normalize("NFC", "" if value is None else str(value))
    text = text.translate(_PLAIN_EQUIVALENTS).replace("{nb}", "{ nb}")  # keep the page alias ours
    return text.encode("latin-1", errors="replace").decode("latin-1")


def _label(value: str | None) -> str:
    """Turn a machine value such as ``no_face_found`` into words for a reader."""
    if value is None:
        return "-"
    return _OUTCOMES.get(value, value.replace("_", " "))


def _number(value: object, digits: int) -> str:
    """Format a number with a fixed count of decimals; anything else is printed as it is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return "-" if value is None else str(value)


class _CaseReportPDF(FPDF):
    """An A4 document whose header and footer repeat the notice and the case reference."""

    def __init__(self, notice: str, reference: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._notice = latin1_text(notice)
        self._reference = latin1_text(reference)
        self.set_margins(15, 12, 15)
        self.set_auto_page_break(auto=True, margin=18)

    def header(self) -> None:
        self.set_font(_FONT, "B", 10)
        self.set_text_color(150, 0, 0)
        self.multi_cell(
            0, _LINE, self._notice, border="B", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.set_text_color(0, 0, 0)
        self.ln(3)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(_FONT, "", 8)
        ref = self._reference if len(self._reference) <= 70 else self._reference[:67] + "..."
        self.cell(0, _LINE, f"Case {ref}", align="L")  # shortened so it never hits the page no.
        self.set_x(self.l_margin)
        self.cell(0, _LINE, f"Page {self.page_no()} of {{nb}}", align="R")

    def heading(self, text: str, size: float = 13) -> None:
        """A bold section title, kept off the very bottom of a page."""
        if self.will_page_break(4 * _LINE):
            self.add_page()
        self.ln(2)
        self.set_font(_FONT, "B", size)
        self.multi_cell(
            0, size * 0.5, latin1_text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.ln(1)

    def para(self, text: object, style: str = "", size: float = 10, indent: float = 0) -> None:
        """A wrapped paragraph across the width of the page, optionally indented."""
        self.set_font(_FONT, style, size)
        self.set_x(self.l_margin + indent)
        self.multi_cell(0, _LINE, latin1_text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def field(self, label: str, value: object, mono: bool = False) -> None:
        """A "label: value" line; the value wraps under itself, long hex in a small fixed font."""
        if self.will_page_break(_LINE):
            self.add_page()
        self.set_font(_FONT, "B", 10)
        self.cell(_LABEL_WIDTH, _LINE, latin1_text(label))
        if mono:
            self.set_font(_MONO, "", 8)
        else:
            self.set_font(_FONT, "", 10)
        text = "-" if value is None or value == "" else value
        self.multi_cell(0, _LINE, latin1_text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render_case_report_pdf(report: Mapping[str, Any]) -> bytes:
    """Render the JSON case report (a plain dict) as the bytes of an A4 PDF document."""
    case: Mapping[str, Any] = report["case"]
    pdf = _CaseReportPDF(report["notice"], case["reference"])
    pdf.set_title(latin1_text(f"Case report {case['reference']}"))
    pdf.set_creator("Probity")
    pdf.add_page()
    pdf.heading(f"Case report: {case['reference']}", size=16)
    pdf.para(f"Generated at {report['generated_at']} by {report['generated_by']}.", size=9)
    _case_section(pdf, case)
    _summary_section(pdf, report["summary"])
    searches: Sequence[Mapping[str, Any]] = report["searches"]
    pdf.heading("Searches")
    if not searches:
        pdf.para("No searches were run in this case.", style="I")
    for number, search in enumerate(searches, start=1):
        _search_section(pdf, search, number, len(searches))
    return bytes(pdf.output())


def _case_section(pdf: _CaseReportPDF, case: Mapping[str, Any]) -> None:
    """Case details and the legal authorisation behind the searches."""
    pdf.heading("Case")
    pdf.field("Reference", case["reference"])
    pdf.field("Offence", case["offence"])
    pdf.field("Organisation", case["organisation"])
    pdf.field("Opened", f"{case['opened_at']} by {case['opened_by']}")
    pdf.field("Justification", case["justification"])
    auth: Mapping[str, Any] = case["authorisation"]
    pdf.heading("Authorisation", size=11)
    pdf.field("Status", auth["status"])
    pdf.field("Reference", auth["reference"])
    pdf.field("Authority", auth["authority"])
    pdf.field("Requested at", auth["requested_at"])


def _summary_section(pdf: _CaseReportPDF, summary: Mapping[str, Any]) -> None:
    """The counts at a glance."""
    pdf.heading("Summary")
    pdf.field("Searches run", summary["searches"])
    pdf.field("With candidates", summary["with_candidates"])
    pdf.field("No candidate above thr.", summary["no_candidate"])
    pdf.field("No face found", summary["no_face"])
    pdf.field("Reviews recorded", summary["reviews"])
    pdf.field("Leads (two different reviewers)", summary["leads"])


def _search_section(
    pdf: _CaseReportPDF, search: Mapping[str, Any], number: int, total: int
) -> None:
    """One search: what was asked, under which threshold, and what came back for each face."""
    pdf.heading(f"Search {number} of {total}")
    pdf.field("Search id", search["id"], mono=True)
    pdf.field("Time", search["at"])
    pdf.field("Run by", search["actor"])
    pdf.field("Probe SHA-256", search["probe_sha256"], mono=True)
    pdf.field("Model", search["model"])
    pdf.field("Galleries", ", ".join(search["galleries"]) or "-")
    threshold: Mapping[str, Any] = search["threshold"]
    fmr, max_distance = threshold.get("target_fmr"), threshold.get("max_distance")
    if "wording" in threshold:  # gallery size, FPIR, FMR used and the table's source
        pdf.field("Threshold", latin1_text(threshold["wording"]))
    elif fmr is None and max_distance is None:
        pdf.field("Threshold", "threshold off: full ranked list")
    else:  # a search saved before the 1:N operating point: it kept rows within a 1:1 rate
        fmr_text = "-" if fmr is None else f"{fmr:g}"
        pdf.field(
            "Threshold", f"target FMR {fmr_text} (1:1), max distance {_number(max_distance, 4)}"
        )
    pdf.field("Top-k", search["top_k"])
    pdf.field("Outcome", _label(search["outcome"]))
    faces: Sequence[Mapping[str, Any]] = search["faces"]
    if search["outcome"] == "no_face_found" or not faces:
        pdf.para("No face found in the probe: nothing was searched.", style="I")
    for face in faces:
        _face_section(pdf, face)


def _face_section(pdf: _CaseReportPDF, face: Mapping[str, Any]) -> None:
    """One face in the probe: where it is, its quality, and its candidates or why it was refused."""
    box: Mapping[str, Any] = face["box"]
    pdf.heading(f"Face {face['face']}", size=11)
    pdf.field(
        "Box (px)",
        f"left {box['left']}, top {box['top']}, right {box['right']}, bottom {box['bottom']}",
    )
    quality: Mapping[str, Any] = face["quality"]
    shown = [
        f"{k}: {'-' if v is None else f'{v:.6g}' if isinstance(v, float) else v}"
        for k, v in quality.items()
    ]
    pdf.field("Quality", "; ".join(shown) or "-")
    pdf.field("Outcome", _label(face["outcome"]))
    reasons: Sequence[str] = face["refusal_reasons"]
    if reasons:
        pdf.para("Refusal reasons:", style="B")
        for reason in reasons:
            pdf.para(f"- {reason}", indent=4)
    candidates: Sequence[Mapping[str, Any]] = face["candidates"]
    if not candidates:
        if face["outcome"] == "no_candidate_above_threshold":
            pdf.para("No candidate above threshold.", style="I")
        elif not reasons:
            pdf.para("No candidates for this face.", style="I")
        return
    if pdf.will_page_break(4 * _LINE):
        pdf.add_page()  # keep the table's first rows with the face they belong to
    _candidate_table(pdf, candidates)
    for candidate in candidates:
        _candidate_detail(pdf, candidate)


def _candidate_table(pdf: _CaseReportPDF, candidates: Sequence[Mapping[str, Any]]) -> None:
    """The ranked list; the heading row repeats when the table runs onto a new page."""
    pdf.ln(1)
    pdf.set_font(_FONT, "", 9)
    headings = (
        "Rank",
        "Subject reference",
        "Gallery",
        "Score",
        "Distance",
        "Marked",
        "Fused",
        "Lead",
    )
    widths = (10, 36, 26, 13, 14, 14, 11, 10)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=5) as table:
        row = table.row()
        for heading in headings:
            row.cell(heading)
        for candidate in candidates:
            row = table.row()
            row.cell(str(candidate["rank"]))
            row.cell(latin1_text(candidate["subject_reference"]))
            row.cell(latin1_text(candidate["gallery"]))
            row.cell(_number(candidate["score"], 3), align="RIGHT")
            row.cell(_number(candidate["distance"], 4), align="RIGHT")
            within = candidate.get("within_threshold")
            row.cell("-" if within is None else "within" if within else "no")
            row.cell(str(candidate.get("fused", 1)), align="RIGHT")
            row.cell("yes" if candidate["lead"] else "no")
    pdf.ln(2)


def _candidate_detail(pdf: _CaseReportPDF, candidate: Mapping[str, Any]) -> None:
    """Provenance of the enrolment, the examiners' reviews and whether it is a lead."""
    pdf.heading(f"Candidate {candidate['rank']}: {candidate['subject_reference']}", size=10)
    provenance: Mapping[str, Any] = candidate["provenance"]
    for key, value in provenance.items():
        pdf.field(key.replace("_", " ").capitalize(), value)
    reviews: Sequence[Mapping[str, Any]] = candidate["reviews"]
    if not reviews:
        pdf.para("No reviews recorded.", style="I")
    for review in reviews:
        decision = _DECISIONS.get(review["decision"], _label(review["decision"]))
        pdf.para(f"Review by {review['reviewer']} at {review['at']}: {decision}", style="B")
        if review["note"]:
            pdf.para(f"Note: {review['note']}", indent=4)
    lead = "Lead: confirmed by two different reviewers" if candidate["lead"] else "Not a lead"
    pdf.para(lead, style="B")

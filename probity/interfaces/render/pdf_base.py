"""The house style shared by Probity's PDF documents other than the case report: A4 portrait,
the core Helvetica font (so text is cut to latin-1, see ``latin1_text``), a ruled title on
every page and "Page N of M" in the footer."""

from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from probity.interfaces.render.case_report_pdf import latin1_text

FONT = "Helvetica"
MONO = "Courier"
LINE = 5.0
"""Line height in millimetres for 10 pt text."""


class HousePDF(FPDF):
    """A4 pages headed by ``title`` and numbered in the footer; with section headings that
    are kept off the very bottom of a page, and plain paragraphs."""

    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._title = latin1_text(title)
        self.set_margins(15, 12, 15)
        self.set_auto_page_break(auto=True, margin=18)

    def header(self) -> None:
        self.set_font(FONT, "B", 10)
        self.multi_cell(
            0, LINE, self._title, border="B", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.ln(3)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FONT, "", 8)
        self.cell(0, LINE, f"Page {self.page_no()} of {{nb}}", align="R")

    def heading(self, text: str, size: float = 12) -> None:
        """A bold section title, moved to the next page when fewer than five lines remain."""
        if self.will_page_break(5 * LINE):
            self.add_page()
        self.ln(2)
        self.set_font(FONT, "B", size)
        self.multi_cell(
            0, size * 0.5, latin1_text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.ln(1)

    def para(self, text: object, style: str = "", size: float = 10) -> None:
        self.set_font(FONT, style, size)
        self.multi_cell(0, LINE, latin1_text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

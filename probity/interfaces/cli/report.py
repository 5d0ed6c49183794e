"""``probity report annual YEAR``: the annual (transparency) report from the audit log.

The local operator's report counts every organisation's events (see
``probity.services.transparency``). Producing it is audited as ``report.annual``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    out,
    print_json,
    services,
)
from probity.interfaces.render.annual_report_pdf import render_annual_report_pdf, scope_label
from probity.services.transparency import BREAKDOWNS, TOTALS

report_app = typer.Typer(help="Reports taken from the audit log.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("annual")
def report_annual(
    year: Annotated[int, typer.Argument(help="Calendar year (UTC), e.g. 2026.")],
    pdf: Annotated[
        Path | None, typer.Option("--pdf", help="Also write the report as a PDF to this file.")
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Counts of one year: searches by offence and organisation, outcomes, cases,
    authorisations, purges, reviews, leads, enrolments, removals, audit verifications."""
    with services(home) as s:
        report = s.transparency.annual(actor=actor_name(actor), year=year).as_dict()
    if pdf is not None:
        pdf.write_bytes(render_annual_report_pdf(report))
    if json_out:
        print_json(report)
        return
    out.print(
        f"Annual report {report['year']} ({scope_label(report['organisation'])}), "
        f"from the audit log up to event #{report['through_seq']}."
    )
    totals = Table("figure", "count", "counted from")
    for m in TOTALS:
        totals.add_row(m.label, str(report["totals"][m.key]), m.counts)
    out.print(totals)
    for m in BREAKDOWNS:
        counts = report["breakdowns"][m.key]
        if not counts:
            continue
        table = Table(m.label, "count")
        for key, n in counts.items():
            table.add_row(key.replace("_", " "), str(n))
        out.print(table)
    if pdf is not None:
        out.print(f"PDF written to {pdf}.")

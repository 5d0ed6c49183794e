"""``probity case ...``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from probity.domain.case import AuthorisationStatus
from probity.interfaces.cli.app import case_app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    out,
    print_json,
    services,
)


@case_app.command("open")
def case_open(
    reference: Annotated[str, typer.Argument(help="Case reference.")],
    offence: Annotated[str, typer.Option("--offence", help="Offence category code.")],
    justification: Annotated[
        str, typer.Option("--justification", help="Why a face search is necessary.")
    ],
    authorisation: Annotated[
        str | None, typer.Option("--authorisation", help="Id of the granted authorisation.")
    ] = None,
    pending: Annotated[
        bool,
        typer.Option("--pending", help="Authorisation requested, not yet granted (48 h limit)."),
    ] = False,
    authority: Annotated[
        str | None, typer.Option("--authority", help="Who grants the authorisation.")
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Open a case: searches are only possible inside one."""
    with services(home) as s:
        case = s.cases.open(
            actor=actor_name(actor),
            reference=reference,
            offence=offence,
            justification=justification,
            authorisation=authorisation,
            pending=pending,
            authority=authority,
        )
    if json_out:
        print_json({"case": case.reference, "authorisation": case.authorisation.status.value})
    else:
        out.print(
            f"Case {case.reference} opened ({case.offence}); authorisation "
            f"{case.authorisation.status.value}."
        )


@case_app.command("authorise")
def case_authorise(
    reference: Annotated[str, typer.Argument(help="Case reference.")],
    status: Annotated[
        AuthorisationStatus, typer.Option("--status", help="granted, rejected or expired.")
    ],
    authorisation: Annotated[
        str | None, typer.Option("--authorisation", help="Authorisation id (when granted).")
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Record the outcome of a case's authorisation."""
    with services(home) as s:
        case = s.cases.set_authorisation(
            actor=actor_name(actor),
            reference=reference,
            status=status,
            authorisation=authorisation,
        )
    out.print(f"Case {case.reference}: authorisation {case.authorisation.status.value}.")


@case_app.command("list")
def case_list(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """List cases and whether each may search now."""
    with services(home) as s:
        rows = [(c, s.cases.search_decision(c)) for c in s.cases.list()]
    if json_out:
        print_json(
            [
                {
                    "case": c.reference,
                    "offence": c.offence,
                    "authorisation": c.authorisation.status.value,
                    "may_search": d.allowed,
                    "why": d.reason,
                }
                for c, d in rows
            ]
        )
        return
    table = Table("case", "offence", "authorisation", "may search", "why")
    for c, d in rows:
        table.add_row(
            c.reference,
            c.offence,
            c.authorisation.status.value,
            "yes" if d.allowed else "no",
            d.reason,
        )
    out.print(table)

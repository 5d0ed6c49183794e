"""``probity optout IMAGE --reference TEXT``: record an objection (opt-out by face).

The photo's face becomes a suppression template; every gallery record it matches is erased
(one receipt each); future enrolments of that face are refused ("objection on file") and
searches never return it. See ``probity.services.suppression`` for the threshold and what
it means in false-match terms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    out,
    print_json,
    read_input_file,
    services,
)


@app.command("optout")
def optout(
    image: Annotated[Path, typer.Argument(help="Photo of the person objecting (one face).")],
    reference: Annotated[
        str,
        typer.Option(
            "--reference", help="Your reference for the objection (letter, request receipt)."
        ),
    ],
    request: Annotated[
        str | None, typer.Option("--request", help="The rights request id, if there is one.")
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Record an objection from one photo: suppress the face and erase its gallery records.
    Prints the suppression id and the erasure receipt numbers."""
    data = read_input_file(image, home)
    with services(home) as s:
        objection = s.suppression.object(
            actor=actor_name(actor), image=data, reference=reference, request_id=request
        )
    if json_out:
        print_json(objection.as_dict())
        return
    out.print(
        f"Objection recorded: suppression {objection.suppression_id} "
        f"(reference {objection.reference}).",
        markup=False,
    )
    out.print(
        f"Compared {objection.templates_compared} gallery template(s) in "
        f"{len(objection.galleries)} gallery(ies) at distance ≤ {objection.max_distance} "
        f"(FMR {objection.target_fmr:g}, 1:1).",
        markup=False,
    )
    if objection.templates_skipped:
        out.print(
            f"{objection.templates_skipped} template(s) of another model could not be compared.",
            markup=False,
        )
    if not objection.receipts:
        out.print("No gallery record matched; future enrolments and searches exclude this face.")
        return
    distances = {m.subject_id: m.distance for m in objection.matches}
    out.print(f"Erased {len(objection.receipts)} subject(s):", markup=False)
    for r in objection.receipts:
        out.print(
            f"  receipt {r.number}: {r.gallery}/{r.subject_reference} "
            f"(distance {distances.get(r.subject_id, float('nan')):.4f}, "
            f"{r.enrolments} enrolment(s))",
            markup=False,
        )

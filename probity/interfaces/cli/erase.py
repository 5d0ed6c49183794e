"""``probity erase SUBJECT --gallery NAME --reason TEXT``: erase a subject and print the
erasure receipt number (see ``probity.services.erasure`` for what an erasure reaches)."""

from __future__ import annotations

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
    services,
)
from probity.services.erasure import ErasureCause


@app.command("erase")
def erase(
    reference: Annotated[str, typer.Argument(help="The subject's reference in the gallery.")],
    gallery: Annotated[str, typer.Option("--gallery", help="Gallery name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded on the receipt).")],
    request: Annotated[
        str | None, typer.Option("--request", help="The rights request's id, if any.")
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Erase a subject: data key destroyed and the key-encryption key rotated, rows, image
    blobs and index vectors deleted; prints the receipt number."""
    with services(home) as s:
        receipt = s.erasure.erase(
            actor=actor_name(actor),
            gallery=gallery,
            reference=reference,
            reason=reason,
            cause=ErasureCause.REQUEST if request else ErasureCause.REMOVAL,
            request_id=request,
        )
    if json_out:
        print_json(receipt.as_dict())
        return
    out.print(receipt.number)
    out.print(
        f"Erased '{receipt.subject_reference}' from '{receipt.gallery}': "
        f"{receipt.enrolments} enrolment(s), {receipt.templates} template(s), "
        f"{receipt.index_vectors} index vector(s); audit event #{receipt.audit_seq}.",
        highlight=False,
    )
    if receipt.index_statement:
        out.print(receipt.index_statement, highlight=False)

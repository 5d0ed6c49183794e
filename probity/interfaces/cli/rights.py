"""``probity rights ...``: rights requests (access, objection, erasure) for the local operator
acting as privacy officer: file one received by letter or e-mail, list, show, extend once,
find by photo, erase, apply an objection, export, close or refuse. Every step is audited
under ``--actor``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from probity.domain.rights import RequestKind, RequestStatus, RightsRequest, parse_identifiers
from probity.errors import InvalidInput
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
from probity.interfaces.render.access_export_pdf import render_access_export_pdf
from probity.services.rights import LOOKUP_NOTICE

rights_app = typer.Typer(
    help="Rights requests: access, objection (opt-out), erasure.", no_args_is_help=True
)
app.add_typer(rights_app, name="rights")

ReceiptArg = Annotated[str, typer.Argument(help="Receipt number, e.g. RR-2026-7F3A9C21D4.")]


def request_json(request: RightsRequest, now: datetime) -> dict[str, Any]:
    return {
        "receipt": request.receipt,
        "kind": request.kind.value,
        "status": request.status.value,
        "filed_at": request.filed_at.isoformat(),
        "filed_by": request.filed_by,
        "due_at": request.due_at.isoformat(),
        "overdue": request.overdue(now),
        "days_left": request.days_left(now),
        "extension_reason": request.extension_reason,
        "contact": request.contact,
        "identifiers": dict(request.identifiers),
        "details": request.details,
        "has_photo": request.has_photo,
        "closed_at": request.closed_at.isoformat() if request.closed_at else None,
        "handled_by": request.handled_by,
        "outcome": request.outcome,
        "result": dict(request.result),
    }


def _clock(request: RightsRequest, now: datetime) -> str:
    if not request.status.is_open:
        return f"{request.status.value} {request.closed_at:%Y-%m-%d}" if request.closed_at else "-"
    left = request.days_left(now)
    if request.overdue(now):
        return f"OVERDUE by {-left} day(s)"
    return f"{left} day(s) left"


def _say(request: RightsRequest, now: datetime, json_out: bool, verb: str) -> None:
    if json_out:
        print_json(request_json(request, now))
        return
    out.print(
        f"Request {request.receipt} ({request.kind.value}) {verb}; status {request.status.value}, "
        f"due by {request.due_at:%Y-%m-%d} (23:59 UTC): {_clock(request, now)}."
    )


@rights_app.command("file")
def rights_file(
    kind: Annotated[RequestKind, typer.Argument(help="access, objection or erasure.")],
    contact: Annotated[
        str, typer.Option("--contact", help="How to answer the person (e-mail or address).")
    ],
    identifier: Annotated[
        list[str] | None,
        typer.Option(
            "--identifier",
            help="NAME=VALUE that finds the record, repeatable: reference=CRN-1, gallery=custody.",
        ),
    ] = None,
    details: Annotated[str, typer.Option("--details", help="What the person wrote.")] = "",
    photo: Annotated[
        Path | None,
        typer.Option(
            "--photo", help="Only for an objection, or when no reference finds the person."
        ),
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """File a request received by letter, e-mail or in person; prints the receipt number
    and the deadline (one calendar month)."""
    try:
        identifiers = parse_identifiers(identifier or [])
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    image = read_input_file(photo, home) if photo else None
    with services(home) as s:
        filed = s.rights.file(
            actor=actor_name(actor),
            kind=kind,
            contact=contact,
            identifiers=identifiers,
            details=details,
            photo=image,
        )
        now = s.clock()
    _say(filed, now, json_out, "filed")


@rights_app.command("list")
def rights_list(
    status: Annotated[
        RequestStatus | None, typer.Option("--status", help="Only requests in this status.")
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Requests, the earliest deadline first, with their clocks."""
    with services(home) as s:
        found = s.rights.list(actor=actor_name(actor), status=status)
        now = s.clock()
    if json_out:
        print_json([request_json(r, now) for r in found])
        return
    table = Table(
        Column("receipt", no_wrap=True),  # copied whole: never wrapped
        "kind",
        "status",
        Column("due by", no_wrap=True),
        Column("clock", no_wrap=True),
    )
    for r in found:
        table.add_row(
            r.receipt, r.kind.value, r.status.value, f"{r.due_at:%Y-%m-%d}", _clock(r, now)
        )
    out.print(table if found else "No rights requests.")


@rights_app.command("show")
def rights_show(
    receipt: ReceiptArg, home: HomeOpt = None, actor: ActorOpt = None, json_out: JsonOpt = False
) -> None:
    """One request: what was asked, the clock, and what was done."""
    with services(home) as s:
        request = s.rights.get(actor=actor_name(actor), receipt=receipt)
        now = s.clock()
    data = request_json(request, now)
    if json_out:
        print_json(data)
        return
    for key, value in data.items():
        out.print(f"{key.replace('_', ' ')}: {value}", markup=False, highlight=False)


@rights_app.command("extend")
def rights_extend(
    receipt: ReceiptArg,
    reason: Annotated[str, typer.Option("--reason", help="Why; the person is told.")],
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Extend the deadline once by two further months (GDPR Art 12(3)), within the first
    month."""
    with services(home) as s:
        request = s.rights.extend(actor=actor_name(actor), receipt=receipt, reason=reason)
        now = s.clock()
    _say(request, now, json_out, "extended")


@rights_app.command("close")
def rights_close(
    receipt: ReceiptArg,
    outcome: Annotated[str, typer.Option("--outcome", help="What was done; the person is told.")],
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Close an answered request; its photo, if any, is destroyed (audited)."""
    with services(home) as s:
        request = s.rights.close(actor=actor_name(actor), receipt=receipt, outcome=outcome)
        now = s.clock()
    _say(request, now, json_out, "closed")


@rights_app.command("refuse")
def rights_refuse(
    receipt: ReceiptArg,
    reason: Annotated[str, typer.Option("--reason", help="Why; the person is told.")],
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Refuse a request with the reason; its photo, if any, is destroyed (audited)."""
    with services(home) as s:
        request = s.rights.refuse(actor=actor_name(actor), receipt=receipt, reason=reason)
        now = s.clock()
    _say(request, now, json_out, "refused")


@rights_app.command("erase")
def rights_erase(
    receipt: ReceiptArg,
    subject: Annotated[str, typer.Argument(help="The subject's reference in the gallery.")],
    gallery: Annotated[str, typer.Option("--gallery", help="The gallery that holds them.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Default: the request.")] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Erase the subject an erasure request names; prints the erasure receipt number."""
    with services(home) as s:
        done = s.rights.erase_subject(
            actor=actor_name(actor),
            receipt=receipt,
            gallery=gallery,
            reference=subject,
            reason=reason,
        )
    if json_out:
        print_json(done.as_dict())
    else:
        out.print(f"Erased {subject} from {gallery}: receipt {done.number}.")


@rights_app.command("lookup")
def rights_lookup(
    receipt: ReceiptArg, home: HomeOpt = None, actor: ActorOpt = None, json_out: JsonOpt = False
) -> None:
    """Find the person of an access or erasure request by its photo: the gallery records
    within the suppression distance, closest first. Records for checking, not an
    identification; nothing is stored or erased. Then export or erase the one you chose."""
    with services(home) as s:
        matches = s.rights.lookup_by_photo(actor=actor_name(actor), receipt=receipt)
        threshold = (s.suppression.max_distance, s.suppression.target_fmr)
        request = s.rights.get(actor=actor_name(actor), receipt=receipt)
    if json_out:
        print_json(
            {
                "receipt": request.receipt,
                "notice": LOOKUP_NOTICE,
                "max_distance": threshold[0],
                "target_fmr": threshold[1],
                "possible_matches": [m.as_dict() for m in matches],
            }
        )
        return
    out.print(
        f"{LOOKUP_NOTICE} Distance at most {threshold[0]:.2f} (false-match rate "
        f"{threshold[1] * 100:.2g} % per record compared).",
        markup=False,
        highlight=False,
    )
    if not matches:
        out.print("No gallery record is within the distance of the request's photo.")
        return
    table = Table("rank", "gallery", Column("record", no_wrap=True), "distance")
    for m in matches:
        table.add_row(str(m.rank), m.gallery, m.subject_reference, f"{m.distance:.3f}")
    out.print(table)
    if request.kind is RequestKind.ACCESS:
        then = f"probity rights export RECORD --gallery GALLERY -o FILE --request {receipt}"
    else:
        then = f"probity rights erase {receipt} RECORD --gallery GALLERY"
    out.print(f"After comparing the photos yourself: {then}", markup=False, highlight=False)


@rights_app.command("object")
def rights_object(
    receipt: ReceiptArg, home: HomeOpt = None, actor: ActorOpt = None, json_out: JsonOpt = False
) -> None:
    """Apply an objection: its photo goes on the suppression list, matching records are
    erased."""
    with services(home) as s:
        result = dict(s.rights.apply_objection(actor=actor_name(actor), receipt=receipt))
    if json_out:
        print_json(result)
        return
    erased = [e["receipt"] for e in result.get("erasures", [])]
    out.print(
        f"Objection on file ({result['suppression_id']}); {len(erased)} record(s) erased"
        + (f": {', '.join(erased)}." if erased else ".")
    )


@rights_app.command("export")
def rights_export(
    subject: Annotated[str, typer.Argument(help="The subject's reference in the gallery.")],
    gallery: Annotated[str, typer.Option("--gallery", help="The gallery that holds them.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The zip file to write.")],
    request: Annotated[
        str | None, typer.Option("--request", help="The access request this answers.")
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The access export: subject.json (provenance, every search that returned them), the
    images, report.pdf. The file holds biometric data: hand it over securely, then delete
    it."""
    with services(home) as s:
        export = s.rights.access_export(
            actor=actor_name(actor),
            gallery=gallery,
            reference=subject,
            render_pdf=render_access_export_pdf,
            receipt=request,
        )
    output.write_bytes(export.data)
    output.chmod(0o600)
    summary = {
        "file": str(output),
        "sha256": export.sha256,
        "enrolments": export.enrolments,
        "searches": export.searches,
    }
    if json_out:
        print_json(summary)
    else:
        out.print(
            f"Wrote {output}: {export.enrolments} image(s), {export.searches} search(es) "
            f"that returned {subject}; sha256 {export.sha256}."
        )

"""``probity jurisdiction exclude|lift|list|purge``: jurisdiction rules as data.

Rules made here by the local operator are deployment-wide: they bind every gallery. A rule
takes effect at once (enrolments refused, search withholds the records); ``purge`` erases
what is already held, with a receipt per subject. See ``probity.services.jurisdictions``.
"""

from __future__ import annotations

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
from probity.services.erasure import ErasureReceipt

jurisdiction_app = typer.Typer(
    help="Exclude jurisdictions: refused at enrolment, withheld from search, purged.",
    no_args_is_help=True,
)
app.add_typer(jurisdiction_app, name="jurisdiction")

CodeArg = Annotated[str, typer.Argument(help="ISO 3166 code: GB, or a subdivision such as GB-SCT.")]
ReasonOpt = Annotated[
    str, typer.Option("--reason", help="The order, decision or policy behind it (audited).")
]


@jurisdiction_app.command("exclude")
def exclude(
    code: CodeArg,
    reason: ReasonOpt,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Exclude records collected in CODE (a country covers its subdivisions) from every
    gallery: enrolments refused and search withholds them from now on."""
    who = actor_name(actor)
    with services(home) as s:
        rule = s.jurisdictions.exclude(actor=who, code=code, reason=reason)
        held = len(s.jurisdictions.held(actor=who))
    if json_out:
        print_json({**rule.as_dict(), "held_records_excluded": held})
        return
    out.print(f"Excluded {rule.code} (deployment-wide): {rule.reason}", highlight=False)
    out.print(
        f"{held} enrolment(s) held from {rule.code} are withheld from search now; "
        "'probity jurisdiction purge' erases them.",
        highlight=False,
    )


@jurisdiction_app.command("lift")
def lift(
    code: CodeArg,
    reason: ReasonOpt,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove a deployment-wide rule. Records already purged stay purged; those hidden but
    not purged are returned by search again."""
    with services(home) as s:
        rule = s.jurisdictions.lift(actor=actor_name(actor), code=code, reason=reason)
    if json_out:
        print_json(rule.as_dict())
        return
    out.print(
        f"Lifted {rule.code}. Records already purged stay purged; enrolments from "
        f"{rule.code} are accepted again.",
        highlight=False,
    )


@jurisdiction_app.command("list")
def list_rules(home: HomeOpt = None, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Every rule in force (deployment-wide and each organisation's)."""
    with services(home) as s:
        rules = s.jurisdictions.rules(actor=actor_name(actor))
    if json_out:
        print_json([r.as_dict() for r in rules])
        return
    if not rules:
        out.print("No jurisdiction is excluded.")
        return
    table = Table("code", "scope", "reason", "since", "by")
    for r in rules:
        scope = "deployment" if r.deployment_wide else f"organisation {r.organisation_id}"
        table.add_row(r.code, scope, r.reason, r.created_at.date().isoformat(), r.created_by)
    out.print(table)


@jurisdiction_app.command("purge")
def purge(home: HomeOpt = None, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Erase every enrolment held against a rule, exactly as an erasure does; prints a
    receipt per subject (a subject left with nothing is erased whole)."""
    with services(home) as s:
        receipts = s.jurisdictions.purge(actor=actor_name(actor))
    if json_out:
        print_json([r.as_dict() for r in receipts])
        return
    print_receipts(receipts, "Nothing held from an excluded jurisdiction.")


def print_receipts(receipts: list[ErasureReceipt], none: str) -> None:
    """One line per receipt: its number first, then what it erased."""
    if not receipts:
        out.print(none)
        return
    for r in receipts:
        out.print(
            f"{r.number}  {r.gallery}/{r.subject_reference}: {r.enrolments} enrolment(s), "
            f"{r.templates} template(s), {r.index_vectors} index vector(s) erased "
            f"({r.cause.value}); audit event #{r.audit_seq}",
            highlight=False,
            markup=False,
        )
    total = sum(r.enrolments for r in receipts)
    out.print(f"{len(receipts)} receipt(s), {total} enrolment(s) erased.")

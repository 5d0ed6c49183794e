"""``probity subject remove``, ``probity audit ...``, ``probity index ...``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from probity.domain.audit import INCREMENTAL
from probity.interfaces.cli.app import audit_app, index_app, subject_app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    err,
    out,
    print_json,
    services,
)


@subject_app.command("remove")
def subject_remove(
    reference: Annotated[str, typer.Argument(help="Subject reference.")],
    gallery: Annotated[str, typer.Option("--gallery", help="Gallery name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the subject is removed.")],
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove a subject: data key destroyed, rows, blobs and index vectors deleted."""
    with services(home) as s:
        r = s.subjects.remove(
            actor=actor_name(actor), gallery=gallery, reference=reference, reason=reason
        )
    if json_out:
        print_json(
            {
                "subject": r.reference,
                "gallery": r.gallery,
                "enrolments": r.enrolments,
                "templates": r.templates,
                "index_vectors_removed": r.index_vectors_removed,
                "audit_event": r.audit_seq,
                "receipt": r.receipt,
            }
        )
    else:
        out.print(
            f"Subject '{r.reference}' removed from '{r.gallery}': {r.enrolments} enrolment(s), "
            f"{r.index_vectors_removed} index vector(s); audit event #{r.audit_seq}; "
            f"receipt {r.receipt}."
        )


@audit_app.command("verify")
def audit_verify(
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Re-hash the whole chain from the first event (slow on a large log). Without "
            "it, only the events after the last successful verification are re-hashed: an "
            "edit before that point that leaves its event's hash alone is not caught.",
        ),
    ] = False,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify the audit chain; name the first event that does not fit. Incremental by
    default: from where the last successful verification ended (its event must still have
    the hash it had then), the new events, checkpoints and witness entries. --full re-hashes
    everything."""
    with services(home) as s:
        v = s.audit.verify(actor=actor_name(actor), full=full)
    if json_out:
        print_json(
            {
                "ok": v.ok,
                "mode": v.mode,
                "from_event": v.from_seq,
                "events_checked": v.events_checked,
                "checkpoints_checked": v.checkpoints_checked,
                "first_broken_event": v.first_broken_seq,
                "reason": v.reason,
                "problems": list(v.problems),
                "notes": list(v.notes),
                "witness_entries": v.witness_entries,
                "witness_newest_event": v.witness_seq,
            }
        )
    elif v.ok:
        witnessed = (
            f", {v.witness_entries} witness entr{'y' if v.witness_entries == 1 else 'ies'} "
            f"(newest at event #{v.witness_seq})"
            if v.witness_seq is not None
            else ""
        )
        scope = (
            f" after event #{v.from_seq} (events up to it were verified before; --full "
            "re-hashes them)"
            if v.mode == INCREMENTAL
            else " (the whole chain)"
        )
        out.print(
            f"Audit chain intact: {v.events_checked} events{scope} and "
            f"{v.checkpoints_checked} signed checkpoint(s) verified{witnessed}."
        )
    else:
        at = f" at event #{v.first_broken_seq}" if v.first_broken_seq is not None else ""
        read = f"{v.events_checked} events read" + (
            f" after event #{v.from_seq}, {v.mode}" if v.mode == INCREMENTAL else ""
        )
        err.print(f"Audit chain BROKEN{at}: {v.reason} ({read}).")
        for problem in v.problems[1:]:
            err.print(f"  also: {problem}")
    for note in v.notes:
        (out if v.ok else err).print(f"  note: {note}")
    if not v.ok:
        raise typer.Exit(code=9)


@audit_app.command("log")
def audit_log(
    action: Annotated[str | None, typer.Option("--action", help="Only this action.")] = None,
    case: Annotated[str | None, typer.Option("--case", help="Only this case.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most N events.")] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show audit events (oldest first). Reading the log is itself audited."""
    with services(home) as s:
        events = s.audit.events(
            actor=actor_name(actor), action=action, case_reference=case, limit=limit
        ).events
    if json_out:
        print_json(
            [
                {
                    "seq": e.seq,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "organisation": e.organisation,
                    "action": e.action,
                    "case": e.case_reference,
                    "galleries": list(e.galleries),
                    "subjects": list(e.subject_ids),
                    "details": dict(e.details),
                    "hash": e.hash,
                }
                for e in events
            ]
        )
        return
    table = Table("#", "at (UTC)", "actor", "action", "case", "galleries")
    for e in events:
        table.add_row(
            str(e.seq),
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.actor,
            e.action,
            e.case_reference or "",
            ",".join(e.galleries),
        )
    out.print(table)


@index_app.command("rebuild")
def index_rebuild(home: HomeOpt = None, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Rebuild every gallery's index from the encrypted templates."""
    with services(home) as s:
        statuses = s.maintenance.rebuild(actor=actor_name(actor))
    if json_out:
        print_json([{"gallery": x.gallery, "vectors": x.vectors} for x in statuses])
    else:
        for x in statuses:
            out.print(f"Gallery '{x.gallery}': index rebuilt with {x.vectors} vector(s).")


@index_app.command("status")
def index_status(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Compare each gallery's index with its templates and the template log (without
    catching up: a gap shown here is repaired by the next search or by 'probity doctor')."""
    with services(home) as s:
        statuses = s.maintenance.status()
    if json_out:
        print_json(
            [
                {
                    "gallery": x.gallery,
                    "templates": x.templates,
                    "vectors": x.vectors,
                    "in_step": x.in_step,
                    "applied_seq": x.applied_seq,
                    "log_head_seq": x.head_seq,
                    "changes_behind": x.behind,
                }
                for x in statuses
            ]
        )
        return
    table = Table(
        "gallery", "templates", "index vectors", "applied / log head", "behind", "in step"
    )
    for x in statuses:
        table.add_row(
            x.gallery,
            str(x.templates),
            str(x.vectors),
            f"{x.applied_seq} / {x.head_seq}",
            str(x.behind),
            "yes" if x.in_step else "NO",
        )
    out.print(table)

"""The audit trail: list with filters, and verify. Reading it is itself audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from probity.interfaces.api.deps import ActorDep, PagingDep, ServicesDep
from probity.interfaces.api.schemas import AuditEventOut, Page, VerificationOut

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=Page[AuditEventOut])
def list_events(
    actor: ActorDep,
    services: ServicesDep,
    paging: PagingDep,
    action: Annotated[str | None, Query(max_length=60)] = None,
    case: Annotated[str | None, Query(max_length=200)] = None,
    by: Annotated[str | None, Query(max_length=200, description="acting user")] = None,
    since: Annotated[datetime | None, Query(description="inclusive, ISO 8601")] = None,
    until: Annotated[datetime | None, Query(description="exclusive, ISO 8601")] = None,
) -> Page[AuditEventOut]:
    """Events oldest first; your organisation's only."""
    page = services.audit.events(
        actor=actor,
        action=action,
        case_reference=case,
        by=by,
        since=since,
        until=until,
        limit=paging.limit,
        offset=paging.offset,
    )
    return Page(
        data=[
            AuditEventOut(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                organisation=e.organisation,
                action=e.action,
                case=e.case_reference,
                galleries=list(e.galleries),
                subjects=list(e.subject_ids),
                details=dict(e.details),
                hash=e.hash,
            )
            for e in page.events
        ],
        count=page.total,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.post("/verify", response_model=VerificationOut)
def verify(
    actor: ActorDep,
    services: ServicesDep,
    full: Annotated[
        bool,
        Query(
            description="re-hash the whole chain from the first event; without it only the "
            "events after the last successful verification are re-hashed (an edit before "
            "that point that keeps its event's hash is caught only by a full verification)"
        ),
    ] = False,
) -> VerificationOut:
    """Verify the chain: re-hash the events (all of them with ``full``, else those after the
    last successful verification, whose end event must still have the hash it had), check
    the signed checkpoints, and compare the database with the witness entries outside it
    (truncation, deleted checkpoints, a rewritten chain)."""
    result = services.audit.verify(actor=actor, full=full)
    return VerificationOut(
        ok=result.ok,
        mode=result.mode,
        from_seq=result.from_seq,
        events_checked=result.events_checked,
        first_broken_seq=result.first_broken_seq,
        reason=result.reason,
        checkpoints_checked=result.checkpoints_checked,
        problems=list(result.problems),
        notes=list(result.notes),
        witness_entries=result.witness_entries,
        witness_seq=result.witness_seq,
    )

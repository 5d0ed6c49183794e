"""Rights requests: the repository over ``rights_requests`` (the audit log read an access
export needs is ``AuditLog.events_naming_subject``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from probity.domain.rights import RequestKind, RequestStatus, RightsRequest
from probity.storage.tables import RightsRequestRow


def _request(row: RightsRequestRow) -> RightsRequest:
    return RightsRequest(
        id=row.id,
        receipt=row.receipt,
        kind=RequestKind(row.kind),
        status=RequestStatus(row.status),
        organisation_id=row.organisation_id,
        filed_at=row.filed_at,
        filed_by=row.filed_by,
        due_at=row.due_at,
        contact=row.contact,
        identifiers=dict(row.identifiers or {}),
        details=row.details,
        has_photo=row.photo_blob is not None,
        extension_reason=row.extension_reason,
        closed_at=row.closed_at,
        handled_by=row.handled_by,
        outcome=row.outcome,
        result=dict(row.result or {}),
    )


class RightsRequests:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(
        self,
        request: RightsRequest,
        *,
        photo_blob: str | None = None,
        photo_key: bytes | None = None,
    ) -> None:
        self.s.add(
            RightsRequestRow(
                id=request.id,
                receipt=request.receipt,
                kind=request.kind.value,
                status=request.status.value,
                organisation_id=request.organisation_id,
                filed_at=request.filed_at,
                filed_by=request.filed_by,
                due_at=request.due_at,
                extension_reason=request.extension_reason,
                contact=request.contact,
                identifiers=dict(request.identifiers),
                details=request.details,
                photo_blob=photo_blob,
                photo_key=photo_key,
                closed_at=request.closed_at,
                handled_by=request.handled_by,
                outcome=request.outcome,
                result=dict(request.result),
            )
        )
        self.s.flush()

    def _row(self, receipt: str, *, lock: bool = False) -> RightsRequestRow | None:
        stmt = select(RightsRequestRow).where(RightsRequestRow.receipt == receipt)
        if lock:
            stmt = stmt.with_for_update()
        return self.s.scalars(stmt).first()

    def by_receipt(self, receipt: str) -> RightsRequest | None:
        row = self._row(receipt)
        return None if row is None else _request(row)

    def all(self, *, status: RequestStatus | None = None) -> list[RightsRequest]:
        """Every request, the earliest deadline first."""
        stmt = select(RightsRequestRow).order_by(RightsRequestRow.due_at, RightsRequestRow.id)
        if status is not None:
            stmt = stmt.where(RightsRequestRow.status == status.value)
        return [_request(r) for r in self.s.scalars(stmt)]

    def closed_before(self, cutoff: datetime) -> list[RightsRequest]:
        """Closed or refused requests closed before ``cutoff`` that still hold the person's
        contact details (``RightsService.forget_closed``). A blank ``contact`` marks one
        already forgotten: filing needs at least 3 characters there."""
        stmt = (
            select(RightsRequestRow)
            .where(
                RightsRequestRow.status.in_(
                    [RequestStatus.CLOSED.value, RequestStatus.REFUSED.value]
                ),
                RightsRequestRow.closed_at.is_not(None),
                RightsRequestRow.closed_at < cutoff,
                RightsRequestRow.contact != "",
            )
            .order_by(RightsRequestRow.closed_at, RightsRequestRow.id)
        )
        return [_request(r) for r in self.s.scalars(stmt)]

    def photo(self, receipt: str) -> tuple[str, str, bytes] | None:
        """(request id, blob id, wrapped key) of the request's photo, or None."""
        row = self._row(receipt)
        if row is None or row.photo_blob is None or row.photo_key is None:
            return None
        return row.id, row.photo_blob, row.photo_key

    def update(self, receipt: str, **changes: Any) -> RightsRequest:
        """Change columns of one request (locked for the transaction); KeyError if unknown.
        ``photo_blob=None, photo_key=None`` forgets the photo: the key is the shredding."""
        row = self._row(receipt, lock=True)
        if row is None:
            raise KeyError(receipt)
        for name, value in changes.items():
            if isinstance(value, RequestStatus):
                value = value.value
            setattr(row, name, value)
        self.s.flush()
        return _request(row)

    def count_filed_since(self, *, filed_by: str, since: datetime) -> int:
        """Requests filed by ``filed_by`` (e.g. the public page) since ``since``: the
        deployment-wide limit on public filings is counted here, so it holds across API
        processes."""
        stmt = (
            select(func.count())
            .select_from(RightsRequestRow)
            .where(RightsRequestRow.filed_by == filed_by, RightsRequestRow.filed_at >= since)
        )
        return int(self.s.scalar(stmt) or 0)

"""Cases and their legal authorisation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from probity.domain.ids import CaseId

PENDING_AUTHORISATION_LIMIT = timedelta(hours=48)
"""A case may search on a pending authorisation for 48 h after it was requested; after that it
is locked until the authorisation is granted (AI Act Art 26(10): request within 48 hours)."""


class AuthorisationStatus(StrEnum):
    GRANTED = "granted"
    PENDING = "pending"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Authorisation:
    status: AuthorisationStatus
    requested_at: datetime
    reference: str | None = None  # the authorisation id; None while pending
    authority: str | None = None


@dataclass(frozen=True, slots=True)
class Case:
    id: CaseId
    reference: str
    offence: str
    justification: str
    authorisation: Authorisation
    opened_at: datetime
    opened_by: str
    organisation_id: str | None = None  # None: opened by the local operator (CLI)

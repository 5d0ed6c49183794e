"""When a case may be searched."""

from __future__ import annotations

from datetime import datetime

from probity.domain.case import PENDING_AUTHORISATION_LIMIT, AuthorisationStatus, Case
from probity.policy.decision import Decision


def case_search_decision(case: Case, now: datetime) -> Decision:
    """A case may search while its authorisation is granted, or pending for at most 48 h
    after it was requested. Rejected and expired authorisations stop the case at once; a
    pending one older than 48 h locks the case until it is granted."""
    auth = case.authorisation
    if auth.status is AuthorisationStatus.GRANTED:
        return Decision.allow(f"authorisation {auth.reference} granted")
    if auth.status is AuthorisationStatus.PENDING:
        age = now - auth.requested_at
        if age <= PENDING_AUTHORISATION_LIMIT:
            left = PENDING_AUTHORISATION_LIMIT - age
            hours = left.total_seconds() / 3600
            return Decision.allow(
                f"authorisation pending; {hours:.1f} h left before the case locks"
            )
        hours_old = age.total_seconds() / 3600
        return Decision.deny(
            f"case {case.reference} is locked: its authorisation has been pending for "
            f"{hours_old:.0f} h, more than the 48 h limit; record the granted authorisation "
            "to search again"
        )
    return Decision.deny(
        f"case {case.reference} cannot search: its authorisation is {auth.status.value}"
    )

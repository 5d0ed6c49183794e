"""When a record's retention has run out: one pure rule, shared by enrolment and the sweeper.

``retention_until`` is the collection date plus the gallery's retention days (computed once,
at enrolment, by ``policy.provenance``). It is the first day the record may no longer be
held: enrolment refuses a record with ``retention_until <= today``, and the sweeper erases
the records for which the same is true, so no record can be held that enrolment would
refuse. Days are UTC calendar days (the services' clock is UTC).
"""

from __future__ import annotations

from datetime import date


def is_due(retention_until: date, today: date) -> bool:
    """True when a record kept until ``retention_until`` must be erased on ``today``."""
    return retention_until <= today

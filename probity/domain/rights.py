"""Data-subject rights requests: access, objection (opt-out) and erasure, with their clock.

The deadline (GDPR Art 12(3)): a request is answered "without undue delay and in any event
within one month of receipt"; that period "may be extended by two further months where
necessary", once, and the person must be told why within the first month. A month here is a
calendar month, counted as the UK ICO counts it: from the day the request arrives to the
same date of the next month; where the next month has no such date (filed on 31 January),
the last day of that month. The request is due by the end of that day, 23:59:59 UTC.
(Weekends and public holidays are not skipped: Probity does not know the deployment's
calendar, so the clock is never later than the law allows.)

What a person is asked for (data minimisation; the ICO found that asking for more before
honouring a right is itself a breach): how to answer them (``contact``) and non-biometric
identifiers that find their records (a reference number, the collection that holds them). A
photo only where it is the point of the request (an objection by face) or where the person
has no reference that finds them; see ``photo_problem``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

INITIAL_MONTHS = 1
"""Calendar months from filing to the first deadline (Art 12(3))."""

EXTENSION_MONTHS = 2
"""Further calendar months one extension adds (Art 12(3)); allowed once, with a reason."""

RECEIPT_PREFIX = "RR"
"""Receipt numbers read ``RR-2026-7F3A9C21D4``: the year filed and 40 random bits."""

REFERENCE_IDENTIFIER = "reference"
"""The identifier key that names a record directly (a custody or case number). Given one,
a person is not asked for a photo: the record can be found without biometric data."""

MAX_IDENTIFIERS = 10
MAX_IDENTIFIER_VALUE = 200
MAX_CONTACT = 500
MAX_DETAILS = 5000
MIN_REASON = 3

PUBLIC_FILER = "public"
"""Who filed a request from the public privacy page (no account)."""

_IDENTIFIER_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class RequestKind(StrEnum):
    ACCESS = "access"  # Art 15: a copy of what is held and how it was used
    OBJECTION = "objection"  # Art 21: opt-out by face (a suppression template)
    ERASURE = "erasure"  # Art 17: erase what is held


class RequestStatus(StrEnum):
    OPEN = "open"
    EXTENDED = "extended"  # open, with the deadline moved once (Art 12(3))
    CLOSED = "closed"  # answered: export sent, records erased or objection on file
    REFUSED = "refused"  # refused with a reason (e.g. Art 12(5), manifestly unfounded)

    @property
    def is_open(self) -> bool:
        return self in (RequestStatus.OPEN, RequestStatus.EXTENDED)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day ``months`` calendar months later (clamped to the month's last day),
    at the same time of day. 31 January + 1 month is 28 (or 29) February."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _end_of_day(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time(23, 59, 59), tzinfo=UTC)


def due_at(filed_at: datetime, *, extended: bool = False) -> datetime:
    """When a request filed at ``filed_at`` must be answered: the end (23:59:59 UTC) of the
    corresponding day one calendar month later, or three months later once extended."""
    utc = filed_at.astimezone(UTC)
    months = INITIAL_MONTHS + (EXTENSION_MONTHS if extended else 0)
    return _end_of_day(add_months(utc, months))


def extension_problem(
    *, status: RequestStatus, filed_at: datetime, now: datetime, reason: str
) -> str | None:
    """Why a request may not be extended now, or None when it may. One extension only, with
    a reason, decided while the first month is still running (Art 12(3): the person is told
    of the extension within one month of receipt)."""
    if status is RequestStatus.EXTENDED:
        return "the deadline has already been extended once; it cannot be extended again"
    if not status.is_open:
        return f"the request is {status.value}"
    if len(reason.strip()) < MIN_REASON:
        return "an extension needs a recorded reason (Art 12(3))"
    if now > due_at(filed_at):
        return (
            "the first month has run out: an extension must be decided, and the person told, "
            "within one month of receipt"
        )
    return None


def is_overdue(*, status: RequestStatus, due: datetime, now: datetime) -> bool:
    """An open (or extended) request whose deadline has passed."""
    return status.is_open and now > due


def days_until(due: datetime, now: datetime) -> int:
    """Whole days until the deadline (0 on its last day; negative once overdue)."""
    return (due.astimezone(UTC).date() - now.astimezone(UTC).date()).days


def handling_days(filed_at: datetime, closed_at: datetime) -> float:
    """Time from filing to closing in days (one decimal), for the annual report."""
    return round((closed_at - filed_at) / timedelta(days=1), 1)


def clean_identifiers(identifiers: Mapping[str, str]) -> dict[str, str]:
    """Identifiers as stored: keys lower-case words (``reference``, ``gallery``), values
    trimmed, empty values dropped. Raises ValueError with the reason for a bad one."""
    cleaned: dict[str, str] = {}
    for raw_key, raw_value in identifiers.items():
        key, value = raw_key.strip().lower(), raw_value.strip()
        if not value:
            continue
        if not _IDENTIFIER_KEY.match(key):
            raise ValueError(
                f"identifier name {raw_key!r}: use a short lower-case word such as 'reference'"
            )
        if len(value) > MAX_IDENTIFIER_VALUE:
            raise ValueError(f"identifier '{key}' is longer than {MAX_IDENTIFIER_VALUE} characters")
        cleaned[key] = value
    if len(cleaned) > MAX_IDENTIFIERS:
        raise ValueError(f"at most {MAX_IDENTIFIERS} identifiers")
    return cleaned


def parse_identifiers(pairs: Iterable[str]) -> dict[str, str]:
    """``["reference=CRN-1", "gallery=custody"]`` as a mapping (the CLI's ``--identifier``
    and the API's ``identifier`` fields). Raises ValueError for a pair without ``=``."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"identifier {pair!r}: write it as NAME=VALUE, e.g. reference=CRN-1")
        found[key.strip()] = value
    return found


def photo_problem(
    kind: RequestKind, identifiers: Mapping[str, str], *, has_photo: bool
) -> str | None:
    """Whether the request asks for what it needs and no more, or why not:

    - an objection is by face, so it needs exactly one photo (it becomes the suppression
      template, processed for that purpose only);
    - an access or erasure request needs something that finds the person: identifiers, or a
      photo where they have none;
    - a photo is refused for access or erasure when a ``reference`` already finds the record:
      no biometric data is processed where a reference number will do."""
    if kind is RequestKind.OBJECTION:
        if not has_photo:
            return (
                "an objection by face needs one photo of the face: it is used only to keep "
                "that face out of the galleries and out of search results"
            )
        return None
    if has_photo and REFERENCE_IDENTIFIER in identifiers:
        return (
            "a photo is not needed: the reference number you gave finds the record; send the "
            "request without the photo"
        )
    if not has_photo and not identifiers:
        return (
            "give something that finds the record: a reference number (for example a custody "
            "or case number) or the collection that holds it; a photo only if you have neither"
        )
    return None


@dataclass(frozen=True, slots=True)
class RightsRequest:
    """One request as the privacy officer sees it. ``receipt`` is what the person holds;
    ``result`` records what was done (erasure receipts, exports, the suppression entry)."""

    id: str
    receipt: str
    kind: RequestKind
    status: RequestStatus
    organisation_id: str | None  # None: filed on the public page or by the local operator
    filed_at: datetime
    filed_by: str
    due_at: datetime
    contact: str
    identifiers: Mapping[str, str]
    details: str
    has_photo: bool
    extension_reason: str | None = None
    closed_at: datetime | None = None
    handled_by: str | None = None
    outcome: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)

    def overdue(self, now: datetime) -> bool:
        return is_overdue(status=self.status, due=self.due_at, now=now)

    def days_left(self, now: datetime) -> int:
        return days_until(self.due_at, now)


@dataclass(frozen=True, slots=True)
class PublicStatus:
    """What a status lookup by receipt number reveals: the status and the dates, nothing
    about the person or what they asked."""

    receipt: str
    status: RequestStatus
    filed_on: str  # YYYY-MM-DD (UTC)
    due_on: str
    closed_on: str | None

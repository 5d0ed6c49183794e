"""The auditor's pages: the audit log with filters, the chain's verification status, and the
annual (transparency) report.

The log is shown oldest first, like the API and ``probity audit log``: sequence order is the
chain's own order, and one page read records one ``audit.read`` event (reading newest first
would need the total before the page, i.e. two audited reads). "Last" jumps to the newest.

Reading the log and verifying it are audited by ``AuditService``; the report by
``TransparencyService``. The pages only parse the form and show what the services return.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from probity.domain.accounts import Action, Actor
from probity.domain.audit import AuditAction, AuditEvent
from probity.errors import InvalidInput
from probity.interfaces.api.deps import ServicesDep
from probity.interfaces.render.annual_report_pdf import scope_label
from probity.interfaces.web.common import SessionCookie, render, signed_form, signed_in
from probity.services.container import Services
from probity.services.transparency import (
    BREAKDOWNS,
    FIRST_YEAR,
    LAST_YEAR,
    RIGHTS_HANDLING,
    RIGHTS_OUTCOMES,
    RIGHTS_REQUESTS,
    RIGHTS_REQUESTS_NOTE,
    TOTALS,
)

router = APIRouter(include_in_schema=False)

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
DETAIL_PREVIEW_CHARS = 160  # a longer details JSON is cut here and shown whole on demand
COUNT_AHEAD = 10_000
"""The page counts the matching events only this far past its own last row: an exact count
reads every matching row (~2 s for one organisation's events on a 10M-event SQLite log), so
past that the page says "more than N" and offers no "Last" link (narrow the dates instead)."""


@dataclass(frozen=True, slots=True)
class LogFilter:
    """The audit page's filter as typed values, and as the query string that repeats it."""

    action: str | None
    case: str | None
    by: str | None
    since: date | None  # from 00:00 UTC of this day
    until: date | None  # up to 24:00 UTC of this day (inclusive of the day)

    def query(self, **extra: Any) -> str:
        values = {
            "action": self.action,
            "case": self.case,
            "by": self.by,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            **extra,
        }
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _text(value: str | None, limit: int, what: str) -> str | None:
    value = (value or "").strip()
    if len(value) > limit:
        raise InvalidInput(f"the {what} is longer than {limit} characters")
    return value or None


def _day(value: str | None, what: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"the {what} date must look like 2026-01-31") from None


def _int(value: str | None, default: int, low: int, high: int, what: str) -> int:
    value = (value or "").strip()
    if not value:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidInput(f"the {what} must be a whole number from {low} to {high}")
    return int(value)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def _details(event: AuditEvent) -> tuple[str, bool]:
    """The event's details as compact JSON, and whether the preview had to be cut."""
    text = json.dumps(dict(event.details), sort_keys=True, separators=(", ", ": "))
    return text, len(text) > DETAIL_PREVIEW_CHARS


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    services: ServicesDep,
    action: str | None = None,
    case: str | None = None,
    by: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
    probity_session: SessionCookie = None,
) -> Response:
    """The log, oldest first, filtered; ``until`` is inclusive of its day (UTC)."""
    actor, csrf = signed_in(request, services, probity_session)
    wanted = LogFilter(
        action=_text(action, 60, "action"),
        case=_text(case, 200, "case reference"),
        by=_text(by, 200, "acting user"),
        since=_day(since, "since"),
        until=_day(until, "until"),
    )
    if wanted.since and wanted.until and wanted.until < wanted.since:
        raise InvalidInput("the 'until' date is before the 'since' date")
    size = _int(limit, DEFAULT_PAGE_SIZE, 1, 500, "page size")
    skip = _int(offset, 0, 0, 10_000_000, "offset")
    page = services.audit.events(
        actor=actor,
        action=wanted.action,
        case_reference=wanted.case,
        by=wanted.by,
        since=_start_of(wanted.since) if wanted.since else None,
        until=_start_of(wanted.until) + timedelta(days=1) if wanted.until else None,
        limit=size,
        offset=skip,
        count_upto=skip + size + COUNT_AHEAD,
    )
    last = max(0, (page.total - 1) // size * size)
    can_verify = services.access.allows(actor, Action.AUDIT_VERIFY)
    links = {
        "first": wanted.query(limit=size) if skip > 0 else None,
        "previous": wanted.query(limit=size, offset=max(0, skip - size)) if skip > 0 else None,
        "next": wanted.query(limit=size, offset=skip + size) if skip + size < page.total else None,
        "last": wanted.query(limit=size, offset=last) if skip < last and not page.capped else None,
    }
    return render(
        request,
        "audit.html",
        actor=actor,
        csrf=csrf,
        filter=wanted,
        actions=[a.value for a in AuditAction],
        rows=[(e, *_details(e)) for e in page.events],
        total=page.total,
        capped=page.capped,
        limit=size,
        offset=skip,
        page_sizes=PAGE_SIZES,
        links=links,
        can_verify=can_verify,
        result=None,
        last=services.audit.last_verification(actor=actor) if can_verify else None,
        scope=actor.organisation_name,
    )


@router.get("/audit/verification", response_class=HTMLResponse)
def verification(
    request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """The verification status: the last verification's outcome, time and mode, read from
    the stored verified point (one row), with the buttons that run one. A visit never
    verifies: a full verification re-hashes every event (~40 s at 100k events), and even an
    incremental one writes to the log, which a page view must not do on every load."""
    actor, csrf = signed_in(request, services, probity_session)
    last = services.audit.last_verification(actor=actor)
    fragment = request.headers.get("HX-Request") == "true"
    return render(
        request,
        "audit_verification.html" if fragment else "audit_verification_page.html",
        actor=actor,
        csrf=csrf,
        result=None,
        last=last,
    )


@router.post("/audit/verification", response_class=HTMLResponse)
def verify_again(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    full: Annotated[str, Form()] = "0",
    probity_session: SessionCookie = None,
) -> Response:
    """The "Verify new events" (incremental, from the last successful verification) and
    "Verify the whole chain" (``full=1``) buttons: forms, so they carry the CSRF token. The
    verification is itself recorded in the log. For htmx the panel's content only; for a
    browser without scripts, a page of its own."""
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    return _verification(request, services, actor, csrf, full=full == "1")


def _verification(
    request: Request, services: Services, actor: Actor, csrf: str, *, full: bool
) -> Response:
    result = services.audit.verify(actor=actor, full=full)
    fragment = request.headers.get("HX-Request") == "true"
    return render(
        request,
        "audit_verification.html" if fragment else "audit_verification_page.html",
        actor=actor,
        csrf=csrf,
        result=result,
        last=None,
        checked_at=services.clock(),
    )


@router.get("/reports/annual", response_class=HTMLResponse)
def annual_report_page(
    request: Request,
    services: ServicesDep,
    year: str | None = None,
    probity_session: SessionCookie = None,
) -> Response:
    """The annual report of ``year`` (default: this year, UTC) as tables, with the JSON and
    PDF downloads of the same report."""
    actor, csrf = signed_in(request, services, probity_session)
    this_year = services.clock().year
    chosen = _int(year, this_year, FIRST_YEAR, LAST_YEAR, "year")
    report = services.transparency.annual(actor=actor, year=chosen)
    return render(
        request,
        "report_annual.html",
        actor=actor,
        csrf=csrf,
        report=report,
        scope=scope_label(report.organisation),
        totals=TOTALS,
        breakdowns=BREAKDOWNS,
        rights=RIGHTS_REQUESTS,
        rights_note=RIGHTS_REQUESTS_NOTE,
        rights_handling=RIGHTS_HANDLING,
        rights_outcomes=RIGHTS_OUTCOMES,
        years=range(this_year, max(FIRST_YEAR, this_year - 9) - 1, -1),
        first_year=FIRST_YEAR,
        last_year=LAST_YEAR,
    )

"""The annual (transparency) report: what was done with Probity in one calendar year, counted
from the audit log and from nothing else.

Why only the log: the log is the record a regulator can verify (hash chain, signed
checkpoints), while the tables change (a rejected authorisation deletes its searches; an
erasure deletes a subject). A report taken from the log still counts what was later deleted,
and anyone who can read the log can recount every figure (``through_seq`` says which events
were read).

Scope: a person signed in to the server gets their own organisation's events, exactly as
``AuditService.events`` scopes them; the local operator (a plain-string actor) gets every
organisation's. The year runs from 1 January 00:00 UTC (inclusive) to the next 1 January
(exclusive).

Searches by offence: the ``search.run`` event names the case, not its offence, so the offence
is taken from the case's ``case.open`` event in the same log (cases opened in an earlier year
included). A search whose case has no ``case.open`` event is counted under
``OFFENCE_NOT_IN_LOG``.

Rights requests (access, objection, erasure): requests filed in the year by kind
(``rights.file``), their outcomes (``rights.close``: closed or refused; ``rights.extend``)
and handling times, filing to closing in days (``rights.close: handling_days``), median and
maximum over the requests closed in the year, and how many were closed after their deadline.
A request filed on the public page is recorded under the deployment's own organisation (no
account filed it); its closing is recorded under the officer's organisation.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from probity.domain.accounts import Action
from probity.domain.audit import AuditAction, AuditEvent, AuditRecord
from probity.domain.case import AuthorisationStatus
from probity.domain.review import ReviewDecision
from probity.domain.search import SearchOutcome
from probity.errors import InvalidInput
from probity.services.access import AccessGuard, Who, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.erasure import ErasureCause
from probity.storage.db import Database
from probity.storage.repositories import AuditLog

FIRST_YEAR = 2000
LAST_YEAR = 9998  # the period ends on 1 January of the next year, which must still be a date

OFFENCE_NOT_IN_LOG = "(case not opened in the log)"
NO_ORGANISATION = "-"
RIGHTS_REQUESTS_NOTE = (
    "Requests filed in the year, by kind (rights.file); outcomes of the requests closed in the "
    "year (rights.close: closed or refused) and extensions (rights.extend); handling time is "
    "from filing to closing in days (rights.close: handling_days). Requests filed on the "
    "public page are recorded under the deployment's own organisation. Erasures a request "
    "led to are also counted under 'Subjects removed'."
)
RIGHTS_OUTCOMES = ("closed", "refused", "extended")
"""The columns of ``rights_outcomes``: requests closed, refused and extended in the year."""


@dataclass(frozen=True, slots=True)
class Measure:
    """One figure of the report: its JSON key, its label for people, and which audit events
    it counts (printed with the figure, so a reader can recount it)."""

    key: str
    label: str
    counts: str


TOTALS: tuple[Measure, ...] = (
    Measure("events", "Audit events in the year", "every event"),
    Measure("searches", "Searches run", "search.run"),
    Measure("searches_denied", "Searches refused", "search.denied"),
    Measure("cases_opened", "Cases opened", "case.open"),
    Measure("authorisation_decisions", "Authorisation decisions", "case.authorisation"),
    Measure("case_purges", "Cases purged (authorisation rejected)", "case.purge"),
    Measure("searches_purged", "Searches deleted by purges", "case.purge: searches_deleted"),
    Measure("reviews", "Reviews recorded", "review.record"),
    Measure("leads_confirmed", "Leads confirmed by two different reviewers", "lead.confirmed"),
    Measure("galleries_created", "Galleries created", "gallery.create"),
    Measure("enrolments", "Images enrolled", "enrolment.create"),
    Measure("bulk_enrolment_runs", "Bulk enrolment runs", "enrolment.bulk"),
    Measure("subjects_removed", "Subjects removed (erasures)", "subject.remove"),
    Measure(
        "enrolments_erased",
        "Enrolments erased from subjects who keep others",
        "enrolment.erase",
    ),
    Measure("objections", "Objections recorded (opt-out by face)", "objection.record"),
    Measure(
        "enrolments_refused_objection",
        "Enrolments refused: objection on file",
        "enrolment.refused_objection",
    ),
    Measure("jurisdiction_purges", "Jurisdiction purges run", "jurisdiction.purge"),
    Measure(
        "retention_sweeps", "Retention sweeps (that erased, or were asked for)", "retention.sweep"
    ),
    Measure("audit_reads", "Reads of the audit log", "audit.read"),
    Measure("audit_verifications", "Audit chain verifications", "audit.verify"),
    Measure(
        "audit_verification_failures", "Verifications that found a break", "audit.verify: ok false"
    ),
    Measure("case_reports", "Case reports produced", "report.case"),
    Measure("annual_reports", "Annual reports produced", "report.annual"),
)

BREAKDOWNS: tuple[Measure, ...] = (
    Measure(
        "searches_by_offence",
        "Searches by offence category",
        "search.run; offence from the case's case.open",
    ),
    Measure("searches_by_organisation", "Searches by organisation", "search.run: organisation"),
    Measure("search_outcomes", "Search outcomes", "search.run: outcome"),
    Measure("cases_by_offence", "Cases opened by offence category", "case.open: offence"),
    Measure(
        "cases_by_authorisation_at_opening",
        "Cases by authorisation when opened",
        "case.open: authorisation_status",
    ),
    Measure(
        "authorisation_decisions_by_status",
        "Authorisation decisions by outcome",
        "case.authorisation: status",
    ),
    Measure("reviews_by_decision", "Reviews by decision", "review.record: decision"),
    Measure("enrolments_by_gallery", "Images enrolled by gallery", "enrolment.create: gallery"),
    Measure(
        "subjects_removed_by_gallery", "Subjects removed by gallery", "subject.remove: gallery"
    ),
    Measure(
        "erasures_by_cause",
        "Erasures by cause",
        "subject.remove and enrolment.erase: cause",
    ),
    Measure("events_by_action", "Audit events by action", "every event: action"),
)

RIGHTS_REQUESTS: tuple[Measure, ...] = (
    Measure("access", "Access requests", "rights.file: kind access"),
    Measure("objection", "Objection (opt-out) requests", "rights.file: kind objection"),
    Measure("erasure", "Erasure requests", "rights.file: kind erasure"),
)

RIGHTS_HANDLING: tuple[Measure, ...] = (
    Measure("closed", "Requests closed or refused", "rights.close"),
    Measure("median_days", "Median handling time (days)", "rights.close: handling_days"),
    Measure("max_days", "Longest handling time (days)", "rights.close: handling_days"),
    Measure("overdue_at_close", "Closed after their deadline", "rights.close: overdue true"),
)


@dataclass(frozen=True, slots=True)
class AnnualReport:
    """The counts of one calendar year (UTC), within ``organisation`` (None: every one).

    ``through_seq``: the last audit event that existed when the report was taken; every figure
    counts events with ``seq <= through_seq`` only, so recounting the log up to that event
    gives the same numbers even after later events are appended."""

    year: int
    organisation: str | None
    period_start: datetime
    period_end: datetime  # exclusive
    through_seq: int
    generated_at: datetime
    generated_by: str
    totals: Mapping[str, int]  # keys: TOTALS
    breakdowns: Mapping[str, Mapping[str, int]]  # keys: BREAKDOWNS, each sorted by key
    searches_by_organisation_and_offence: tuple[tuple[str, str, int], ...]
    rights_requests: Mapping[str, int]  # keys: RIGHTS_REQUESTS (filed in the year)
    # kind -> {closed, refused, extended} (RIGHTS_OUTCOMES), every kind shown
    rights_outcomes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # keys: RIGHTS_HANDLING; the day figures are None when nothing was closed
    rights_handling: Mapping[str, float | int | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what the API returns and the PDF shows)."""
        return {
            "year": self.year,
            "organisation": self.organisation,
            "period": {
                "start": self.period_start.isoformat(),
                "end_exclusive": self.period_end.isoformat(),
            },
            "through_seq": self.through_seq,
            "generated_at": self.generated_at.isoformat(),
            "generated_by": self.generated_by,
            "totals": dict(self.totals),
            "breakdowns": {k: dict(v) for k, v in self.breakdowns.items()},
            "searches_by_organisation_and_offence": [
                {"organisation": org, "offence": offence, "searches": n}
                for org, offence, n in self.searches_by_organisation_and_offence
            ],
            "rights_requests": {
                **self.rights_requests,
                "by_outcome": {k: dict(v) for k, v in self.rights_outcomes.items()},
                "handling_days": dict(self.rights_handling),
                "note": RIGHTS_REQUESTS_NOTE,
            },
            "definitions": {m.key: m.counts for m in (*TOTALS, *BREAKDOWNS)},
        }


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """1 January ``year`` 00:00 UTC and 1 January ``year + 1`` 00:00 UTC (exclusive)."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidInput(f"the year must be between {FIRST_YEAR} and {LAST_YEAR}")
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


@dataclass
class Tally:
    """Counts over a stream of audit events, one pass, memory bounded by the number of
    distinct keys (actions, offences, galleries, (organisation, case) pairs), not of events."""

    events: Counter[str] = field(default_factory=Counter)  # by action
    searches_by_case: Counter[tuple[str, str]] = field(default_factory=Counter)  # (org, case)
    search_outcomes: Counter[str] = field(default_factory=Counter)
    offences: dict[str, str] = field(default_factory=dict)  # case reference -> offence
    cases_by_offence: Counter[str] = field(default_factory=Counter)
    cases_by_authorisation: Counter[str] = field(default_factory=Counter)
    decisions_by_status: Counter[str] = field(default_factory=Counter)
    reviews_by_decision: Counter[str] = field(default_factory=Counter)
    enrolments_by_gallery: Counter[str] = field(default_factory=Counter)
    removals_by_gallery: Counter[str] = field(default_factory=Counter)
    erasures_by_cause: Counter[str] = field(default_factory=Counter)
    searches_purged: int = 0
    verification_failures: int = 0
    rights_filed: Counter[str] = field(default_factory=Counter)  # by kind
    rights_outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, what)
    # One number per request closed in the year (a few hundred a year at most): the median
    # needs them all.
    rights_handling_days: list[float] = field(default_factory=list)
    rights_overdue_at_close: int = 0

    def add(self, event: AuditEvent) -> None:
        action = event.action
        details = event.details
        self.events[action] += 1
        if action == AuditAction.SEARCH:
            key = (event.organisation or NO_ORGANISATION, event.case_reference or "")
            self.searches_by_case[key] += 1
            self.search_outcomes[str(details.get("outcome"))] += 1
        elif action == AuditAction.CASE_OPEN:
            offence = str(details.get("offence"))
            if event.case_reference is not None:
                self.offences.setdefault(event.case_reference, offence)
            self.cases_by_offence[offence] += 1
            self.cases_by_authorisation[str(details.get("authorisation_status"))] += 1
        elif action == AuditAction.CASE_AUTHORISATION:
            self.decisions_by_status[str(details.get("status"))] += 1
        elif action == AuditAction.CASE_PURGE:
            self.searches_purged += int(details.get("searches_deleted") or 0)
        elif action == AuditAction.REVIEW:
            self.reviews_by_decision[str(details.get("decision"))] += 1
        elif action == AuditAction.ENROL:
            for gallery in event.galleries:
                self.enrolments_by_gallery[gallery] += 1
        elif action == AuditAction.SUBJECT_REMOVE:
            for gallery in event.galleries:
                self.removals_by_gallery[gallery] += 1
            # Removals from before erasure causes were recorded count as removals.
            self.erasures_by_cause[str(details.get("cause") or "removal")] += 1
        elif action == AuditAction.ENROLMENT_ERASE:
            self.erasures_by_cause[str(details.get("cause") or "removal")] += 1
        elif action == AuditAction.AUDIT_VERIFY and details.get("ok") is False:
            self.verification_failures += 1
        elif action == AuditAction.RIGHTS_FILE:
            self.rights_filed[str(details.get("kind"))] += 1
        elif action == AuditAction.RIGHTS_EXTEND:
            self.rights_outcomes[(str(details.get("kind")), "extended")] += 1
        elif action == AuditAction.RIGHTS_CLOSE:
            self.rights_outcomes[(str(details.get("kind")), str(details.get("status")))] += 1
            days = details.get("handling_days")
            if isinstance(days, int | float):
                self.rights_handling_days.append(float(days))
            if details.get("overdue") is True:
                self.rights_overdue_at_close += 1

    def cases_without_offence(self) -> set[str]:
        """Cases searched this year whose case.open is not among the year's events."""
        return {case for _, case in self.searches_by_case if case not in self.offences}


def _with_zeros(counts: Counter[str], keys: Iterable[str]) -> dict[str, int]:
    """Every expected key (shown even at zero), then any other found, sorted by key."""
    merged = {str(k): 0 for k in keys} | dict(counts)
    return dict(sorted(merged.items()))


def build_report(
    tally: Tally,
    *,
    year: int,
    organisation: str | None,
    through_seq: int,
    generated_at: datetime,
    generated_by: str,
) -> AnnualReport:
    """Turn a finished tally (offences resolved) into the report."""
    start, end = year_bounds(year)
    by_offence: Counter[str] = Counter()
    by_organisation: Counter[str] = Counter()
    by_both: Counter[tuple[str, str]] = Counter()
    for (org, case), n in tally.searches_by_case.items():
        offence = tally.offences.get(case, OFFENCE_NOT_IN_LOG)
        by_offence[offence] += n
        by_organisation[org] += n
        by_both[(org, offence)] += n
    e = tally.events
    A = AuditAction
    totals = {
        "events": sum(e.values()),
        "searches": e[A.SEARCH],
        "searches_denied": e[A.SEARCH_DENIED],
        "cases_opened": e[A.CASE_OPEN],
        "authorisation_decisions": e[A.CASE_AUTHORISATION],
        "case_purges": e[A.CASE_PURGE],
        "searches_purged": tally.searches_purged,
        "reviews": e[A.REVIEW],
        "leads_confirmed": e[A.LEAD],
        "galleries_created": e[A.GALLERY_CREATE],
        "enrolments": e[A.ENROL],
        "bulk_enrolment_runs": e[A.ENROL_BULK],
        "subjects_removed": e[A.SUBJECT_REMOVE],
        "enrolments_erased": e[A.ENROLMENT_ERASE],
        "objections": e[A.OBJECTION_RECORD],
        "enrolments_refused_objection": e[A.ENROL_REFUSED_OBJECTION],
        "jurisdiction_purges": e[A.JURISDICTION_PURGE],
        "retention_sweeps": e[A.RETENTION_SWEEP],
        "audit_reads": e[A.AUDIT_READ],
        "audit_verifications": e[A.AUDIT_VERIFY],
        "audit_verification_failures": tally.verification_failures,
        "case_reports": e[A.REPORT_CASE],
        "annual_reports": e[A.REPORT_ANNUAL],
    }
    breakdowns = {
        "searches_by_offence": _with_zeros(by_offence, ()),
        "searches_by_organisation": _with_zeros(by_organisation, ()),
        "search_outcomes": _with_zeros(tally.search_outcomes, SearchOutcome),
        "cases_by_offence": _with_zeros(tally.cases_by_offence, ()),
        "cases_by_authorisation_at_opening": _with_zeros(
            tally.cases_by_authorisation,
            (AuthorisationStatus.GRANTED, AuthorisationStatus.PENDING),
        ),
        "authorisation_decisions_by_status": _with_zeros(
            tally.decisions_by_status,
            (
                AuthorisationStatus.GRANTED,
                AuthorisationStatus.REJECTED,
                AuthorisationStatus.EXPIRED,
            ),
        ),
        "reviews_by_decision": _with_zeros(tally.reviews_by_decision, ReviewDecision),
        "enrolments_by_gallery": _with_zeros(tally.enrolments_by_gallery, ()),
        "subjects_removed_by_gallery": _with_zeros(tally.removals_by_gallery, ()),
        "erasures_by_cause": _with_zeros(tally.erasures_by_cause, ErasureCause),
        "events_by_action": _with_zeros(e, ()),
    }
    return AnnualReport(
        year=year,
        organisation=organisation,
        period_start=start,
        period_end=end,
        through_seq=through_seq,
        generated_at=generated_at,
        generated_by=generated_by,
        totals=totals,
        breakdowns=breakdowns,
        searches_by_organisation_and_offence=tuple(
            (org, offence, n) for (org, offence), n in sorted(by_both.items())
        ),
        rights_requests=_with_zeros(tally.rights_filed, (m.key for m in RIGHTS_REQUESTS)),
        rights_outcomes=_rights_outcomes(tally),
        rights_handling=_rights_handling(tally),
    )


def _rights_outcomes(tally: Tally) -> dict[str, dict[str, int]]:
    """kind -> {closed, refused, extended}, every kind of RIGHTS_REQUESTS shown."""
    kinds = [m.key for m in RIGHTS_REQUESTS]
    kinds += sorted({k for k, _ in tally.rights_outcomes} - set(kinds))
    return {k: {o: tally.rights_outcomes[(k, o)] for o in RIGHTS_OUTCOMES} for k in kinds}


def _rights_handling(tally: Tally) -> dict[str, float | int | None]:
    """Requests closed (or refused) in the year, the median and longest time from filing
    to closing in days (one decimal; None when none closed), and how many were late."""
    days = tally.rights_handling_days
    return {
        "closed": len(days),
        "median_days": round(statistics.median(days), 1) if days else None,
        "max_days": max(days) if days else None,
        "overdue_at_close": tally.rights_overdue_at_close,
    }


class TransparencyService:
    def __init__(
        self, *, db: Database, audit: AuditService, clock: Clock, guard: AccessGuard
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.guard = guard

    def annual(self, *, actor: Who, year: int) -> AnnualReport:
        """The annual report for ``year`` (UTC calendar year), scoped as described in the
        module docstring. Reads the log in a read transaction (it never blocks the writers),
        then records ``report.annual`` with the figures' provenance (``through_seq``).

        Raises NotPermitted without ``report.annual``; InvalidInput for a year outside
        FIRST_YEAR..LAST_YEAR."""
        self.guard.check(actor, Action.REPORT_ANNUAL)
        start, end = year_bounds(year)
        scope = None if isinstance(actor, str) else (actor.organisation_name or "?")
        tally = Tally()
        with self.db.read() as session:
            log = AuditLog(session)
            # Events up to the head read now: later ones (appended while we read) are left
            # for the next report, so the figures match a recount up to ``through_seq``.
            through = log.head_seq()
            for event in log.events(since=start, until=end, organisation=scope):
                if event.seq <= through:
                    tally.add(event)
            missing = tally.cases_without_offence()
            if missing:
                # Cases opened in an earlier year (or by the deployment itself): their offence
                # comes from their case.open event, whoever recorded it. Only cases this
                # organisation searched are looked up, so nothing else is disclosed.
                for opened in log.events_for_cases(
                    action=AuditAction.CASE_OPEN, case_references=missing
                ):
                    if opened.seq <= through and opened.case_reference is not None:
                        tally.offences.setdefault(
                            opened.case_reference, str(opened.details.get("offence"))
                        )
        report = build_report(
            tally,
            year=year,
            organisation=scope,
            through_seq=through,
            generated_at=self.clock(),
            generated_by=name_of(actor),
        )
        self.audit.record_alone(
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=AuditAction.REPORT_ANNUAL,
                details={
                    "year": year,
                    "scope": scope,
                    "through_seq": through,
                    "events": report.totals["events"],
                    "searches": report.totals["searches"],
                },
            )
        )
        return report

"""The annual report: every figure equals a count taken directly from the audit log, for a
seeded year with events on both sides of its boundaries and in two organisations."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from probity.domain.accounts import Actor, OrganisationKind, Role
from probity.domain.audit import AuditEvent
from probity.domain.case import AuthorisationStatus
from probity.domain.review import CandidateRef, ReviewDecision
from probity.errors import InvalidInput, NotPermitted, ObjectionOnFile
from probity.services.clock import ManualClock
from probity.services.container import Services
from probity.services.transparency import BREAKDOWNS, OFFENCE_NOT_IN_LOG, TOTALS
from probity.storage.repositories import AuditLog
from tests.api.conftest import seed_people
from tests.fakes import FakeEngine, make_image, near, unit
from tests.services.conftest import ACTOR

YEAR = 2026
PROVENANCE = {
    "source": "custody-suite/118812",
    "lawful_basis": "law_enforcement",
    "collected_at": "2025-11-01",
    "jurisdiction": "GB",
    "collected_by": "PC 1234",
}


@pytest.fixture
def clock() -> ManualClock:
    """Starts in December of the year before the report's year (overrides conftest's)."""
    return ManualClock(datetime(YEAR - 1, 12, 1, 9, 0, tzinfo=UTC))


@dataclass
class Seeded:
    svc: Services
    people: dict[str, Actor]


def _people(svc: Services, org: str, clock: ManualClock, **roles: list[Role]) -> dict[str, Actor]:
    keys = seed_people(svc, org, OrganisationKind.LAW_ENFORCEMENT, roles, clock)
    return {name: svc.accounts.authenticate_key(key) for name, key in keys.items()}


@pytest.fixture
def seeded(svc: Services, gallery: str, clock: ManualClock, fake_engine: FakeEngine) -> Seeded:
    """Two organisations' work from December of the year before to January of the year
    after, with every kind of event the report counts."""
    people = _people(
        svc,
        "Met",
        clock,
        sup=[Role.SUPERVISOR],
        inv=[Role.INVESTIGATOR],
        ex1=[Role.EXAMINER],
        ex2=[Role.EXAMINER],
        aud=[Role.AUDITOR],
    )
    people |= _people(svc, "Elsewhere", clock, sup2=[Role.SUPERVISOR], inv2=[Role.INVESTIGATOR])
    a, b = unit(1), unit(2)
    for seed, (ref, vector) in enumerate((("A-1", a), ("B-1", b), ("C-1", unit(3))), start=10):
        image = fake_engine.register(make_image(seed), vector)
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject=ref, image=image, provenance=PROVENANCE
        )
    probe_a = fake_engine.register(make_image(20), near(a, 0.3, 1))
    far = fake_engine.register(make_image(21), unit(99))
    no_face = make_image(22)
    inv, inv2 = people["inv"], people["inv2"]

    # The year before: a case opened (robbery) and searched, then a last search at 23:59:59.
    svc.cases.open(
        actor=inv,
        reference="OLD-1",
        offence="robbery",
        justification="opened the year before",
        authorisation="W-1",
    )
    svc.search.search(actor=inv, case_reference="OLD-1", probe=probe_a)
    clock.now = datetime(YEAR - 1, 12, 31, 23, 59, 59, tzinfo=UTC)
    svc.search.search(actor=inv, case_reference="OLD-1", probe=far)

    # The year itself, from its first second: the old case searched again (its offence comes
    # from last year's case.open), new cases, every search outcome, reviews and a lead.
    clock.now = datetime(YEAR, 1, 1, 0, 0, 0, tzinfo=UTC)
    result = svc.search.search(actor=inv, case_reference="OLD-1", probe=probe_a)
    svc.cases.open(
        actor=inv,
        reference="NEW-1",
        offence="fraud",
        justification="opened in the year",
        authorisation=None,
        pending=True,
    )
    svc.search.search(actor=inv, case_reference="NEW-1", probe=far)
    svc.search.search(actor=inv, case_reference="NEW-1", probe=no_face)
    svc.cases.set_authorisation(
        actor=people["sup"], reference="NEW-1", status=AuthorisationStatus.GRANTED,
        authorisation="W-2",
    )  # fmt: skip
    candidate = CandidateRef(result.id, 1, result.faces[0].candidates[0].subject_id)
    for name in ("ex1", "ex2"):
        svc.reviews.record(
            actor=people[name], candidate=candidate, decision=ReviewDecision.POSSIBLE_MATCH
        )
    svc.reviews.record(actor=inv, candidate=candidate, decision=ReviewDecision.INCONCLUSIVE)
    svc.cases.open(
        actor=inv,
        reference="GONE-1",
        offence="robbery",
        justification="to be rejected",
        authorisation=None,
        pending=True,
    )
    svc.search.search(actor=inv, case_reference="GONE-1", probe=probe_a)
    svc.cases.set_authorisation(
        actor=people["sup"], reference="GONE-1", status=AuthorisationStatus.REJECTED
    )
    svc.subjects.remove(actor=ACTOR, gallery=gallery, reference="C-1", reason="acquitted")
    # An objection that erases B-1 (cause "objection"), a refused re-enrolment, a sweep.
    objector = fake_engine.register(make_image(23), near(b, 0.1, 5))
    svc.suppression.object(actor=ACTOR, image=objector, reference="LETTER-1")
    again = fake_engine.register(make_image(24), near(b, 0.2, 6))
    with pytest.raises(ObjectionOnFile):
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject="B-2", image=again, provenance=PROVENANCE
        )
    svc.retention.sweep(actor=ACTOR)
    svc.audit.verify(actor=people["aud"])
    svc.audit.events(actor=people["aud"], action="search.run")
    svc.reports.case_report(actor=inv, case_reference="NEW-1")
    svc.transparency.annual(actor=people["aud"], year=YEAR - 1)
    # Another organisation's work in the same year: not in Met's report.
    svc.cases.open(
        actor=inv2,
        reference="ELSE-1",
        offence="homicide",
        justification="another organisation",
        authorisation="W-9",
    )
    svc.search.search(actor=inv2, case_reference="ELSE-1", probe=probe_a)
    # The last second of the year counts; the first of the next does not. (Met's training
    # attestations lapse on 1 December, so the auditor acts here, not the investigator.)
    clock.now = datetime(YEAR, 12, 31, 23, 59, 59, tzinfo=UTC)
    svc.audit.verify(actor=people["aud"])
    clock.now = datetime(YEAR + 1, 1, 1, 0, 0, 0, tzinfo=UTC)
    svc.audit.verify(actor=people["aud"])
    svc.search.search(actor=ACTOR, case_reference="NEW-1", probe=probe_a)
    clock.now += timedelta(hours=1)
    return Seeded(svc, people)


def _log(svc: Services, *, organisation: str | None, through_seq: int) -> list[AuditEvent]:
    """The year's events straight from the log repository (no audit service: no read event)."""
    with svc.db.read() as session:
        return [
            e
            for e in AuditLog(session).events(
                since=datetime(YEAR, 1, 1, tzinfo=UTC),
                until=datetime(YEAR + 1, 1, 1, tzinfo=UTC),
                organisation=organisation,
            )
            if e.seq <= through_seq
        ]


def _offences(svc: Services) -> dict[str, str]:
    with svc.db.read() as session:
        opened = AuditLog(session).events(action="case.open")
        return {e.case_reference or "": e.details["offence"] for e in opened}


def _expected(events: list[AuditEvent], offences: dict[str, str]) -> dict[str, object]:
    """Each figure of the report, recounted from the events in the plainest way."""

    def of(action: str) -> list[AuditEvent]:
        return [e for e in events if e.action == action]

    searches = of("search.run")
    return {
        "events": len(events),
        "searches": len(searches),
        "searches_denied": len(of("search.denied")),
        "cases_opened": len(of("case.open")),
        "authorisation_decisions": len(of("case.authorisation")),
        "case_purges": len(of("case.purge")),
        "searches_purged": sum(e.details["searches_deleted"] for e in of("case.purge")),
        "reviews": len(of("review.record")),
        "leads_confirmed": len(of("lead.confirmed")),
        "galleries_created": len(of("gallery.create")),
        "enrolments": len(of("enrolment.create")),
        "bulk_enrolment_runs": len(of("enrolment.bulk")),
        "subjects_removed": len(of("subject.remove")),
        "enrolments_erased": len(of("enrolment.erase")),
        "objections": len(of("objection.record")),
        "enrolments_refused_objection": len(of("enrolment.refused_objection")),
        "jurisdiction_purges": len(of("jurisdiction.purge")),
        "retention_sweeps": len(of("retention.sweep")),
        "audit_reads": len(of("audit.read")),
        "audit_verifications": len(of("audit.verify")),
        "audit_verification_failures": sum(1 for e in of("audit.verify") if not e.details["ok"]),
        "case_reports": len(of("report.case")),
        "annual_reports": len(of("report.annual")),
        "searches_by_offence": Counter(
            offences.get(e.case_reference or "", OFFENCE_NOT_IN_LOG) for e in searches
        ),
        "searches_by_organisation": Counter(e.organisation for e in searches),
        "search_outcomes": Counter(e.details["outcome"] for e in searches),
        "cases_by_offence": Counter(e.details["offence"] for e in of("case.open")),
        "cases_by_authorisation_at_opening": Counter(
            e.details["authorisation_status"] for e in of("case.open")
        ),
        "authorisation_decisions_by_status": Counter(
            e.details["status"] for e in of("case.authorisation")
        ),
        "reviews_by_decision": Counter(e.details["decision"] for e in of("review.record")),
        "enrolments_by_gallery": Counter(g for e in of("enrolment.create") for g in e.galleries),
        "subjects_removed_by_gallery": Counter(
            g for e in of("subject.remove") for g in e.galleries
        ),
        "erasures_by_cause": Counter(
            e.details.get("cause") or "removal"
            for e in events
            if e.action in ("subject.remove", "enrolment.erase")
        ),
        "events_by_action": Counter(e.action for e in events),
    }


def _nonzero(counts: object) -> dict[str, int]:
    assert isinstance(counts, dict | Counter)
    return {k: v for k, v in counts.items() if v}


def test_every_figure_equals_a_count_taken_from_the_log(seeded: Seeded) -> None:
    svc, aud = seeded.svc, seeded.people["aud"]
    report = svc.transparency.annual(actor=aud, year=YEAR)
    assert report.organisation == "Met"
    expected = _expected(
        _log(svc, organisation="Met", through_seq=report.through_seq), _offences(svc)
    )
    for m in TOTALS:
        assert report.totals[m.key] == expected[m.key], m.key
    for m in BREAKDOWNS:
        assert _nonzero(report.breakdowns[m.key]) == _nonzero(expected[m.key]), m.key
    # The seeded story, in figures: the boundaries hold and the old case's offence is found.
    t, b = report.totals, report.breakdowns
    assert t["searches"] == 4  # OLD-1 at 00:00:00 (not at 23:59:59 before), NEW-1 twice, GONE-1
    assert b["searches_by_offence"] == {"fraud": 2, "robbery": 2}
    assert b["searches_by_organisation"] == {"Met": 4}
    assert b["search_outcomes"]["no_face_found"] == 1
    assert t["leads_confirmed"] == 1 and t["reviews"] == 3
    assert b["reviews_by_decision"] == {"inconclusive": 1, "not_a_match": 0, "possible_match": 2}
    assert t["case_purges"] == 1 and t["searches_purged"] == 1
    assert b["authorisation_decisions_by_status"]["rejected"] == 1
    assert t["annual_reports"] == 1
    assert t["audit_verifications"] == 2  # at 23:59:59, not at 00:00:00 the year after
    assert "homicide" not in b["searches_by_offence"]  # Elsewhere's case
    # Operator work (enrolments, the removal) is the deployment's, not Met's.
    assert t["enrolments"] == 0 and t["subjects_removed"] == 0
    assert report.rights_requests == {"access": 0, "objection": 0, "erasure": 0}


def test_the_local_operator_counts_every_organisation(seeded: Seeded) -> None:
    svc = seeded.svc
    report = svc.transparency.annual(actor=ACTOR, year=YEAR)
    assert report.organisation is None
    expected = _expected(
        _log(svc, organisation=None, through_seq=report.through_seq), _offences(svc)
    )
    for m in TOTALS:
        assert report.totals[m.key] == expected[m.key], m.key
    for m in BREAKDOWNS:
        assert _nonzero(report.breakdowns[m.key]) == _nonzero(expected[m.key]), m.key
    by_org = report.breakdowns["searches_by_organisation"]
    assert by_org == {"Elsewhere": 1, "Met": 4}  # not the operator's search of next year
    assert ("Elsewhere", "homicide", 1) in report.searches_by_organisation_and_offence
    # The erasures and the objection seeded above, by cause.
    assert report.totals["objections"] == 1 and report.totals["retention_sweeps"] == 1
    assert report.totals["enrolments_refused_objection"] == 1
    causes = report.breakdowns["erasures_by_cause"]
    assert causes["objection"] == 1 and causes["removal"] == 1
    # The year before holds system.init, the enrolments and two searches.
    before = svc.transparency.annual(actor=ACTOR, year=YEAR - 1)
    assert before.totals["searches"] == 2 and before.totals["enrolments"] == 3


def test_producing_the_report_is_audited_and_guarded(seeded: Seeded) -> None:
    svc, people = seeded.svc, seeded.people
    report = svc.transparency.annual(actor=people["sup"], year=YEAR)
    with svc.db.read() as session:
        last = list(AuditLog(session).events(action="report.annual"))[-1]
    assert last.actor == "sup" and last.organisation == "Met"
    assert last.details["year"] == YEAR and last.details["through_seq"] == report.through_seq
    assert last.seq > report.through_seq  # the report does not count itself
    with pytest.raises(NotPermitted):
        svc.transparency.annual(actor=people["inv"], year=YEAR)
    with pytest.raises(InvalidInput):
        svc.transparency.annual(actor=ACTOR, year=1969)


def test_a_year_without_events_is_all_zeros(svc: Services) -> None:
    report = svc.transparency.annual(actor=ACTOR, year=2030)
    assert set(report.totals.values()) == {0}
    assert report.breakdowns["search_outcomes"] == {
        "candidates": 0,
        "no_candidate_above_threshold": 0,
        "no_face_found": 0,
    }
    data = report.as_dict()
    assert data["period"]["start"] == "2030-01-01T00:00:00+00:00"
    assert "rights.file" in data["rights_requests"]["note"]
    assert data["rights_requests"]["handling_days"]["median_days"] is None

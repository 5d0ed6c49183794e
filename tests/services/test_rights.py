"""Rights requests through the services, on the seeded server world (fake engine, SQLite):
file → extend → close with the photo destroyed and its deletion audited; the access export
lists every search that returned the subject (purged ones included); an erasure request
erases through the one erasure path; an objection goes on the suppression list; only what
a request needs is asked for; public filing is rate-limited and its form token expires;
officers see their own organisation's requests and the public page's; a request's photo
lists possible matches for the officer to check and acts on none; closed requests forget
the person's contact details after the keep period, by the retention sweep. The audit chain
verifies after each."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from probity.domain.accounts import Actor, Role
from probity.domain.audit import AuditEvent
from probity.domain.rights import RequestKind, RequestStatus, due_at
from probity.errors import (
    Conflict,
    CsrfFailed,
    InvalidInput,
    NoFaceFound,
    NotPermitted,
    RateLimited,
    RequestNotFound,
)
from probity.interfaces.render.access_export_pdf import render_access_export_pdf
from probity.services.retention import SCHEDULED_ACTOR
from probity.services.rights import PUBLIC_PER_ADDRESS_PER_HOUR
from probity.storage.repositories import AuditLog, Subjects
from probity.storage.tables import RightsRequestRow, SuppressionRow
from tests.api.conftest import (
    OPERATOR,
    PERSON_A,
    PERSON_B,
    World,
    build_world,
    enrol_gallery,
    open_case,
    search,
)
from tests.fakes import make_image, near

RECEIPT = re.compile(r"^RR-\d{4}-[0-9A-F]{10}$")


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    yield from build_world(tmp_path / "home", None)


def _actor(w: World, user: str) -> Actor:
    return w.services.accounts.authenticate_key(w.keys[user])


def _log(w: World, action: str) -> list[AuditEvent]:
    with w.services.db.read() as session:
        return list(AuditLog(session).events(action=action))


def _verified(w: World) -> None:
    result = w.services.audit.verify(actor=OPERATOR)
    assert result.ok, result.reason


def _subject_id(w: World, reference: str, gallery: str = "custody") -> str:
    target = w.services.galleries.get(gallery)
    with w.services.db.read() as session:
        found = Subjects(session).find(target.id, reference)
    assert found is not None, reference
    return found.id


def test_file_extend_close_destroys_the_photo_and_audits_it(w: World) -> None:
    rights = w.services.rights
    photo = make_image(77)
    filed = rights.file(
        actor="public",
        kind="access",
        contact="jo@example.org",
        identifiers={"gallery": "custody"},
        details="I was arrested in 2025 and want to know what you hold.",
        photo=photo,
        client="203.0.113.9",
    )
    assert RECEIPT.match(filed.receipt)
    assert filed.status is RequestStatus.OPEN and filed.organisation_id is None
    assert filed.due_at == due_at(filed.filed_at)
    assert (filed.due_at.date() - filed.filed_at.date()).days in range(28, 32)
    with w.services.db.read() as session:
        row = session.query(RightsRequestRow).filter_by(receipt=filed.receipt).one()
        blob, key = row.photo_blob, row.photo_key
    assert blob is not None and key is not None
    sealed = w.services.rights.vault.blobs.get(blob)
    assert photo not in sealed and photo[16:48] not in sealed  # sealed, not stored plain

    dpo = _actor(w, "dpo")
    assert [r.receipt for r in rights.list(actor=dpo)] == [filed.receipt]
    assert rights.photo(actor=dpo, receipt=filed.receipt) == photo
    assert rights.status(receipt=filed.receipt).status is RequestStatus.OPEN

    extended = rights.extend(actor=dpo, receipt=filed.receipt, reason="several galleries")
    assert extended.status is RequestStatus.EXTENDED
    assert extended.due_at == due_at(filed.filed_at, extended=True)
    with pytest.raises(Conflict, match="already been extended"):
        rights.extend(actor=dpo, receipt=filed.receipt, reason="again")

    closed = rights.close(actor=dpo, receipt=filed.receipt, outcome="no record held; told")
    assert closed.status is RequestStatus.CLOSED and closed.closed_at == w.clock()
    assert not closed.has_photo
    assert not rights.vault.blobs.exists(blob)
    with w.services.db.read() as session:
        row = session.query(RightsRequestRow).filter_by(receipt=filed.receipt).one()
        assert row.photo_blob is None and row.photo_key is None
    with pytest.raises(RequestNotFound):
        rights.photo(actor=dpo, receipt=filed.receipt)
    with pytest.raises(Conflict):
        rights.close(actor=dpo, receipt=filed.receipt, outcome="twice")

    (deleted,) = _log(w, "rights.photo_deleted")
    assert deleted.details["receipt"] == filed.receipt
    assert deleted.details["key_destroyed"] and deleted.details["blob_deleted"]
    (closing,) = _log(w, "rights.close")
    assert closing.details["status"] == "closed" and closing.details["extended"] is True
    assert [e.details["receipt"] for e in _log(w, "rights.file")] == [filed.receipt]
    assert len(_log(w, "rights.extend")) == 1 and len(_log(w, "rights.photo_read")) == 1
    for event in _log(w, "rights.file") + _log(w, "rights.close"):
        assert "jo@example.org" not in json.dumps(event.details)  # contact stays out of the log
    public = rights.status(receipt=filed.receipt.lower())
    assert public.status is RequestStatus.CLOSED
    assert public.closed_on == w.clock().date().isoformat()
    _verified(w)


def test_access_export_lists_every_search_that_returned_the_subject(w: World) -> None:
    probes = enrol_gallery(w)
    open_case(w, "OP-1")
    open_case(w, "OP-2")
    open_case(w, "OP-3", pending=True)
    for reference, probe in (("OP-1", "a"), ("OP-1", "none"), ("OP-2", "pair"), ("OP-3", "a")):
        assert search(w, probes[probe], reference).status_code == 201
    # A rejected authorisation purges OP-3's searches: the export must still list them.
    r = w.call("POST", "/api/v1/cases/OP-3/authorisation", "sup", json={"status": "rejected"})
    assert r.status_code == 200, r.text
    subject = _subject_id(w, "A-1")
    returned = [e for e in _log(w, "search.run") if subject in e.subject_ids]
    assert len(returned) == 3  # OP-1 "a", OP-2 "pair", OP-3 "a"; not the probe with no face

    dpo = _actor(w, "dpo")
    request = w.services.rights.file(
        actor=dpo, kind=RequestKind.ACCESS, contact="post: 1 High St", identifiers={
            "reference": "A-1", "gallery": "custody"}
    )  # fmt: skip
    export = w.services.rights.access_export(
        actor=dpo,
        gallery="custody",
        reference="A-1",
        render_pdf=render_access_export_pdf,
        receipt=request.receipt,
    )
    archive = zipfile.ZipFile(io.BytesIO(export.data))
    document = json.loads(archive.read("subject.json"))
    assert [s["search_id"] for s in document["searches"]] == [
        e.details["search_id"] for e in returned
    ]
    assert [s["case_reference"] for s in document["searches"]] == ["OP-1", "OP-2", "OP-3"]
    assert {s["organisation"] for s in document["searches"]} == {"Met"}
    # Investigation mode lists the whole (small) gallery for each face of the pair: A is
    # rank 1 for the right-hand face, and listed lower for the left-hand one.
    returned_as = {r["face"]: r for r in document["searches"][1]["returned_as"]}
    assert returned_as[2]["rank"] == 1 and returned_as[1]["rank"] > 1
    (enrolment,) = document["enrolments"]
    assert enrolment["provenance"]["source"] == "custody-suite/118812"
    image = archive.read(enrolment["file"])
    assert image == make_image(10) and enrolment["file"].endswith(".png")
    assert archive.read("report.pdf").startswith(b"%PDF")
    assert export.searches == 3 and export.enrolments == 1
    (event,) = _log(w, "rights.export")
    assert event.subject_ids == (subject,) and event.details["zip_sha256"] == export.sha256
    assert event.details["receipt"] == request.receipt
    answered = w.services.rights.get(actor=dpo, receipt=request.receipt)
    assert answered.result["exports"][0]["searches"] == 3
    _verified(w)


def test_erasure_request_erases_through_the_one_path(w: World) -> None:
    enrol_gallery(w)
    dpo = _actor(w, "dpo")
    request = w.services.rights.file(
        actor=dpo, kind="erasure", contact="jo@example.org", identifiers={"reference": "A-1"}
    )
    with pytest.raises(Conflict, match="erasure request"):
        w.services.rights.access_export(
            actor=dpo,
            gallery="custody",
            reference="A-1",
            render_pdf=render_access_export_pdf,
            receipt=request.receipt,
        )
    receipt = w.services.rights.erase_subject(
        actor=dpo, receipt=request.receipt, gallery="custody", reference="A-1"
    )
    assert receipt.number.startswith("ER-") and receipt.request_id == request.id
    assert receipt.cause.value == "request"
    handled = w.services.rights.close(actor=dpo, receipt=request.receipt, outcome="erased")
    assert handled.result["erasures"][0]["receipt"] == receipt.number
    (removal,) = _log(w, "subject.remove")
    assert removal.details["request_id"] == request.id
    _verified(w)


def test_objection_goes_on_the_suppression_list(w: World) -> None:
    enrol_gallery(w)
    dpo = _actor(w, "dpo")
    photo = w.engine.register(make_image(90), near(PERSON_A, 0.2, 9))
    request = w.services.rights.file(
        actor="public", kind="objection", contact="jo@example.org", photo=photo, client="x"
    )
    with pytest.raises(Conflict, match="apply the objection"):
        w.services.rights.close(actor=dpo, receipt=request.receipt, outcome="done")
    result = w.services.rights.apply_objection(actor=dpo, receipt=request.receipt)
    assert result["suppression_id"]
    assert [e["subject_reference"] for e in result["erasures"]] == ["A-1"]
    with pytest.raises(Conflict, match="already on file"):
        w.services.rights.apply_objection(actor=dpo, receipt=request.receipt)
    closed = w.services.rights.close(actor=dpo, receipt=request.receipt, outcome="on file")
    assert closed.status is RequestStatus.CLOSED and not closed.has_photo
    assert len(_log(w, "rights.photo_deleted")) == 1
    _verified(w)


def test_only_what_the_request_needs_is_asked_for(w: World) -> None:
    rights = w.services.rights
    photo = make_image(5)
    with pytest.raises(InvalidInput, match="photo is not needed"):
        rights.file(
            actor="public", kind="access", contact="jo@example.org",
            identifiers={"reference": "A-1"}, photo=photo, client="a",
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="objection by face needs one photo"):
        rights.file(actor="public", kind="objection", contact="jo@example.org", client="a")
    with pytest.raises(InvalidInput, match="give something that finds the record"):
        rights.file(actor="public", kind="erasure", contact="jo@example.org", client="a")
    with pytest.raises(InvalidInput, match="how to answer"):
        rights.file(actor="public", kind="erasure", contact="", identifiers={"reference": "x"})
    with pytest.raises(InvalidInput, match="unknown request kind"):
        rights.file(actor="public", kind="everything", contact="jo@example.org")
    with pytest.raises(InvalidInput, match=r"image|file"):
        rights.file(actor="public", kind="objection", contact="jo@x.org", photo=b"not an image")
    assert _log(w, "rights.file") == []


def test_public_filing_is_rate_limited_and_its_form_token_expires(w: World) -> None:
    rights = w.services.rights
    for _ in range(PUBLIC_PER_ADDRESS_PER_HOUR):
        rights.file(
            actor="public", kind="erasure", contact="jo@example.org",
            identifiers={"reference": "A-1"}, client="198.51.100.7",
        )  # fmt: skip
    with pytest.raises(RateLimited) as refused:
        rights.file(
            actor="public", kind="erasure", contact="jo@example.org",
            identifiers={"reference": "A-1"}, client="198.51.100.7",
        )  # fmt: skip
    assert refused.value.retry_after_s > 0
    rights.file(  # another address is not held up
        actor="public", kind="erasure", contact="al@example.org",
        identifiers={"reference": "B-1"}, client="198.51.100.8",
    )  # fmt: skip

    token = rights.form_token()
    rights.check_form_token(token)
    issued, nonce, mac = token.split(".")
    with pytest.raises(CsrfFailed):
        rights.check_form_token(f"{int(issued) + 1}.{nonce}.{mac}")
    with pytest.raises(CsrfFailed):
        rights.check_form_token("")
    w.clock.advance(timedelta(hours=3))
    with pytest.raises(CsrfFailed, match="expired"):
        rights.check_form_token(token)


def test_officers_see_their_organisation_and_the_public_page(w: World) -> None:
    accounts = w.services.accounts
    accounts.create_user(
        actor=OPERATOR,
        organisation="Elsewhere",
        username="dpo2",
        roles=[Role.PRIVACY_OFFICER],
        training_expires=w.clock() + timedelta(days=30),
    )
    accounts.approve_user(actor=OPERATOR, username="dpo2", supervisor="sup2")
    key = accounts.create_api_key(actor=OPERATOR, username="dpo2", label="t").secret
    dpo2 = accounts.authenticate_key(key)
    dpo = _actor(w, "dpo")
    rights = w.services.rights
    public = rights.file(
        actor="public", kind="erasure", contact="a@b.cd", identifiers={"reference": "A-1"}
    )
    met = rights.file(actor=dpo, kind="erasure", contact="e@f.gh", identifiers={"reference": "B"})
    assert {r.receipt for r in rights.list(actor=dpo)} == {public.receipt, met.receipt}
    assert [r.receipt for r in rights.list(actor=dpo2)] == [public.receipt]
    with pytest.raises(RequestNotFound):
        rights.get(actor=dpo2, receipt=met.receipt)
    with pytest.raises(RequestNotFound):
        rights.close(actor=dpo2, receipt=met.receipt, outcome="not mine")
    from probity.errors import NotPermitted

    with pytest.raises(NotPermitted):
        rights.list(actor=_actor(w, "inv"))
    with pytest.raises(NotPermitted):
        rights.file(actor=_actor(w, "inv"), kind="erasure", contact="x@y.z",
                    identifiers={"reference": "B"})  # fmt: skip


def test_an_extension_must_be_decided_within_the_first_month(w: World) -> None:
    dpo = _actor(w, "dpo")
    rights = w.services.rights
    request = rights.file(actor=dpo, kind="access", contact="a@b.cd", identifiers={"ref": "1"})
    with pytest.raises(InvalidInput, match="reason"):
        rights.extend(actor=dpo, receipt=request.receipt, reason=" ")
    w.clock.advance(timedelta(days=32))
    assert rights.get(actor=dpo, receipt=request.receipt).overdue(w.clock())
    with pytest.raises(Conflict, match="first month has run out"):
        rights.extend(actor=dpo, receipt=request.receipt, reason="complex")
    refused = rights.refuse(actor=dpo, receipt=request.receipt, reason="manifestly unfounded")
    assert refused.status is RequestStatus.REFUSED
    (closing,) = _log(w, "rights.close")
    assert closing.details["status"] == "refused" and closing.details["overdue"] is True
    assert closing.details["handling_days"] == pytest.approx(32.0, abs=0.1)


def test_the_annual_report_counts_rights_requests_from_the_log(w: World) -> None:
    year = w.clock().year + 1
    w.clock.now = datetime(year, 3, 1, 9, 0, tzinfo=UTC)
    dpo = _actor(w, "dpo")
    rights = w.services.rights
    access = rights.file(actor=dpo, kind="access", contact="a@b.cd", identifiers={"ref": "1"})
    erasure = rights.file(
        actor="public", kind="erasure", contact="e@f.gh", identifiers={"reference": "B-1"}
    )
    rights.extend(actor=dpo, receipt=access.receipt, reason="several galleries")
    w.clock.advance(timedelta(days=10))
    rights.close(actor=dpo, receipt=access.receipt, outcome="export sent")
    w.clock.advance(timedelta(days=25))  # past the erasure request's deadline (1 April)
    rights.refuse(actor=dpo, receipt=erasure.receipt, reason="manifestly unfounded")

    report = w.services.transparency.annual(actor=OPERATOR, year=year)
    filed = Counter(e.details["kind"] for e in _log(w, "rights.file"))
    assert report.rights_requests == {k: filed[k] for k in ("access", "erasure", "objection")}
    assert report.rights_requests == {"access": 1, "erasure": 1, "objection": 0}
    closes = _log(w, "rights.close")
    assert report.rights_outcomes["access"] == {"closed": 1, "refused": 0, "extended": 1}
    assert report.rights_outcomes["erasure"] == {"closed": 0, "refused": 1, "extended": 0}
    days = sorted(e.details["handling_days"] for e in closes)
    assert days == [10.0, 35.0]
    assert report.rights_handling == {
        "closed": 2,
        "median_days": 22.5,
        "max_days": 35.0,
        "overdue_at_close": 1,
    }
    data = report.as_dict()["rights_requests"]
    assert data["by_outcome"]["access"]["extended"] == 1
    assert data["handling_days"]["max_days"] == 35.0


def _other_officer(w: World) -> Actor:
    """A privacy officer of another organisation ("Elsewhere")."""
    accounts = w.services.accounts
    accounts.create_user(
        actor=OPERATOR,
        organisation="Elsewhere",
        username="dpo-else",
        roles=[Role.PRIVACY_OFFICER],
        training_expires=w.clock() + timedelta(days=400),
    )
    accounts.approve_user(actor=OPERATOR, username="dpo-else", supervisor="sup2")
    return accounts.authenticate_key(
        accounts.create_api_key(actor=OPERATOR, username="dpo-else", label="t").secret
    )


def test_lookup_by_photo_lists_possible_matches_and_acts_on_none(w: World) -> None:
    enrol_gallery(w)
    rights = w.services.rights
    photo = w.engine.register(make_image(91), near(PERSON_A, 0.3, 11))
    request = rights.file(
        actor="public", kind="erasure", contact="jo@example.org", photo=photo, client="x"
    )  # no reference: the photo is how to find them
    dpo = _actor(w, "dpo")
    (match,) = rights.lookup_by_photo(actor=dpo, receipt=request.receipt)
    assert (match.rank, match.gallery, match.subject_reference) == (1, "custody", "A-1")
    assert match.subject_id == _subject_id(w, "A-1")
    assert match.distance == pytest.approx(0.3, abs=1e-3)
    assert match.distance <= w.services.suppression.max_distance == 0.593

    # Shown, not stored, nothing acted on: both records stay, the request is unchanged,
    # nothing went on the suppression list.
    assert _subject_id(w, "B-1") and _subject_id(w, "A-1")
    assert rights.get(actor=dpo, receipt=request.receipt).result == {}
    with w.services.db.read() as session:
        assert session.query(SuppressionRow).count() == 0
    (event,) = _log(w, "rights.photo_lookup")
    assert event.subject_ids == (match.subject_id,) and event.galleries == ("custody",)
    details = event.details
    assert details["receipt"] == request.receipt and details["outcome"] == "compared"
    assert details["templates_compared"] == 2 and details["possible_matches"] == 1
    assert details["matches"] == [[match.subject_id, "custody", match.distance]]
    assert details["max_distance"] == 0.593 and details["target_fmr"] == 0.005
    text = json.dumps(details)
    assert "jo@example.org" not in text and "A-1" not in text  # ids and distances only

    # The officer checks, then erases the chosen record through the ordinary path.
    done = rights.erase_subject(
        actor=dpo, receipt=request.receipt, gallery=match.gallery,
        reference=match.subject_reference,
    )  # fmt: skip
    assert done.request_id == request.id
    assert rights.lookup_by_photo(actor=dpo, receipt=request.receipt) == []
    rights.close(actor=dpo, receipt=request.receipt, outcome="record erased")
    with pytest.raises(Conflict, match="closed"):
        rights.lookup_by_photo(actor=dpo, receipt=request.receipt)
    assert len(_log(w, "rights.photo_lookup")) == 2
    _verified(w)


def test_lookup_by_photo_only_for_open_access_or_erasure_requests_with_a_usable_photo(
    w: World,
) -> None:
    enrol_gallery(w)
    rights = w.services.rights
    dpo = _actor(w, "dpo")
    by_reference = rights.file(
        actor=dpo, kind="access", contact="a@b.cd", identifiers={"reference": "A-1"}
    )
    with pytest.raises(Conflict, match="holds no photo"):
        rights.lookup_by_photo(actor=dpo, receipt=by_reference.receipt)
    face = w.engine.register(make_image(92), near(PERSON_A, 0.2, 12))
    objection = rights.file(actor=dpo, kind="objection", contact="a@b.cd", photo=face)
    with pytest.raises(Conflict, match="objection"):
        rights.lookup_by_photo(actor=dpo, receipt=objection.receipt)
    access = rights.file(actor="public", kind="access", contact="a@b.cd", photo=face, client="y")
    with pytest.raises(NotPermitted):
        rights.lookup_by_photo(actor=_actor(w, "inv"), receipt=access.receipt)

    # Another organisation's officer sees the public request but not Met's gallery.
    assert rights.lookup_by_photo(actor=_other_officer(w), receipt=access.receipt) == []
    assert rights.lookup_by_photo(actor=OPERATOR, receipt=access.receipt)[0].rank == 1

    blank = rights.file(
        actor="public", kind="access", contact="a@b.cd", photo=make_image(93), client="z"
    )  # no face in it
    with pytest.raises(NoFaceFound, match="request's photo"):
        rights.lookup_by_photo(actor=dpo, receipt=blank.receipt)
    two = w.engine.register(make_image(94), near(PERSON_A, 0.2, 13), near(PERSON_B, 0.2, 14))
    pair = rights.file(actor="public", kind="erasure", contact="a@b.cd", photo=two, client="z")
    with pytest.raises(InvalidInput, match="shows 2 faces"):
        rights.lookup_by_photo(actor=dpo, receipt=pair.receipt)
    refused = [e for e in _log(w, "rights.photo_lookup") if e.details["outcome"] == "refused"]
    assert [e.details["reason"] for e in refused] == ["no_face_found", "invalid_input"]
    _verified(w)


def test_closed_requests_forget_contact_details_after_the_keep_period(w: World) -> None:
    rights = w.services.rights
    assert rights.keep_closed_days == 365
    dpo = _actor(w, "dpo")
    answered = rights.file(
        actor=dpo, kind="access", contact="jo@example.org",
        identifiers={"reference": "A-1", "gallery": "custody"}, details="my arrest in 2025",
    )  # fmt: skip
    rights.close(actor=dpo, receipt=answered.receipt, outcome="export sent by post")
    closed_at = w.clock()
    later = rights.file(
        actor="public", kind="erasure", contact="al@example.org", identifiers={"reference": "B"}
    )
    still_open = rights.file(
        actor=dpo, kind="erasure", contact="open@example.org", identifiers={"reference": "C"}
    )
    w.clock.advance(timedelta(days=100))
    rights.refuse(actor=dpo, receipt=later.receipt, reason="manifestly unfounded")

    # The sweeps below run "as of" a later time (``now``); the clock stays, so the seeded
    # people's training (a year) is still valid.
    a_year = closed_at + timedelta(days=365)  # exactly a year: kept
    assert rights.forget_closed(actor=dpo, now=a_year) == 0
    assert _log(w, "rights.forget") == []

    past = closed_at + timedelta(days=366)
    assert rights.forget_closed(actor=_other_officer(w), now=past) == 0  # not theirs
    swept = w.services.retention.sweep(actor=OPERATOR, now=past)
    assert swept.requests_forgotten == 1
    assert swept.as_dict()["rights_requests_forgotten"] == 1
    forgotten = rights.get(actor=dpo, receipt=answered.receipt)
    assert (forgotten.contact, dict(forgotten.identifiers), forgotten.details) == ("", {}, "")
    assert forgotten.receipt == answered.receipt and forgotten.kind is RequestKind.ACCESS
    assert forgotten.status is RequestStatus.CLOSED and forgotten.closed_at == closed_at
    assert forgotten.filed_at == answered.filed_at and forgotten.due_at == answered.due_at
    assert forgotten.outcome == "export sent by post"
    assert rights.status(receipt=answered.receipt).status is RequestStatus.CLOSED
    assert rights.get(actor=dpo, receipt=later.receipt).contact == "al@example.org"
    assert rights.get(actor=dpo, receipt=still_open.receipt).contact == "open@example.org"
    with w.services.db.read() as session:
        row = session.query(RightsRequestRow).filter_by(receipt=answered.receipt).one()
        assert row.contact == "" and row.identifiers == {} and row.details == ""

    (event,) = _log(w, "rights.forget")
    assert event.details["receipts"] == [answered.receipt] and event.details["requests"] == 1
    assert event.details["keep_closed_days"] == 365
    assert "jo@example.org" not in json.dumps(event.details)
    # Forgotten once: the next sweeps find nothing and record nothing.
    sweep = w.services.retention.sweep
    assert sweep(actor=OPERATOR, now=past, scheduled=True).requests_forgotten == 0
    assert len(_log(w, "rights.forget")) == 1

    # The refused one goes a year after its refusal, by the schedule's sweep; a curator's
    # sweep (no rights.handle) forgets nothing.
    refused_past = closed_at + timedelta(days=100 + 366)
    assert sweep(actor=_actor(w, "cur"), now=refused_past).requests_forgotten == 0
    assert sweep(actor=SCHEDULED_ACTOR, now=refused_past, scheduled=True).requests_forgotten == 1
    assert rights.get(actor=dpo, receipt=later.receipt).contact == ""
    assert rights.get(actor=dpo, receipt=still_open.receipt).contact == "open@example.org"
    assert [e.actor for e in _log(w, "rights.forget")] == [OPERATOR, SCHEDULED_ACTOR]
    _verified(w)

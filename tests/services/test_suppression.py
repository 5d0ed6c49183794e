"""The suppression list (objection / opt-out by face) with the fake engine: the matching
logic at its threshold, erasure at the objection, refusal at enrolment (single and bulk),
withholding at search, refusals of bad photos, and the audit trail. The real-model
acceptance test is tests/cli/test_optout_cli.py."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

import probity.services.suppression as suppression_module
from probity.domain.accounts import Actor, OrganisationKind, Role
from probity.domain.audit import AuditAction
from probity.errors import (
    IntegrityError,
    InvalidInput,
    NoFaceFound,
    NotPermitted,
    ObjectionOnFile,
    QualityRefused,
)
from probity.services.container import Services
from probity.services.enrolment import RowStatus
from probity.services.erasure import ErasureCause
from probity.services.indexes import IndexSlot
from probity.storage.repositories import AuditLog
from probity.storage.tables import (
    SubjectRow,
    SuppressionRow,
    SuppressionVersionRow,
    TemplateRow,
)
from tests.fakes import BAD_QUALITY, FakeEngine, make_image, near, unit
from tests.services.conftest import ACTOR, PROVENANCE

OBJECTOR = unit(11)
OTHER = unit(12)


def enrol(svc: Services, engine: FakeEngine, gallery: str, ref: str, vector: np.ndarray, seed: int):  # type: ignore[no-untyped-def]
    image = engine.register(make_image(seed), vector)
    return svc.enrolment.enrol(
        actor=ACTOR, gallery=gallery, subject=ref, image=image, provenance=PROVENANCE
    )


def events(svc: Services, action: AuditAction) -> list[dict[str, object]]:
    with svc.db.read() as s:
        return [dict(e.details) for e in AuditLog(s).events(action=action.value)]


def count(svc: Services, table: type) -> int:
    with svc.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def open_case(svc: Services) -> None:
    svc.cases.open(
        actor=ACTOR,
        reference="C-1",
        offence="robbery",
        justification="suspect seen on a still from the scene",
        authorisation="AUTH-1",
    )


def test_threshold_comes_from_the_fmr_table(svc: Services) -> None:
    assert svc.suppression.max_distance == 0.593
    assert svc.suppression.target_fmr == 0.005


def test_objection_erases_matches_within_the_distance_only(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    enrol(svc, fake_engine, gallery, "OBJ", near(OBJECTOR, 0.59, 1), 1)  # just inside 0.593
    enrol(svc, fake_engine, gallery, "OBJ", near(OBJECTOR, 0.30, 2), 2)  # a second photo
    enrol(svc, fake_engine, gallery, "LOOKALIKE", near(OBJECTOR, 0.61, 3), 3)  # just outside
    enrol(svc, fake_engine, gallery, "OTHER", OTHER, 4)
    photo = fake_engine.register(make_image(50), OBJECTOR)
    size_before = svc.indexes.size(IndexSlot.of(svc.galleries.get(gallery)))

    objection = svc.suppression.object(actor=ACTOR, image=photo, reference="LETTER-7")

    assert objection.faces == 1
    assert objection.templates_compared == 4
    assert [m.gallery for m in objection.matches] == [gallery]
    assert objection.matches[0].distance == pytest.approx(0.30, abs=1e-3)  # its closest
    assert len(objection.receipts) == 1
    receipt = objection.receipts[0]
    assert receipt.subject_reference == "OBJ"
    assert receipt.cause is ErasureCause.OBJECTION
    assert receipt.templates == 2
    with svc.db.read() as s:
        left = set(s.scalars(select(SubjectRow.reference)))
    assert left == {"LOOKALIKE", "OTHER"}
    # The suppression template is never indexed: only the two erased vectors left the index.
    assert svc.indexes.size(IndexSlot.of(svc.galleries.get(gallery))) == size_before - 2
    assert count(svc, SuppressionRow) == 1
    assert json.loads(json.dumps(objection.as_dict()))["receipts"][0]["receipt"] == receipt.number


def test_matches_between_the_erase_and_suppression_distances_are_withheld_not_erased(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    """0.5054 < distance <= 0.593: kept (an erasure cannot be undone) but never a candidate
    and never re-enrolled; listed on the objection for a privacy officer to decide."""
    assert svc.suppression.erase_distance == 0.5054
    enrol(svc, fake_engine, gallery, "NEAR", near(OBJECTOR, 0.58, 21), 21)
    enrol(svc, fake_engine, gallery, "OTHER", OTHER, 22)
    open_case(svc)
    photo = fake_engine.register(make_image(51), OBJECTOR)
    objection = svc.suppression.object(actor=ACTOR, image=photo, reference="LETTER-8")
    assert objection.receipts == [] and objection.matches == ()
    assert [m.distance for m in objection.withheld] == [pytest.approx(0.58, abs=1e-3)]
    with svc.db.read() as s:
        assert set(s.scalars(select(SubjectRow.reference))) == {"NEAR", "OTHER"}
    probe = fake_engine.register(make_image(52), near(OBJECTOR, 0.5, 23))
    result = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, threshold_off=True)
    assert [c.subject_reference for f in result.faces for c in f.candidates] == ["OTHER"]
    with pytest.raises(ObjectionOnFile):
        enrol(svc, fake_engine, gallery, "NEAR", near(OBJECTOR, 0.2, 24), 24)
    (applied,) = events(svc, AuditAction.OBJECTION_APPLIED)
    assert applied["withheld"] and not applied["receipts"]


def test_template_is_sealed_under_its_own_purpose_key(
    svc: Services, fake_engine: FakeEngine
) -> None:
    photo = fake_engine.register(make_image(50), OBJECTOR)
    objection = svc.suppression.object(actor=ACTOR, image=photo, reference="LETTER-7")
    raw = np.ascontiguousarray(OBJECTOR, dtype="<f4").tobytes()
    with svc.db.read() as s:
        row = s.get(SuppressionRow, objection.suppression_id)
        assert row is not None
        assert raw not in row.sealed and raw[:64] not in row.sealed
        assert row.reference == "LETTER-7" and row.organisation_id is None
    assert raw not in (svc.settings.home / "probity.db").read_bytes()
    # The wrapped key opens for this purpose only.
    with pytest.raises(IntegrityError), svc.db.read() as s:
        svc.suppression.vault.open_purpose_key(
            s, "rights-photo", objection.suppression_id, row.wrapped_key
        )


def test_enrolment_of_an_objector_is_refused_and_nothing_written(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    svc.suppression.object(
        actor=ACTOR, image=fake_engine.register(make_image(50), OBJECTOR), reference="R-1"
    )
    templates = count(svc, TemplateRow)
    with pytest.raises(ObjectionOnFile, match=r"^objection on file") as refused:
        enrol(svc, fake_engine, gallery, "NEW-REF", near(OBJECTOR, 0.45, 5), 5)
    assert refused.value.status == 409
    assert count(svc, TemplateRow) == templates
    with svc.db.read() as s:
        assert s.scalar(select(SubjectRow).where(SubjectRow.reference == "NEW-REF")) is None
    logged = events(svc, AuditAction.ENROL_REFUSED_OBJECTION)
    assert len(logged) == 1
    assert logged[0]["distance"] == pytest.approx(0.45, abs=1e-3)
    assert logged[0]["subject_reference"] == "NEW-REF"
    # Someone else still enrols.
    assert enrol(svc, fake_engine, gallery, "OTHER", OTHER, 6).status is RowStatus.ENROLLED


def test_manifest_reports_the_objection_as_a_refused_row(
    svc: Services, gallery: str, fake_engine: FakeEngine, tmp_path: Path
) -> None:
    svc.suppression.object(
        actor=ACTOR, image=fake_engine.register(make_image(50), OBJECTOR), reference="R-1"
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(fake_engine.register(make_image(60), near(OBJECTOR, 0.4, 7)))
    (photos / "b.png").write_bytes(fake_engine.register(make_image(61), OTHER))
    ok = "custody/1,law_enforcement,2026-10-01,GB,PC 1"
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by\n"
        f"photos/a.png,A,{ok}\nphotos/b.png,B,{ok}\n"
    )
    summary = svc.enrolment.enrol_manifest(
        actor=ACTOR, gallery=gallery, manifest=manifest, workers=1
    )
    status = {r.subject: r.outcome for r in summary.rows}
    assert status["A"].status is RowStatus.REFUSED
    assert (status["A"].reason or "").startswith("objection on file")
    assert status["B"].status is RowStatus.ENROLLED


def test_search_never_returns_a_subject_who_matches_the_list(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    """A record that got past the objection (here: enrolled while the enrolment check was
    off, as an enrolment racing the objection would) is withheld at any rank, with the
    threshold off, together with the subject's other templates."""
    open_case(svc)
    svc.suppression.object(
        actor=ACTOR, image=fake_engine.register(make_image(50), OBJECTOR), reference="R-1"
    )
    check, svc.enrolment.suppression = svc.enrolment.suppression, None
    try:
        enrol(svc, fake_engine, gallery, "SLIPPED", near(OBJECTOR, 0.5, 8), 8)
        enrol(svc, fake_engine, gallery, "SLIPPED", unit(77), 9)  # far from the objector
    finally:
        svc.enrolment.suppression = check
    enrol(svc, fake_engine, gallery, "OTHER", OTHER, 10)
    for probe_vector, seed in ((near(OBJECTOR, 0.2, 11), 70), (unit(77), 71)):
        probe = fake_engine.register(make_image(seed), probe_vector)
        result = svc.search.search(
            actor=ACTOR, case_reference="C-1", probe=probe, threshold_off=True
        )
        refs = [c.subject_reference for f in result.faces for c in f.candidates]
        assert refs == ["OTHER"]


def test_bad_photos_are_refused_precisely_and_nothing_is_stored(
    svc: Services, fake_engine: FakeEngine
) -> None:
    with pytest.raises(NoFaceFound, match="no face"):
        svc.suppression.object(actor=ACTOR, image=make_image(90), reference="R")
    poor = fake_engine.register(make_image(91), OBJECTOR, quality=BAD_QUALITY)
    with pytest.raises(QualityRefused, match="quality floor"):
        svc.suppression.object(actor=ACTOR, image=poor, reference="R")
    two = fake_engine.register(make_image(92), OBJECTOR, OTHER)
    with pytest.raises(InvalidInput, match="exactly one person"):
        svc.suppression.object(actor=ACTOR, image=two, reference="R")
    good = fake_engine.register(make_image(93), OBJECTOR)
    with pytest.raises(InvalidInput, match="reference"):
        svc.suppression.object(actor=ACTOR, image=good, reference="  ")
    assert count(svc, SuppressionRow) == 0
    assert events(svc, AuditAction.OBJECTION_RECORD) == []


def test_only_rights_handlers_may_object(svc: Services, fake_engine: FakeEngine) -> None:
    investigator = Actor(
        user_id="u1",
        organisation_id="o1",
        organisation_kind=OrganisationKind.LAW_ENFORCEMENT,
        roles=frozenset({Role.INVESTIGATOR}),
        approved=True,
    )
    photo = fake_engine.register(make_image(50), OBJECTOR)
    with pytest.raises(NotPermitted):
        svc.suppression.object(actor=investigator, image=photo, reference="R")
    assert count(svc, SuppressionRow) == 0


def test_objection_is_audited_without_biometrics_and_the_chain_verifies(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    enrol(svc, fake_engine, gallery, "OBJ", near(OBJECTOR, 0.3, 1), 1)
    objection = svc.suppression.object(
        actor=ACTOR,
        image=fake_engine.register(make_image(50), OBJECTOR),
        reference="R-1",
        request_id="req-1",
    )
    recorded = events(svc, AuditAction.OBJECTION_RECORD)
    applied = events(svc, AuditAction.OBJECTION_APPLIED)
    assert recorded[0]["suppression_id"] == objection.suppression_id
    assert recorded[0]["max_distance"] == 0.593
    assert applied[0]["receipts"] == [objection.receipts[0].number]
    assert applied[0]["templates_compared"] == 1
    removal = events(svc, AuditAction.SUBJECT_REMOVE)
    assert removal[0]["cause"] == "objection" and removal[0]["request_id"] == "req-1"
    with svc.db.read() as s:
        details = s.execute(text("SELECT details FROM audit_events")).scalars().all()
    joined = " ".join(str(d) for d in details)
    assert str(round(float(OBJECTOR[0]), 4)) not in joined  # no descriptor values
    assert svc.audit.verify(actor=ACTOR).ok


def test_stricter_target_fmr_setting(make_services, fake_engine: FakeEngine) -> None:  # type: ignore[no-untyped-def]
    import os

    os.environ["PROBITY_SUPPRESSION__TARGET_FMR"] = "0.0003"
    try:
        svc = make_services()
    finally:
        del os.environ["PROBITY_SUPPRESSION__TARGET_FMR"]
    assert svc.suppression.max_distance == 0.5054


def test_search_withholds_a_subject_by_a_template_outside_the_hits(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    """top_k=1 fetches 4 index hits: the subject's far template and 3 neighbours, not the
    template that matches the objector; the subject is still withheld."""
    open_case(svc)
    svc.suppression.object(
        actor=ACTOR, image=fake_engine.register(make_image(50), OBJECTOR), reference="R-1"
    )
    far = unit(77)
    check, svc.enrolment.suppression = svc.enrolment.suppression, None
    try:
        enrol(svc, fake_engine, gallery, "SLIPPED", near(OBJECTOR, 0.5, 8), 8)
        enrol(svc, fake_engine, gallery, "SLIPPED", far, 9)
    finally:
        svc.enrolment.suppression = check
    for i in range(5):
        enrol(svc, fake_engine, gallery, f"N-{i}", near(far, 0.3 + 0.05 * i, 20 + i), 20 + i)
    probe = fake_engine.register(make_image(72), far)
    result = svc.search.search(
        actor=ACTOR, case_reference="C-1", probe=probe, threshold_off=True, top_k=1
    )
    assert [c.subject_reference for c in result.faces[0].candidates] == ["N-0"]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_scan_in_small_batches_while_streaming(  # type: ignore[no-untyped-def]
    backend: str,
    request: pytest.FixtureRequest,
    make_services,
    fake_engine: FakeEngine,
    monkeypatch,
) -> None:
    """Batches are compared while the template query is still streaming (one at a time
    here), which must work on both databases."""
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    svc = make_services(database_url=url)
    svc.galleries.create(actor=ACTOR, name="g", inclusion_policy="charged", retention_days=365)
    monkeypatch.setattr("probity.services.suppression.SCAN_BATCH", 1)
    for i in range(4):
        enrol(svc, fake_engine, "g", f"S-{i}", unit(300 + i), 300 + i)
    enrol(svc, fake_engine, "g", "OBJ", near(OBJECTOR, 0.4, 1), 1)
    photo = fake_engine.register(make_image(50), OBJECTOR)
    objection = svc.suppression.object(actor=ACTOR, image=photo, reference="R")
    assert objection.templates_compared == 5
    assert [r.subject_reference for r in objection.receipts] == ["OBJ"]


# -- the decrypted list kept in memory, and its version row ------------------------------------


def count_opens(svc: Services, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every suppression template key ``svc`` opens (one per template decrypted)."""
    opened: list[str] = []
    vault = svc.suppression.vault
    real = vault.open_purpose_key

    def counting(session: Session, purpose: str, owner_id: str, wrapped: bytes) -> bytes:
        opened.append(owner_id)
        return real(session, purpose, owner_id, wrapped)

    monkeypatch.setattr(vault, "open_purpose_key", counting)
    return opened


def list_version(svc: Services) -> int:
    with svc.db.read() as s:
        return int(s.scalar(select(SuppressionVersionRow.version)) or 0)


def test_the_list_is_decrypted_once_until_an_objection_changes_it(
    svc: Services, gallery: str, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_case(svc)
    opened = count_opens(svc, monkeypatch)
    before = list_version(svc)
    first = svc.suppression.object(
        actor=ACTOR, image=fake_engine.register(make_image(50), OBJECTOR), reference="R-1"
    )
    assert list_version(svc) == before + 1  # bumped in the objection's transaction
    enrol(svc, fake_engine, gallery, "A", unit(201), 201)
    assert opened == [first.suppression_id]  # decrypted once, at the first check
    enrol(svc, fake_engine, gallery, "B", unit(202), 202)
    probe = fake_engine.register(make_image(203), unit(201))
    result = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, threshold_off=True)
    assert next(c.subject_reference for f in result.faces for c in f.candidates) == "A"
    assert opened == [first.suppression_id]  # the second enrolment and the search reused it
    with pytest.raises(ObjectionOnFile):
        enrol(svc, fake_engine, gallery, "OBJ", near(OBJECTOR, 0.3, 204), 204)

    # A new objection: the very next check sees it (and decrypts the list again, once).
    second = svc.suppression.object(
        actor=ACTOR, image=fake_engine.register(make_image(51), OTHER), reference="R-2"
    )
    with pytest.raises(ObjectionOnFile):
        enrol(svc, fake_engine, gallery, "OTH", near(OTHER, 0.3, 205), 205)
    assert sorted(opened[1:]) == sorted([first.suppression_id, second.suppression_id])
    enrol(svc, fake_engine, gallery, "C", unit(206), 206)
    assert len(opened) == 3


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_objection_recorded_by_another_process_applies_at_once(  # type: ignore[no-untyped-def]
    backend: str, request: pytest.FixtureRequest, make_services, fake_engine: FakeEngine
) -> None:
    """Two service instances on one database, as two API processes: each has its own copy
    of the list, warmed before the objection; the objection is recorded by the other one."""
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    here, there = make_services(database_url=url), make_services(database_url=url)
    here.galleries.create(actor=ACTOR, name="g", inclusion_policy="charged", retention_days=365)
    open_case(here)
    # Between the erase and the suppression distance: kept, but withheld once objected.
    enrol(here, fake_engine, "g", "NEAR", near(OBJECTOR, 0.55, 301), 301)
    enrol(there, fake_engine, "g", "OTHER", OTHER, 302)  # warms the other copy too
    probe = fake_engine.register(make_image(303), near(OBJECTOR, 0.1, 303))

    def found() -> list[str]:
        result = here.search.search(
            actor=ACTOR, case_reference="C-1", probe=probe, threshold_off=True
        )
        return [c.subject_reference for f in result.faces for c in f.candidates]

    assert found()[0] == "NEAR"  # warms this copy (an empty list)
    there.suppression.object(
        actor=ACTOR, image=fake_engine.register(make_image(50), OBJECTOR), reference="R-1"
    )
    assert found() == ["OTHER"]
    with pytest.raises(ObjectionOnFile):
        enrol(here, fake_engine, "g", "NEW", near(OBJECTOR, 0.3, 304), 304)


def test_a_change_committed_between_the_version_and_the_rows_is_seen_next_time(  # type: ignore[no-untyped-def]
    make_services, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process commits an objection after this one read the list's version and
    before it read the rows: whatever copy is kept, it is kept under the old version, so
    the next check reads the new version and decrypts again."""
    here, there = make_services(), make_services()
    here.galleries.create(actor=ACTOR, name="g", inclusion_policy="charged", retention_days=365)
    real = suppression_module._list_version
    raced: list[bool] = []

    def version_then_a_writer(session):  # type: ignore[no-untyped-def]
        version = real(session)
        if not raced:
            raced.append(True)
            there.suppression.object(
                actor=ACTOR, image=fake_engine.register(make_image(50), OBJECTOR), reference="R"
            )
        return version

    monkeypatch.setattr(suppression_module, "_list_version", version_then_a_writer)
    enrol(here, fake_engine, "g", "OTHER", OTHER, 401)  # the check that raced the objection
    assert raced
    with pytest.raises(ObjectionOnFile):
        enrol(here, fake_engine, "g", "OBJ", near(OBJECTOR, 0.3, 402), 402)


def test_threads_share_one_copy_of_the_list(
    svc: Services, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed in range(3):
        svc.suppression.object(
            actor=ACTOR,
            image=fake_engine.register(make_image(500 + seed), unit(500 + seed)),
            reference=f"R-{seed}",
        )
    model = fake_engine.model.key
    first = svc.suppression._load(model)
    opened = count_opens(svc, monkeypatch)
    with ThreadPoolExecutor(max_workers=8) as pool:
        lists = list(pool.map(lambda _: svc.suppression._load(model), range(32)))
    assert opened == [] and all(listed is first for listed in lists)
    assert not first.vectors.flags.writeable  # shared: nobody may change it in place


def test_an_enrolment_does_not_read_every_suppression_row_again(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    """Which objections lack a template of the gallery's model (checked at every enrolment
    with a detection, "Legacy objections") is kept under the list's version too: a second
    check reads the version row only. The statements sent to the database are counted, so
    this fails if the rows are read again."""
    from sqlalchemy import event

    svc.suppression.object(
        actor=ACTOR, image=fake_engine.register(make_image(50), OBJECTOR), reference="R-1"
    )
    target = svc.galleries.get(gallery)
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    engines = {svc.db.engine, svc.db._read_engine}  # SQLite reads on an engine of their own

    def rows_read() -> list[str]:
        sent.clear()
        for engine in engines:
            event.listen(engine, "before_cursor_execute", record)
        try:
            assert svc.suppression._legacy_objections(target) == {}  # one model: none lack it
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", record)
        return [s for s in sent if "FROM suppression_templates" in s]

    svc.suppression._legacy_rows = None  # a fresh process
    assert len(rows_read()) == 1  # the first check reads the rows (so this can fail)
    assert rows_read() == []  # the second reads only the version
    svc.suppression.object(
        actor=ACTOR, image=fake_engine.register(make_image(51), OTHER), reference="R-2"
    )
    assert len(rows_read()) == 1  # a new objection: read again


def test_a_hit_is_withheld_for_a_template_that_is_not_among_the_hits(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    """The objection matches a template of the subject that the search did not return (here
    the near one is left out of the hits): the subject is withheld all the same, whether
    withhold reads the other templates itself or is given them by the caller (``known``,
    as the search's re-scoring does), and a subject with no match is kept both ways."""
    from probity.storage.repositories import Templates
    from probity.storage.vault import Vault

    svc.suppression.object(
        actor=ACTOR, image=fake_engine.register(make_image(60), OBJECTOR), reference="R-9"
    )
    check, svc.enrolment.suppression = svc.enrolment.suppression, None
    try:
        enrol(svc, fake_engine, gallery, "SLIPPED", near(OBJECTOR, 0.5, 8), 61)
        enrol(svc, fake_engine, gallery, "SLIPPED", unit(77), 62)
    finally:
        svc.enrolment.suppression = check
    enrol(svc, fake_engine, gallery, "OTHER", OTHER, 63)
    with svc.db.read() as session:
        rows = session.scalars(select(SubjectRow)).all()
        owners = {r.reference: r.id for r in rows}
        known = Templates(session).for_subjects(owners.values())
        keys = svc.search.vault.subject_keys(session, set(owners.values()))
    vectors = {
        tid: Vault.open_vector(keys[t.subject_id], t.subject_id, t.sealed_vector)
        for tid, t in known.items()
    }
    near_tid = max(  # SLIPPED's template closest to the objector
        (tid for tid, t in known.items() if t.subject_id == owners["SLIPPED"]),
        key=lambda tid: float(np.dot(vectors[tid], OBJECTOR)),
    )
    hits = {tid: v for tid, v in vectors.items() if tid != near_tid}
    for given in ({}, {"known": known, "keys": keys}):
        kept = svc.suppression.withhold(known, hits, **given)  # type: ignore[arg-type]
        assert {known[tid].subject_id for tid in kept} == {owners["OTHER"]}, given.keys()


@pytest.mark.parametrize("scale", [1.0, 0.6])  # unit descriptors (SFace), and shorter ones
def test_the_float32_pass_decides_every_row_as_the_float64_distances_do(scale: float) -> None:
    """``_near_any`` computes the (candidates x list) distances in float32 and recomputes
    in float64 only the rows within rounding of their limit. Its answers must be exactly
    those of comparing the float64 distances with the limit, borderline rows included:
    here each row's limit is its nearest applying distance itself, a hair under it (1e-9,
    1e-6) or over it, so a float32-only decision gets some of them wrong."""
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(3000, 128))
    matrix = scale * matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    listed = suppression_module._List.of(
        tuple(f"o{i}" for i in range(3000)),
        tuple(None if i % 3 else "org-a" for i in range(3000)),
        matrix.astype(np.float32).astype(np.float64),
    )
    rows = (matrix[:60] + rng.normal(scale=0.02, size=(60, 128))).astype(np.float32)
    masks = [listed.applying_to(None if i % 2 else "org-b") for i in range(60)]
    exact = suppression_module._distances(rows, listed.vectors, listed.squared)
    offsets = (0.0, -1e-9, 1e-9, -1e-6, 1e-6, -1e-3)
    limits = [float(exact[i][masks[i]].min()) + offsets[i % len(offsets)] for i in range(60)]
    expected = [bool((exact[i][masks[i]] <= limits[i]).any()) for i in range(60)]
    assert suppression_module._near_any(rows, listed, masks, limits) == expected
    assert 0 < sum(expected) < 60  # both answers occur
    # Far from the limit, the float32 pass decides alone (no float64 row is recomputed).
    far = [lim + 0.05 for lim in limits]
    recomputed: list[int] = []
    original = suppression_module._distances

    def counting(*args: object) -> object:
        recomputed.append(1)
        return original(*args)  # type: ignore[arg-type]

    try:
        suppression_module._distances = counting  # type: ignore[assignment]
        assert suppression_module._near_any(rows, listed, masks, far) == [True] * 60
    finally:
        suppression_module._distances = original
    assert not recomputed

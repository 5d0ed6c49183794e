"""Model migration (services/migration.py) on a real SQLite home with two fake engines: the
old model (``FAKE_MODEL``) and a new one (``fake-2``). The end-to-end run on the real
models is tests/cli/test_model_migration.py; here are the paths that need control: refused
faces, erasure during a migration, an enrolment arriving mid-way, a second migration."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from probity.config import Settings
from probity.domain.audit import AuditAction
from probity.domain.faces import DetectorKind, DetectorMode, ModelVersion
from probity.engine.registry import EngineSet
from probity.engine.types import AnalysedFace, DecodedImage, Detection
from probity.errors import Conflict, InvalidInput, ObjectionOnFile
from probity.services.clock import ManualClock
from probity.services.container import Services, build_services, initialise
from probity.services.erasure import ErasureCause
from probity.services.indexes import IndexSlot
from probity.services.migration import MigrationStatus
from probity.services.suppression import bump_list_version
from probity.storage.repositories import AuditLog
from probity.storage.tables import (
    EnrolmentRow,
    ModelMigrationItemRow,
    SuppressionHoldRow,
    SuppressionRow,
    TemplateRow,
)
from tests.fakes import BAD_QUALITY, FAKE_MODEL, FakeEngine, make_image, near, unit
from tests.services.conftest import ACTOR, PROVENANCE

NEW_MODEL = ModelVersion("dlib-resnet-v1", "fake-2", 128)  # named so dlib's table applies


class _Detecting(FakeEngine):
    """A fake engine whose faces carry their detection, so that another engine can describe
    them (``describe`` returns the face registered at that box)."""

    def analyse(
        self,
        image: DecodedImage,
        mode: DetectorMode | None = None,
        *,
        hog_pixel_budget: int | None = None,
    ) -> list[AnalysedFace]:
        return [
            replace(f, detection=Detection(f.box, 1.5, DetectorKind.HOG))
            for f in super().analyse(image, mode, hog_pixel_budget=hog_pixel_budget)
        ]

    def describe(
        self, image: DecodedImage, detections: Sequence[Detection]
    ) -> list[AnalysedFace | None]:
        faces = self.analyse(image)
        return [next((f for f in faces if f.box == d.box), None) for d in detections]


class OldEngine(_Detecting):
    pass


class NewEngine(_Detecting):
    """The new model: its own descriptors for the same images."""

    @property
    def model(self) -> ModelVersion:
        return NEW_MODEL


class Home:
    def __init__(self, svc: Services, old: OldEngine, new: NewEngine) -> None:
        self.svc, self.old, self.new = svc, old, new
        self.seed = 100

    def enrol(self, ref: str, old_vector: np.ndarray, new_vector: np.ndarray, **kw: object) -> str:
        self.seed += 1
        image = self.old.register(make_image(self.seed), old_vector)
        self.new.register(image, new_vector, **kw)  # type: ignore[arg-type]
        outcome = self.svc.enrolment.enrol(
            actor=ACTOR, gallery="custody", subject=ref, image=image, provenance=PROVENANCE
        )
        assert outcome.enrolment is not None
        return outcome.enrolment.id

    def count(self, table: type, *where: object) -> int:
        with self.svc.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(table).where(*where)) or 0)  # type: ignore[arg-type]

    def events(self, action: AuditAction) -> list[dict[str, object]]:
        with self.svc.db.read() as s:
            return [dict(e.details) for e in AuditLog(s).events(action=action.value)]

    def migrate(self, **kw: object):  # type: ignore[no-untyped-def]
        return self.svc.migrations.migrate(
            actor=ACTOR,
            gallery="custody",
            model=NEW_MODEL.key,
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    clock = ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    settings = Settings(home=tmp_path / "home", index_backend="faiss")
    initialise(settings, actor=ACTOR, clock=clock)
    old, new = OldEngine(), NewEngine()
    engines = EngineSet({FAKE_MODEL.key: old, NEW_MODEL.key: new}, default=FAKE_MODEL.key)
    svc = build_services(settings, engines=engines, clock=clock)
    svc.galleries.create(
        actor=ACTOR, name="custody", inclusion_policy="custody images", retention_days=365
    )
    yield Home(svc, old, new)
    svc.close()


class Stop(Exception):
    pass


def stop_after(n: int):  # type: ignore[no-untyped-def]
    def hook(items: int) -> None:
        if items >= n:
            raise Stop

    return hook


def test_refused_faces_block_the_swap_until_dropped_and_are_erased_completely(
    home: Home,
) -> None:
    home.enrol("A", unit(1), unit(11))
    poor = home.enrol("B", unit(2), unit(12), quality=BAD_QUALITY)
    report = home.migrate()
    assert report.status is MigrationStatus.AWAITING_DECISION
    (refusal,) = report.refused
    assert refusal.enrolment_id == poor and refusal.subject_reference == "B"
    assert any("detector confidence" in r for r in refusal.reasons)
    assert home.svc.galleries.get("custody").model == FAKE_MODEL  # nothing swapped
    (event,) = home.events(AuditAction.GALLERY_MIGRATE_REFUSED)
    assert event["enrolment_id"] == poor
    with home.svc.db.read() as s:
        poor_blob = s.get(EnrolmentRow, poor).image_blob  # type: ignore[union-attr]
    report = home.migrate(drop_refused=True)
    assert report.status is MigrationStatus.SWAPPED
    assert len(report.erased) == 1 and report.refused[0].enrolment_id == poor
    gallery = home.svc.galleries.get("custody")
    assert gallery.model == NEW_MODEL
    assert home.count(TemplateRow) == home.count(EnrolmentRow) == 1
    assert home.svc.indexes.size(IndexSlot.of(gallery)) == 1
    assert not home.svc.indexes.path(IndexSlot.of(gallery, FAKE_MODEL)).exists()
    assert not home.svc.migrations.vault.blobs.exists(poor_blob)


def test_erasure_during_a_migration_removes_the_new_templates_too(home: Home) -> None:
    a = home.enrol("A", unit(1), unit(11))
    home.enrol("B", unit(2), unit(12))
    with pytest.raises(Stop):
        home.migrate(on_item=stop_after(2))
    gallery = home.svc.galleries.get("custody")
    assert home.count(TemplateRow, TemplateRow.model_key == NEW_MODEL.key) == 2
    home.svc.migrations._build_index(gallery, NEW_MODEL)  # the new slot, as a run leaves it
    assert home.svc.indexes.size(IndexSlot.of(gallery, NEW_MODEL)) == 2
    home.svc.erasure.erase(actor=ACTOR, gallery="custody", reference="A", reason="request")
    assert home.count(TemplateRow) == 2  # B's old and new
    assert home.count(ModelMigrationItemRow, ModelMigrationItemRow.enrolment_id == a) == 0
    assert home.svc.indexes.size(IndexSlot.of(gallery, NEW_MODEL)) == 1
    assert home.svc.indexes.size(IndexSlot.of(gallery)) == 1
    report = home.migrate()
    assert report.status is MigrationStatus.SWAPPED and report.embedded == 1


def test_partial_erasure_during_a_migration_keeps_the_rest_readable(home: Home) -> None:
    """Erasing one of two enrolments deletes its new template and re-keys the subject: the
    other enrolment's new template is sealed again under the new key, so the swap and a
    search after it still open it."""
    first = home.enrol("A", unit(1), unit(11))
    home.enrol("A", unit(3), unit(13))
    with pytest.raises(Stop):
        home.migrate(on_item=stop_after(2))
    home.svc.erasure.erase_enrolments(
        actor=ACTOR, enrolment_ids=[first], reason="retention due", cause=ErasureCause.RETENTION
    )
    assert home.count(TemplateRow, TemplateRow.model_key == NEW_MODEL.key) == 1
    report = home.migrate()
    assert report.status is MigrationStatus.SWAPPED
    gallery = home.svc.galleries.get("custody")
    assert home.svc.indexes.size(IndexSlot.of(gallery)) == 1 == home.count(TemplateRow)
    rebuilt = home.svc.maintenance.rebuild(actor=ACTOR)  # decrypts every template
    assert [(s.templates, s.vectors) for s in rebuilt] == [(1, 1)]


def test_an_enrolment_added_during_the_migration_is_embedded_before_the_swap(
    home: Home,
) -> None:
    home.enrol("A", unit(1), unit(11))
    with pytest.raises(Stop):
        home.migrate(on_item=stop_after(1))
    home.enrol("B", unit(2), unit(12))  # still enrolled on the old model
    report = home.migrate()
    assert report.status is MigrationStatus.SWAPPED and report.embedded == 2
    assert home.count(TemplateRow, TemplateRow.model_key == NEW_MODEL.key) == 2
    assert home.count(TemplateRow) == 2


def test_one_migration_at_a_time_and_not_to_the_same_model(home: Home) -> None:
    home.enrol("A", unit(1), unit(11))
    with pytest.raises(Stop):
        home.migrate(on_item=stop_after(1))
    with pytest.raises(Conflict, match="being migrated to"):
        home.svc.migrations.migrate(actor=ACTOR, gallery="custody", model=FAKE_MODEL.key)
    home.migrate()
    # A crash between the swap's commit and deleting the old index file leaves the file;
    # running the migration again deletes it and reports the swap (nothing else happens).
    gallery = home.svc.galleries.get("custody")
    stale = IndexSlot.of(gallery, FAKE_MODEL)
    home.svc.indexes.add(stale, [999], unit(9)[None, :])
    assert home.svc.indexes.path(stale).exists()
    assert home.migrate().status is MigrationStatus.SWAPPED
    assert not home.svc.indexes.path(stale).exists()
    assert home.svc.indexes.size(IndexSlot.of(gallery)) == 1
    home.svc.galleries.create(
        actor=ACTOR, name="new", inclusion_policy="p", retention_days=9, model=NEW_MODEL.key
    )
    with pytest.raises(InvalidInput, match="already uses model"):
        home.svc.migrations.migrate(actor=ACTOR, gallery="new", model=NEW_MODEL.key)
    with pytest.raises(InvalidInput, match="unknown model"):
        home.svc.migrations.migrate(actor=ACTOR, gallery="custody", model="arcface")
    assert len(home.events(AuditAction.GALLERY_MIGRATE_START)) == 1
    assert len(home.events(AuditAction.GALLERY_MIGRATE_SWAP)) == 1


def test_a_legacy_objection_holds_its_matches_and_refuses_enrolment_after_the_swap(
    home: Home,
) -> None:
    objector_old, objector_new = unit(50), unit(60)
    photo = home.old.register(make_image(50), objector_old)
    home.new.register(photo, objector_new)
    objection = home.svc.suppression.object(actor=ACTOR, image=photo, reference="LETTER-1")
    with home.svc.db.transaction() as s:  # legacy: a template of the old model only
        for row in s.scalars(select(SuppressionRow)):
            if row.model_key != FAKE_MODEL.key:
                s.delete(row)
        bump_list_version(s, None)  # as every change to the list must
    check, home.svc.enrolment.suppression = home.svc.enrolment.suppression, None
    try:  # a record that got past the objection (an enrolment racing it)
        home.enrol("NEAR", near(objector_old, 0.5, 1), unit(70))
    finally:
        home.svc.enrolment.suppression = check
    home.enrol("OTHER", unit(2), unit(12))
    report = home.migrate()
    assert report.holds == 1
    with home.svc.db.read() as s:
        (hold,) = s.scalars(select(SuppressionHoldRow))
        assert hold.objection_id == objection.suppression_id
        assert hold.distance == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ObjectionOnFile):  # checked on the old model's template
        home.enrol("NEW", near(objector_old, 0.3, 2), unit(80))
    home.svc.cases.open(
        actor=ACTOR, reference="C-1", offence="robbery", justification="camera 4 still",
        authorisation="W-1",
    )  # fmt: skip
    probe = home.new.register(make_image(90), unit(70))  # NEAR's new template, exactly
    result = home.svc.search.search(
        actor=ACTOR, case_reference="C-1", probe=probe, threshold_off=True
    )
    assert [c.subject_reference for f in result.faces for c in f.candidates] == ["OTHER"]
    home.svc.erasure.erase(actor=ACTOR, gallery="custody", reference="NEAR", reason="officer")
    assert home.count(SuppressionHoldRow) == 0


def test_an_enrolment_analysed_on_the_old_model_and_finished_after_the_swap_is_refused(
    home: Home,
) -> None:
    """The swap happens while the enrolment's face is being analysed (the old engine runs
    the migration from inside ``analyse``): the enrolment would write an old-model template
    into a gallery that now searches the new one, so it is refused and writes nothing."""
    home.enrol("A", unit(1), unit(11))
    image = home.old.register(make_image(300), unit(3))
    home.new.register(image, unit(13))
    analyse = home.old.analyse

    def analyse_then_swap(*args: object, **kw: object) -> list[AnalysedFace]:
        home.old.analyse = analyse  # type: ignore[method-assign]
        faces = analyse(*args, **kw)  # type: ignore[arg-type]
        assert home.migrate().status is MigrationStatus.SWAPPED
        return faces

    home.old.analyse = analyse_then_swap  # type: ignore[method-assign]
    with pytest.raises(Conflict, match="moved to model"):
        home.svc.enrolment.enrol(
            actor=ACTOR, gallery="custody", subject="B", image=image, provenance=PROVENANCE
        )
    assert home.count(EnrolmentRow) == home.count(TemplateRow) == 1
    gallery = home.svc.galleries.get("custody")
    assert not home.svc.indexes.path(IndexSlot.of(gallery, FAKE_MODEL)).exists()

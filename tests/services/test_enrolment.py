"""Enrolment through the services, on real SQLite, with the fake engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from probity.errors import (
    AlreadyEnrolled,
    GalleryNotFound,
    ImageTooLarge,
    InvalidImage,
    InvalidInput,
    MissingProvenance,
    NoFaceFound,
    QualityRefused,
)
from probity.services.container import Services
from probity.services.enrolment import RowStatus
from probity.services.indexes import IndexSlot
from probity.storage.tables import AuditEventRow, EnrolmentRow, SubjectRow, TemplateRow
from tests.fakes import BAD_QUALITY, FakeEngine, make_image, unit
from tests.services.conftest import ACTOR, PROVENANCE


def counts(svc: Services) -> tuple[int, ...]:
    with svc.db.transaction() as s:
        return tuple(
            int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in (SubjectRow, TemplateRow, EnrolmentRow, AuditEventRow)
        )


def test_enrol_writes_subject_template_enrolment_audit_and_index(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    image = fake_engine.register(make_image(1), unit(1))
    outcome = svc.enrolment.enrol(
        actor=ACTOR, gallery=gallery, subject="S-1", image=image, provenance=PROVENANCE
    )
    assert outcome.status is RowStatus.ENROLLED
    assert outcome.enrolment is not None
    assert str(outcome.enrolment.provenance.retention_until) == "2027-10-01"
    assert counts(svc)[:3] == (1, 1, 1)
    g = svc.galleries.get(gallery)
    assert svc.indexes.size(IndexSlot.of(g)) == 1


@pytest.mark.parametrize("missing", ["source", "lawful_basis", "collected_at", "jurisdiction"])
def test_missing_provenance_field_is_named_and_nothing_written(
    svc: Services, gallery: str, fake_engine: FakeEngine, missing: str
) -> None:
    image = fake_engine.register(make_image(2), unit(2))
    before = counts(svc)
    fields = {**PROVENANCE, missing: None}
    with pytest.raises(MissingProvenance) as info:
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject="S", image=image, provenance=fields
        )
    assert info.value.field == missing
    assert missing in info.value.message
    assert counts(svc) == before


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("lawful_basis", "because", "lawful_basis"),
        ("collected_at", "yesterday", "YYYY-MM-DD"),
        ("collected_at", "2030-01-01", "future"),
        ("collected_at", "2001-01-01", "retention already expired"),
        ("jurisdiction", "Britain", "ISO 3166"),
        ("jurisdiction", "FR", "outside gallery"),
    ],
)
def test_bad_provenance_is_refused_with_reason(
    svc: Services, gallery: str, fake_engine: FakeEngine, field: str, value: str, fragment: str
) -> None:
    image = fake_engine.register(make_image(3), unit(3))
    with pytest.raises(InvalidInput, match=fragment):
        svc.enrolment.enrol(
            actor=ACTOR,
            gallery=gallery,
            subject="S",
            image=image,
            provenance={**PROVENANCE, field: value},
        )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidImage),
        (b"this is not an image at all", InvalidImage),
        (make_image(4, fmt="JPEG")[:200], InvalidImage),
    ],
)
def test_bad_image_leaves_database_unchanged(
    svc: Services, gallery: str, data: bytes, error: type[Exception]
) -> None:
    before = counts(svc)
    with pytest.raises(error):
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject="S", image=data, provenance=PROVENANCE
        )
    assert counts(svc) == before


def test_oversized_upload_refused(svc: Services, gallery: str) -> None:
    svc.enrolment.max_upload_bytes = 100
    with pytest.raises(ImageTooLarge, match="100"):
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject="S", image=make_image(5), provenance=PROVENANCE
        )


def test_no_face_and_quality_refusals(svc: Services, gallery: str, fake_engine: FakeEngine) -> None:
    with pytest.raises(NoFaceFound):
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject="S", image=make_image(6), provenance=PROVENANCE
        )
    poor = fake_engine.register(make_image(7), unit(7), quality=BAD_QUALITY)
    with pytest.raises(QualityRefused, match="detector confidence"):
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject="S", image=poor, provenance=PROVENANCE
        )


def test_refused_face_beside_good_face_is_reported(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    image = fake_engine.register(make_image(8), unit(8))
    fake_engine.add_face(image, unit(9), BAD_QUALITY)
    outcome = svc.enrolment.enrol(
        actor=ACTOR, gallery=gallery, subject="S", image=image, provenance=PROVENANCE
    )
    assert outcome.status is RowStatus.ENROLLED
    assert len(outcome.refused_faces) == 1
    assert any("confidence" in r for r in outcome.refused_faces[0].reasons)


def test_two_good_faces_refused(svc: Services, gallery: str, fake_engine: FakeEngine) -> None:
    image = fake_engine.register(make_image(10), unit(10), unit(11))
    with pytest.raises(InvalidInput, match="exactly one person"):
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject="S", image=image, provenance=PROVENANCE
        )


def test_same_image_twice_is_a_conflict(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    image = fake_engine.register(make_image(12), unit(12))
    svc.enrolment.enrol(
        actor=ACTOR, gallery=gallery, subject="S", image=image, provenance=PROVENANCE
    )
    with pytest.raises(AlreadyEnrolled):
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject="S", image=image, provenance=PROVENANCE
        )


def test_unknown_gallery(svc: Services) -> None:
    with pytest.raises(GalleryNotFound, match="nope"):
        svc.enrolment.enrol(
            actor=ACTOR, gallery="nope", subject="S", image=make_image(1), provenance=PROVENANCE
        )


def write_manifest(folder: Path, rows: list[str]) -> Path:
    header = "path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by"
    path = folder / "manifest.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_manifest_is_resumable_and_lists_refusals(
    svc: Services, gallery: str, fake_engine: FakeEngine, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"p{i}.png").write_bytes(fake_engine.register(make_image(100 + i), unit(100 + i)))
    (photos / "noface.png").write_bytes(make_image(200))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    ok = "custody/1,law_enforcement,2026-10-01,GB,PC 1"
    manifest = write_manifest(
        tmp_path,
        [
            f"photos/p0.png,A,{ok}",
            f"photos/p1.png,B,{ok}",
            "photos/p2.png,C,custody/3,,2026-10-01,GB,PC 1",
            f"photos/noface.png,D,{ok}",
            f"photos/broken.jpg,E,{ok}",
            f"photos/absent.png,F,{ok}",
        ],
    )
    progress: list[tuple[int, int]] = []
    summary = svc.enrolment.enrol_manifest(
        actor=ACTOR,
        gallery=gallery,
        manifest=manifest,
        on_progress=lambda d, t: progress.append((d, t)),
    )
    assert progress[-1] == (6, 6)
    assert summary.count(RowStatus.ENROLLED) == 2
    reasons = {r.line: r.outcome.reason for r in summary.rows if r.outcome.reason}
    assert "lawful_basis" in (reasons[4] or "")
    assert "no face" in (reasons[5] or "")
    assert "image" in (reasons[6] or "")
    assert "not found" in (reasons[7] or "")
    again = svc.enrolment.enrol_manifest(actor=ACTOR, gallery=gallery, manifest=manifest)
    assert again.count(RowStatus.SKIPPED) == 2
    assert again.count(RowStatus.ENROLLED) == 0
    assert svc.indexes.size(IndexSlot.of(svc.galleries.get(gallery))) == 2


def test_manifest_without_required_column(svc: Services, gallery: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("path,subject\nx.png,A\n")
    with pytest.raises(InvalidInput, match="lawful_basis"):
        svc.enrolment.enrol_manifest(actor=ACTOR, gallery=gallery, manifest=bad)

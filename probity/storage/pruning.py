"""Finding enrolments that must go (retention due, jurisdiction excluded) and erasing some of
a subject's enrolments while the subject stays: the row work behind
``ErasureService.erase_enrolments``.

Rows are addressed by id only; nothing here decrypts anything (the service does that with the
vault). ``lock=True`` takes the rows ``FOR UPDATE`` on PostgreSQL, so that two processes sweeping
at once do not both claim the same erasure; SQLite's ``BEGIN IMMEDIATE`` serialises writers
already.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from probity.storage.tables import (
    EnrolmentRow,
    ModelMigrationItemRow,
    SubjectKeyRow,
    SuppressionHoldRow,
    TemplateRow,
)


@dataclass(frozen=True, slots=True)
class HeldEnrolment:
    """What erasing an enrolment needs to know about it (no provenance but where and until
    when, no biometric data)."""

    id: str
    subject_id: str
    gallery_id: str
    template_id: int
    image_blob: str
    jurisdiction: str
    retention_until: date


def _held(row: EnrolmentRow) -> HeldEnrolment:
    return HeldEnrolment(
        id=row.id,
        subject_id=row.subject_id,
        gallery_id=row.gallery_id,
        template_id=row.template_id,
        image_blob=row.image_blob,
        jurisdiction=row.jurisdiction,
        retention_until=row.retention_until,
    )


class EnrolmentPruning:
    def __init__(self, session: Session) -> None:
        self.s = session

    def due(self, today: date, gallery_ids: Iterable[str] | None = None) -> list[HeldEnrolment]:
        """Enrolments whose ``retention_until`` is on or before ``today`` (uses its index),
        in the given galleries (all when None)."""
        stmt = select(EnrolmentRow).where(EnrolmentRow.retention_until <= today)
        if gallery_ids is not None:
            stmt = stmt.where(EnrolmentRow.gallery_id.in_(list(gallery_ids)))
        return [_held(r) for r in self.s.scalars(stmt.order_by(EnrolmentRow.id))]

    def collected_in(self, gallery_id: str, codes: Iterable[str]) -> list[HeldEnrolment]:
        """Enrolments of a gallery collected in one of ``codes`` or, for a country code, in
        one of its subdivisions ("GB" finds "GB" and "GB-SCT"). A superset the policy then
        decides on (``policy.jurisdiction``): SQL narrows, the policy judges."""
        wanted = sorted({c.upper() for c in codes})
        if not wanted:
            return []
        matches: list[ColumnElement[bool]] = [EnrolmentRow.jurisdiction.in_(wanted)]
        matches += [EnrolmentRow.jurisdiction.like(f"{c}-%") for c in wanted if "-" not in c]
        stmt = (
            select(EnrolmentRow)
            .where(EnrolmentRow.gallery_id == gallery_id, or_(*matches))
            .order_by(EnrolmentRow.id)
        )
        return [_held(r) for r in self.s.scalars(stmt)]

    def get_many(self, enrolment_ids: Sequence[str], *, lock: bool = False) -> list[HeldEnrolment]:
        """The enrolments among ``enrolment_ids`` that still exist (ids already erased by
        someone else are simply absent); ``lock``: locked for this transaction."""
        if not enrolment_ids:
            return []
        stmt = (
            select(EnrolmentRow)
            .where(EnrolmentRow.id.in_(list(enrolment_ids)))
            .order_by(EnrolmentRow.id)
        )
        return [_held(r) for r in self.s.scalars(stmt.with_for_update() if lock else stmt)]

    def of_subject(self, subject_id: str, *, lock: bool = False) -> list[HeldEnrolment]:
        """Every enrolment of a subject; ``lock``: locked for this transaction."""
        stmt = (
            select(EnrolmentRow)
            .where(EnrolmentRow.subject_id == subject_id)
            .order_by(EnrolmentRow.id)
        )
        return [_held(r) for r in self.s.scalars(stmt.with_for_update() if lock else stmt)]

    def sealed_vector(self, template_id: int) -> bytes | None:
        row = self.s.get(TemplateRow, template_id)
        return None if row is None else row.sealed_vector

    def delete(self, enrolments: Sequence[HeldEnrolment]) -> list[int]:
        """Delete the enrolment rows and their templates, including the templates a model
        migration in progress made of them (and its records of them). Returns the ids of
        every template deleted (each has a vector in one of the gallery's index files)."""
        if not enrolments:
            return []
        ids = [e.id for e in enrolments]
        templates = [e.template_id for e in enrolments]
        templates += migration_templates(self.s, ids)
        self.s.execute(
            delete(ModelMigrationItemRow).where(ModelMigrationItemRow.enrolment_id.in_(ids))
        )
        self.s.execute(delete(EnrolmentRow).where(EnrolmentRow.id.in_(ids)))
        self.s.execute(delete(TemplateRow).where(TemplateRow.id.in_(templates)))
        return templates

    def templates_of_subject(self, subject_id: str) -> list[int]:
        """Every template id of a subject (its enrolments' and a migration's new ones)."""
        stmt = select(TemplateRow.id).where(TemplateRow.subject_id == subject_id)
        return [int(t) for t in self.s.scalars(stmt.order_by(TemplateRow.id))]

    # The updates go through the ORM, not UPDATE statements: a row already loaded in this
    # session (the subject's key, read to open its data) would otherwise keep its old value
    # in the identity map, and a later flush (the key rotation's) would write that back.

    def set_image_blob(self, enrolment_id: str, blob_id: str) -> None:
        row = self.s.get(EnrolmentRow, enrolment_id)
        if row is not None:
            row.image_blob = blob_id

    def set_sealed_vector(self, template_id: int, sealed: bytes) -> None:
        row = self.s.get(TemplateRow, template_id)
        if row is not None:
            row.sealed_vector = sealed

    def set_wrapped_key(self, subject_id: str, wrapped: bytes) -> None:
        """Replace the subject's data key (the old one is gone with the row's old value)."""
        row = self.s.get(SubjectKeyRow, subject_id)
        if row is not None:
            row.wrapped_key = wrapped
        self.s.flush()


def migration_templates(session: Session, enrolment_ids: Sequence[str]) -> list[int]:
    """The templates model migrations made of these enrolments (not yet swapped in)."""
    if not enrolment_ids:
        return []
    stmt = select(ModelMigrationItemRow.template_id).where(
        ModelMigrationItemRow.enrolment_id.in_(list(enrolment_ids)),
        ModelMigrationItemRow.template_id.is_not(None),
    )
    return [int(t) for t in session.scalars(stmt) if t is not None]


def forget_subject(session: Session, subject_id: str) -> None:
    """Delete a subject's model-migration records and suppression holds (at its erasure;
    its templates go with ``Templates.delete_for_subject``, which reaches a migration's new
    ones too, since they carry the subject id)."""
    session.execute(
        delete(ModelMigrationItemRow).where(ModelMigrationItemRow.subject_id == subject_id)
    )
    session.execute(delete(SuppressionHoldRow).where(SuppressionHoldRow.subject_id == subject_id))

"""Repositories: the only code that touches table rows. Each takes the caller's ``Session``
(the unit of work belongs to the service) and speaks in domain objects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, delete, func, select, text, type_coerce
from sqlalchemy.orm import Session

from probity.domain.audit import (
    GENESIS_HASH,
    AuditEvent,
    Checkpoint,
    LastVerification,
    VerifiedPoint,
)
from probity.domain.case import Authorisation, AuthorisationStatus, Case
from probity.domain.faces import DetectorKind, FaceBox, ModelVersion, Quality, QualityFloor
from probity.domain.gallery import Enrolment, Gallery, LawfulBasis, Provenance, Subject
from probity.domain.ids import CaseId, EnrolmentId, GalleryId, SubjectId, TemplateId
from probity.domain.search import SearchResult
from probity.storage.tables import (
    AuditCheckpointRow,
    AuditEventRow,
    AuditHeadRow,
    AuditVerifiedRow,
    CaseRow,
    EnrolmentRow,
    GalleryCountRow,
    GalleryRow,
    SearchCandidateRow,
    SearchRow,
    SubjectKeyRow,
    SubjectRow,
    TemplateCountRow,
    TemplateRow,
)

# -- galleries ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GalleryCount:
    subjects: int
    enrolments: int


def _gallery_count(session: Session, gallery_id: str) -> GalleryCount:
    """The triggers' counts of a gallery (zero for one that never held anyone)."""
    row = session.get(GalleryCountRow, gallery_id)
    if row is None:
        return GalleryCount(0, 0)
    return GalleryCount(int(row.subjects), int(row.enrolments))


def _gallery(row: GalleryRow) -> Gallery:
    return Gallery(
        id=GalleryId(row.id),
        name=row.name,
        inclusion_policy=row.inclusion_policy,
        retention_days=row.retention_days,
        jurisdictions=tuple(row.jurisdictions),
        quality_floor=QualityFloor.from_dict(row.quality_floor),
        model=ModelVersion(row.model_name, row.model_version, row.model_dimension),
        created_at=row.created_at,
        created_by=row.created_by,
        organisation_id=row.organisation_id,
    )


class Galleries:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, gallery: Gallery) -> None:
        self.s.add(
            GalleryRow(
                id=gallery.id,
                name=gallery.name,
                inclusion_policy=gallery.inclusion_policy,
                retention_days=gallery.retention_days,
                jurisdictions=list(gallery.jurisdictions),
                quality_floor=gallery.quality_floor.as_dict(),
                model_name=gallery.model.name,
                model_version=gallery.model.version,
                model_dimension=gallery.model.dimension,
                created_at=gallery.created_at,
                created_by=gallery.created_by,
                organisation_id=gallery.organisation_id,
            )
        )
        self.s.flush()

    def by_name(self, name: str) -> Gallery | None:
        row = self.s.scalars(select(GalleryRow).where(GalleryRow.name == name)).first()
        return None if row is None else _gallery(row)

    def get(self, gallery_id: str) -> Gallery | None:
        row = self.s.get(GalleryRow, gallery_id)
        return None if row is None else _gallery(row)

    def all(self) -> list[Gallery]:
        return [_gallery(r) for r in self.s.scalars(select(GalleryRow).order_by(GalleryRow.name))]


# -- subjects and keys -------------------------------------------------------------------------


def _subject(row: SubjectRow) -> Subject:
    return Subject(
        id=SubjectId(row.id),
        gallery_id=GalleryId(row.gallery_id),
        reference=row.reference,
        created_at=row.created_at,
    )


_WRAPPED_KEYS = select(SubjectKeyRow.subject_id, SubjectKeyRow.wrapped_key).where(
    SubjectKeyRow.subject_id.in_(bindparam("ids", expanding=True))
)
"""Wrapped data keys by subject id. PostgreSQL answers it from ``ix_subject_keys_covering``
(an index-only scan) or the primary key, as its statistics say."""

_WRAPPED_KEYS_SQLITE = text(
    "SELECT subject_id, wrapped_key FROM subject_keys INDEXED BY ix_subject_keys_covering "
    "WHERE subject_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
"""The same on SQLite, which would take the unique primary-key index and then read the
table row for the key: two random pages a key, where the covering index (migration 0019)
needs one. ``INDEXED BY`` is SQLite's own, and fails loudly if the index is missing."""


class Subjects:
    def __init__(self, session: Session) -> None:
        self.s = session

    def find(self, gallery_id: str, reference: str) -> Subject | None:
        row = self.s.scalars(
            select(SubjectRow).where(
                SubjectRow.gallery_id == gallery_id, SubjectRow.reference == reference
            )
        ).first()
        return None if row is None else _subject(row)

    def get_many(self, ids: Iterable[str]) -> dict[str, Subject]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = self.s.scalars(select(SubjectRow).where(SubjectRow.id.in_(wanted)))
        return {r.id: _subject(r) for r in rows}

    def add(self, subject: Subject, wrapped_key: bytes) -> None:
        self.s.add(
            SubjectRow(
                id=subject.id,
                gallery_id=subject.gallery_id,
                reference=subject.reference,
                created_at=subject.created_at,
            )
        )
        self.s.add(
            SubjectKeyRow(
                subject_id=subject.id, wrapped_key=wrapped_key, created_at=subject.created_at
            )
        )
        self.s.flush()

    def wrapped_key(self, subject_id: str) -> bytes | None:
        row = self.s.get(SubjectKeyRow, subject_id)
        return None if row is None else row.wrapped_key

    def wrapped_keys(self, subject_ids: Iterable[str]) -> dict[str, bytes]:
        """The wrapped data keys of these subjects (erased ones absent), in ``IN`` queries
        of 500: a search re-scoring 40 candidate subjects made 40 primary-key reads."""
        wanted = sorted(set(subject_ids))
        out: dict[str, bytes] = {}
        for start in range(0, len(wanted), 500):
            rows = self.s.execute(
                _WRAPPED_KEYS_SQLITE
                if self.s.get_bind().dialect.name == "sqlite"
                else _WRAPPED_KEYS,
                {"ids": wanted[start : start + 500]},
            )
            out.update({str(sid): bytes(key) for sid, key in rows})
        return out

    def count(self, gallery_id: str) -> int:
        """Subjects in the gallery: one primary-key read of the count the database triggers
        keep (migration 0017), exact within this transaction."""
        return _gallery_count(self.s, gallery_id).subjects

    def delete(self, subject_id: str) -> None:
        """Delete the subject row and its data key (the key first: that is the shredding)."""
        self.s.execute(delete(SubjectKeyRow).where(SubjectKeyRow.subject_id == subject_id))
        self.s.execute(delete(SubjectRow).where(SubjectRow.id == subject_id))


# -- templates -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealedTemplate:
    id: TemplateId
    subject_id: SubjectId
    gallery_id: GalleryId
    model_key: str
    sealed_vector: bytes


def _sealed(row: TemplateRow) -> SealedTemplate:
    return SealedTemplate(
        TemplateId(row.id),
        SubjectId(row.subject_id),
        GalleryId(row.gallery_id),
        row.model_key,
        row.sealed_vector,
    )


class Templates:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(
        self, *, subject_id: str, gallery_id: str, model_key: str, sealed: bytes, at: datetime
    ) -> TemplateId:
        row = TemplateRow(
            subject_id=subject_id,
            gallery_id=gallery_id,
            model_key=model_key,
            sealed_vector=sealed,
            created_at=at,
        )
        self.s.add(row)
        self.s.flush()
        return TemplateId(row.id)

    def get_many(self, ids: Iterable[int]) -> dict[int, SealedTemplate]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = self.s.scalars(select(TemplateRow).where(TemplateRow.id.in_(wanted)))
        return {r.id: _sealed(r) for r in rows}

    def for_gallery(self, gallery_id: str, batch: int = 1000) -> Iterator[SealedTemplate]:
        stmt = (
            select(TemplateRow)
            .where(TemplateRow.gallery_id == gallery_id)
            .order_by(TemplateRow.id)
            .execution_options(yield_per=batch)
        )
        for row in self.s.scalars(stmt):
            yield _sealed(row)

    def for_subjects(self, subject_ids: Iterable[str]) -> dict[int, SealedTemplate]:
        """Every template of these subjects, by id (a search fuses each candidate subject's
        templates into one score). One query on the indexed ``subject_id``."""
        wanted = list(set(subject_ids))
        if not wanted:
            return {}
        rows = self.s.scalars(select(TemplateRow).where(TemplateRow.subject_id.in_(wanted)))
        return {r.id: _sealed(r) for r in rows}

    def count(self, gallery_id: str, model_key: str) -> int:
        """Templates of one gallery and model (``index status``): one primary-key read of
        the count the database triggers keep (migration 0017)."""
        row = self.s.get(TemplateCountRow, (gallery_id, model_key))
        return 0 if row is None else int(row.templates)

    def ids_for_subject(self, subject_id: str) -> list[TemplateId]:
        stmt = select(TemplateRow.id).where(TemplateRow.subject_id == subject_id)
        return [TemplateId(i) for i in self.s.scalars(stmt)]

    def delete_for_subject(self, subject_id: str) -> None:
        self.s.execute(delete(TemplateRow).where(TemplateRow.subject_id == subject_id))


# -- enrolments ----------------------------------------------------------------------------------


def _enrolment(row: EnrolmentRow) -> Enrolment:
    q = row.quality
    return Enrolment(
        id=EnrolmentId(row.id),
        subject_id=SubjectId(row.subject_id),
        gallery_id=GalleryId(row.gallery_id),
        template_id=TemplateId(row.template_id),
        provenance=Provenance(
            source=row.source,
            lawful_basis=LawfulBasis(row.lawful_basis),
            lawful_basis_reference=row.lawful_basis_reference,
            collected_at=row.collected_at,
            collected_by=row.collected_by,
            jurisdiction=row.jurisdiction,
            retention_until=row.retention_until,
        ),
        image_sha256=row.image_sha256,
        box=FaceBox(*row.box),
        quality=Quality(
            inter_eye_px=q["inter_eye_px"],
            face_width_px=q["face_width_px"],
            sharpness=q["sharpness"],
            yaw_ratio=q["yaw_ratio"],
            detector=DetectorKind(q["detector"]),
            detector_confidence=q["detector_confidence"],
            landmark_consistency=q["landmark_consistency"],
        ),
        created_at=row.created_at,
        created_by=row.created_by,
    )


class Enrolments:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, enrolment: Enrolment, *, image_blob: str) -> None:
        p = enrolment.provenance
        self.s.add(
            EnrolmentRow(
                id=enrolment.id,
                subject_id=enrolment.subject_id,
                gallery_id=enrolment.gallery_id,
                template_id=enrolment.template_id,
                image_sha256=enrolment.image_sha256,
                image_blob=image_blob,
                box=enrolment.box.as_list(),
                quality=enrolment.quality.as_dict(),
                source=p.source,
                lawful_basis=p.lawful_basis.value,
                lawful_basis_reference=p.lawful_basis_reference,
                collected_at=p.collected_at,
                collected_by=p.collected_by,
                jurisdiction=p.jurisdiction,
                retention_until=p.retention_until,
                created_at=enrolment.created_at,
                created_by=enrolment.created_by,
            )
        )
        self.s.flush()

    def find_image(self, gallery_id: str, subject_reference: str, sha256: str) -> Enrolment | None:
        """The subject's enrolment of this exact image, if any (an enrolment repeated).

        Two unique-index lookups, the subject by (gallery, reference) and then the enrolment
        by (subject, image hash), rather than one join: given the join, SQLite's planner
        walked the gallery's enrolments through ``ix_enrolments_gallery_id`` (250 ms a call
        at 1M, twice per enrolment; issue "Scale")."""
        subject_id = self.s.scalar(
            select(SubjectRow.id).where(
                SubjectRow.gallery_id == gallery_id, SubjectRow.reference == subject_reference
            )
        )
        if subject_id is None:
            return None
        row = self.s.scalars(
            select(EnrolmentRow).where(
                EnrolmentRow.subject_id == subject_id,
                EnrolmentRow.image_sha256 == sha256,
                EnrolmentRow.gallery_id == gallery_id,
            )
        ).first()
        return None if row is None else _enrolment(row)

    def by_template_ids(self, template_ids: Iterable[int]) -> dict[int, Enrolment]:
        wanted = list(set(template_ids))
        if not wanted:
            return {}
        rows = self.s.scalars(select(EnrolmentRow).where(EnrolmentRow.template_id.in_(wanted)))
        return {r.template_id: _enrolment(r) for r in rows}

    def get_many(self, ids: Iterable[str]) -> dict[str, Enrolment]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = self.s.scalars(select(EnrolmentRow).where(EnrolmentRow.id.in_(wanted)))
        return {r.id: _enrolment(r) for r in rows}

    def image_blob(self, enrolment_id: str) -> str | None:
        """The blob id of the enrolment's sealed image, or None for an unknown enrolment."""
        row = self.s.get(EnrolmentRow, enrolment_id)
        return None if row is None else row.image_blob

    def for_subject(self, subject_id: str) -> list[tuple[Enrolment, str]]:
        """The subject's enrolments with each one's image blob id."""
        rows = self.s.scalars(select(EnrolmentRow).where(EnrolmentRow.subject_id == subject_id))
        return [(_enrolment(r), r.image_blob) for r in rows]

    def count(self, gallery_id: str | None = None) -> int:
        """Enrolments in the gallery (a primary-key read of the triggers' count, migration
        0017), or in every gallery (a COUNT: only reports ask for that)."""
        if gallery_id is not None:
            return _gallery_count(self.s, gallery_id).enrolments
        return int(self.s.scalar(select(func.count()).select_from(EnrolmentRow)) or 0)

    def delete_for_subject(self, subject_id: str) -> None:
        self.s.execute(delete(EnrolmentRow).where(EnrolmentRow.subject_id == subject_id))


# -- cases ---------------------------------------------------------------------------------------


def _case(row: CaseRow) -> Case:
    return Case(
        id=CaseId(row.id),
        reference=row.reference,
        offence=row.offence,
        justification=row.justification,
        authorisation=Authorisation(
            status=AuthorisationStatus(row.auth_status),
            requested_at=row.auth_requested_at,
            reference=row.auth_reference,
            authority=row.auth_authority,
        ),
        opened_at=row.opened_at,
        opened_by=row.opened_by,
        organisation_id=row.organisation_id,
    )


class Cases:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, case: Case, *, wrapped_probe_key: bytes | None = None) -> None:
        a = case.authorisation
        self.s.add(
            CaseRow(
                id=case.id,
                reference=case.reference,
                offence=case.offence,
                justification=case.justification,
                auth_status=a.status.value,
                auth_reference=a.reference,
                auth_authority=a.authority,
                auth_requested_at=a.requested_at,
                opened_at=case.opened_at,
                opened_by=case.opened_by,
                organisation_id=case.organisation_id,
                wrapped_probe_key=wrapped_probe_key,
            )
        )
        self.s.flush()

    def by_reference(self, reference: str) -> Case | None:
        row = self.s.scalars(select(CaseRow).where(CaseRow.reference == reference)).first()
        return None if row is None else _case(row)

    def set_authorisation(self, case_id: str, authorisation: Authorisation) -> None:
        row = self.s.get(CaseRow, case_id)
        if row is None:
            raise KeyError(case_id)
        row.auth_status = authorisation.status.value
        row.auth_reference = authorisation.reference
        row.auth_authority = authorisation.authority
        row.auth_requested_at = authorisation.requested_at
        self.s.flush()

    def get(self, case_id: str) -> Case | None:
        row = self.s.get(CaseRow, case_id)
        return None if row is None else _case(row)

    def wrapped_probe_key(self, case_id: str) -> bytes | None:
        row = self.s.get(CaseRow, case_id)
        return None if row is None else row.wrapped_probe_key

    def set_wrapped_probe_key(self, case_id: str, wrapped: bytes) -> None:
        row = self.s.get(CaseRow, case_id)
        if row is None:
            raise KeyError(case_id)
        row.wrapped_probe_key = wrapped
        self.s.flush()

    def all(self, organisation_id: str | None = None) -> list[Case]:
        """Every case, or only one organisation's (``organisation_id``)."""
        query = select(CaseRow).order_by(CaseRow.opened_at)
        if organisation_id is not None:
            query = query.where(CaseRow.organisation_id == organisation_id)
        return [_case(r) for r in self.s.scalars(query)]


# -- searches ------------------------------------------------------------------------------------


class Searches:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(
        self,
        result: SearchResult,
        *,
        actor: str,
        at: datetime,
        user_id: str | None = None,
        organisation_id: str | None = None,
    ) -> None:
        t = result.threshold
        self.s.add(
            SearchRow(
                id=result.id,
                case_id=result.case_id,
                at=at,
                actor=actor,
                user_id=user_id,
                organisation_id=organisation_id,
                probe_sha256=result.probe_sha256,
                galleries=list(result.gallery_names),
                model_key=result.model_key,
                threshold={
                    "mode": t.mode.value,
                    "target_fpir": t.target_fpir,
                    "target_fmr": t.target_fmr,
                    "max_distance": t.max_distance,
                    "gallery_subjects": t.gallery_subjects,
                    "gallery_templates": t.gallery_templates,
                    "unreachable": t.unreachable,
                    "table_origin": t.table_origin,
                    "source": t.source,
                    "by_model": [list(pair) for pair in t.by_model],
                },
                top_k=result.top_k,
                outcome=result.outcome.value,
                faces=[
                    {
                        "index": f.index,
                        "box": f.box.as_list(),
                        "quality": f.quality.as_dict(),
                        "outcome": f.outcome.value,
                        "refusal_reasons": list(f.refusal_reasons),
                    }
                    for f in result.faces
                ],
            )
        )
        self.s.flush()  # the search row first: candidates reference it
        for face in result.faces:
            for c in face.candidates:
                self.s.add(
                    SearchCandidateRow(
                        search_id=result.id,
                        face_index=face.index,
                        rank=c.rank,
                        subject_id=c.subject_id,
                        gallery_id=c.gallery_id,
                        enrolment_id=c.enrolment_id,
                        score=c.score,
                        distance=c.distance,
                        within_threshold=c.within_threshold,
                        fused=c.fused,
                        expected_strangers=c.expected_strangers,
                    )
                )
        self.s.flush()


# -- audit ---------------------------------------------------------------------------------------


def _event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        seq=row.seq,
        at=datetime.fromisoformat(row.at),
        actor=row.actor,
        organisation=row.organisation,
        action=row.action,
        case_reference=row.case_reference,
        galleries=tuple(row.galleries),
        subject_ids=tuple(row.subject_ids),
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLog:
    """Append-only storage of audit events. There is deliberately no update or delete."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def lock_head(self) -> tuple[int, str]:
        """The last (seq, hash), locked for this transaction; (0, genesis) on an empty log."""
        row = self.s.scalars(
            select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
        ).first()
        if row is None:
            return 0, GENESIS_HASH
        return row.seq, row.hash

    def append(self, event: AuditEvent) -> None:
        self.s.add(
            AuditEventRow(
                seq=event.seq,
                at=event.at.isoformat(),
                actor=event.actor,
                organisation=event.organisation,
                action=event.action,
                case_reference=event.case_reference,
                galleries=list(event.galleries),
                subject_ids=list(event.subject_ids),
                details=dict(event.details),
                prev_hash=event.prev_hash,
                hash=event.hash,
            )
        )
        head = self.s.get(AuditHeadRow, 1)
        if head is None:
            self.s.add(AuditHeadRow(id=1, seq=event.seq, hash=event.hash))
        else:
            head.seq, head.hash = event.seq, event.hash
        self.s.flush()

    def events(
        self,
        *,
        action: str | None = None,
        case_reference: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        organisation: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Iterator[AuditEvent]:
        """Events oldest first, filtered; ``since`` inclusive, ``until`` exclusive."""
        stmt = self._filtered(
            select(AuditEventRow), action, case_reference, since, until, actor, organisation
        ).order_by(AuditEventRow.seq)
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        for row in self.s.scalars(stmt.execution_options(yield_per=1000)):
            yield _event(row)

    def count_matching(
        self,
        *,
        action: str | None = None,
        case_reference: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        organisation: str | None = None,
        upto: int | None = None,
    ) -> int:
        """How many events match; with ``upto``, counting stops there (the result is then at
        most ``upto``): a count over a filter no index serves reads every matching row, which
        on a 10M-event log is seconds, and a page needs only "more than N"."""
        if upto is None:
            stmt = self._filtered(
                select(func.count()).select_from(AuditEventRow),
                action,
                case_reference,
                since,
                until,
                actor,
                organisation,
            )
            return int(self.s.scalar(stmt) or 0)
        some = self._filtered(
            select(AuditEventRow.seq), action, case_reference, since, until, actor, organisation
        ).limit(upto)
        return int(self.s.scalar(select(func.count()).select_from(some.subquery())) or 0)

    @staticmethod
    def _filtered(
        stmt: Any,
        action: str | None,
        case_reference: str | None,
        since: datetime | None,
        until: datetime | None,
        actor: str | None,
        organisation: str | None,
    ) -> Any:
        # ``at`` is stored as ISO 8601 text in UTC, so text order is time order.
        if action is not None:
            stmt = stmt.where(AuditEventRow.action == action)
        if case_reference is not None:
            stmt = stmt.where(AuditEventRow.case_reference == case_reference)
        if since is not None:
            stmt = stmt.where(AuditEventRow.at >= since.isoformat())
        if until is not None:
            stmt = stmt.where(AuditEventRow.at < until.isoformat())
        if actor is not None:
            stmt = stmt.where(AuditEventRow.actor == actor)
        if organisation is not None:
            stmt = stmt.where(AuditEventRow.organisation == organisation)
        return stmt

    def count(self) -> int:
        return int(self.s.scalar(select(func.count()).select_from(AuditEventRow)) or 0)

    def head(self) -> tuple[int, str]:
        """The last (seq, hash), read without locking; (0, genesis) on an empty log."""
        row = self.s.get(AuditHeadRow, 1)
        return (0, GENESIS_HASH) if row is None else (row.seq, row.hash)

    def events_between(self, after: int = 0, upto: int | None = None) -> Iterator[AuditEvent]:
        """Events with ``after < seq <= upto`` (no upper bound when ``upto`` is None), oldest
        first, streamed."""
        stmt = select(AuditEventRow).where(AuditEventRow.seq > after)
        if upto is not None:
            stmt = stmt.where(AuditEventRow.seq <= upto)
        for row in self.s.scalars(
            stmt.order_by(AuditEventRow.seq).execution_options(yield_per=1000)
        ):
            yield _event(row)

    def head_seq(self) -> int:
        """The last event's seq, read without locking (0 on an empty log): readers that must
        not block writers (reports) count only events up to it."""
        row = self.s.get(AuditHeadRow, 1)
        return 0 if row is None else row.seq

    def events_for_cases(
        self, *, action: str, case_references: Iterable[str], chunk: int = 500
    ) -> Iterator[AuditEvent]:
        """Events of one action about the given cases, oldest first within each chunk of
        ``chunk`` references (kept well under the databases' limits on bound parameters)."""
        wanted = sorted(set(case_references))
        for start in range(0, len(wanted), chunk):
            stmt = (
                select(AuditEventRow)
                .where(
                    AuditEventRow.action == action,
                    AuditEventRow.case_reference.in_(wanted[start : start + chunk]),
                )
                .order_by(AuditEventRow.seq)
            )
            for row in self.s.scalars(stmt):
                yield _event(row)

    def events_naming_subject(self, *, action: str, subject_id: str) -> Iterator[AuditEvent]:
        """Events of ``action`` whose ``subject_ids`` include ``subject_id``, oldest first
        (an access export: every search that returned the subject, purged ones included).
        ``subject_ids`` is stored as JSON text, so a LIKE on the quoted id narrows the scan
        in the database (ids are hex: no LIKE wildcards) and each hit is checked exactly."""
        stmt = (
            select(AuditEventRow)
            .where(
                AuditEventRow.action == action,
                # As plain text: the JSON column type would encode the pattern as JSON.
                type_coerce(AuditEventRow.subject_ids, Text).like(f'%"{subject_id}"%'),
            )
            .order_by(AuditEventRow.seq)
        )
        for row in self.s.scalars(stmt.execution_options(yield_per=1000)):
            event = _event(row)
            if subject_id in event.subject_ids:
                yield event

    def hash_at(self, seq: int) -> str | None:
        return self.s.scalar(select(AuditEventRow.hash).where(AuditEventRow.seq == seq))

    def last_seq(self) -> int:
        """The highest event seq actually stored (0: none), whatever the head row says."""
        return int(self.s.scalar(select(func.max(AuditEventRow.seq))) or 0)

    def add_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Store the checkpoint unless one at its seq exists; True if it was stored."""
        if self.s.get(AuditCheckpointRow, checkpoint.seq) is None:
            self.s.add(
                AuditCheckpointRow(
                    seq=checkpoint.seq,
                    hash=checkpoint.hash,
                    at=checkpoint.at,
                    public_key=checkpoint.public_key,
                    signature=checkpoint.signature,
                )
            )
            self.s.flush()
            return True
        return False

    def checkpoints(self, since: int = 0) -> list[Checkpoint]:
        """Signed checkpoints with ``seq >= since``, oldest first (all of them by default)."""
        stmt = select(AuditCheckpointRow).where(AuditCheckpointRow.seq >= since)
        rows = self.s.scalars(stmt.order_by(AuditCheckpointRow.seq))
        return [Checkpoint(r.seq, r.hash, r.at, r.public_key, r.signature) for r in rows]

    def has_checkpoints(self) -> bool:
        return self.s.scalar(select(AuditCheckpointRow.seq).limit(1)) is not None

    def verified_point(self) -> VerifiedPoint | None:
        """Where the last successful verification ended (None: none has passed yet)."""
        row = self.s.get(AuditVerifiedRow, 1)
        if row is None or row.seq is None or row.hash is None or row.verified_at is None:
            return None
        read = {str(k): (int(v[0]), int(v[1])) for k, v in dict(row.witness_read or {}).items()}
        return VerifiedPoint(
            seq=row.seq,
            hash=row.hash,
            at=row.verified_at,
            by=row.verified_by or "",
            witness_seq=row.witness_seq,
            witness_read=read,
        )

    def last_verification(self) -> LastVerification | None:
        """The most recent verification's outcome (None: never verified). One row read."""
        row = self.s.get(AuditVerifiedRow, 1)
        if row is None:
            return None
        return LastVerification(
            at=row.last_at,
            by=row.last_by,
            ok=row.last_ok,
            mode=row.last_mode,
            from_seq=row.last_from_seq,
            events_checked=row.last_events_checked,
            first_broken_seq=row.last_first_broken_seq,
            reason=row.last_reason,
        )

    def save_verification(self, last: LastVerification, point: VerifiedPoint | None) -> None:
        """Store a verification's outcome; with ``point`` (a passed one) also move the
        verified point there. Without it the stored point stays where it was."""
        row = self.s.get(AuditVerifiedRow, 1)
        if row is None:
            row = AuditVerifiedRow(id=1, witness_read={})
            self.s.add(row)
        row.last_at, row.last_by, row.last_ok = last.at, last.by, last.ok
        row.last_mode, row.last_from_seq = last.mode, last.from_seq
        row.last_events_checked = last.events_checked
        row.last_first_broken_seq, row.last_reason = last.first_broken_seq, last.reason
        if point is not None:
            row.seq, row.hash, row.verified_at, row.verified_by = (
                point.seq,
                point.hash,
                point.at,
                point.by,
            )
            row.witness_seq = point.witness_seq
            row.witness_read = {k: list(v) for k, v in point.witness_read.items()}
        self.s.flush()


__all__: Sequence[str] = (
    "AuditLog",
    "Cases",
    "Enrolments",
    "Galleries",
    "SealedTemplate",
    "Searches",
    "Subjects",
    "Templates",
)

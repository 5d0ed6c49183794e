"""The enrolment jobs repository: jobs as they run (progress), as they end (results), and the
refusals the pages list."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from probity.domain.faces import FaceBox, FaceRefusal
from probity.domain.jobs import EnrolmentJob, JobKind, JobStatus, RefusedImage
from probity.storage.tables import EnrolmentJobRow


def report_json(report: RefusedImage) -> dict[str, Any]:
    return {
        "line": report.line,
        "path": report.path,
        "subject": report.subject,
        "reason": report.reason,
        "refused_faces": [
            {"box": f.box.as_list(), "reasons": list(f.reasons)} for f in report.refused_faces
        ],
    }


def _report(data: dict[str, Any]) -> RefusedImage:
    return RefusedImage(
        line=data.get("line"),
        path=str(data.get("path", "")),
        subject=str(data.get("subject", "")),
        reason=data.get("reason"),
        refused_faces=tuple(
            FaceRefusal(FaceBox.from_list(f["box"]), tuple(f.get("reasons", ())))
            for f in data.get("refused_faces", ())
        ),
    )


def _job(row: EnrolmentJobRow) -> EnrolmentJob:
    return EnrolmentJob(
        id=row.id,
        gallery_id=row.gallery_id,
        organisation_id=row.organisation_id,
        actor=row.actor,
        kind=JobKind(row.kind),
        manifest=row.manifest,
        status=JobStatus(row.status),
        total=row.total,
        done=row.done,
        enrolled=row.enrolled,
        skipped=row.skipped,
        refused_count=row.refused_count,
        reports=tuple(_report(r) for r in row.reports or ()),
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        interrupted=row.status == JobStatus.INTERRUPTED.value,
    )


UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class Jobs:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, job: EnrolmentJob) -> None:
        self.s.add(
            EnrolmentJobRow(
                id=job.id,
                gallery_id=job.gallery_id,
                organisation_id=job.organisation_id,
                actor=job.actor,
                kind=job.kind.value,
                manifest=job.manifest,
                status=job.status.value,
                total=job.total,
                done=job.done,
                enrolled=job.enrolled,
                skipped=job.skipped,
                refused_count=job.refused_count,
                reports=[report_json(r) for r in job.reports],
                error=job.error,
                created_at=job.created_at,
                updated_at=job.updated_at,
                started_at=job.started_at,
                finished_at=job.finished_at,
            )
        )
        self.s.flush()

    def get(self, job_id: str) -> EnrolmentJob | None:
        row = self.s.get(EnrolmentJobRow, job_id)
        return None if row is None else _job(row)

    def statuses(self, job_ids: Iterable[str]) -> dict[str, EnrolmentJob]:
        ids = list(job_ids)
        if not ids:
            return {}
        rows = self.s.scalars(select(EnrolmentJobRow).where(EnrolmentJobRow.id.in_(ids)))
        return {r.id: _job(r) for r in rows}

    def started(self, job_id: str, *, total: int, at: datetime) -> None:
        self.s.execute(
            update(EnrolmentJobRow)
            .where(EnrolmentJobRow.id == job_id)
            .values(status=JobStatus.RUNNING.value, total=total, started_at=at, updated_at=at)
        )

    def progress(self, job_id: str, *, done: int, total: int, at: datetime) -> None:
        self.s.execute(
            update(EnrolmentJobRow)
            .where(EnrolmentJobRow.id == job_id)
            .values(done=done, total=total, updated_at=at)
        )

    def touch(self, job_ids: Sequence[str], *, at: datetime) -> None:
        """Mark jobs as still alive (queued behind another job in the same process)."""
        if job_ids:
            self.s.execute(
                update(EnrolmentJobRow)
                .where(EnrolmentJobRow.id.in_(list(job_ids)))
                .values(updated_at=at)
            )

    def finished(
        self,
        job_id: str,
        *,
        status: JobStatus,
        done: int,
        enrolled: int,
        skipped: int,
        reports: Sequence[RefusedImage],
        error: str | None,
        at: datetime,
    ) -> None:
        self.s.execute(
            update(EnrolmentJobRow)
            .where(EnrolmentJobRow.id == job_id)
            .values(
                status=status.value,
                done=done,
                enrolled=enrolled,
                skipped=skipped,
                refused_count=sum(1 for r in reports if r.refused),
                reports=[report_json(r) for r in reports],
                error=error,
                updated_at=at,
                finished_at=at,
            )
        )

    def unfinished(self) -> list[EnrolmentJob]:
        """Bulk jobs still queued or running, oldest first."""
        rows = self.s.scalars(
            select(EnrolmentJobRow)
            .where(
                EnrolmentJobRow.kind == JobKind.MANIFEST.value,
                EnrolmentJobRow.status.in_(UNFINISHED),
            )
            .order_by(EnrolmentJobRow.created_at, EnrolmentJobRow.id)
        )
        return [_job(r) for r in rows]

    def interrupted(self, job_id: str, *, error: str, at: datetime) -> bool:
        """Mark a queued or running job INTERRUPTED; False if it had ended meanwhile (its
        process finished it after all), in which case nothing changes."""
        result = self.s.execute(
            update(EnrolmentJobRow)
            .where(EnrolmentJobRow.id == job_id, EnrolmentJobRow.status.in_(UNFINISHED))
            .values(status=JobStatus.INTERRUPTED.value, error=error, updated_at=at, finished_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    def for_gallery(
        self, gallery_id: str, *, kind: JobKind | None = None, limit: int = 20
    ) -> list[EnrolmentJob]:
        """The gallery's jobs, newest first."""
        query = select(EnrolmentJobRow).where(EnrolmentJobRow.gallery_id == gallery_id)
        if kind is not None:
            query = query.where(EnrolmentJobRow.kind == kind.value)
        rows = self.s.scalars(
            query.order_by(EnrolmentJobRow.created_at.desc(), EnrolmentJobRow.id).limit(limit)
        )
        return [_job(r) for r in rows]

    def with_refusals(self, gallery_id: str, *, limit: int) -> list[EnrolmentJob]:
        """The gallery's finished jobs that refused something, newest first."""
        rows = self.s.scalars(
            select(EnrolmentJobRow)
            .where(EnrolmentJobRow.gallery_id == gallery_id, EnrolmentJobRow.refused_count > 0)
            .order_by(EnrolmentJobRow.finished_at.desc(), EnrolmentJobRow.id)
            .limit(limit)
        )
        return [_job(r) for r in rows]

    def forget_subject(self, gallery_id: str, reference: str) -> int:
        """Drop every report about ``reference`` from the gallery's jobs, for an erasure in
        the caller's transaction; returns how many were dropped. (The job's counts of
        enrolled and skipped rows stay: they name no one.)"""
        dropped = 0
        rows = self.s.scalars(
            select(EnrolmentJobRow).where(EnrolmentJobRow.gallery_id == gallery_id)
        )
        for row in rows:
            reports = list(row.reports or ())
            kept = [r for r in reports if r.get("subject") != reference]
            if len(kept) != len(reports):
                dropped += len(reports) - len(kept)
                row.reports = kept
                row.refused_count = sum(1 for r in kept if r.get("reason") is not None)
        self.s.flush()
        return dropped

    def count(self, gallery_id: str | None = None) -> int:
        query = select(func.count()).select_from(EnrolmentJobRow)
        if gallery_id is not None:
            query = query.where(EnrolmentJobRow.gallery_id == gallery_id)
        return int(self.s.scalar(query) or 0)

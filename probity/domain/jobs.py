"""Enrolment jobs: a bulk upload (a manifest and its images) enrolled in the background, and
the record of what was refused and why.

A job's record holds no biometric data: manifest paths, subject references, reasons and face
boxes only. The images themselves live, sealed, in a private staging folder while the job
runs and are removed when it ends; what was enrolled is in the encrypted blob store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from probity.domain.faces import FaceRefusal


class JobStatus(StrEnum):
    QUEUED = "queued"  # accepted, waiting for this process's job thread
    RUNNING = "running"
    DONE = "done"  # every row enrolled, skipped or refused (with its reason)
    FAILED = "failed"  # stopped early: rows written before the failure stay written
    # The process running it died (a crash, a kill, a restart); marked so at the next start.
    # Rows written before stay written; uploading the same files again resumes it.
    INTERRUPTED = "interrupted"


class JobKind(StrEnum):
    MANIFEST = "manifest"  # a bulk upload: a CSV manifest and the images it names
    SINGLE = "single"  # one image refused from the single-enrolment form (kept for the list)


@dataclass(frozen=True, slots=True)
class RefusedImage:
    """One image the job reports on: refused (``reason`` says why), or enrolled while other
    faces in it were below the gallery's quality floor (``reason`` None, ``refused_faces``
    set). ``line`` is the manifest line (header = line 1); None for a single upload."""

    line: int | None
    path: str  # as written in the manifest, or the uploaded file's name
    subject: str
    reason: str | None
    refused_faces: tuple[FaceRefusal, ...] = ()

    @property
    def refused(self) -> bool:
        return self.reason is not None


@dataclass(frozen=True, slots=True)
class EnrolmentJob:
    """A job as recorded. ``interrupted``: its status is INTERRUPTED, or it is queued or
    running but has not been updated for a while (the process running it has stopped, and
    no start has marked it yet: a job of another machine, say)."""

    id: str
    gallery_id: str
    organisation_id: str | None
    actor: str
    kind: JobKind
    manifest: str  # the manifest's file name as uploaded
    status: JobStatus
    total: int  # manifest rows
    done: int  # rows finished (enrolled, skipped or refused)
    enrolled: int
    skipped: int  # already enrolled (same subject, same image bytes)
    refused_count: int
    reports: tuple[RefusedImage, ...]
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    interrupted: bool = False

    @property
    def active(self) -> bool:
        """Still to be polled: queued or running, and not interrupted."""
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING) and not self.interrupted

    @property
    def percent(self) -> int:
        """Rows finished, as a whole percentage (100 once done, also for an empty job)."""
        if self.status is JobStatus.DONE or self.total == 0:
            return 100 if self.status is JobStatus.DONE else 0
        return min(100, self.done * 100 // self.total)

    @property
    def refused(self) -> tuple[RefusedImage, ...]:
        """The rows that were refused, in manifest order."""
        return tuple(r for r in self.reports if r.refused)

    @property
    def faces_refused(self) -> tuple[RefusedImage, ...]:
        """Enrolled rows in which the quality floor refused some other face."""
        return tuple(r for r in self.reports if not r.refused and r.refused_faces)

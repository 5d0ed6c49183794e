"""Bulk enrolment jobs for the web pages and the API: a CSV manifest and the images it names
are uploaded, staged, and enrolled in the background while the page polls the progress.

- **Staging, sealed.** The upload is copied into ``<home>/staging/<job id>/`` (folders 0700,
  files 0600): the manifest under its own name, every image it names as
  ``images/NNNNN.img``. Images the manifest does not name are never written. Every staged
  file is sealed (AES-256-GCM, its job id and file name bound in) under a fresh key that
  exists only in the memory of the process that accepted the job; it is never written
  anywhere, so no staged image or manifest is ever on disk in the clear. The folder is
  removed when the job ends, whether it succeeds or fails: the images are biometric data,
  and only the encrypted blob store may keep them.
- **Owner lock.** While it holds a job, the process that accepted it holds an exclusive
  ``flock`` on ``<home>/staging/<job id>.lock``, taken before the folder is made and let go
  after it is removed. The kernel lets go of it when the process dies, also on SIGKILL, so
  any process can tell a live job from one whose process is gone without trusting clocks or
  pids.
- **What a crash leaves, and for how long.** A process that dies mid-job (a crash, a kill,
  a power cut) leaves its job's folder of *sealed* files, whose key died with the process:
  ciphertext that nothing can open any more. It is removed, and the job marked
  ``interrupted``, at the next start of the server (``recover``, called by the API app at
  start-up) or at the next upload by any process on this home (``_sweep``), whichever comes
  first. A job of another machine (no folder or lock here) is marked ``interrupted`` by the
  next start once it has not been updated for ``STALE_AFTER``.
- **Paths.** Manifest rows are matched to uploaded files by file name only (browsers send
  no folders), and the staged copy of the manifest names the staged files: a manifest path
  such as ``/etc/passwd`` or ``../master.key`` never reaches the file system.
- **Checks before anything is staged**: the right to enrol in the gallery, the manifest's
  columns, at most ``max_files`` images and manifest rows, no two images with the same name,
  every named image uploaded, every image at most ``max_upload_bytes``. Each failure is a
  ProbityError naming what to fix; nothing runs.
- **Running.** One job thread per process runs the jobs it accepted, one at a time, in
  order (face analysis already uses ``engine.workers`` processes inside a job, so running
  two jobs at once would not be faster). Progress and results are written to the
  ``enrolment_jobs`` table, so any API process can answer the poll.
- **Interruptions.** A job whose process died has status ``interrupted`` once a start or
  an upload has found it (above); until then, a job that is queued or running but has not
  been updated for ``STALE_AFTER`` is *shown* as interrupted. Its staged files cannot be
  reopened (their key is gone), so it is resumed by uploading the same manifest and images
  again: rows already enrolled are skipped before any face analysis, so the new job enrols
  only what the interrupted one had not, with no duplicate enrolments.
- **What is recorded** holds no biometric data: manifest paths, subject references, reasons
  and face boxes. Single images refused through the web form are recorded the same way
  (a job of kind ``single``), so the gallery's list of refused images shows both.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from probity.domain.accounts import Action
from probity.domain.gallery import Gallery
from probity.domain.ids import new_id
from probity.domain.jobs import EnrolmentJob, JobKind, JobStatus, RefusedImage
from probity.errors import (
    ImageTooLarge,
    IntegrityError,
    InvalidInput,
    JobNotFound,
    ManifestError,
    ProbityError,
    TooManyFiles,
)
from probity.services.access import Who, name_of, organisation_id_of
from probity.services.clock import Clock
from probity.services.enrolment import BulkSummary, EnrolmentService, EnrolOutcome, RowStatus
from probity.services.galleries import GalleryService
from probity.services.manifest import REQUIRED_COLUMNS
from probity.storage.db import Database
from probity.storage.jobs import Jobs
from probity.storage.keyring import new_data_key, seal, unseal

log = logging.getLogger("probity.jobs")

STALE_AFTER = timedelta(minutes=5)
"""A queued or running job not updated for this long is shown as interrupted. The job thread
writes progress at least every PROGRESS_EVERY_S while rows finish; one row takes seconds at
most (the CNN detector on a large photo), so five minutes of silence means the process has
stopped."""

PROGRESS_EVERY_S = 0.5
"""Seconds between progress writes: often enough for a 1 s poll, rarely enough that a
2,000-row job does not spend its time updating one row."""

COPY_CHUNK = 1024 * 1024  # bytes read at a time when staging an upload

SEAL_OVERHEAD = 64
"""Bytes a sealed staged file may have beyond its plain size (format byte, nonce and tag are
29; the rest is margin)."""

INTERRUPTED_ERROR = (
    "the server stopped before this upload finished; upload the same manifest and images "
    "again to resume (rows already enrolled are skipped)"
)
"""The ``error`` an interrupted job records, for the API and the pages."""

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")


@dataclass(frozen=True, slots=True)
class _Pending:
    job_id: str
    actor: Who
    gallery: str
    folder: Path
    manifest: Path
    paths: dict[int, str]  # manifest line -> the path as the manifest wrote it
    key: bytes  # seals the staged files; in this process's memory only
    lock: int  # the file descriptor holding the job's owner lock


@dataclass(frozen=True, slots=True)
class _SealedFiles:
    """Reads a job's sealed staged files (``EnrolmentService.enrol_manifest``'s ``read``).
    Errors are ProbityErrors, so a file that cannot be opened refuses its row only."""

    folder: Path
    job_id: str
    key: bytes
    max_bytes: int

    def seal(self, target: Path, data: bytes) -> None:
        """Write ``data`` sealed to ``target`` (a new file, 0600) inside the folder."""
        sealed = seal(self.key, data, self._aad(target))
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(sealed)

    def __call__(self, path: Path) -> bytes:
        aad = self._aad(path)
        try:
            if path.stat().st_size > self.max_bytes + SEAL_OVERHEAD:
                raise ImageTooLarge(f"{path.name} is larger than {self.max_bytes} bytes")
            sealed = path.read_bytes()
        except FileNotFoundError:
            raise InvalidInput(f"cannot read {path.name}: file not found") from None
        except OSError as exc:
            raise InvalidInput(f"cannot read {path.name}: {exc.strerror or exc}") from None
        return unseal(self.key, sealed, aad)

    def _aad(self, path: Path) -> bytes:
        try:
            name = path.relative_to(self.folder).as_posix()
        except ValueError:
            raise IntegrityError(f"{path.name} is not a staged file of this job") from None
        return f"probity/staging/{self.job_id}/{name}".encode()


class EnrolmentJobs:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        galleries: GalleryService,
        enrolment: EnrolmentService,
        staging_dir: Path,
        max_files: int,
        max_upload_bytes: int,
        stale_after: timedelta = STALE_AFTER,
    ) -> None:
        self.db = db
        self.clock = clock
        self.galleries = galleries
        self.enrolment = enrolment
        self.staging_dir = staging_dir
        self.max_files = max_files
        self.max_upload_bytes = max_upload_bytes
        self.stale_after = stale_after
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ours: dict[str, threading.Event] = {}  # jobs this process accepted, not ended

    # -- starting ----------------------------------------------------------------------------

    def check_upload(self, *, actor: Who, gallery: str) -> Gallery:
        """The gallery, if ``actor`` may enrol in it (NotPermitted / GalleryNotFound
        otherwise): the pages and the API ask before they read a large request body."""
        return self.galleries.get(gallery, actor=actor, action=Action.ENROL)

    def start(
        self,
        *,
        actor: Who,
        gallery: str,
        manifest_name: str,
        manifest: bytes,
        images: Iterable[tuple[str, BinaryIO]],
    ) -> EnrolmentJob:
        """Check and stage an upload, queue its job and return it (status ``queued``).

        ``images`` are (file name, readable binary stream) pairs; only the file name is used
        to match manifest rows, folders in it are ignored. Raises, before anything is staged
        or run: NotPermitted, GalleryNotFound, ManifestError (columns, no rows, unreadable,
        a named image not uploaded), TooManyFiles (more than ``max_files`` images or rows),
        InvalidInput (two images with the same name), ImageTooLarge (an image over
        ``max_upload_bytes``)."""
        target = self.check_upload(actor=actor, gallery=gallery)
        header, rows = self._parse_manifest(manifest)
        uploads = self._uploads_by_name(images)
        wanted = self._named_files(rows, uploads)
        self._sweep()
        job_id = new_id()
        folder = self.staging_dir / job_id
        _private_dir(self.staging_dir)
        # The owner lock before the folder: a folder whose lock is free has no live owner.
        lock = _try_lock(self._lock_path(job_id))
        if lock is None:  # a fresh id: only a broken file system gets here
            raise IntegrityError(f"the staging lock of job {job_id} is already held")
        files = _SealedFiles(folder, job_id, new_data_key(), self.max_upload_bytes)
        try:
            _private_dir(folder)
            _private_dir(folder / "images")
            staged = {
                name: self._stage(files, uploads[name], folder / "images" / f"{n:05d}.img", name)
                for n, name in enumerate(sorted(wanted), start=1)
            }
            manifest_path = folder / _safe_manifest_name(manifest_name)
            paths = self._write_manifest(files, manifest_path, header, rows, staged)
            now = self.clock()
            job = EnrolmentJob(
                id=job_id,
                gallery_id=target.id,
                organisation_id=organisation_id_of(actor),
                actor=name_of(actor),
                kind=JobKind.MANIFEST,
                manifest=manifest_path.name,
                status=JobStatus.QUEUED,
                total=len(rows),
                done=0,
                enrolled=0,
                skipped=0,
                refused_count=0,
                reports=(),
                error=None,
                created_at=now,
                updated_at=now,
            )
            with self.db.transaction() as session:
                Jobs(session).add(job)
        except BaseException:
            self._release(job_id, folder, lock)
            raise
        self._submit(
            _Pending(job_id, actor, target.name, folder, manifest_path, paths, files.key, lock)
        )
        return job

    def _parse_manifest(self, data: bytes) -> tuple[list[str], list[dict[str, str]]]:
        """The manifest's header and rows, checked as ``services.manifest.read_manifest``
        checks a file (the job reads its staged copy with that function)."""
        if len(data) > self.max_upload_bytes:
            raise ManifestError(f"the manifest is larger than {self.max_upload_bytes} bytes")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"the manifest is not UTF-8 text: {exc}") from None
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""))
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise ManifestError(f"the manifest lacks column(s): {', '.join(missing)}")
            rows: list[dict[str, str]] = []
            for raw in reader:
                rows.append({(k or "").strip(): (v or "").strip() for k, v in raw.items() if k})
                if len(rows) > self.max_files:
                    raise TooManyFiles(
                        f"the manifest has more than {self.max_files} rows; split it into "
                        "several manifests"
                    )
        except csv.Error as exc:
            raise ManifestError(f"the manifest is not valid CSV: {exc}") from None
        if not rows:
            raise ManifestError("the manifest has a header but no rows")
        return header, rows

    def _uploads_by_name(self, images: Iterable[tuple[str, BinaryIO]]) -> dict[str, BinaryIO]:
        uploads: dict[str, BinaryIO] = {}
        count = 0
        for filename, stream in images:
            name = _base_name(filename)
            if not name:
                continue  # a file input left empty sends one nameless, empty part
            count += 1
            if count > self.max_files:
                raise TooManyFiles(
                    f"at most {self.max_files} images in one upload; split the manifest into "
                    "several uploads"
                )
            if name in uploads:
                raise InvalidInput(
                    f"two uploaded images are called {name!r}; the manifest names images by "
                    "file name, so each must be unique"
                )
            uploads[name] = stream
        return uploads

    @staticmethod
    def _named_files(rows: Sequence[dict[str, str]], uploads: Mapping[str, BinaryIO]) -> set[str]:
        """The uploaded file names the manifest's rows name; ManifestError for any it names
        that were not uploaded."""
        wanted: set[str] = set()
        missing: list[str] = []
        for line, row in enumerate(rows, start=2):
            name = _base_name(row.get("path", ""))
            if not name:
                continue  # refused by the job with read_manifest's reason
            if name in uploads:
                wanted.add(name)
            else:
                missing.append(f"{row['path']} (line {line})")
        if missing:
            shown = ", ".join(missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            raise ManifestError(
                f"the manifest names {len(missing)} image(s) that were not uploaded: {shown}; "
                "choose them too, or remove their rows"
            )
        return wanted

    def _stage(self, files: _SealedFiles, source: BinaryIO, target: Path, name: str) -> Path:
        """Copy one upload, sealed, into the staging folder (0600), refusing it past the size
        limit. The image is read into memory (at most ``max_upload_bytes``) and sealed
        there: its bytes never reach the disk in the clear."""
        data = bytearray()
        while chunk := source.read(COPY_CHUNK):
            data += chunk
            if len(data) > self.max_upload_bytes:
                raise ImageTooLarge(
                    f"{name} is larger than {self.max_upload_bytes} bytes, the limit for one image"
                )
        files.seal(target, bytes(data))
        return target

    @staticmethod
    def _write_manifest(
        files: _SealedFiles,
        target: Path,
        header: list[str],
        rows: Sequence[dict[str, str]],
        staged: Mapping[str, Path],
    ) -> dict[int, str]:
        """Write the staged manifest, sealed: the same rows in the same order (so line
        numbers in the job, the audit event and the curator's file agree), each path
        replaced by the staged file's. Returns line -> the path as the curator wrote it."""
        paths: dict[int, str] = {}
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for line, row in enumerate(rows, start=2):
            paths[line] = row.get("path", "")
            name = _base_name(paths[line])
            relative = staged[name].relative_to(target.parent).as_posix() if name else ""
            writer.writerow({**row, "path": relative})
        files.seal(target, out.getvalue().encode("utf-8"))
        return paths

    # -- running -----------------------------------------------------------------------------

    def _submit(self, pending: _Pending) -> None:
        with self._lock:
            self._ours[pending.job_id] = threading.Event()
            if self._thread is None or not self._thread.is_alive():
                # A daemon: a server that stops does not wait for a long job; the next start
                # marks it interrupted, and uploading again resumes it.
                self._thread = threading.Thread(
                    target=self._work, name="probity-enrolment-jobs", daemon=True
                )
                self._thread.start()
        self._queue.put(pending)

    def _work(self) -> None:
        while True:
            pending = self._queue.get()
            try:
                self._run(pending)
            except Exception:  # never let one job stop the thread
                log.exception("enrolment job %s failed", pending.job_id)
            finally:
                with self._lock:
                    ended = self._ours.pop(pending.job_id, None)
                if ended is not None:
                    ended.set()

    def _run(self, pending: _Pending) -> None:
        job_id = pending.job_id
        try:
            with self.db.transaction() as session:
                Jobs(session).started(job_id, total=len(pending.paths), at=self.clock())
            last = [0.0]

            def on_progress(done: int, total: int) -> None:
                now = time.monotonic()
                if done < total and now - last[0] < PROGRESS_EVERY_S:
                    return
                last[0] = now
                with self.db.transaction() as session:
                    jobs = Jobs(session)
                    at = self.clock()
                    jobs.progress(job_id, done=done, total=total, at=at)
                    jobs.touch(self._waiting(job_id), at=at)

            summary = self.enrolment.enrol_manifest(
                actor=pending.actor,
                gallery=pending.gallery,
                manifest=pending.manifest,
                on_progress=on_progress,
                read=_SealedFiles(pending.folder, job_id, pending.key, self.max_upload_bytes),
            )
            reports = _reports(summary, pending)
            with self.db.transaction() as session:
                Jobs(session).finished(
                    job_id,
                    status=JobStatus.DONE,
                    done=len(summary.rows),
                    enrolled=summary.count(RowStatus.ENROLLED),
                    skipped=summary.count(RowStatus.SKIPPED),
                    reports=reports,
                    error=None,
                    at=self.clock(),
                )
        except Exception as exc:
            message = (
                exc.message
                if isinstance(exc, ProbityError)
                else f"internal error ({type(exc).__name__}); the server log has the details"
            )
            self._fail(job_id, message)
            if not isinstance(exc, ProbityError):
                raise
        finally:
            self._release(job_id, pending.folder, pending.lock)
            # One line per job end (done or failed; its row says which): an operator's
            # trace, and what the crash tests wait on instead of polling the job.
            log.info("enrolment job %s ended", job_id)

    def _fail(self, job_id: str, message: str) -> None:
        try:
            with self.db.transaction() as session:
                jobs = Jobs(session)
                current = jobs.get(job_id)
                jobs.finished(
                    job_id,
                    status=JobStatus.FAILED,
                    done=current.done if current else 0,
                    enrolled=0,
                    skipped=0,
                    reports=(),
                    error=message,
                    at=self.clock(),
                )
        except Exception:
            log.exception("could not record the failure of enrolment job %s", job_id)

    def _waiting(self, running: str) -> list[str]:
        with self._lock:
            return [j for j in self._ours if j != running]

    def _lock_path(self, job_id: str) -> Path:
        return self.staging_dir / f"{job_id}.lock"

    def _release(self, job_id: str, folder: Path, lock: int) -> None:
        """End a job's staging: remove its folder, then its lock file, then let go of the
        lock (in that order, so whoever gets the lock next finds nothing left to remove)."""
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self._lock_path(job_id).unlink()
        os.close(lock)

    def recover(self) -> list[str]:
        """At start (the API app calls it once at start-up): mark ``interrupted`` the jobs
        whose process died, and remove what they left in staging. Returns the ids of the
        jobs marked.

        A job with a folder or lock file here is judged by its owner lock (free: the owner
        is gone). A queued or running job with neither here was staged by another machine
        sharing this database, or its folder was removed by hand; it is marked once it has
        not been updated for ``stale_after``. Safe to run at any time, in any number of
        processes: a live job's lock is held, and a job that ended is never re-marked."""
        marked = self._sweep()
        with self._lock:
            ours = set(self._ours)
        with self.db.read() as session:
            unfinished = [j for j in Jobs(session).unfinished() if j.id not in ours]
        now = self.clock()
        for job in unfinished:
            if job.id in marked:
                continue
            here = (self.staging_dir / job.id).exists() or self._lock_path(job.id).exists()
            if here or now - job.updated_at <= self.stale_after:
                continue  # a live owner here (the sweep left it), or too recent to judge
            if self._mark_interrupted(job.id):
                marked.append(job.id)
        return marked

    def _mark_interrupted(self, job_id: str) -> bool:
        with self.db.transaction() as session:
            done = Jobs(session).interrupted(job_id, error=INTERRUPTED_ERROR, at=self.clock())
        if done:
            log.warning("enrolment job %s was interrupted: its process stopped", job_id)
        return done

    def _sweep(self) -> list[str]:
        """Remove what dead jobs left in staging, and mark those jobs ``interrupted``;
        returns the ids marked. Jobs accepted by this process, and jobs whose owner lock
        another live process holds, are left alone.

        A folder without a lock file (staged before owner locks existed, or made by hand)
        is judged as before: removed when its job has ended or reads as interrupted, or,
        with no job row, once it is older than ``stale_after``."""
        if not self.staging_dir.is_dir():
            return []
        with self._lock:
            ours = set(self._ours)
        entries = {p.name: p for p in self.staging_dir.iterdir()}
        marked: list[str] = []
        unlocked: dict[str, Path] = {}  # folders without a lock file
        for name, path in entries.items():
            job_id = name.removesuffix(".lock")
            if job_id in ours or (name.endswith(".lock") and job_id in entries):
                continue  # ours, or a lock file that its folder's turn below handles
            if not name.endswith(".lock") and f"{name}.lock" not in entries:
                unlocked[name] = path
                continue
            lock = _try_lock(self._lock_path(job_id))
            if lock is None:
                continue  # a live process holds the job
            try:
                # Its owner is gone: whatever it left goes, and its job, if still queued or
                # running, was interrupted.
                if self._mark_interrupted(job_id):
                    marked.append(job_id)
            finally:
                self._release(job_id, self.staging_dir / job_id, lock)
        if unlocked:
            self._sweep_unlocked(unlocked)
        return marked

    def _sweep_unlocked(self, folders: Mapping[str, Path]) -> None:
        with self.db.read() as session:
            known = Jobs(session).statuses(folders)
        for name, folder in folders.items():
            job = known.get(name)
            if job is None:
                # Another process may be staging it and not have saved its job yet.
                with contextlib.suppress(OSError):
                    age_s = time.time() - folder.stat().st_mtime
                    if age_s > self.stale_after.total_seconds():
                        shutil.rmtree(folder, ignore_errors=True)
            elif not self._seen(job).active:
                shutil.rmtree(folder, ignore_errors=True)

    def wait(self, job_id: str, timeout_s: float = 60.0) -> bool:
        """Block until a job this process accepted has ended (True), or ``timeout_s`` seconds
        pass (False). Jobs of other processes, or already ended, return True at once."""
        with self._lock:
            event = self._ours.get(job_id)
        return True if event is None else event.wait(timeout_s)

    # -- reading -----------------------------------------------------------------------------

    def get(self, job_id: str, *, actor: Who, gallery: str) -> EnrolmentJob:
        """A job of ``gallery``, for those who may read the gallery; JobNotFound for another
        gallery's (or organisation's) job."""
        target = self.galleries.get(gallery, actor=actor)
        with self.db.read() as session:
            job = Jobs(session).get(job_id)
        if job is None or job.gallery_id != target.id:
            raise JobNotFound(f"no upload job {job_id!r} in gallery '{gallery}'")
        return self._seen(job)

    def recent(self, *, actor: Who, gallery: str, limit: int = 10) -> list[EnrolmentJob]:
        """The gallery's latest bulk uploads, newest first."""
        target = self.galleries.get(gallery, actor=actor)
        with self.db.read() as session:
            jobs = Jobs(session).for_gallery(target.id, kind=JobKind.MANIFEST, limit=limit)
        return [self._seen(j) for j in jobs]

    def refused_images(
        self, *, actor: Who, gallery: str, limit: int = 200
    ) -> list[tuple[EnrolmentJob, RefusedImage]]:
        """Images refused in ``gallery`` (bulk rows and single uploads through the pages),
        newest job first, rows in manifest order within a job; at most ``limit``."""
        target = self.galleries.get(gallery, actor=actor)
        with self.db.read() as session:
            jobs = Jobs(session).with_refusals(target.id, limit=limit)
        found = [(job, r) for job in jobs for r in job.refused]
        return found[:limit]

    def _seen(self, job: EnrolmentJob) -> EnrolmentJob:
        stale = self.clock() - job.updated_at > self.stale_after
        if job.status in (JobStatus.QUEUED, JobStatus.RUNNING) and stale:
            return replace(job, interrupted=True)
        return job

    # -- single images -----------------------------------------------------------------------

    def enrol_one(
        self,
        *,
        actor: Who,
        gallery: str,
        subject: str,
        image: BinaryIO,
        filename: str,
        provenance: Mapping[str, str | None],
    ) -> EnrolOutcome:
        """Enrol one uploaded image (read up to ``max_upload_bytes``) through
        ``EnrolmentService.enrol``; if the image is refused (any InvalidInput: provenance,
        image, face, quality), the refusal is recorded for the gallery's list, then raised."""
        target = self.check_upload(actor=actor, gallery=gallery)
        try:
            data = image.read(self.max_upload_bytes + 1)
            if len(data) > self.max_upload_bytes:
                raise ImageTooLarge(
                    f"the image is larger than {self.max_upload_bytes} bytes, the limit"
                )
            return self.enrolment.enrol(
                actor=actor, gallery=gallery, subject=subject, image=data, provenance=provenance
            )
        except InvalidInput as exc:
            self._record_refusal(actor, target, filename, subject, exc.message)
            raise

    def _record_refusal(
        self, actor: Who, gallery: Gallery, filename: str, subject: str, reason: str
    ) -> None:
        now = self.clock()
        report = RefusedImage(None, _base_name(filename)[:200], subject.strip()[:200], reason)
        job = EnrolmentJob(
            id=new_id(),
            gallery_id=gallery.id,
            organisation_id=organisation_id_of(actor),
            actor=name_of(actor),
            kind=JobKind.SINGLE,
            manifest="",
            status=JobStatus.DONE,
            total=1,
            done=1,
            enrolled=0,
            skipped=0,
            refused_count=1,
            reports=(report,),
            error=None,
            created_at=now,
            updated_at=now,
            started_at=now,
            finished_at=now,
        )
        with self.db.transaction() as session:
            Jobs(session).add(job)


def _reports(summary: BulkSummary, pending: _Pending) -> list[RefusedImage]:
    """Refused rows and rows with refused faces, named as the curator's manifest names them
    (never by the staging path)."""
    prefix = str(pending.folder) + os.sep
    reports: list[RefusedImage] = []
    for row in summary.rows:
        outcome = row.outcome
        if outcome.status is not RowStatus.REFUSED and not outcome.refused_faces:
            continue
        reason = outcome.reason if outcome.status is RowStatus.REFUSED else None
        if reason is not None:
            reason = reason.replace(prefix, "") or "refused"
        reports.append(
            RefusedImage(
                line=row.line,
                path=pending.paths.get(row.line, ""),
                subject=row.subject,
                reason=reason,
                refused_faces=outcome.refused_faces,
            )
        )
    return reports


def _base_name(path: str) -> str:
    """The file name at the end of a path written with / or \\ (browsers send names only;
    a manifest may say photos/a.jpg)."""
    return path.replace("\\", "/").rsplit("/", 1)[-1].strip()


def _safe_manifest_name(name: str) -> str:
    """The uploaded manifest's name, reduced to safe characters and ending in .csv; it is
    what the bulk audit event records."""
    cleaned = _SAFE_NAME.sub("_", _base_name(name))[:100].strip(" .") or "manifest"
    return cleaned if cleaned.lower().endswith(".csv") else f"{cleaned}.csv"


def _try_lock(path: Path) -> int | None:
    """A file descriptor holding an exclusive ``flock`` on ``path`` (created 0600 if need
    be), or None when another open file holds it (another process, or another job of this
    one). The lock goes with the descriptor: closed, or the process dead."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask; staging must be 0700

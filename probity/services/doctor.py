"""``probity doctor``: find, and unless asked only to check, repair what a crash or an
interrupted erasure can leave in a home. Each check says what it found and what it did.

- **pending erasure work**: journal rows of committed erasures not yet completed
  (``services/erasure_work.py``) → completed (indexes, blobs, retired key files, WAL);
- **index gaps**: index files behind the template log (``IndexSet.gaps``) → caught up and
  resealed (``IndexSet.refresh_all``);
- **retired key files**: key-encryption key files of epochs below the database's current
  one → shredded (overwritten, then deleted). Left on disk, one would open data keys of a
  copy of the database taken before an erasure, the erased person's included;
- **leftover key files**: of an epoch above the current one (a rotation that rolled back or
  died before its commit), and half-written ones (``kek-N.tmp``) → removed. The key files
  are judged under the key epoch's row lock, so a rotation in progress is never mistaken for
  a dead one;
- **orphan blobs**: files in the blob store that no row refers to (an enrolment's image, a
  case's probe, a rights request's photo), and half-written blob files → deleted, but only
  those older than a grace period (``DEFAULT_GRACE``), so that a blob written for an
  enrolment or a search whose transaction has not committed yet is never touched. The files
  are listed before the references are read, for the same reason;
- **stale staging**: bulk-upload staging folders and owner locks of jobs whose process is
  gone (their owner lock is free) → removed, and their jobs marked interrupted, by the same
  code the server runs at start (``EnrolmentJobs.recover``).

The order of the repairs matters: erasure work and index catch-up come before the key files,
so index files sealed under a retired key are resealed before that key is destroyed.

Cost: the orphan check holds every referenced blob id in memory (about 100 bytes each: 1 GB
for ten million enrolments) and lists the blob store once; the rest is small. A repair run is
audited (``doctor.repair``) with the counts; a check is not (it changes nothing).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from probity.domain.audit import AuditAction, AuditRecord
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.erasure_work import ErasureWork, IndexCatchUp
from probity.services.jobs import EnrolmentJobs
from probity.storage.db import Database
from probity.storage.tables import EnrolmentRow, KeyringStateRow, ProbeRow, RightsRequestRow
from probity.storage.vault import Vault

DEFAULT_GRACE = timedelta(minutes=10)
"""How old a blob file must be before the doctor may call it an orphan: far longer than any
enrolment or search takes between writing its blob and committing the row that names it."""

_BLOB_ID = re.compile(r"^[0-9a-f]{32,64}$")  # as storage/blobs.py names blob files
_KEY_FILE = re.compile(r"^kek-(\d+)\.(key|tmp)$")  # as storage/keyring.py names KEK files


class FindingKind(StrEnum):
    PENDING_ERASURE = "pending-erasure"
    INDEX_GAP = "index-gap"
    RETIRED_KEY = "retired-key"
    LEFTOVER_KEY = "leftover-key"
    ORPHAN_BLOB = "orphan-blob"
    STALE_STAGING = "stale-staging"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found: ``what`` names it (a journal row, a slot, a file, a job id),
    ``detail`` says why it is wrong, ``action`` what was done (or needs doing)."""

    kind: FindingKind
    what: str
    detail: str
    repaired: bool
    action: str

    def line(self) -> str:
        return f"{self.kind.value}: {self.what} ({self.detail}): {self.action}"

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "what": self.what,
            "detail": self.detail,
            "repaired": self.repaired,
            "action": self.action,
        }


@dataclass(frozen=True, slots=True)
class DoctorReport:
    at: datetime
    repair: bool
    grace: timedelta
    findings: tuple[Finding, ...]

    @property
    def needs_repair(self) -> bool:
        """Something found is still wrong (a check, or a repair that could not finish)."""
        return any(not f.repaired for f in self.findings)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.kind.value] = out.get(f.kind.value, 0) + 1
        return out

    def summary(self) -> str:
        if not self.findings:
            return "Nothing to repair: the home is in order."
        repaired = sum(1 for f in self.findings if f.repaired)
        if not self.repair:
            return f"{len(self.findings)} finding(s) need repair (run 'probity doctor')."
        left = len(self.findings) - repaired
        tail = f", {left} left (see above)" if left else ""
        return f"{len(self.findings)} finding(s), {repaired} repaired{tail}."

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "repair": self.repair,
            "grace_minutes": self.grace.total_seconds() / 60,
            "needs_repair": self.needs_repair,
            "counts": self.counts(),
            "findings": [f.as_dict() for f in self.findings],
        }


class DoctorService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        audit: AuditService,
        vault: Vault,
        indexes: IndexCatchUp,
        work: ErasureWork,
        jobs: EnrolmentJobs,
        blob_dir: Path,
    ) -> None:
        self.db = db
        self.clock = clock
        self.audit = audit
        self.vault = vault
        self.indexes = indexes
        self.work = work
        self.jobs = jobs
        self.blob_dir = blob_dir

    def run(
        self, *, actor: str, repair: bool = True, grace: timedelta = DEFAULT_GRACE
    ) -> DoctorReport:
        """Run every check; with ``repair``, repair what each finds (in the order of the
        module docstring). ``actor`` is the local operator (the CLI): the doctor works on
        the whole home's files, which no server account may."""
        findings: list[Finding] = []
        findings += self._erasure_work(repair)
        findings += self._index_gaps(repair)
        findings += self._key_files(repair)
        findings += self._orphan_blobs(repair, grace)
        findings += self._staging(repair)
        report = DoctorReport(at=self.clock(), repair=repair, grace=grace, findings=tuple(findings))
        if repair:
            self.audit.record_alone(
                AuditRecord(
                    actor=actor,
                    action=AuditAction.DOCTOR_REPAIR,
                    details={
                        "found": report.counts(),
                        "repaired": sum(1 for f in findings if f.repaired),
                        "left": sum(1 for f in findings if not f.repaired),
                        "grace_minutes": grace.total_seconds() / 60,
                    },
                )
            )
        return report

    # -- the checks ---------------------------------------------------------------------------

    def _erasure_work(self, repair: bool) -> list[Finding]:
        pending = self.work.pending()
        if not repair:
            return [_needs(FindingKind.PENDING_ERASURE, w.id, w.describe()) for w in pending]
        done = set(self.work.complete(pending).done)  # one index catch-up for them all
        return [
            Finding(
                FindingKind.PENDING_ERASURE,
                w.id,
                w.describe(),
                w.id in done,
                "completed: indexes caught up and resealed, blobs deleted, retired key files "
                "shredded, WAL truncated"
                if w.id in done
                else "left: the write-ahead log is busy (a reader); run again",
            )
            for w in pending
        ]

    def _index_gaps(self, repair: bool) -> list[Finding]:
        gaps = self.indexes.gaps()
        if not gaps:
            return []
        if not repair:
            return [
                _needs(FindingKind.INDEX_GAP, slot, f"{n} change(s) behind") for slot, n in gaps
            ]
        self.indexes.refresh_all()
        still = dict(self.indexes.gaps())
        return [
            Finding(
                FindingKind.INDEX_GAP,
                slot,
                f"{n} change(s) behind",
                slot not in still,
                "caught up and resealed" if slot not in still else f"still {still[slot]} behind",
            )
            for slot, n in gaps
        ]

    def _key_files(self, repair: bool) -> list[Finding]:
        key_dir = self.vault.keyring.key_dir
        if key_dir is None or not key_dir.is_dir():
            return []
        # Under the epoch's row lock (SQLite: the write lock), so no rotation is between
        # writing its new key file and committing: a file above the epoch is a dead one's.
        with self.db.transaction() as session:
            current = _current_epoch(session)
            out = []
            for path in sorted(key_dir.iterdir()):
                match = _KEY_FILE.match(path.name)
                if match is None:
                    continue
                epoch, suffix = int(match.group(1)), match.group(2)
                if suffix == "key" and epoch < current:
                    detail = f"epoch {epoch}, retired: the current epoch is {current}"
                    if repair:
                        self.vault.keyring.destroy_below(current)
                        out.append(_did(FindingKind.RETIRED_KEY, path.name, detail, "shredded"))
                    else:
                        out.append(_needs(FindingKind.RETIRED_KEY, path.name, detail))
                elif suffix == "tmp" or epoch > current:
                    detail = (
                        f"half-written key file of epoch {epoch}"
                        if suffix == "tmp"
                        else f"epoch {epoch} above the current {current}: a rotation that "
                        "never committed"
                    )
                    if repair:
                        if suffix == "key":
                            self.vault.keyring.forget(epoch)
                        path.unlink(missing_ok=True)
                        out.append(_did(FindingKind.LEFTOVER_KEY, path.name, detail, "removed"))
                    else:
                        out.append(_needs(FindingKind.LEFTOVER_KEY, path.name, detail))
            return out

    def _orphan_blobs(self, repair: bool, grace: timedelta) -> list[Finding]:
        # The files first, then the references: a blob old enough to be judged was written
        # before the references are read, so if its row exists, it has committed by then.
        files = self._old_blob_files(grace)
        if not files:
            return []
        with self.db.read() as session:
            referenced = _referenced_blobs(session)
        pending = {b for item in self.work.pending() for b in item.blobs}
        out = []
        for name, path, age in files:
            if name in referenced or name in pending:
                continue  # in use, or a pending erasure's (reported and deleted above)
            half = not _BLOB_ID.match(name)
            detail = f"half-written blob file, {age}" if half else f"no row refers to it, {age}"
            if not repair:
                out.append(_needs(FindingKind.ORPHAN_BLOB, name, detail))
                continue
            if half:
                path.unlink(missing_ok=True)
            else:
                self.vault.blobs.delete(name)
            out.append(_did(FindingKind.ORPHAN_BLOB, name, detail, "deleted"))
        return out

    def _old_blob_files(self, grace: timedelta) -> list[tuple[str, Path, str]]:
        """(name, path, age) of every blob-store file older than ``grace``."""
        if not self.blob_dir.is_dir():
            return []
        now = time.time()
        found = []
        for folder in sorted(self.blob_dir.iterdir()):
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if not (_BLOB_ID.match(path.name) or path.name.startswith(".tmp-")):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    age_s = now - path.stat().st_mtime
                    if path.is_file() and age_s > grace.total_seconds():
                        found.append((path.name, path, _age(age_s)))
        return found

    def _staging(self, repair: bool) -> list[Finding]:
        stale = self._stale_staging()
        if not repair:
            return [
                _needs(FindingKind.STALE_STAGING, job, "staging of a job whose process is gone")
                for job in stale
            ]
        if not stale:
            return []
        self.jobs.recover()
        folder = self.jobs.staging_dir
        out = []
        for job in stale:
            left = (folder / job).exists() or (folder / f"{job}.lock").exists()
            out.append(
                Finding(
                    FindingKind.STALE_STAGING,
                    job,
                    "staging of a job whose process is gone",
                    not left,
                    "left: its job still reads as active" if left else "removed",
                )
            )
        return out

    def _stale_staging(self) -> list[str]:
        """Job ids whose staging folder or owner lock is left by a process that is gone (the
        lock is free), and folders without a lock older than the jobs' staleness limit."""
        folder = self.jobs.staging_dir
        if not folder.is_dir():
            return []
        entries = {p.name: p for p in folder.iterdir()}
        stale: set[str] = set()
        now = time.time()
        for name, path in entries.items():
            if name.endswith(".lock"):
                if _lock_is_free(path):
                    stale.add(name.removesuffix(".lock"))
            elif f"{name}.lock" not in entries:
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime > self.jobs.stale_after.total_seconds():
                        stale.add(name)
        return sorted(stale)


def _needs(kind: FindingKind, what: str, detail: str) -> Finding:
    return Finding(kind, what, detail, False, "needs repair")


def _did(kind: FindingKind, what: str, detail: str, action: str) -> Finding:
    return Finding(kind, what, detail, True, action)


def _age(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} min old" if minutes < 120 else f"{minutes / 60:.0f} h old"


def _current_epoch(session: Session) -> int:
    """The key epoch, locked, read straight from its row (``Vault.current_epoch`` would
    also destroy retired keys in passing, which a check must not do)."""
    stmt = select(KeyringStateRow.epoch).where(KeyringStateRow.id == 1).with_for_update()
    return int(session.scalars(stmt).one())


def _referenced_blobs(session: Session) -> set[str]:
    """Every blob id a row refers to. A new kind of stored blob must be added here, or the
    doctor would call its files orphans."""
    found: set[str] = set(session.scalars(select(EnrolmentRow.image_blob)))
    found.update(session.scalars(select(ProbeRow.blob_id)))
    photos = select(RightsRequestRow.photo_blob).where(RightsRequestRow.photo_blob.is_not(None))
    found.update(b for b in session.scalars(photos) if b is not None)
    return found


def _lock_is_free(path: Path) -> bool:
    """Whether no process holds the owner ``flock`` on ``path`` (taken and let go at once;
    the file is not created)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)

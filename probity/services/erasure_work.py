"""The erasure work journal: what an erasure must still do after its database transaction
has committed, and the one piece of code that does it.

An erasure's transaction (``services/erasure.py``, ``services/partial_erasure.py``) shreds
the data keys, deletes the rows (the template triggers log the deletions, migration 0014),
rotates the key-encryption key (KEK) and, in the same transaction, writes one
``erasure_work`` row naming what is left outside the database:

1. **the indexes**: every index file is brought up to the template log's head
   (``IndexSet.refresh_all``), which removes the erased vectors, and saved sealed under the
   new epoch's key. This comes first, while the retired KEK can still open the old files;
2. **the blobs**: the sealed images of what was erased (and, for a partial erasure, the
   superseded copies of what stays), deleted one by one; a blob already gone is fine;
3. **the retired keys**: every KEK file of an epoch below ``kek_floor`` is overwritten and
   deleted, so a copy of the database from before the erasure cannot be opened with what is
   on disk (the retired KEK would open the erased person's template in such a copy);
4. **the write-ahead log**: checkpointed and truncated, so pages the erasure overwrote do
   not live on in it;
5. then the row is deleted, in its own small transaction.

Every step is idempotent, so the row can be completed by whoever meets it first: the erasure
itself right after its commit, the next start of any process (``build_services``), the next
retention sweep, or ``probity doctor``. Two processes completing the same row at once is
safe: the index files are changed under their ``flock``, deleting a deleted blob or key file
is a no-op, and deleting a deleted row deletes nothing. A crash at any point (the named
crash points below, ``probity/faults.py``) leaves the row, and the next start finishes it.
A row stays, too, while a reader keeps SQLite's checkpoint from truncating the log: the next
completion tries again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from probity.domain.ids import new_id
from probity.faults import crash_point
from probity.storage.db import Database
from probity.storage.tables import ErasureWorkRow
from probity.storage.vault import Vault

log = logging.getLogger("probity.erasure")


class IndexCatchUp(Protocol):
    """What the journal and ``probity doctor`` need of the index set (services/indexes.py)."""

    def refresh_all(self) -> object:
        """Bring every index file up to the template log's head and save each sealed under
        the current key epoch."""
        ...

    def gaps(self) -> list[tuple[str, int]]:
        """(slot name, changes behind the log's head) of every index file that is behind."""
        ...


@dataclass(frozen=True, slots=True)
class PendingErasure:
    """One journal row: what a committed erasure has still to do outside the database."""

    id: str
    created_at: datetime
    blobs: tuple[str, ...]  # blob ids to delete
    galleries: tuple[str, ...]  # gallery ids whose index files had vectors removed
    kek_floor: int | None  # destroy every KEK file below this epoch (None: no rotation)

    def describe(self) -> str:
        keys = "" if self.kek_floor is None else f", key files below epoch {self.kek_floor}"
        return (
            f"{len(self.blobs)} blob(s), {len(self.galleries)} gallery index(es){keys}, "
            f"committed {self.created_at.isoformat(timespec='seconds')}"
        )


@dataclass(frozen=True, slots=True)
class Completion:
    """What completing journal rows did. ``done`` holds the ids of the rows finished and
    deleted; ``left`` those kept because the write-ahead log could not be truncated yet."""

    done: tuple[str, ...]
    left: tuple[str, ...]
    blobs_deleted: int
    key_files_destroyed: int


def record_work(
    session: Session,
    *,
    at: datetime,
    blobs: Iterable[str],
    galleries: Iterable[str],
    kek_floor: int | None,
) -> PendingErasure:
    """Write the journal row in the erasure's own transaction (so it commits with the
    erasure or not at all). Returns what was written, for the erasure to complete."""
    work = PendingErasure(
        id=new_id(),
        created_at=at,
        blobs=tuple(dict.fromkeys(blobs)),
        galleries=tuple(sorted(set(galleries))),
        kek_floor=kek_floor,
    )
    session.add(
        ErasureWorkRow(
            id=work.id,
            created_at=work.created_at,
            blobs=json.dumps(list(work.blobs)),
            galleries=json.dumps(list(work.galleries)),
            kek_floor=work.kek_floor,
        )
    )
    return work


def _pending(row: ErasureWorkRow) -> PendingErasure:
    return PendingErasure(
        id=row.id,
        created_at=row.created_at,
        blobs=tuple(str(b) for b in json.loads(row.blobs)),
        galleries=tuple(str(g) for g in json.loads(row.galleries)),
        kek_floor=row.kek_floor,
    )


class ErasureWork:
    """Completes journal rows (see the module docstring for the steps and their order)."""

    def __init__(self, *, db: Database, vault: Vault, indexes: IndexCatchUp) -> None:
        self.db = db
        self.vault = vault
        self.indexes = indexes

    def pending(self) -> list[PendingErasure]:
        """Every row not yet completed, oldest first. One query on a table that is empty
        except in the moments after an erasure (or after a crash)."""
        with self.db.read() as session:
            rows = session.scalars(select(ErasureWorkRow).order_by(ErasureWorkRow.created_at))
            return [_pending(r) for r in rows]

    def finish(self, work: PendingErasure) -> Completion:
        """Right after an erasure's commit: complete its own row. An error propagates (the
        caller learns the erasure is not finished); the row stays for the next start."""
        crash_point("erasure.after-commit")
        return self.complete([work])

    def complete_pending(self) -> Completion:
        """Complete every pending row (the retention sweeper, ``probity doctor``)."""
        pending = self.pending()
        if not pending:
            return Completion(done=(), left=(), blobs_deleted=0, key_files_destroyed=0)
        return self.complete(pending)

    def complete_at_start(self) -> Completion | None:
        """At start-up (``build_services``): complete what a crash left. A failure (an index
        file or the database that this process may only read, a disk error) is logged and
        the rows are left for the next start, the sweeper or ``probity doctor``: a command
        that only reads must not fail because an earlier erasure was interrupted."""
        try:
            completion = self.complete_pending()
        except Exception as exc:
            log.warning("could not finish interrupted erasure work (left for later): %s", exc)
            return None
        if completion.done:
            log.warning("finished %d interrupted erasure(s)", len(completion.done))
        return completion

    def complete(self, work: Sequence[PendingErasure]) -> Completion:
        """Do every step for ``work`` (rows that may already be done by someone else), in
        order: indexes, blobs, retired key files, WAL checkpoint, then delete the rows."""
        if not work:
            return Completion(done=(), left=(), blobs_deleted=0, key_files_destroyed=0)
        # 1. The indexes first: the template deletions are in the log, so catching up removes
        # the vectors; each file is resealed under the current epoch while the retired KEK can
        # still open the old one.
        self.indexes.refresh_all()
        crash_point("erasure.after-index")
        # 2. The blobs.
        deleted = 0
        for item in work:
            for blob in item.blobs:
                if self.vault.blobs.delete(blob):
                    deleted += 1
                crash_point("erasure.during-blob-deletion")
        # 3. The retired key-encryption keys (shredded: overwritten, then deleted).
        crash_point("erasure.before-key-destroy")
        floors = [item.kek_floor for item in work if item.kek_floor is not None]
        destroyed = self.vault.keyring.destroy_below(max(floors)) if floors else 0
        # 4. The write-ahead log. A reader can keep the checkpoint from truncating it; then
        # the rows stay and the next completion checkpoints again.
        if not self.db.checkpoint():
            log.info("write-ahead log busy: erasure work kept for the next completion")
            return Completion(
                done=(),
                left=tuple(item.id for item in work),
                blobs_deleted=deleted,
                key_files_destroyed=destroyed,
            )
        # 5. Done: the rows go (one that someone else deleted meanwhile deletes nothing).
        ids = [item.id for item in work]
        with self.db.transaction() as session:
            session.execute(delete(ErasureWorkRow).where(ErasureWorkRow.id.in_(ids)))
        return Completion(
            done=tuple(ids), left=(), blobs_deleted=deleted, key_files_destroyed=destroyed
        )

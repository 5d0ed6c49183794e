"""When checkpoints reach the witness, and how verify compares the database with it.

Order of writes (and why). A checkpoint is created inside the transaction of the event that
triggers it (every CHECKPOINT_EVERY events, and at each verification). It is written to the
witness only **after that transaction commits** (a SQLAlchemy ``after_commit`` hook on the
session): a witness entry for a checkpoint that was rolled back would name an event that
never existed, and verify would call an honest database truncated. The price is a window: a
crash (or a failing home file) between the commit and the witness write leaves the witness
one checkpoint behind. Verify therefore treats "the database has signed checkpoints newer than
the newest witness entry" as *behind* (a note, not a failure): the database checkpoints are
still checked by signature, and a verification that passes writes them to the witness
(after its commit, with its own new checkpoint), which brings the witness up to date. Within
that window the events after the newest witness entry are protected by the database
checkpoints only (docs/audit.md).

What verify reports as tampering (each with what is missing):
(a) truncation: a witness entry names event #S and the database ends before #S;
(b) deleted checkpoints: a witnessed checkpoint is not in ``audit_checkpoints``;
(c) a rewritten or renumbered chain: the database's event #S has another hash than the
    witness recorded for #S;
(d) the home witness file missing while the database holds signed checkpoints, or a witness
    line that is not a valid entry or not signed by this home's key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

from probity.domain.audit import AuditEvent, Checkpoint
from probity.storage.witness import Witness, WitnessFile, WitnessPosition

_PENDING = "probity.audit.witness_pending"


class Verifier(Protocol):
    public_hex: str

    def verify(self, message: bytes, signature: bytes) -> bool: ...


class SignatureCache:
    """The signature checks of one verification. A checkpoint in the database and its
    witness entries (home file, file sinks) carry the same signed text and signature, so
    each is checked once: the witness adds reading and comparing, not signature checks."""

    def __init__(self, signer: Verifier) -> None:
        self.signer = signer
        self.public_hex = signer.public_hex
        self._checked: dict[tuple[bytes, bytes], bool] = {}

    def verify(self, message: bytes, signature: bytes) -> bool:
        key = (message, signature)
        found = self._checked.get(key)
        if found is None:
            found = self._checked[key] = self.signer.verify(message, signature)
        return found


def publish_after_commit(session: Session, witness: Witness, checkpoint: Checkpoint) -> None:
    """Queue ``checkpoint`` for the witness; it is written when ``session`` commits, and
    dropped if it rolls back. Hooks are registered once per session (sessions live for one
    transaction, see storage/db.py)."""
    pending: list[tuple[Witness, Checkpoint]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _publish_pending)
        event.listen(session, "after_rollback", _drop_pending)
    pending.append((witness, checkpoint))


def _publish_pending(session: Session) -> None:
    pending: list[tuple[Witness, Checkpoint]] = session.info.pop(_PENDING, [])
    for witness, checkpoint in pending:
        witness.publish(checkpoint)  # never raises: the commit has happened


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


class HashesAt:
    """Wraps the event stream of the chain walk and keeps the hashes of the events the
    witness names, and the last seq seen, so checking the witness costs no extra query."""

    def __init__(self, events: Iterable[AuditEvent], wanted: set[int]) -> None:
        self._events = events
        self.wanted = wanted
        self.hashes: dict[int, str] = {}
        self.last_seq = 0

    def __iter__(self) -> Iterator[AuditEvent]:
        for e in self._events:
            self.last_seq = e.seq
            if e.seq in self.wanted:
                self.hashes[e.seq] = e.hash
            yield e


@dataclass
class WitnessRead:
    """What the witness files hold: valid entries (deduplicated by seq and hash), the
    problems found reading them, and notes."""

    entries: dict[tuple[int, str], Checkpoint] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    home_missing: bool = False
    read: dict[str, WitnessPosition] = field(default_factory=dict)  # {path: how far read}

    @property
    def newest(self) -> Checkpoint | None:
        return max(self.entries.values(), key=lambda c: c.seq, default=None)


def read_witness(
    witness: Witness, signer: Verifier, since: dict[str, WitnessPosition] | None = None
) -> WitnessRead:
    """Read every witness file once and check every entry's signature against this home's
    key (type (d) problems). A missing file sink is a note (its volume may be unmounted);
    whether a missing home file is a problem depends on the database (``compare``).

    ``since`` (an incremental verification): how far each file was read by the last
    successful verification; only the lines appended after that are read, so the cost is the
    new entries, not the file. A file now shorter than that was cut or replaced: a problem.
    ``found.read`` says how far each file was read this time."""
    found = WitnessRead()
    for wf in witness.files():
        start = (since or {}).get(str(wf.path), WitnessPosition())
        if not wf.exists():
            if wf is witness.home:
                found.home_missing = True
            else:
                found.notes.append(f"witness {wf.path} is missing (not written yet, or unmounted)")
                if start.bytes:
                    found.read[str(wf.path)] = start  # read it from there once it is back
            continue
        if wf.size() < start.bytes:
            found.problems.append(
                f"witness {wf.path} holds {wf.size()} bytes, fewer than the {start.bytes} the "
                "last verification read: lines were removed or the file was replaced"
            )
            continue
        _read_one(wf, signer, found, start)
    return found


def _read_one(
    wf: WitnessFile, signer: Verifier, found: WitnessRead, start: WitnessPosition
) -> None:
    end: list[WitnessPosition] = []
    for line in wf.lines_from(start, end):
        where = f"witness {wf.path} line {line.number}"
        cp = line.checkpoint
        if cp is None:
            found.problems.append(f"{where} is not a checkpoint entry: {line.error}")
        elif cp.public_key != signer.public_hex:
            found.problems.append(
                f"{where} (event #{cp.seq}) was signed by another key ({cp.public_key[:16]}…)"
            )
        elif not signer.verify(cp.message(), cp.signature):
            found.problems.append(f"{where} (event #{cp.seq}) has an invalid signature")
        else:
            found.entries.setdefault((cp.seq, cp.hash), cp)
    found.read[str(wf.path)] = end[0] if end else start


@dataclass(frozen=True, slots=True)
class WitnessComparison:
    problems: list[str]
    notes: list[str]
    first_seq: int | None  # the lowest event a problem names


def compare(
    found: WitnessRead,
    *,
    home_path: str,
    db_last_seq: int,
    db_hash_at: dict[int, str | None],
    db_checkpoints: dict[int, Checkpoint],
    known_seq: int = 0,
) -> WitnessComparison:
    """Compare the database with every valid witness entry: (a) truncation, (b) deleted
    checkpoints, (c) rewritten or renumbered events, plus (d) a missing home witness.
    ``db_hash_at`` holds the database's hash (None: no such event) at each witnessed seq.
    ``known_seq``: the newest seq the witness is known to hold from an earlier read (an
    incremental verification reads only the lines appended since), so the witness is
    "behind" only for database checkpoints newer than both."""
    problems = list(found.problems)
    notes = list(found.notes)
    seqs: list[int] = []
    if found.home_missing:
        if db_checkpoints:
            newest = max(db_checkpoints)
            problems.append(
                f"the witness file {home_path} is missing, but the database holds "
                f"{len(db_checkpoints)} signed checkpoint(s), the newest at event #{newest}: "
                "nothing outside the database confirms them (if this home predates the "
                "witness, run 'probity init' once to start it)"
            )
            seqs.append(newest)
        else:
            notes.append(f"the witness file {home_path} does not exist yet")
    entries = sorted(found.entries.values(), key=lambda c: c.seq)
    newest_entry = entries[-1] if entries else None
    if newest_entry is not None and newest_entry.seq > db_last_seq:
        problems.append(
            f"log truncated: the witness records event #{newest_entry.seq} (signed "
            f"{newest_entry.at}), but the database ends at event #{db_last_seq}: events "
            f"#{db_last_seq + 1}..#{newest_entry.seq} (at least) are missing"
        )
        seqs.append(db_last_seq + 1)
    rewritten = [c for c in entries if c.seq <= db_last_seq and db_hash_at.get(c.seq) != c.hash]
    if rewritten:
        first = rewritten[0]
        held = db_hash_at.get(first.seq)
        there = f"has hash {held[:12]}… in the database" if held else "is missing from the database"
        problems.append(
            f"the chain was rewritten or renumbered: event #{first.seq} {there}, the witness "
            f"recorded {first.hash[:12]}… (signed {first.at}); {len(rewritten)} witnessed "
            f"event(s) differ: {_seq_list(c.seq for c in rewritten)}"
        )
        seqs.append(first.seq)
    deleted = [
        c for c in entries if (kept := db_checkpoints.get(c.seq)) is None or kept.hash != c.hash
    ]
    if deleted:
        problems.append(
            f"{len(deleted)} signed checkpoint(s) in the witness are missing from the "
            f"database (deleted or replaced): at events {_seq_list(c.seq for c in deleted)}"
        )
        seqs.append(deleted[0].seq)
    if not problems and db_checkpoints:
        newest_db = max(db_checkpoints)
        behind_from = max(newest_entry.seq if newest_entry else 0, known_seq)
        if newest_db > behind_from:
            notes.append(
                f"the witness is behind by {newest_db - behind_from} event(s): its newest entry "
                f"is event #{behind_from}, the database's newest signed checkpoint #{newest_db} "
                "(a crash between a commit and its witness write, or a failing witness); this "
                "verification writes the missing checkpoint(s) to it"
            )
    return WitnessComparison(problems, notes, min(seqs) if seqs else None)


def _seq_list(seqs: Iterable[int], most: int = 8) -> str:
    shown = [f"#{s}" for s in seqs]
    extra = len(shown) - most
    return ", ".join(shown[:most]) + (f" and {extra} more" if extra > 0 else "")

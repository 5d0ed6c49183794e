"""Erasure finishes or rolls back, even across a crash (issue 12, item 2): what an erasure
must do after its commit is journalled in its transaction (``erasure_work``) and completed
by the erasure itself, the next start, the next retention sweep or ``probity doctor``.

A crash is simulated by making a named crash point raise (the real SIGKILL runs are in
tests/crash/): everything the process would have done after that point is not done."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from probity.errors import IntegrityError
from probity.services import erasure_work
from probity.services.container import Services
from probity.services.doctor import FindingKind
from probity.services.erasure import ErasureCause
from probity.services.indexes import IndexSet, IndexSlot
from probity.storage.keyring import Keyring, load_master_key
from probity.storage.vault import unwrap_in_sqlite_file
from tests.fakes import FakeEngine, make_image, unit
from tests.services.conftest import ACTOR, PROVENANCE


class Crash(BaseException):
    """The process died here (BaseException: no ``except Exception`` catches it)."""


@pytest.fixture
def crash_at(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``crash_at(point, nth=1)``: the n-th time ``point`` is reached, the "process" dies."""

    def arm(point: str, nth: int = 1) -> None:
        reached = {"n": 0}

        def crash_point(name: str) -> None:
            if name == point:
                reached["n"] += 1
                if reached["n"] >= nth:
                    raise Crash(name)

        monkeypatch.setattr(erasure_work, "crash_point", crash_point)

    return arm


def enrol(svc: Services, engine: FakeEngine, seed: int, subject: str) -> str:
    """Enrol one image; returns its blob id."""
    outcome = svc.enrolment.enrol(
        actor=ACTOR,
        gallery="custody",
        subject=subject,
        image=engine.register(make_image(seed), unit(seed)),
        provenance=PROVENANCE,
    )
    assert outcome.enrolment is not None
    with svc.db.read() as s:
        blob = s.execute(
            text("SELECT image_blob FROM enrolments WHERE id = :i"), {"i": outcome.enrolment.id}
        ).scalar_one()
    return str(blob)


def journal(svc: Services) -> int:
    with svc.db.read() as s:
        return int(s.execute(text("SELECT count(*) FROM erasure_work")).scalar_one())


def key_files(svc: Services) -> list[str]:
    return sorted(p.name for p in svc.settings.key_dir.glob("kek-*"))


def epoch(svc: Services) -> int:
    with svc.db.read() as s:
        return int(s.execute(text("SELECT epoch FROM keyring_state")).scalar_one())


def behind(svc: Services) -> int:
    """Changes the gallery's index file on disk has not applied (read without catching up)."""
    (state,) = svc.indexes.states([IndexSlot.of(svc.galleries.get("custody"))])
    return state.behind


def wrapped_key(svc: Services, reference: str) -> tuple[str, bytes]:
    """The subject's id and wrapped data key as stored now (a backup taken now holds it)."""
    with svc.db.read() as s:
        row = s.execute(
            text(
                "SELECT s.id, k.wrapped_key FROM subjects s "
                "JOIN subject_keys k ON k.subject_id = s.id WHERE s.reference = :r"
            ),
            {"r": reference},
        ).one()
    return str(row[0]), bytes(row[1])


def master(svc: Services) -> bytes:
    return load_master_key(env_value=None, key_file=svc.settings.master_key_path)


@pytest.fixture
def two(svc: Services, gallery: str, fake_engine: FakeEngine) -> dict[str, str]:
    """Subjects KEEP and GONE (two images), enrolled; their blob ids by name."""
    return {
        "keep": enrol(svc, fake_engine, 1, "KEEP"),
        "gone-1": enrol(svc, fake_engine, 2, "GONE"),
        "gone-2": enrol(svc, fake_engine, 3, "GONE"),
    }


def test_an_erasure_completes_its_journal_row_at_once(svc: Services, two: dict[str, str]) -> None:
    svc.erasure.erase(actor=ACTOR, gallery="custody", reference="GONE", reason="court order 1")
    assert journal(svc) == 0
    assert not svc.erasure.vault.blobs.exists(two["gone-1"])
    assert svc.erasure.vault.blobs.exists(two["keep"])
    assert key_files(svc) == [f"kek-{epoch(svc)}.key"]
    assert behind(svc) == 0


def test_a_crash_after_the_commit_is_finished_by_the_next_start(
    svc: Services,
    two: dict[str, str],
    crash_at: Callable[..., None],
    make_services: Callable[..., Services],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subject_id, old_wrapped = wrapped_key(svc, "GONE")  # what a backup taken now holds
    copy = svc.settings.home / "before.db"  # and its bucket KEKs (storage/vault.py)
    with sqlite3.connect(svc.settings.home / "probity.db") as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    aad = Keyring.subject_aad(subject_id)
    crash_at("erasure.after-commit")
    with pytest.raises(Crash):
        svc.erasure.erase(actor=ACTOR, gallery="custody", reference="GONE", reason="court 2")
    # Committed (the receipt stands), but nothing after the commit was done.
    assert len(svc.erasure.receipts(actor=ACTOR)) == 1
    assert journal(svc) == 1
    assert svc.erasure.vault.blobs.exists(two["gone-1"])
    assert svc.erasure.vault.blobs.exists(two["gone-2"])
    current = epoch(svc)
    assert f"kek-{current - 1}.key" in key_files(svc)
    # The retired key file still opens the erased subject's key as a backup holds it.
    assert unwrap_in_sqlite_file(Keyring(master(svc), svc.settings.key_dir), copy, aad, old_wrapped)
    assert behind(svc) == 2  # the index file on disk still holds GONE's two vectors

    monkeypatch.undo()  # the restarted process does not crash
    restarted = make_services()
    assert journal(restarted) == 0
    assert not restarted.erasure.vault.blobs.exists(two["gone-1"])
    assert not restarted.erasure.vault.blobs.exists(two["gone-2"])
    assert restarted.erasure.vault.blobs.exists(two["keep"])
    assert key_files(restarted) == [f"kek-{current}.key"]
    assert behind(restarted) == 0
    (state,) = restarted.indexes.states([IndexSlot.of(restarted.galleries.get("custody"))])
    assert state.vectors == 1
    with pytest.raises(IntegrityError):
        unwrap_in_sqlite_file(Keyring(master(svc), svc.settings.key_dir), copy, aad, old_wrapped)
    assert restarted.audit.verify(actor=ACTOR).ok


def test_a_crash_between_blob_deletions_is_finished_by_the_next_sweep(
    svc: Services,
    two: dict[str, str],
    crash_at: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crash_at("erasure.during-blob-deletion")  # after the first blob is deleted
    with pytest.raises(Crash):
        svc.erasure.erase(actor=ACTOR, gallery="custody", reference="GONE", reason="court 3")
    blobs = svc.erasure.vault.blobs
    assert [blobs.exists(two["gone-1"]), blobs.exists(two["gone-2"])].count(True) == 1
    assert behind(svc) == 0  # the index step had run
    assert journal(svc) == 1
    monkeypatch.undo()
    svc.retention.sweep(actor=ACTOR)
    assert journal(svc) == 0
    assert not blobs.exists(two["gone-1"]) and not blobs.exists(two["gone-2"])
    assert key_files(svc) == [f"kek-{epoch(svc)}.key"]


def test_a_crash_before_the_keys_are_destroyed_is_finished_by_the_doctor(
    svc: Services,
    two: dict[str, str],
    crash_at: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crash_at("erasure.before-key-destroy")
    with pytest.raises(Crash):
        svc.erasure.erase(actor=ACTOR, gallery="custody", reference="GONE", reason="court 4")
    assert len(key_files(svc)) == 2
    monkeypatch.undo()
    check = svc.doctor.run(actor=ACTOR, repair=False)
    assert check.needs_repair
    assert FindingKind.PENDING_ERASURE in {f.kind for f in check.findings}
    assert journal(svc) == 1 and len(key_files(svc)) == 2  # a check changes nothing
    repair = svc.doctor.run(actor=ACTOR)
    assert not repair.needs_repair
    assert journal(svc) == 0
    assert key_files(svc) == [f"kek-{epoch(svc)}.key"]
    assert not svc.doctor.run(actor=ACTOR, repair=False).findings


def test_completing_twice_is_harmless(
    svc: Services,
    two: dict[str, str],
    crash_at: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crash_at("erasure.after-commit")
    with pytest.raises(Crash):
        svc.erasure.erase(actor=ACTOR, gallery="custody", reference="GONE", reason="court 5")
    monkeypatch.undo()
    pending = svc.erasure_work.pending()
    first = svc.erasure_work.complete(pending)
    second = svc.erasure_work.complete(pending)  # as a second process would, a moment later
    assert first.done == second.done == (pending[0].id,)
    assert (first.blobs_deleted, second.blobs_deleted) == (2, 0)
    assert (first.key_files_destroyed, second.key_files_destroyed) == (1, 0)
    assert journal(svc) == 0
    assert svc.erasure_work.complete_pending().done == ()
    assert svc.erasure.vault.blobs.exists(two["keep"])
    assert behind(svc) == 0


def test_a_partial_erasure_journals_the_erased_and_the_superseded_blobs(
    svc: Services,
    two: dict[str, str],
    crash_at: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with svc.db.read() as s:
        erased = s.execute(
            text("SELECT id FROM enrolments WHERE image_blob = :b"), {"b": two["gone-1"]}
        ).scalar_one()
    crash_at("erasure.after-commit")
    with pytest.raises(Crash):
        svc.erasure.erase_enrolments(
            actor=ACTOR, enrolment_ids=[erased], reason="retention", cause=ErasureCause.RETENTION
        )
    (work,) = svc.erasure_work.pending()
    # The erased image and the old copy of the one that stays (re-sealed under a new key).
    assert set(work.blobs) == {two["gone-1"], two["gone-2"]}
    assert work.kek_floor == epoch(svc)
    monkeypatch.undo()
    svc.erasure_work.complete_pending()
    blobs = svc.erasure.vault.blobs
    assert not blobs.exists(two["gone-1"]) and not blobs.exists(two["gone-2"])
    with svc.db.read() as s:
        kept = s.execute(
            text(
                "SELECT e.image_blob FROM enrolments e JOIN subjects s ON s.id = e.subject_id "
                "WHERE s.reference = 'GONE'"
            )
        ).scalar_one()
    assert blobs.exists(str(kept))
    assert key_files(svc) == [f"kek-{epoch(svc)}.key"] and behind(svc) == 0


def test_a_start_that_cannot_complete_the_work_still_starts(
    svc: Services,
    two: dict[str, str],
    crash_at: Callable[..., None],
    make_services: Callable[..., Services],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    crash_at("erasure.after-commit")
    with pytest.raises(Crash):
        svc.erasure.erase(actor=ACTOR, gallery="custody", reference="GONE", reason="court 6")
    monkeypatch.undo()

    def read_only(self: IndexSet) -> None:
        raise PermissionError("index/ is read-only for this process")

    monkeypatch.setattr(IndexSet, "refresh_all", read_only)
    with caplog.at_level(logging.WARNING, logger="probity.erasure"):
        restarted = make_services()
    assert "interrupted erasure work" in caplog.text
    assert journal(restarted) == 1  # left for the next start, the sweeper or the doctor
    assert svc.erasure.vault.blobs.exists(two["gone-1"])
    monkeypatch.undo()
    assert make_services() and journal(restarted) == 0


def _age(path: Path, minutes: float) -> None:
    then = time.time() - minutes * 60
    os.utime(path, (then, then))


def test_the_doctor_deletes_old_orphan_blobs_and_leaves_young_ones(
    svc: Services, two: dict[str, str]
) -> None:
    blobs = svc.erasure.vault.blobs
    old, young = "a" * 32, "b" * 32
    blobs.put(old, b"sealed bytes no row refers to")
    blobs.put(young, b"an enrolment in flight")
    root = svc.settings.blob_dir
    _age(root / old[:2] / old, 30)
    _age(root / young[:2] / young, 2)
    for blob in two.values():  # referenced blobs, however old, are never orphans
        _age(root / blob[:2] / blob, 60)
    check = svc.doctor.run(actor=ACTOR, repair=False)
    assert [(f.kind, f.what) for f in check.findings] == [(FindingKind.ORPHAN_BLOB, old)]
    assert blobs.exists(old)
    repair = svc.doctor.run(actor=ACTOR)
    assert [(f.what, f.repaired) for f in repair.findings] == [(old, True)]
    assert not blobs.exists(old) and blobs.exists(young)
    assert all(blobs.exists(b) for b in two.values())
    longer = svc.doctor.run(actor=ACTOR, repair=False)
    assert not longer.findings


def test_the_doctor_removes_retired_and_leftover_key_files(svc: Services, gallery: str) -> None:
    current = epoch(svc)
    keys = svc.settings.key_dir
    ring = Keyring(master(svc), keys)
    ring.write_kek(current - 1 if current > 1 else 0)  # a retired epoch's file left behind
    ring.write_kek(current + 1)  # a rotation that never committed
    (keys / f"kek-{current + 2}.tmp").write_bytes(b"half-written")
    check = svc.doctor.run(actor=ACTOR, repair=False)
    kinds = sorted((f.kind.value, f.what) for f in check.findings)
    assert kinds == sorted(
        [
            (FindingKind.RETIRED_KEY.value, f"kek-{max(current - 1, 0)}.key"),
            (FindingKind.LEFTOVER_KEY.value, f"kek-{current + 1}.key"),
            (FindingKind.LEFTOVER_KEY.value, f"kek-{current + 2}.tmp"),
        ]
    )
    assert len(list(keys.iterdir())) == 4
    repair = svc.doctor.run(actor=ACTOR)
    assert all(f.repaired for f in repair.findings) and len(repair.findings) == 3
    assert key_files(svc) == [f"kek-{current}.key"]
    # The repair was audited.
    events = svc.audit.events(actor=ACTOR, action="doctor.repair").events
    assert events and events[0].details["repaired"] == 3


def test_the_doctor_removes_the_staging_of_dead_jobs_only(svc: Services, gallery: str) -> None:
    staging = svc.settings.staging_dir
    staging.mkdir(mode=0o700, exist_ok=True)
    (staging / "deadjob").mkdir()
    (staging / "deadjob" / "manifest.csv").write_bytes(b"sealed")
    (staging / "deadjob.lock").write_bytes(b"")  # its owner is gone: the lock is free
    (staging / "livejob").mkdir()
    with open(staging / "livejob.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a live process holds this one
        check = svc.doctor.run(actor=ACTOR, repair=False)
        assert [(f.kind, f.what) for f in check.findings] == [
            (FindingKind.STALE_STAGING, "deadjob")
        ]
        repair = svc.doctor.run(actor=ACTOR)
        assert [(f.what, f.repaired) for f in repair.findings] == [("deadjob", True)]
        assert not (staging / "deadjob").exists() and not (staging / "deadjob.lock").exists()
        assert (staging / "livejob").exists()

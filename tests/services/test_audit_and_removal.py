"""The audit chain and subject removal, through the services."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from sqlalchemy import text

from probity.domain.audit import chain_hash, verify_chain
from probity.errors import SubjectNotFound
from probity.index.vectors import normalise
from probity.services.container import Services
from probity.services.indexes import IndexSlot
from probity.storage.keyring import CheckpointSigner, new_data_key
from probity.storage.repositories import AuditLog
from tests.fakes import FakeEngine, make_image, unit
from tests.services.conftest import ACTOR, PROVENANCE


def test_chain_verifies_then_names_the_altered_event(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    image = fake_engine.register(make_image(1), unit(1))
    svc.enrolment.enrol(
        actor=ACTOR, gallery=gallery, subject="S", image=image, provenance=PROVENANCE
    )
    ok = svc.audit.verify(actor=ACTOR)
    assert ok.ok and ok.events_checked >= 3
    with svc.db.transaction() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    broken = svc.audit.verify(actor=ACTOR, full=True)  # #2 is before the verified point
    assert not broken.ok
    assert broken.first_broken_seq == 2
    assert "altered" in (broken.reason or "")


def test_truncating_the_log_is_detected(svc: Services, gallery: str) -> None:
    assert svc.audit.verify(actor=ACTOR).ok
    with svc.db.transaction() as s:
        last = s.execute(text("SELECT max(seq) FROM audit_events")).scalar_one()
        s.execute(text("DELETE FROM audit_events WHERE seq = :q"), {"q": last})
    result = svc.audit.verify(actor=ACTOR)
    assert not result.ok
    assert "truncated" in (result.reason or "")


def test_reading_the_log_is_audited(svc: Services, gallery: str) -> None:
    svc.audit.events(actor="auditor")
    events = svc.audit.events(actor="auditor", action="audit.read").events
    assert events and events[0].actor == "auditor"


def test_every_event_records_actor_and_organisation(svc: Services, gallery: str) -> None:
    events = svc.audit.events(actor=ACTOR).events
    assert [e.action for e in events[:2]] == ["system.init", "gallery.create"]
    assert all(e.actor == ACTOR and e.organisation == "local" for e in events)


def stored_bytes(vector: NDArray[np.float32]) -> bytes:
    """The exact bytes an index stores for ``vector`` (normalised as the index does)."""
    return normalise(vector[None, :], vector.shape[0]).tobytes()


def test_remove_subject_erases_rows_blobs_key_and_index_bytes(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    keep = unit(11)
    gone = unit(12)
    svc.enrolment.enrol(
        actor=ACTOR,
        gallery=gallery,
        subject="KEEP",
        image=fake_engine.register(make_image(11), keep),
        provenance=PROVENANCE,
    )
    outcome = svc.enrolment.enrol(
        actor=ACTOR,
        gallery=gallery,
        subject="GONE",
        image=fake_engine.register(make_image(12), gone),
        provenance=PROVENANCE,
    )
    assert outcome.enrolment is not None
    g = svc.galleries.get(gallery)
    index_path = svc.indexes.path(IndexSlot.of(g))
    # The file is sealed: not even the vectors still held are in it in the clear.
    assert stored_bytes(gone) not in index_path.read_bytes()
    assert stored_bytes(keep) not in index_path.read_bytes()
    gone_id = int(svc.indexes.get(IndexSlot.of(g)).search(np.stack([gone]), 1)[0][0].id)
    with svc.db.transaction() as s:
        blob = s.execute(
            text("SELECT image_blob FROM enrolments WHERE id = :i"), {"i": outcome.enrolment.id}
        ).scalar_one()
    assert svc.enrolment.vault.blobs.exists(blob)

    removal = svc.subjects.remove(
        actor=ACTOR, gallery=gallery, reference="GONE", reason="court order 12"
    )
    assert (removal.enrolments, removal.index_vectors_removed) == (1, 1)
    data = index_path.read_bytes()
    assert stored_bytes(gone) not in data and stored_bytes(keep) not in data
    held = svc.indexes.get(IndexSlot.of(g)).ids().tolist()
    assert gone_id not in held and len(held) == 1
    assert not svc.enrolment.vault.blobs.exists(blob)
    with svc.db.transaction() as s:
        for table in ("subjects", "subject_keys", "templates", "enrolments"):
            n = s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            assert n == 1, table
    with pytest.raises(SubjectNotFound):
        svc.subjects.remove(actor=ACTOR, gallery=gallery, reference="GONE", reason="again")
    assert svc.audit.verify(actor=ACTOR).ok


def test_index_rebuild_recreates_from_templates(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    for i in range(3):
        svc.enrolment.enrol(
            actor=ACTOR,
            gallery=gallery,
            subject=f"S{i}",
            image=fake_engine.register(make_image(20 + i), unit(20 + i)),
            provenance=PROVENANCE,
        )
    g = svc.galleries.get(gallery)
    svc.indexes.path(IndexSlot.of(g)).unlink()
    assert svc.maintenance.status()[0].vectors == 0
    rebuilt = svc.maintenance.rebuild(actor=ACTOR)
    assert rebuilt[0].vectors == 3
    assert svc.maintenance.status()[0].in_step


def rewrite_chain_from(svc: Services, seq: int, actor: str) -> None:
    """What an attacker with write access to the database could do: change an event and
    recompute every hash after it, so that the bare hash chain verifies again."""

    with svc.db.transaction() as s:
        s.execute(text("UPDATE audit_events SET actor = :a WHERE seq = :q"), {"a": actor, "q": seq})
        events = list(AuditLog(s).events())
        prev = events[seq - 2].hash if seq > 1 else "0" * 64
        for e in events[seq - 1 :]:
            new_hash = chain_hash(prev, e.canonical())
            s.execute(
                text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE seq = :q"),
                {"p": prev, "h": new_hash, "q": e.seq},
            )
            prev = new_hash
        s.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})


def test_signed_checkpoints_catch_a_recomputed_chain(svc: Services, gallery: str) -> None:
    first = svc.audit.verify(actor=ACTOR)  # signs a checkpoint at the head
    assert first.ok and first.checkpoints_checked == 0
    assert svc.audit.verify(actor=ACTOR).checkpoints_checked == 1
    rewrite_chain_from(svc, 2, "mallory")

    with svc.db.read() as s:
        assert verify_chain(AuditLog(s).events()).ok  # the bare chain is fooled
    result = svc.audit.verify(actor=ACTOR)
    assert not result.ok
    assert "rewritten" in (result.reason or "")
    assert result.first_broken_seq is not None and result.first_broken_seq >= 2


def test_checkpoints_signed_with_another_key_are_refused(svc: Services, gallery: str) -> None:
    assert svc.audit.verify(actor=ACTOR).ok

    svc.audit.signer = CheckpointSigner(new_data_key())
    result = svc.audit.verify(actor=ACTOR)
    assert not result.ok and "another key" in (result.reason or "")

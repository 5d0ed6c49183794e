"""An erasure receipt states what the index erasure guarantees on the home's backend
(``probity.index.factory.erasure_statement``, migration 0018): stored with the receipt in the
erasing transaction, read back with it, in its JSON, for a whole erasure and a partial one."""

from __future__ import annotations

from sqlalchemy import text

from probity.services.container import Services
from probity.services.erasure import ErasureCause
from probity.services.indexes import IndexSlot
from tests.fakes import FakeEngine, make_image, unit
from tests.services.conftest import ACTOR, PROVENANCE


def enrol(svc: Services, engine: FakeEngine, gallery: str, subject: str, seed: int) -> str:
    """Enrol one image of ``subject``; returns the enrolment's id."""
    outcome = svc.enrolment.enrol(
        actor=ACTOR,
        gallery=gallery,
        subject=subject,
        image=engine.register(make_image(seed), unit(seed)),
        provenance=PROVENANCE,
    )
    assert outcome.enrolment is not None
    return outcome.enrolment.id


def test_a_receipt_on_the_default_backend_states_the_ivf_erasure(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    assert svc.settings.index_backend == "ivf"  # the default
    enrol(svc, fake_engine, gallery, "GONE", 21)
    receipt = svc.erasure.erase(actor=ACTOR, gallery=gallery, reference="GONE", reason="order")
    statement = receipt.index_statement
    assert statement is not None
    slot = IndexSlot.of(svc.galleries.get(gallery)).name
    assert statement.startswith(f"Vector index (ivf, `{slot}.ivf` and its segment files")
    assert "under a fresh random key" in statement
    assert "deletes the old segment files" in statement
    assert "Freed disk blocks are not overwritten" in statement
    assert receipt.at.isoformat(timespec="seconds") in statement
    # Stored in the erasing transaction and read back as it was written.
    again = svc.erasure.receipt(receipt.number, actor=ACTOR)
    assert again.index_statement == statement
    assert again.as_dict()["index_statement"] == statement
    with svc.db.read() as session:
        stored = session.execute(
            text("SELECT index_statement FROM erasure_receipts WHERE id = :n"),
            {"n": receipt.number},
        ).scalar_one()
    assert stored == statement


def test_a_partial_erasure_receipt_states_it_too(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    enrol(svc, fake_engine, gallery, "KEEPS", 31)
    erased = enrol(svc, fake_engine, gallery, "KEEPS", 32)
    (receipt,) = svc.erasure.erase_enrolments(
        actor=ACTOR, enrolment_ids=[erased], reason="retention", cause=ErasureCause.RETENTION
    )
    assert receipt.subject_reference == "KEEPS" and receipt.enrolments == 1
    assert receipt.index_statement is not None
    assert receipt.index_statement.startswith("Vector index (ivf, ")
    stored = svc.erasure.receipt(receipt.number, actor=ACTOR)
    assert stored.index_statement == receipt.index_statement

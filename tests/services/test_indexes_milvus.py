"""The services on the Milvus backend (Milvus Lite): enrolment, search size, a subject's
removal (an erasure: its template's bytes leave every file of the index folder), and the
deletion of an index, whose Lite folder must be let go of by its in-process server."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="the milvus extra is not installed")
pytest.importorskip("milvus_lite", reason="the milvus extra is not installed")

from probity.index.vectors import normalise
from probity.services.container import Services
from probity.services.indexes import IndexSlot
from tests.fakes import FakeEngine, make_image, unit
from tests.services.conftest import ACTOR, PROVENANCE


def files_holding(folder: Path, needle: bytes) -> list[str]:
    found = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            if needle in (Path(root) / name).read_bytes():
                found.append(name)
    return found


@pytest.fixture
def svc(make_services: Callable[..., Services]) -> Services:
    return make_services(index_backend="milvus")


def enrol(svc: Services, fake_engine: FakeEngine, gallery: str, ref: str, seed: int) -> None:
    svc.enrolment.enrol(
        actor=ACTOR,
        gallery=gallery,
        subject=ref,
        image=fake_engine.register(make_image(seed), unit(seed)),
        provenance=PROVENANCE,
    )


def test_a_removed_subject_leaves_no_bytes_in_the_milvus_lite_folder(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    enrol(svc, fake_engine, gallery, "KEEP", 11)
    enrol(svc, fake_engine, gallery, "GONE", 12)
    slot = IndexSlot.of(svc.galleries.get(gallery))
    folder = svc.indexes.path(slot)
    assert folder.is_dir()
    assert svc.indexes.size(slot) == 2
    gone = normalise(np.stack([unit(12)]), len(unit(12)))[0].tobytes()
    kept = normalise(np.stack([unit(11)]), len(unit(11)))[0].tobytes()
    assert files_holding(folder, gone)

    removal = svc.subjects.remove(actor=ACTOR, gallery=gallery, reference="GONE", reason="order")
    assert removal.index_vectors_removed == 1
    assert files_holding(folder, gone) == []
    assert files_holding(folder, kept)
    assert len(svc.indexes.get(slot).ids()) == 1


def test_dropping_an_index_deletes_its_lite_folder(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    enrol(svc, fake_engine, gallery, "A", 11)
    slot = IndexSlot.of(svc.galleries.get(gallery))
    folder = svc.indexes.path(slot)
    svc.indexes.drop(slot)
    assert not folder.exists()
    assert svc.indexes.size(slot) == 1  # rebuilt from the template log on the next read


def test_a_home_leaving_milvus_deletes_the_lite_folders(
    make_services: Callable[..., Services], fake_engine: FakeEngine
) -> None:
    svc = make_services(index_backend="milvus")
    svc.galleries.create(
        actor=ACTOR,
        name="custody",
        inclusion_policy="custody images of charged persons",
        retention_days=365,
        jurisdictions=["GB"],
    )
    enrol(svc, fake_engine, "custody", "A", 11)
    folder = svc.indexes.path(IndexSlot.of(svc.galleries.get("custody")))
    assert folder.is_dir()
    svc.indexes.backend = "faiss"  # as a restart with PROBITY_INDEX_BACKEND=faiss would
    svc.indexes.refresh_all()
    assert not folder.exists()

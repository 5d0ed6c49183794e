"""The Milvus settings reach the index from the home's settings object, not from the
environment: ``IndexSet(milvus=)`` opens and drops collections with them, and
``build_services`` passes ``settings.milvus`` (a settings file or a CLI override that never
became a ``PROBITY_MILVUS__*`` variable was not seen before). Milvus Lite, no server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="the milvus extra is not installed")
pytest.importorskip("milvus_lite", reason="the milvus extra is not installed")

from probity.config import MilvusSettings, Settings
from probity.domain.faces import ModelVersion
from probity.index.milvus_index import MilvusIndex, collection_name
from probity.services.clock import ManualClock
from probity.services.container import build_services, initialise
from probity.services.indexes import IndexSet, IndexSlot
from tests.fakes import FakeEngine, make_image, unit
from tests.index.conftest import FixedSeal
from tests.services.conftest import ACTOR, PROVENANCE

MODEL = ModelVersion("fake", "1", 128)


@pytest.fixture(autouse=True)
def no_milvus_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing may come from PROBITY_MILVUS__* here: the settings object is the only source."""
    for name in list(os.environ):
        if name.startswith("PROBITY_MILVUS__"):
            monkeypatch.delenv(name)


def test_an_index_set_opens_its_collections_with_the_settings_passed(tmp_path: Path) -> None:
    indexes = IndexSet(
        directory=tmp_path / "index",
        backend="milvus",
        seal=FixedSeal(),
        milvus=MilvusSettings(collection_prefix="custom"),
    )
    slot = IndexSlot("g1", MODEL)
    index = indexes.get(slot)
    assert isinstance(index, MilvusIndex)
    assert index.collection == collection_name(slot.name, "custom")
    assert index.collection.startswith("custom_")
    # The collection Milvus Lite holds is the one named with that prefix.
    import pymilvus

    client = pymilvus.MilvusClient(str(indexes.path(slot)))
    try:
        assert client.list_collections() == [collection_name(slot.name, "custom")]
    finally:
        client.close()
    indexes.drop(slot)  # drop_index with the same settings: the Lite folder goes
    assert not indexes.path(slot).exists()


def test_build_services_passes_the_homes_milvus_settings(
    tmp_path: Path, clock: ManualClock, fake_engine: FakeEngine
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        index_backend="milvus",
        milvus=MilvusSettings(collection_prefix="custom"),
    )
    initialise(settings, actor=ACTOR, clock=clock)
    services = build_services(settings, engine=fake_engine, clock=clock)
    try:
        assert services.indexes.milvus == settings.milvus
        services.galleries.create(
            actor=ACTOR,
            name="custody",
            inclusion_policy="custody images of charged persons",
            retention_days=365,
            jurisdictions=["GB"],
        )
        services.enrolment.enrol(
            actor=ACTOR,
            gallery="custody",
            subject="A",
            image=fake_engine.register(make_image(41), unit(41)),
            provenance=PROVENANCE,
        )
        slot = IndexSlot.of(services.galleries.get("custody"))
        index = services.indexes.get(slot)
        assert isinstance(index, MilvusIndex)
        assert index.collection == collection_name(slot.name, "custom")
        assert len(index) == 1
    finally:
        services.close()

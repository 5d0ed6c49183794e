"""The Milvus backend on Milvus Lite: what the shared contract (test_contract.py) cannot check
because Milvus keeps its own files. Chiefly the erasure byte scan: after ``remove`` and
``save`` a removed template's bytes are in no file of the data folder."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

pytest.importorskip("pymilvus", reason="the milvus extra is not installed")
pytest.importorskip("milvus_lite", reason="the milvus extra is not installed")

from probity.config import MilvusSettings
from probity.errors import IntegrityError
from probity.index import ExactIndex, index_file, open_index
from probity.index.milvus_index import (
    MilvusCompactionTimeout,
    MilvusIndex,
    collection_name,
)
from probity.index.sealing import IndexFileUnreadable
from probity.index.vectors import normalise
from tests.index.conftest import FixedSeal

DIMENSION = 16


def random_vectors(n: int, seed: int, dimension: int = DIMENSION) -> NDArray[np.float32]:
    return np.random.default_rng(seed).normal(size=(n, dimension)).astype(np.float32)


def files_holding(folder: Path, needle: bytes) -> list[str]:
    """Every file under ``folder`` whose bytes contain ``needle``."""
    found = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if needle in path.read_bytes():
                found.append(str(path.relative_to(folder)))
    return found


@pytest.fixture
def stem(tmp_path: Path) -> Path:
    return tmp_path / "gallery-1"


@pytest.fixture
def filled(stem: Path, seal: FixedSeal) -> tuple[MilvusIndex, NDArray[np.float32]]:
    index = open_index("milvus", stem, DIMENSION, seal)
    assert isinstance(index, MilvusIndex)
    vectors = random_vectors(50, seed=1)
    index.add(np.arange(100, 150), vectors)
    return index, vectors


def test_removed_vector_bytes_are_in_no_file_of_the_data_folder(
    stem: Path, filled: tuple[MilvusIndex, NDArray[np.float32]]
) -> None:
    """The erasure acceptance test for Milvus Lite: the normalised float32 bytes of a removed
    template are found in the data folder before removal and in none of its files after
    remove + save, while a kept template's bytes still are (so the scan can find them)."""
    index, vectors = filled
    folder = index_file("milvus", stem)
    removed = normalise(vectors[12:13], DIMENSION)[0].tobytes()  # id 112
    kept = normalise(vectors[30:31], DIMENSION)[0].tobytes()  # id 130
    index.save()
    assert files_holding(folder, removed)
    assert files_holding(folder, kept)

    started = time.monotonic()
    assert index.remove([112]) == 1
    index.save()
    elapsed = time.monotonic() - started
    assert files_holding(folder, removed) == []
    assert files_holding(folder, kept)
    assert 112 not in index.ids().tolist()
    assert len(index) == 49
    print(f"remove + save (delete, flush, compaction, Lite rewrite): {elapsed:.2f} s")


def test_plain_delete_and_compaction_leave_the_bytes_on_milvus_lite(
    stem: Path, filled: tuple[MilvusIndex, NDArray[np.float32]]
) -> None:
    """Why ``remove`` rewrites the collection on Lite: Milvus Lite 3.2 reports a requested
    compaction as completed without compacting, so delete + flush + compact alone leaves
    the deleted vector in the segment's Parquet file. If this starts failing, Lite compacts
    on request and the rewrite can go."""
    index, vectors = filled
    folder = index_file("milvus", stem)
    removed = normalise(vectors[12:13], DIMENSION)[0].tobytes()
    index.save()
    client: Any = index._client
    client.delete(index.collection, ids=[112])
    client.flush(index.collection)
    job = client.compact(index.collection)
    assert str(client.get_compaction_state(job)).endswith("Completed")
    assert files_holding(folder, removed)


def test_flat_is_exact_and_hnsw_close(tmp_path: Path) -> None:
    vectors = random_vectors(2_000, seed=9, dimension=32)
    queries = random_vectors(25, seed=10, dimension=32)
    ids = np.random.default_rng(11).permutation(10_000)[:2_000]
    exact = ExactIndex(tmp_path / "exact.npz", 32, FixedSeal())
    exact.add(ids, vectors)
    expected = exact.search(queries, k=10)
    flat = MilvusIndex(tmp_path / "flat.milvus.db", 32, settings=MilvusSettings(index_type="FLAT"))
    flat.add(ids, vectors)
    flat.save()
    for want, hits in zip(expected, flat.search(queries, k=10), strict=True):
        assert [h.id for h in hits] == [h.id for h in want]
        assert [h.similarity for h in hits] == pytest.approx([h.similarity for h in want], abs=1e-5)
    hnsw = MilvusIndex(tmp_path / "hnsw.milvus.db", 32, settings=MilvusSettings(index_type="HNSW"))
    hnsw.add(ids, vectors)
    hnsw.save()
    found = [{h.id for h in hits} for hits in hnsw.search(queries, k=10)]
    recall = np.mean(
        [len(f & {h.id for h in w}) / 10 for f, w in zip(found, expected, strict=True)]
    )
    assert recall >= 0.9  # approximate: bench/milvus_index.py measures it at scale


def test_the_collection_holds_only_the_id_and_the_vector(
    filled: tuple[MilvusIndex, NDArray[np.float32]],
) -> None:
    index, _ = filled
    described = index._client.describe_collection(index.collection)
    assert sorted(field["name"] for field in described["fields"]) == ["id", "vector"]
    assert not described.get("enable_dynamic_field")
    assert set(described["properties"]) == {"probity.slot", "probity.applied_seq"}
    assert index._client.describe_index(index.collection, "vector")["metric_type"] == "IP"


def test_applied_seq_is_never_ahead_of_the_data(
    stem: Path, seal: FixedSeal, filled: tuple[MilvusIndex, NDArray[np.float32]]
) -> None:
    """Writes persist as they are made; the seq only at save(), after a flush. A reopen
    without save() (a crash) finds the newer data with the older seq: a harmless replay."""
    index, vectors = filled
    index.mark_applied(5)
    index.save()
    index.add([7], vectors[:1])
    index.mark_applied(6)  # not saved: the "crash" comes now
    reopened = open_index("milvus", stem, DIMENSION, seal)
    assert reopened.applied_seq == 5
    assert 7 in reopened.ids().tolist()


def test_a_crash_during_the_lite_rewrite_leaves_seq_zero(
    stem: Path,
    seal: FixedSeal,
    filled: tuple[MilvusIndex, NDArray[np.float32]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rewrite drops the collection and creates it with seq 0 before writing the rows
    back: a crash there leaves fewer rows at seq 0 (a full rebuild), never a seq ahead."""
    index, _ = filled
    index.mark_applied(30)
    index.save()

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(index, "_write", crash)
    with pytest.raises(KeyboardInterrupt):
        index.remove([100])
    reopened = open_index("milvus", stem, DIMENSION, seal)
    assert reopened.applied_seq == 0
    assert len(reopened) == 0


def test_clear_persists_seq_zero_at_once(
    stem: Path, seal: FixedSeal, filled: tuple[MilvusIndex, NDArray[np.float32]]
) -> None:
    index, _ = filled
    index.mark_applied(12)
    index.save()
    index.clear()  # no save(): the data is gone already, so must the seq be
    reopened = open_index("milvus", stem, DIMENSION, seal)
    assert reopened.applied_seq == 0
    assert len(reopened) == 0


def test_a_compaction_that_does_not_finish_fails_clearly(
    stem: Path, filled: tuple[MilvusIndex, NDArray[np.float32]], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, vectors = filled
    index._settings = MilvusSettings(compaction_timeout_s=0.2)
    monkeypatch.setattr(index._client, "get_compaction_state", lambda job: "Executing")
    with pytest.raises(MilvusCompactionTimeout, match=r"did not finish compaction.*within 0.2 s"):
        index.remove([110])
    assert issubclass(MilvusCompactionTimeout, IntegrityError)
    [hits] = index.search(vectors[10:11], k=50)
    assert 110 not in [hit.id for hit in hits]  # deleted all the same


def test_a_folder_renamed_into_another_slot_is_refused(
    stem: Path, seal: FixedSeal, filled: tuple[MilvusIndex, NDArray[np.float32]]
) -> None:
    index, _ = filled
    index.save()
    index.close()
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(index.path))  # as if the process had ended
    other = stem.with_name("gallery-2")
    index_file("milvus", stem).rename(index_file("milvus", other))
    with pytest.raises(IndexFileUnreadable, match=r"of another slot.*rebuild the index"):
        open_index("milvus", other, DIMENSION, seal)


def test_a_file_where_the_folder_should_be_is_refused(stem: Path, seal: FixedSeal) -> None:
    index_file("milvus", stem).write_bytes(b"not an index")
    with pytest.raises(IndexFileUnreadable, match=r"not a Milvus Lite data folder.*rebuild"):
        open_index("milvus", stem, DIMENSION, seal)


def test_the_data_folder_is_private(
    stem: Path, filled: tuple[MilvusIndex, NDArray[np.float32]]
) -> None:
    """Lite's files hold the vectors unencrypted: the folder is the owner's alone (0700)."""
    index, _ = filled
    index.save()
    folder = index_file("milvus", stem)
    assert sorted(os.listdir(stem.parent)) == [folder.name]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_collection_names_follow_milvus_rules_and_stay_apart() -> None:
    names = {collection_name(slot) for slot in ("a-b", "a.b", "a_b", "a b")}
    assert len(names) == 4
    long = collection_name("g" * 300 + ".sface-int8.2021dec")
    assert len(long) <= 255
    for name in [*names, long]:
        assert name[0].isalpha()
        assert all(c.isalnum() or c == "_" for c in name)
    assert collection_name("x", prefix="home2").startswith("home2_x_")


def test_unknown_index_types_are_refused() -> None:
    assert MilvusSettings(index_type="hnsw").index_type == "HNSW"
    with pytest.raises(ValueError, match="index_type must be one of"):
        MilvusSettings(index_type="ANNOY")


def test_drop_deletes_the_collection_and_the_lite_folder(
    stem: Path, seal: FixedSeal, filled: tuple[MilvusIndex, NDArray[np.float32]]
) -> None:
    index, _ = filled
    index.save()
    index.drop()
    assert not index_file("milvus", stem).exists()
    with pytest.raises(IndexFileUnreadable, match="does not exist"):
        open_index("milvus", stem, None, seal)
    assert len(open_index("milvus", stem, DIMENSION, seal)) == 0  # a new, empty one

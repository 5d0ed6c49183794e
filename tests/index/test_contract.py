"""The VectorIndex contract: every backend must pass every test in this module."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from probity.errors import IntegrityError, InvalidInput
from probity.index import (
    BACKENDS,
    VectorIndex,
    index_file,
    index_paths,
    index_plaintext,
    open_index,
)
from probity.index.files import read_sealed
from probity.index.sealing import IndexFileUnreadable
from probity.index.vectors import normalise
from tests.index.conftest import FixedSeal

DIMENSION = 16


def random_vectors(n: int, seed: int, dimension: int = DIMENSION) -> NDArray[np.float32]:
    return np.random.default_rng(seed).normal(size=(n, dimension)).astype(np.float32)


MILVUS_HAS_NO_SEALED_FILE = (
    "Milvus keeps its own files, unsealed (at-rest encryption is its storage's job): there is "
    "no Probity file to inspect; tests/index/test_milvus_index.py checks its data folder, "
    "including the erasure byte scan"
)


def sealed_files_only(backend: str) -> None:
    """Skip a test of Probity's sealed index files for a backend that keeps none."""
    if backend == "milvus":
        pytest.skip(MILVUS_HAS_NO_SEALED_FILE)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "milvus":
        pytest.importorskip("pymilvus", reason="the milvus extra is not installed")
        pytest.importorskip("milvus_lite", reason="the milvus extra is not installed")
    return str(request.param)


@pytest.fixture
def stem(tmp_path: Path) -> Path:
    return tmp_path / "gallery-1"


@pytest.fixture
def index(backend: str, stem: Path, seal: FixedSeal) -> VectorIndex:
    return open_index(backend, stem, DIMENSION, seal)


@pytest.fixture
def filled(index: VectorIndex) -> tuple[VectorIndex, NDArray[np.float32]]:
    """An index holding ids 100..149 for the 50 returned vectors, in order."""
    vectors = random_vectors(50, seed=1)
    index.add(np.arange(100, 150), vectors)
    return index, vectors


def test_new_index_is_empty(index: VectorIndex) -> None:
    assert len(index) == 0
    assert index.dimension == DIMENSION
    assert index.ids().dtype == np.int64
    assert index.ids().size == 0


def test_search_finds_the_same_vector_first(
    filled: tuple[VectorIndex, NDArray[np.float32]],
) -> None:
    index, vectors = filled
    [hits] = index.search(vectors[7:8], k=5)
    assert len(hits) == 5
    assert hits[0].id == 107
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    similarities = [hit.similarity for hit in hits]
    assert similarities == sorted(similarities, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in similarities)


def test_queries_are_normalised(filled: tuple[VectorIndex, NDArray[np.float32]]) -> None:
    index, vectors = filled
    [hits] = index.search(vectors[3:4] * 40.0, k=1)
    assert hits[0].id == 103
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)


def test_one_result_list_per_query(filled: tuple[VectorIndex, NDArray[np.float32]]) -> None:
    index, vectors = filled
    results = index.search(vectors[:4], k=3)
    assert [hits[0].id for hits in results] == [100, 101, 102, 103]
    assert all(len(hits) == 3 for hits in results)


def test_k_larger_than_size_returns_everything(index: VectorIndex) -> None:
    vectors = random_vectors(3, seed=2)
    index.add([1, 2, 3], vectors)
    [hits] = index.search(vectors[:1], k=10)
    assert sorted(hit.id for hit in hits) == [1, 2, 3]
    assert hits[0].id == 1


def test_empty_index_search_returns_empty_lists(index: VectorIndex) -> None:
    assert index.search(random_vectors(2, seed=3), k=5) == [[], []]
    assert index.search(np.empty((0, DIMENSION), dtype=np.float32), k=5) == []


def test_adding_an_existing_id_replaces_it(index: VectorIndex) -> None:
    first, second = random_vectors(2, seed=4)
    index.add([1, 2], random_vectors(2, seed=5))
    index.add([7], first[None, :])
    index.add([7], second[None, :])
    assert len(index) == 3
    assert sorted(index.ids().tolist()) == [1, 2, 7]
    [hits] = index.search(second[None, :], k=3)
    assert hits[0].id == 7
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    [hits] = index.search(first[None, :], k=3)
    seven = next(hit for hit in hits if hit.id == 7)
    expected = float(
        normalise(first[None, :], DIMENSION)[0] @ normalise(second[None, :], DIMENSION)[0]
    )
    assert seven.similarity == pytest.approx(expected, abs=1e-5)


def test_remove_returns_count_and_the_id_never_comes_back(
    filled: tuple[VectorIndex, NDArray[np.float32]],
) -> None:
    index, vectors = filled
    assert index.remove([110, 120, 999]) == 2
    assert len(index) == 48
    assert 110 not in index.ids().tolist()
    for hits in index.search(vectors[[10, 20]], k=100):
        assert {110, 120}.isdisjoint(hit.id for hit in hits)
        assert len(hits) == 48
    assert index.remove([110]) == 0
    assert index.remove([]) == 0


def test_save_and_reopen_round_trip(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    index, vectors = filled
    index.remove([105])
    index.save()
    reopened = open_index(backend, stem, DIMENSION, seal)
    assert len(reopened) == 49
    assert sorted(reopened.ids().tolist()) == sorted(index.ids().tolist())
    before = index.search(vectors[:10], k=10)
    after = reopened.search(vectors[:10], k=10)
    assert [[hit.id for hit in hits] for hits in after] == [
        [hit.id for hit in hits] for hits in before
    ]
    for old, new in zip(before, after, strict=True):
        assert [h.similarity for h in new] == pytest.approx([h.similarity for h in old], abs=1e-6)


def test_nothing_is_persisted_until_save(
    backend: str, stem: Path, seal: FixedSeal, index: VectorIndex
) -> None:
    if backend == "milvus":
        pytest.skip("Milvus persists each write in its own log as it is made; save() flushes")
    index.add([1], random_vectors(1, seed=6))
    assert not index_file(backend, stem).exists()
    assert len(open_index(backend, stem, DIMENSION, seal)) == 0


def test_dimension_mismatch_is_refused_clearly(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    index, _ = filled
    with pytest.raises(InvalidInput, match="dimension 8 but this index holds dimension 16"):
        index.add([1], random_vectors(1, seed=7, dimension=8))
    with pytest.raises(InvalidInput, match="dimension 32 but this index holds dimension 16"):
        index.search(random_vectors(1, seed=7, dimension=32), k=1)
    with pytest.raises(InvalidInput, match="shape"):
        index.search(random_vectors(1, seed=7)[0], k=1)
    index.save()
    with pytest.raises(IntegrityError, match="dimension 16 vectors, expected 128"):
        open_index(backend, stem, 128, seal)


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        ([1], np.zeros((1, DIMENSION), dtype=np.float32), "all-zero"),
        ([1], np.full((1, DIMENSION), np.nan, dtype=np.float32), "NaN"),
        ([-1], np.ones((1, DIMENSION), dtype=np.float32), ">= 0"),
        ([1, 1], np.ones((2, DIMENSION), dtype=np.float32), "unique"),
        ([1, 2, 3], np.ones((2, DIMENSION), dtype=np.float32), "3 ids but 2 vectors"),
        ([1.5], np.ones((1, DIMENSION), dtype=np.float32), "integers"),
    ],
)
def test_bad_additions_are_refused_and_change_nothing(
    index: VectorIndex, ids: list[int], vectors: NDArray[np.float32], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        index.add(ids, vectors)
    assert len(index) == 0


def test_k_must_be_positive(filled: tuple[VectorIndex, NDArray[np.float32]]) -> None:
    index, vectors = filled
    with pytest.raises(InvalidInput, match="k must be"):
        index.search(vectors[:1], k=0)


def test_float64_vectors_are_accepted(index: VectorIndex) -> None:
    vectors = np.random.default_rng(8).normal(size=(5, DIMENSION))  # dlib gives float64
    index.add(np.arange(5, dtype=np.int64), vectors)  # type: ignore[arg-type]
    [hits] = index.search(vectors[2:3], k=1)  # type: ignore[arg-type]
    assert hits[0].id == 2


def test_clear_empties_the_index_and_the_saved_file(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    index, vectors = filled
    index.save()
    index.clear()
    assert len(index) == 0
    assert index.search(vectors[:1], k=3) == [[]]
    index.add([1], vectors[:1])
    assert index.ids().tolist() == [1]
    index.clear()
    index.save()
    assert len(open_index(backend, stem, DIMENSION, seal)) == 0


def test_backends_agree_on_top_10(tmp_path: Path, seal: FixedSeal) -> None:
    vectors = random_vectors(2_000, seed=9, dimension=32)
    queries = random_vectors(25, seed=10, dimension=32)
    ids = np.random.default_rng(11).permutation(10_000)[:2_000]
    results = {}
    for name in sorted(BACKENDS):
        if name == "milvus":
            continue  # compared with exact in tests/index/test_milvus_index.py
        index = open_index(name, tmp_path / name, 32, seal)
        index.add(ids, vectors)
        results[name] = index.search(queries, k=10)
    exact, faiss = results["exact"], results["faiss"]
    for exact_hits, faiss_hits in zip(exact, faiss, strict=True):
        assert [h.id for h in faiss_hits] == [h.id for h in exact_hits]
        assert [h.similarity for h in faiss_hits] == pytest.approx(
            [h.similarity for h in exact_hits], abs=1e-5
        )


def test_removed_vector_bytes_are_not_in_the_saved_file(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    """Acceptance test for erasure: after remove + save, the template is gone from the file,
    even to someone who holds the key (the decrypted payload is searched)."""
    sealed_files_only(backend)
    index, vectors = filled
    removed = normalise(vectors[12:13], DIMENSION)[0].tobytes()  # id 112
    kept = normalise(vectors[30:31], DIMENSION)[0].tobytes()  # id 130
    index.save()
    before = b"".join(index_plaintext(backend, stem, seal))
    # Both are in the payload before removal: proves the scan can find what it looks for.
    assert removed in before
    assert kept in before

    assert index.remove([112]) == 1
    index.save()
    after = b"".join(index_plaintext(backend, stem, seal))
    assert removed not in after
    assert kept in after


def test_the_file_holds_no_vector_in_the_clear(
    backend: str, stem: Path, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    sealed_files_only(backend)
    index, vectors = filled
    index.save()
    raw = b"".join(p.read_bytes() for p in index_paths(backend, stem))
    for row in normalise(vectors, DIMENSION):
        assert row.tobytes() not in raw
        assert row[: DIMENSION // 2].tobytes() not in raw  # nor half of one
    assert index.ids().astype(np.int64).tobytes() not in raw


def test_applied_seq_round_trips_and_never_moves_backwards(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    index, _ = filled
    assert index.applied_seq == 0
    index.mark_applied(41)
    index.mark_applied(7)  # older: ignored
    assert index.applied_seq == 41
    index.save()
    index.mark_applied(50)  # not saved
    reopened = open_index(backend, stem, DIMENSION, seal)
    assert reopened.applied_seq == 41
    assert len(reopened) == 50
    assert open_index(backend, stem, None, seal).applied_seq == 41


def test_clear_resets_applied_seq(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    index, _ = filled
    index.mark_applied(9)
    index.clear()
    assert index.applied_seq == 0
    index.save()
    assert open_index(backend, stem, DIMENSION, seal).applied_seq == 0


def test_dimension_none_reads_the_header(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    index, vectors = filled
    index.save()
    reopened = open_index(backend, stem, None, seal)
    assert reopened.dimension == DIMENSION
    assert reopened.search(vectors[4:5], k=1)[0][0].id == 104
    with pytest.raises(IndexFileUnreadable, match="does not exist"):
        open_index(backend, stem.with_name("absent"), None, seal)


def test_saves_use_the_current_epoch_and_old_epochs_still_open(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    sealed_files_only(backend)
    index, _ = filled
    index.save()
    seal.current_epoch = 2  # a rotation; epoch 1 still alive
    assert len(open_index(backend, stem, DIMENSION, seal)) == 50
    index.save()
    assert read_sealed(index_file(backend, stem), seal=seal, backend=backend)[1].epoch == 2


def test_a_file_sealed_under_a_destroyed_epoch_is_unreadable(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    sealed_files_only(backend)
    index, _ = filled
    index.save()
    seal.current_epoch = 2
    seal.destroyed.add(1)  # an erasure rotated the KEK and destroyed epoch 1
    with pytest.raises(IndexFileUnreadable, match="epoch 1, which is gone"):
        open_index(backend, stem, DIMENSION, seal)


def test_another_key_is_refused(
    backend: str, stem: Path, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    sealed_files_only(backend)
    index, _ = filled
    index.save()
    with pytest.raises(IndexFileUnreadable, match="failed authentication"):
        open_index(backend, stem, DIMENSION, FixedSeal(salt=b"another home"))


def test_a_file_renamed_into_another_slot_is_refused(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    sealed_files_only(backend)
    index, _ = filled
    index.save()
    other = stem.with_name("gallery-2")
    index_file(backend, stem).rename(index_file(backend, other))
    with pytest.raises(IndexFileUnreadable, match="sealed for the slot 'gallery-1"):
        open_index(backend, other, DIMENSION, seal)


@pytest.mark.parametrize("keep", [0, 10, 60, -1])
def test_a_truncated_file_is_refused(
    backend: str,
    stem: Path,
    seal: FixedSeal,
    filled: tuple[VectorIndex, NDArray[np.float32]],
    keep: int,
) -> None:
    sealed_files_only(backend)
    index, _ = filled
    index.save()
    path = index_file(backend, stem)
    raw = path.read_bytes()
    path.write_bytes(raw[:keep])
    with pytest.raises(IndexFileUnreadable, match=r"truncated|not a sealed index file"):
        open_index(backend, stem, DIMENSION, seal)


def test_a_flipped_bit_is_refused(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    sealed_files_only(backend)
    index, _ = filled
    index.save()
    path = index_file(backend, stem)
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexFileUnreadable, match="failed authentication"):
        open_index(backend, stem, DIMENSION, seal)


def test_another_backends_file_is_refused(
    backend: str, stem: Path, seal: FixedSeal, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    sealed_files_only(backend)
    index, _ = filled
    index.save()
    other = "exact" if backend == "faiss" else "faiss"
    index_file(backend, stem).rename(index_file(other, stem))
    with pytest.raises(IndexFileUnreadable, match=f"holds a '{backend}' index"):
        open_index(other, stem, DIMENSION, seal)


def test_save_leaves_no_temp_files_and_is_private(
    backend: str, stem: Path, filled: tuple[VectorIndex, NDArray[np.float32]]
) -> None:
    sealed_files_only(backend)
    index, _ = filled
    index.save()
    index.remove([100])
    index.save()  # a second save replaces the first file
    paths = index_paths(backend, stem)
    assert index_file(backend, stem) in paths
    assert sorted(os.listdir(stem.parent)) == sorted(p.name for p in paths)
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_creates_the_parent_folder(backend: str, tmp_path: Path, seal: FixedSeal) -> None:
    stem = tmp_path / "home" / "index" / "gallery-2"
    index = open_index(backend, stem, DIMENSION, seal)
    index.add([1], random_vectors(1, seed=12))
    index.save()
    assert index_file(backend, stem).exists()


def test_unreadable_file_raises_integrity_error(backend: str, stem: Path, seal: FixedSeal) -> None:
    sealed_files_only(backend)
    index_file(backend, stem).write_bytes(b"not an index")
    with pytest.raises(IndexFileUnreadable, match=r"not a sealed index file.*rebuild the index"):
        open_index(backend, stem, DIMENSION, seal)


def test_a_plain_file_from_before_sealing_is_unreadable(
    backend: str, stem: Path, seal: FixedSeal
) -> None:
    sealed_files_only(backend)
    import faiss

    vectors = normalise(random_vectors(5, seed=14), DIMENSION)
    path = index_file(backend, stem)
    if backend == "faiss":
        plain = faiss.IndexIDMap2(faiss.IndexFlatIP(DIMENSION))
        plain.add_with_ids(vectors, np.arange(5, dtype=np.int64))
        faiss.write_index(plain, str(path))
    else:
        with path.open("wb") as handle:
            np.savez(handle, ids=np.arange(5, dtype=np.int64), vectors=vectors)
    with pytest.raises(IndexFileUnreadable, match="not a sealed index file"):
        open_index(backend, stem, DIMENSION, seal)
    assert issubclass(IndexFileUnreadable, IntegrityError)


def test_concurrent_adds_removes_and_searches(index: VectorIndex) -> None:
    vectors = random_vectors(400, seed=13)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for start in range(offset, 400, 40):
                index.add(np.arange(start, start + 10), vectors[start : start + 10])
                index.remove([start + 9])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def reader() -> None:
        try:
            for _ in range(50):
                for hits in index.search(vectors[:5], k=5):
                    assert len({hit.id for hit in hits}) == len(hits)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(o,)) for o in (0, 10, 20, 30)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(index) == 360
    assert len(set(index.ids().tolist())) == 360

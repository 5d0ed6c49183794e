"""FAISS-specific checks: removal compacts the flat storage in memory, and loading refuses
(sealed) files that hold another kind of FAISS index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from probity.index.faiss_index import FaissIndex
from probity.index.files import write_sealed
from probity.index.sealing import IndexFileUnreadable
from probity.index.vectors import normalise
from tests.index.conftest import FixedSeal


def stored_bytes(index: FaissIndex) -> bytes:
    """The live flat storage (xb) of the wrapped IndexFlatIP, ntotal x d float32."""
    flat: Any = faiss.downcast_index(index._index.index)
    xb = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d)
    return bytes(xb.tobytes())


def test_remove_compacts_the_flat_storage(tmp_path: Path, seal: FixedSeal) -> None:
    index = FaissIndex(tmp_path / "g.faiss", 8, seal)
    vectors = np.random.default_rng(0).normal(size=(10, 8)).astype(np.float32)
    index.add(np.arange(10), vectors)
    target = normalise(vectors[4:5], 8)[0].tobytes()
    kept = normalise(vectors[9:10], 8)[0].tobytes()
    assert target in stored_bytes(index)

    assert index.remove([4]) == 1
    live = stored_bytes(index)
    assert len(live) == 9 * 8 * 4
    assert target not in live
    assert kept in live
    assert sorted(index.ids().tolist()) == [0, 1, 2, 3, 5, 6, 7, 8, 9]


def test_replacing_an_id_leaves_one_copy(tmp_path: Path, seal: FixedSeal) -> None:
    index = FaissIndex(tmp_path / "g.faiss", 8, seal)
    old, new = np.random.default_rng(1).normal(size=(2, 8)).astype(np.float32)
    index.add([1, 2], np.stack([old, new]))
    index.add([1], new[None, :])
    live = stored_bytes(index)
    assert normalise(old[None, :], 8)[0].tobytes() not in live
    assert len(live) == 2 * 8 * 4


def test_loading_another_faiss_index_type_is_refused(tmp_path: Path, seal: FixedSeal) -> None:
    path = tmp_path / "g.faiss"
    payload = faiss.serialize_index(faiss.IndexFlatL2(8))
    write_sealed(
        path, payload.data, seal=seal, applied_seq=0, backend="faiss", dimension=8, count=0
    )
    with pytest.raises(IndexFileUnreadable, match="not an IndexIDMap2"):
        FaissIndex(path, 8, seal)


def test_a_header_that_disagrees_with_the_index_is_refused(tmp_path: Path, seal: FixedSeal) -> None:
    path = tmp_path / "g.faiss"
    index = FaissIndex(path, 8, seal)
    index.add([1, 2], np.ones((2, 8), dtype=np.float32))
    payload = faiss.serialize_index(index._index)
    write_sealed(
        path, payload.data, seal=seal, applied_seq=3, backend="faiss", dimension=8, count=5
    )
    with pytest.raises(IndexFileUnreadable, match="does not match its header"):
        FaissIndex(path, 8, seal)

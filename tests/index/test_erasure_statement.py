"""What an erasure receipt says the index erasure guarantees, per backend
(``erasure_statement``): only what the backend's code does, and for a Milvus cluster only
what Milvus does, with the operator's stated bound or the plain fact that none is stated.
No server is needed: the cluster wording depends on the settings alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from probity.config import MilvusSettings
from probity.errors import InvalidInput
from probity.index.factory import erasure_statement
from probity.index.milvus_index import collection_name

AT = datetime(2026, 12, 3, 9, 30, 5, tzinfo=UTC)
SLOT = "3f2a9c.sface_int8.2021dec"
CLUSTER = "https://milvus.internal:19530"


def test_milvus_lite_says_the_folder_was_rewritten() -> None:
    text = erasure_statement("milvus", MilvusSettings(), at=AT, slot=SLOT)
    assert text.startswith(f"Vector index (Milvus Lite, data folder `{SLOT}.milvus.db`")
    assert "2026-12-03T09:30:05+00:00" in text
    assert "collection is rewritten without them" in text
    assert "in no file of the index folder" in text
    assert "Freed disk blocks are not overwritten" in text
    assert "not sealed by Probity" in text  # Lite's files hold the vectors in the clear
    assert "destroyed with its subject's key" in text
    assert "compaction" not in text  # Lite's compaction is a no-op; the rewrite is the proof


def test_a_cluster_names_the_collection_and_the_stated_bound() -> None:
    milvus = MilvusSettings(uri=CLUSTER, collection_prefix="custom", stated_removal_bound="4 hours")
    text = erasure_statement("milvus", milvus, at=AT, slot=SLOT)
    assert text.startswith(f"Vector index (Milvus collection `{collection_name(SLOT, 'custom')}`)")
    assert "confirms the deletion and the flush" in text
    assert "compaction Probity requested complete" in text
    assert "no search can return them" in text
    assert "operator states" in text and "within 4 hours of the deletion" in text
    assert "cannot observe this and does not certify it" in text
    assert "Backups of the Milvus cluster are not covered" in text
    assert CLUSTER not in text  # where the cluster is is configuration, not proof
    # It never says the bytes are gone: Milvus does not promise that at the deletion.
    assert "no file" not in text and "bytes are" not in text


def test_a_cluster_without_a_stated_bound_says_it_is_not_stated() -> None:
    text = erasure_statement("milvus", MilvusSettings(uri=CLUSTER), at=AT, slot=SLOT)
    assert "has not stated within what time" in text
    assert "operator states" not in text
    assert f"`{collection_name(SLOT)}`" in text


def test_the_sealed_backends_say_their_file_is_rewritten() -> None:
    ivf = erasure_statement("ivf", None, at=AT, slot=SLOT)
    assert ivf.startswith(f"Vector index (ivf, `{SLOT}.ivf` and its segment files")
    assert "fresh random key" in ivf and "deletes the old segment files" in ivf
    for backend, suffix in (("faiss", ".faiss"), ("exact", ".npz")):
        text = erasure_statement(backend, None, at=AT, slot=SLOT)
        assert f"the sealed file `{SLOT}{suffix}`" in text
        assert "whole file is rewritten without them" in text
    for text in (ivf, erasure_statement("faiss", None, at=AT)):
        assert "Freed disk blocks are not overwritten" in text
        assert "a backup of the home" in text  # covered by the key rotation only


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(InvalidInput):
        erasure_statement("hnsw", None, at=AT)

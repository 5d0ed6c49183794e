"""Envelope encryption, the master key file and the blob store."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from probity.errors import IntegrityError, NotFound, NotInitialised
from probity.storage.blobs import FileBlobStore
from probity.storage.keyring import (
    Keyring,
    create_master_key_file,
    load_master_key,
    new_data_key,
    seal,
    unseal,
)


def test_seal_round_trip_and_tamper_detection() -> None:
    key = new_data_key()
    sealed = seal(key, b"template bytes", b"probity/template/s1")
    assert b"template bytes" not in sealed
    assert unseal(key, sealed, b"probity/template/s1") == b"template bytes"
    with pytest.raises(IntegrityError):
        unseal(key, sealed, b"probity/template/s2")  # bound to its owner
    with pytest.raises(IntegrityError):
        unseal(new_data_key(), sealed, b"probity/template/s1")
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(IntegrityError):
        unseal(key, flipped, b"probity/template/s1")


def test_wrapped_key_is_bound_to_subject() -> None:
    ring = Keyring(new_data_key())
    data_key = new_data_key()
    wrapped = ring.wrap("s1", data_key)
    assert ring.unwrap("s1", wrapped) == data_key
    with pytest.raises(IntegrityError):
        ring.unwrap("s2", wrapped)


def test_master_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "home" / "master.key"
    assert create_master_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    assert not create_master_key_file(path)
    assert path.read_bytes() == first
    assert len(load_master_key(env_value=None, key_file=path)) == 32


def test_master_key_from_environment_and_errors(tmp_path: Path) -> None:
    key = new_data_key()
    assert load_master_key(env_value=base64.b64encode(key).decode(), key_file=tmp_path / "x") == key
    with pytest.raises(NotInitialised, match="probity init"):
        load_master_key(env_value=None, key_file=tmp_path / "absent.key")
    with pytest.raises(IntegrityError, match="32 bytes"):
        load_master_key(env_value=base64.b64encode(b"short").decode(), key_file=tmp_path / "x")
    with pytest.raises(IntegrityError, match="base64"):
        load_master_key(env_value="not base64!!", key_file=tmp_path / "x")


def test_blob_store(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    blob_id = "ab" * 16
    store.put(blob_id, b"sealed")
    assert store.get(blob_id) == b"sealed"
    path = tmp_path / "blobs" / "ab" / blob_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob(".tmp-*"))
    assert store.delete(blob_id)
    assert not store.delete(blob_id)
    with pytest.raises(NotFound):
        store.get(blob_id)
    with pytest.raises(IntegrityError):
        store.get("../../etc/passwd")

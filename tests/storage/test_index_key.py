"""Keyring.index_key: the key index files are sealed under, derived from each epoch's KEK,
so it rotates with the KEK and dies with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from probity.errors import IntegrityError
from probity.storage.keyring import Keyring, new_data_key


def test_index_key_is_hkdf_of_the_kek_and_differs_by_epoch(tmp_path: Path) -> None:
    ring = Keyring(new_data_key(), tmp_path / "keys")
    ring.write_kek(1)
    ring.write_kek(2)
    keys = [ring.index_key(epoch) for epoch in (0, 1, 2)]
    assert all(len(key) == 32 for key in keys)
    assert len(set(keys)) == 3
    assert ring.index_key(1) == keys[1]  # deterministic
    expected = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"probity/index-file/v1"
    ).derive(ring.kek(1))
    assert keys[1] == expected
    assert keys[1] != ring.kek(1)  # never the KEK itself


def test_another_process_derives_the_same_key(tmp_path: Path) -> None:
    master = new_data_key()
    first = Keyring(master, tmp_path / "keys")
    first.write_kek(1)
    second = Keyring(master, tmp_path / "keys")
    assert second.index_key(1) == first.index_key(1)


def test_a_destroyed_epoch_has_no_index_key(tmp_path: Path) -> None:
    ring = Keyring(new_data_key(), tmp_path / "keys")
    ring.write_kek(1)
    ring.index_key(0)
    ring.destroy_below(1)
    with pytest.raises(IntegrityError, match="epoch 0 was destroyed"):
        ring.index_key(0)
    assert len(ring.index_key(1)) == 32


def test_an_epoch_whose_key_file_is_gone_raises(tmp_path: Path) -> None:
    ring = Keyring(new_data_key(), tmp_path / "keys")
    with pytest.raises(IntegrityError, match="epoch 3 is gone"):
        ring.index_key(3)

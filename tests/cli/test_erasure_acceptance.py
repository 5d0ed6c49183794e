"""Issue 5's erasure acceptance, end to end through the real ``probity`` commands and the real
dlib models on the committed photos (tests/data).

A subject enrolled from three photos is found by a fourth; ``probity erase`` prints a
receipt; then the same search with the threshold off does not return them at any rank, their
rows are gone, the index holds three vectors fewer and its file none of their bytes, the
SQLite file (and its WAL) and the blob store hold none of their template bytes, and a copy of
the home taken before the erasure no longer opens with the current keys (while it did with
the keys it was taken with, so the check can fail). The audit chain still verifies.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from probity.errors import IntegrityError
from probity.index import index_paths, index_plaintext, open_index
from probity.index.sealing import IndexFileUnreadable
from probity.index.vectors import normalise
from probity.storage.keyring import Keyring, load_master_key, unseal
from probity.storage.vault import unwrap_in_sqlite_file
from tests.cli.conftest import COLLECTED_AT, DATA, HomeSeal

OBAMA = ("obama.jpg", "obama2.jpg", "obama3.jpg")
PROBE = "obama_partial_face2.jpg"
OTHERS = {"biden.jpg": "S-BIDEN", "astronaut.png": "S-COLLINS"}


def _enrol(probity, home: Path, photo: str, subject: str) -> None:  # type: ignore[no-untyped-def]
    run = probity(
        "enrol", "custody", str(DATA / photo), "--home", str(home), "--subject", subject,
        "--source", f"custody-suite/{photo}", "--lawful-basis", "law_enforcement",
        "--collected-at", COLLECTED_AT, "--jurisdiction", "GB",
    )  # fmt: skip
    assert run.code == 0, run.err


def _search(probity, home: Path) -> list[str]:  # type: ignore[no-untyped-def]
    run = probity(
        "search", str(DATA / PROBE), "--case", "ER-1", "--home", str(home),
        "--no-threshold", "--top", "100", "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    faces = json.loads(run.out)["faces"]
    return [c["subject"] for f in faces for c in f["candidates"]]


def _subject_material(home: Path, reference: str) -> dict[str, object]:
    """The subject's id, wrapped key, sealed templates and image blob ids, as stored."""
    with sqlite3.connect(home / "probity.db") as db:
        (subject_id,) = db.execute(
            "SELECT id FROM subjects WHERE reference = ?", (reference,)
        ).fetchone()
        (wrapped,) = db.execute(
            "SELECT wrapped_key FROM subject_keys WHERE subject_id = ?", (subject_id,)
        ).fetchone()
        sealed = [r[0] for r in db.execute(
            "SELECT sealed_vector FROM templates WHERE subject_id = ?", (subject_id,)
        )]  # fmt: skip
        blobs = [r[0] for r in db.execute(
            "SELECT image_blob FROM enrolments WHERE subject_id = ?", (subject_id,)
        )]  # fmt: skip
    return {"id": subject_id, "wrapped": wrapped, "sealed": sealed, "blobs": blobs}


def _keyring(home: Path) -> Keyring:
    return Keyring(load_master_key(env_value=None, key_file=home / "master.key"), home / "keys")


def _open_key(ring: Keyring, db_of: Path, material: dict[str, object]) -> bytes:
    """The subject's data key as ``material`` holds it, opened with ``ring`` and the bucket
    KEKs (storage/vault.py) of the database in ``db_of``."""
    aad = Keyring.subject_aad(str(material["id"]))
    return unwrap_in_sqlite_file(ring, db_of / "probity.db", aad, material["wrapped"])  # type: ignore[arg-type]


def _open_index_copy(index_file: Path, keys_of: Path) -> int:
    """Open an index file with the keys of the home ``keys_of``; its vector count."""
    return len(open_index("ivf", index_file.with_suffix(""), None, HomeSeal(keys_of)))


def _index_bytes(index_file: Path) -> bytes:
    """Every byte at rest of the index whose manifest is ``index_file``, segments included."""
    return b"".join(p.read_bytes() for p in index_paths("ivf", index_file.with_suffix("")))


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_erasure_reaches_every_copy(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    assert probity("init", "--home", str(home)).code == 0
    run = probity(
        "gallery", "create", "custody", "--home", str(home), "--policy", "charged persons",
        "--retention-days", "365", "--jurisdiction", "GB",
    )  # fmt: skip
    assert run.code == 0, run.err
    for photo in OBAMA:
        _enrol(probity, home, photo, "S-OBAMA")
    for photo, subject in OTHERS.items():
        _enrol(probity, home, photo, subject)
    run = probity(
        "case", "open", "ER-1", "--home", str(home), "--offence", "robbery",
        "--justification", "still from the bank's camera", "--authorisation", "W-1",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert _search(probity, home)[0] == "S-OBAMA"

    # What the subject left on disk, and the index before.
    before = _subject_material(home, "S-OBAMA")
    ring = _keyring(home)
    data_key = _open_key(ring, home, before)
    aad = b"probity/template/" + str(before["id"]).encode()
    vectors = [
        np.frombuffer(unseal(data_key, s, aad), "<f4")  # type: ignore[arg-type]
        for s in before["sealed"]  # type: ignore[attr-defined]
    ]
    index_bytes = [normalise(v[None, :].astype(np.float32), 128).tobytes() for v in vectors]
    raw_bytes = [v.astype("<f4").tobytes() for v in vectors]
    (index_file,) = (home / "index").glob("*.ivf")
    # The index files are sealed: not even a live template is in them in the clear ...
    assert not any(b in _index_bytes(index_file) for b in index_bytes)
    # ... but decrypted with the home's keys they hold it (so the scan below can fail).
    plain = b"".join(index_plaintext("ivf", index_file.with_suffix(""), HomeSeal(home)))
    assert all(b in plain for b in index_bytes)
    status = json.loads(probity("index", "status", "--home", str(home), "--json").out)
    vectors_before = sum(g["vectors"] for g in status)
    copy = tmp_path / "home-before"
    shutil.copytree(home, copy)
    # ... but its own keys open it (so the check after the erasure can fail).
    copied_index = copy / "index" / index_file.name
    assert _open_index_copy(copied_index, copy) == vectors_before

    run = probity(
        "erase", "S-OBAMA", "--gallery", "custody", "--reason", "erasure request RR-1",
        "--home", str(home),
    )  # fmt: skip
    assert run.code == 0, run.err
    receipt = run.out.split()[0]
    assert re.fullmatch(r"ER-\d{4}-[0-9A-F]{10}", receipt), run.out

    # Search: not at any rank, with the threshold off; the others still there.
    found = _search(probity, home)
    assert "S-OBAMA" not in found and set(found) == set(OTHERS.values())

    # Rows gone.
    with sqlite3.connect(home / "probity.db") as db:
        for table, column in (
            ("subjects", "id"), ("subject_keys", "subject_id"), ("templates", "subject_id"),
            ("enrolments", "subject_id"),
        ):  # fmt: skip
            count = db.execute(
                f"SELECT count(*) FROM {table} WHERE {column} = ?", (before["id"],)
            ).fetchone()[0]
            assert count == 0, f"{table} still holds the subject"
        (number,) = db.execute(
            "SELECT id FROM erasure_receipts WHERE subject_id = ?", (before["id"],)
        ).fetchone()
        assert number == receipt

    # Index: three vectors fewer, none of their bytes in the rewritten file.
    status = json.loads(probity("index", "status", "--home", str(home), "--json").out)
    assert sum(g["vectors"] for g in status) == vectors_before - 3
    assert all(g["in_step"] for g in status)
    data = _index_bytes(index_file)
    assert not any(b in data for b in index_bytes)
    plain = b"".join(index_plaintext("ivf", index_file.with_suffix(""), HomeSeal(home)))
    assert not any(b in plain for b in index_bytes)  # not even to the current keys

    # Database file (and WAL) and blob store: none of their template bytes, no image blob.
    stores = [p for p in home.glob("probity.db*")] + _files(home / "blobs")
    for path in stores:
        content = path.read_bytes()
        for b in [*before["sealed"], *raw_bytes, *index_bytes]:  # type: ignore[misc]
            assert b not in content, f"{path.name} still holds template bytes"
    for blob in before["blobs"]:  # type: ignore[attr-defined]
        assert not any(blob in p.name for p in _files(home / "blobs"))

    # The copy taken before: its own keys open it (so this check can fail) ...
    old = _subject_material(copy, "S-OBAMA")
    old_key = _open_key(_keyring(copy), copy, old)
    assert old_key == data_key
    # ... the current keys do not: the key-encryption key it was wrapped with is gone.
    with pytest.raises(IntegrityError):
        _open_key(_keyring(home), copy, old)  # the copy's bucket KEK, today's keys
    with pytest.raises(IntegrityError):
        _open_key(_keyring(home), home, old)  # today's bucket KEK: a newer generation
    assert not any((home / "keys").glob("kek-0.key"))
    # The copy of index/ taken before the erasure does not open with the current keys.
    with pytest.raises(IndexFileUnreadable):
        _open_index_copy(copied_index, home)

    # Audited, and the chain still verifies.
    log = probity("audit", "log", "--home", str(home), "--action", "subject.remove", "--json")
    assert receipt in log.out
    assert probity("audit", "verify", "--home", str(home)).code == 0

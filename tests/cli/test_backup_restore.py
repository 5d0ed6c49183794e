"""Issue 13's backup acceptance, through the real ``probity`` commands and the real dlib models
on the committed photos (tests/data).

``probity backup`` writes the data and the keys to two folders; ``probity restore`` into a
new folder gives the same candidates at the same distances for the same searches, and the
audit chain verifies there. Then a subject is erased: the old data backup, restored with the
keys backed up after the erasure, is refused (its key epoch is gone), and the erased
subject's stored key in it no longer opens with those keys, while it did with the keys of
its day (so the check can fail). A backup taken after the erasure restores without them.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from probity.errors import IntegrityError
from probity.storage.keyring import Keyring, load_master_key
from probity.storage.vault import unwrap_in_sqlite_file
from tests.cli.conftest import COLLECTED_AT, DATA

PEOPLE = {"obama.jpg": "S-OBAMA", "biden.jpg": "S-BIDEN", "astronaut.png": "S-COLLINS"}
PROBES = ("obama2.jpg", "obama_partial_face2.jpg", "biden.jpg")


def _ok(run) -> str:  # type: ignore[no-untyped-def]
    assert run.code == 0, run.err + run.out
    return str(run.out)


def _searches(probity, home: Path) -> dict[str, list[tuple[str, float]]]:  # type: ignore[no-untyped-def]
    """Every probe's full ranked list (threshold off): (subject, distance) per candidate."""
    found = {}
    for probe in PROBES:
        out = _ok(
            probity(
                "search",
                str(DATA / probe),
                "--case",
                "BK-1",
                "--home",
                str(home),
                "--no-threshold",
                "--top",
                "100",
                "--json",
            )
        )
        faces = json.loads(out)["faces"]
        found[probe] = [
            (c["subject"], round(c["distance"], 6)) for f in faces for c in f["candidates"]
        ]
    return found


def _stored_key(data: Path, reference: str) -> tuple[str, bytes]:
    with sqlite3.connect(data / "probity.db") as db:
        row = db.execute(
            "SELECT s.id, k.wrapped_key FROM subjects s JOIN subject_keys k "
            "ON k.subject_id = s.id WHERE s.reference = ?",
            (reference,),
        ).fetchone()
    assert row is not None, f"{reference} is not in {data}"
    return str(row[0]), bytes(row[1])


def _actions(home: Path) -> list[str]:
    with sqlite3.connect(home / "probity.db") as db:
        return [r[0] for r in db.execute("SELECT action FROM audit_events ORDER BY seq")]


def _keyring(keys: Path) -> Keyring:
    return Keyring(load_master_key(env_value=None, key_file=keys / "master.key"), keys / "keys")


def test_backup_restore_round_trip_and_erasure_survives(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    _ok(probity("init", "--home", str(home)))
    _ok(
        probity(
            "gallery",
            "create",
            "custody",
            "--home",
            str(home),
            "--policy",
            "charged persons",
            "--retention-days",
            "365",
            "--jurisdiction",
            "GB",
        )
    )
    for photo, subject in PEOPLE.items():
        _ok(
            probity(
                "enrol",
                "custody",
                str(DATA / photo),
                "--home",
                str(home),
                "--subject",
                subject,
                "--source",
                f"custody-suite/{photo}",
                "--lawful-basis",
                "law_enforcement",
                "--collected-at",
                COLLECTED_AT,
                "--jurisdiction",
                "GB",
            )
        )
    _ok(
        probity(
            "case",
            "open",
            "BK-1",
            "--home",
            str(home),
            "--offence",
            "robbery",
            "--justification",
            "still from the bank's camera",
            "--authorisation",
            "W-1",
        )
    )
    before = _searches(probity, home)
    assert before["obama2.jpg"][0][0] == "S-OBAMA"

    data1, keys1 = tmp_path / "backups" / "data-1", tmp_path / "vault" / "keys-1"
    out = _ok(probity("backup", "--home", str(home), "--data", str(data1), "--keys", str(keys1)))
    assert "key epoch" in out
    # Data and keys really are apart: no key file among the data, no database among the keys.
    assert not list(data1.rglob("*.key")) and not (data1 / "index").exists()
    assert (keys1 / "master.key").exists() and list((keys1 / "keys").glob("kek-*.key"))
    assert not list(keys1.rglob("*.db"))

    # Restore into a new folder: the same candidates at the same distances; the chain holds.
    restored = tmp_path / "restored"
    out = _ok(
        probity("restore", "--home", str(restored), "--data", str(data1), "--keys", str(keys1))
    )
    assert "audit chain intact" in out
    assert _searches(probity, restored) == before
    _ok(probity("audit", "verify", "--home", str(restored)))
    # The backup is in the audit chain it copied, and the restore in the restored one.
    copied, source = _actions(restored), _actions(home)
    at = copied.index("system.backup")
    assert copied[: at + 1] == source[: source.index("system.backup") + 1]
    assert copied[at + 1] == "system.restore"

    # An erasure after the backup, then the keys backed up again (the latest key backup is
    # the only one kept), with a data backup of the same moment.
    _ok(
        probity(
            "erase",
            "S-OBAMA",
            "--gallery",
            "custody",
            "--reason",
            "erasure request RR-1",
            "--home",
            str(home),
        )
    )
    data2, keys2 = tmp_path / "backups" / "data-2", tmp_path / "vault" / "keys-2"
    _ok(probity("backup", "--home", str(home), "--data", str(data2), "--keys", str(keys2)))

    # The old data with the new keys: refused, and nothing is written.
    stale = tmp_path / "stale"
    run = probity("restore", "--home", str(stale), "--data", str(data1), "--keys", str(keys2))
    assert run.code == IntegrityError.exit_code, run.out + run.err
    assert "an erasure since the data backup destroyed its keys" in run.err
    assert not stale.exists()
    # Not just refused by the command: the erased subject's stored key in the old data
    # opens with the keys of its day and not with today's.
    subject_id, wrapped = _stored_key(data1, "S-OBAMA")
    aad = Keyring.subject_aad(subject_id)
    db1 = data1 / "probity.db"
    assert len(unwrap_in_sqlite_file(_keyring(keys1), db1, aad, wrapped)) == 32
    with pytest.raises(IntegrityError):
        unwrap_in_sqlite_file(_keyring(keys2), db1, aad, wrapped)

    # The backup taken after the erasure restores, without the erased subject.
    after = tmp_path / "after"
    _ok(probity("restore", "--home", str(after), "--data", str(data2), "--keys", str(keys2)))
    found = _searches(probity, after)
    for probe, ranked in before.items():
        assert found[probe] == [c for c in ranked if c[0] != "S-OBAMA"], probe
    _ok(probity("audit", "verify", "--home", str(after)))


def test_backup_refuses_keys_beside_the_data_and_used_folders(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    _ok(probity("init", "--home", str(home)))
    inside = probity(
        "backup",
        "--home",
        str(home),
        "--data",
        str(tmp_path / "b"),
        "--keys",
        str(tmp_path / "b" / "keys"),
    )
    assert inside.code != 0 and "separate folders" in inside.err
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    run = probity("backup", "--home", str(home), "--data", str(used), "--keys", str(tmp_path / "k"))
    assert run.code != 0 and "not empty" in run.err
    # Restore refuses a home that already holds something, and swapped folders.
    _ok(
        probity(
            "backup",
            "--home",
            str(home),
            "--data",
            str(tmp_path / "d"),
            "--keys",
            str(tmp_path / "k"),
        )
    )
    run = probity(
        "restore", "--home", str(home), "--data", str(tmp_path / "d"), "--keys", str(tmp_path / "k")
    )
    assert run.code != 0 and "not empty" in run.err
    run = probity(
        "restore",
        "--home",
        str(tmp_path / "new"),
        "--data",
        str(tmp_path / "k"),
        "--keys",
        str(tmp_path / "d"),
    )
    assert run.code != 0 and "is a key backup, not a data backup" in run.err
    # An altered data file is named.
    db = tmp_path / "d" / "probity.db"
    db.write_bytes(db.read_bytes() + b"x")
    run = probity(
        "restore",
        "--home",
        str(tmp_path / "new"),
        "--data",
        str(tmp_path / "d"),
        "--keys",
        str(tmp_path / "k"),
    )
    assert run.code != 0 and "probity.db is missing or altered" in run.err

"""Bad input through the CLI: one clear error line, a non-zero exit, nothing written.
Uses only the photos committed in tests/data, so it runs everywhere."""

from __future__ import annotations

import hashlib
import io
import shutil
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from probity.index import index_paths, index_plaintext, open_index
from probity.index.vectors import normalise
from probity.storage.keyring import load_master_key, unseal
from tests.cli.conftest import DATA, HomeSeal

GOOD = [
    "--subject",
    "S-1",
    "--source",
    "custody/1",
    "--lawful-basis",
    "law_enforcement",
    "--collected-at",
    (date.today() - timedelta(days=30)).isoformat(),
    "--jurisdiction",
    "GB",
]


@pytest.fixture(scope="module")
def base_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from probity.interfaces.cli.main import main

    home = tmp_path_factory.mktemp("errors") / "home"
    assert main(["init", "--home", str(home)]) == 0
    assert (
        main(
            [
                "gallery",
                "create",
                "custody",
                "--home",
                str(home),
                "--policy",
                "charged persons",
                "--retention-days",
                "365",
            ]
        )
        == 0
    )
    assert main(["enrol", "custody", str(DATA / "obama.jpg"), "--home", str(home), *GOOD]) == 0
    assert (
        main(
            [
                "enrol",
                "custody",
                str(DATA / "biden.jpg"),
                "--home",
                str(home),
                *GOOD[:1],
                "S-2",
                *GOOD[2:],
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "case",
                "open",
                "C-1",
                "--home",
                str(home),
                "--offence",
                "robbery",
                "--justification",
                "still from the scene",
                "--authorisation",
                "A-1",
            ]
        )
        == 0
    )
    return home


@pytest.fixture
def home(base_home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(base_home, copy)
    return copy


def db_digest(home: Path) -> str:
    """A digest of every row of every table: equal digests mean an unchanged database."""
    digest = hashlib.sha256()
    with sqlite3.connect(home / "probity.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in sorted(tables):
            for row in db.execute(f"SELECT * FROM {table} ORDER BY 1"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def bad_images(folder: Path) -> dict[str, Path]:
    real = (DATA / "obama.jpg").read_bytes()
    files = {
        "zero-byte": b"",
        "corrupt": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        "not-an-image": b"name,subject\nx,y\n",
        "truncated": real[: len(real) // 2],
    }
    paths = {}
    for name, data in files.items():
        path = folder / f"{name}.jpg"
        path.write_bytes(data)
        paths[name] = path
    huge = folder / "huge.png"
    Image.new("1", (20_000, 20_000)).save(huge, optimize=True)  # 400 Mpx, a few kB
    paths["20000x20000"] = huge
    return paths


@pytest.mark.parametrize("command", ["enrol", "search"])
def test_bad_images_give_one_error_line_and_change_nothing(
    probity, home: Path, tmp_path: Path, command: str
) -> None:  # type: ignore[no-untyped-def]
    before = db_digest(home)
    for name, path in bad_images(tmp_path).items():
        if command == "enrol":
            run = probity("enrol", "custody", str(path), "--home", str(home), *GOOD)
        else:
            run = probity("search", str(path), "--case", "C-1", "--home", str(home))
        lines = [line for line in run.err.splitlines() if line.strip()]
        assert run.code != 0, name
        assert len(lines) == 1, (name, run.err)
        assert lines[0].startswith("error[") and "Traceback" not in run.err, name
        if name == "20000x20000":
            assert "image_too_large" in lines[0] and "pixels" in lines[0]
        assert db_digest(home) == before, name


@pytest.mark.parametrize(
    ("drop", "flag"),
    [
        ("--source", "source"),
        ("--lawful-basis", "lawful_basis"),
        ("--collected-at", "collected_at"),
        ("--jurisdiction", "jurisdiction"),
        ("--subject", "subject"),
    ],
)
def test_missing_provenance_names_the_field(probity, home: Path, drop: str, flag: str) -> None:  # type: ignore[no-untyped-def]
    args = list(GOOD)
    i = args.index(drop)
    del args[i : i + 2]
    before = db_digest(home)
    run = probity("enrol", "custody", str(DATA / "obama2.jpg"), "--home", str(home), *args)
    assert run.code != 0
    assert f"'{flag}'" in run.err or drop in run.err
    assert db_digest(home) == before


def test_search_needs_an_open_case(probity, home: Path) -> None:  # type: ignore[no-untyped-def]
    run = probity("search", str(DATA / "obama2.jpg"), "--home", str(home))
    assert run.code == 2 and "--case" in run.err
    run = probity("search", str(DATA / "obama2.jpg"), "--case", "NOPE", "--home", str(home))
    assert run.code == 3 and "error[case_not_found]" in run.err


def test_pending_authorisation_older_than_48_hours_blocks_search(probity, home: Path) -> None:  # type: ignore[no-untyped-def]
    assert (
        probity(
            "case",
            "open",
            "C-P",
            "--home",
            str(home),
            "--offence",
            "robbery",
            "--justification",
            "urgent, warrant requested",
            "--pending",
        ).code
        == 0
    )
    run = probity("search", str(DATA / "obama2.jpg"), "--case", "C-P", "--home", str(home))
    assert run.code == 0, run.err
    old = (datetime.now(UTC) - timedelta(hours=49)).replace(tzinfo=None)
    with sqlite3.connect(home / "probity.db") as db:
        db.execute(
            "UPDATE cases SET auth_requested_at = ? WHERE reference = 'C-P'",
            (old.isoformat(sep=" "),),
        )
    run = probity("search", str(DATA / "obama2.jpg"), "--case", "C-P", "--home", str(home))
    assert run.code == 5
    assert "error[case_not_searchable]" in run.err and "48 h" in run.err
    assert probity("audit", "verify", "--home", str(home)).code == 0


def test_subject_remove_takes_its_vector_bytes_out_of_the_index_file(probity, home: Path) -> None:  # type: ignore[no-untyped-def]
    with sqlite3.connect(home / "probity.db") as db:
        subject_id, sealed = db.execute(
            "SELECT t.subject_id, t.sealed_vector FROM templates t JOIN subjects s "
            "ON s.id = t.subject_id WHERE s.reference = 'S-1'"
        ).fetchone()
        (wrapped,) = db.execute(
            "SELECT wrapped_key FROM subject_keys WHERE subject_id = ?", (subject_id,)
        ).fetchone()
        gallery_id = db.execute("SELECT id FROM galleries").fetchone()[0]
    from probity.storage.keyring import Keyring

    master = load_master_key(env_value=None, key_file=home / "master.key")
    from probity.storage.vault import unwrap_in_sqlite_file

    key = unwrap_in_sqlite_file(
        Keyring(master, home / "keys"),
        home / "probity.db",
        Keyring.subject_aad(subject_id),
        wrapped,
    )
    vector = np.frombuffer(unseal(key, sealed, b"probity/template/" + subject_id.encode()), "<f4")
    stored = normalise(vector[None, :].astype(np.float32), 128).tobytes()
    (index_file,) = (home / "index").glob(f"{gallery_id}*.ivf")  # the gallery model's index
    stem = index_file.with_suffix("")

    def at_rest() -> bytes:
        return b"".join(p.read_bytes() for p in index_paths("ivf", stem))

    def decrypted() -> bytes:
        return b"".join(index_plaintext("ivf", stem, HomeSeal(home)))

    assert stored not in at_rest()  # sealed: not in the clear even while held
    assert stored in decrypted()  # but the home's keys find it (so the scan can fail)

    def best_match() -> float:
        index = open_index("ivf", stem, None, HomeSeal(home))
        hits = index.search(vector[None, :].astype(np.float32), 1)[0]
        return hits[0].similarity if hits else -1.0

    assert best_match() > 0.999  # the home's keys open it and find the vector (can fail)
    run = probity(
        "subject",
        "remove",
        "S-1",
        "--gallery",
        "custody",
        "--reason",
        "acquitted",
        "--home",
        str(home),
    )
    assert run.code == 0, run.err
    assert stored not in at_rest()
    assert stored not in decrypted()
    assert index_file.stat().st_size > 0
    assert best_match() < 0.999  # the vector left the index
    run = probity(
        "search",
        str(DATA / "obama2.jpg"),
        "--case",
        "C-1",
        "--home",
        str(home),
        "--no-threshold",
        "--json",
    )
    assert "S-1" not in run.out and "S-2" in run.out


def test_index_rebuild_from_encrypted_templates(probity, home: Path) -> None:  # type: ignore[no-untyped-def]
    for f in (home / "index").iterdir():
        if f.name.split(".")[-1] in ("ivf", "seg"):
            f.unlink()
    run = probity("index", "rebuild", "--home", str(home), "--json")
    assert run.code == 0 and '"vectors": 2' in run.out
    run = probity(
        "search", str(DATA / "obama2.jpg"), "--case", "C-1", "--home", str(home), "--json"
    )
    assert '"subject": "S-1"' in run.out


def test_commands_refuse_an_uninitialised_home(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = probity("gallery", "list", "--home", str(tmp_path / "nothing"))
    assert run.code == 6 and "probity init" in run.err


def test_exif_rotated_probe_still_finds_the_subject(probity, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = Image.open(DATA / "obama2.jpg").rotate(
        90, expand=True
    )  # stored turned 90° anticlockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: the viewer rotates 90° clockwise to show it upright
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    probe = tmp_path / "rotated.jpg"
    probe.write_bytes(buffer.getvalue())
    run = probity(
        "search", str(probe), "--case", "C-1", "--home", str(home), "--json", "--top", "1"
    )
    assert run.code == 0, run.err
    assert '"subject": "S-1"' in run.out


def test_gallery_quality_floor_can_be_raised(probity, home: Path) -> None:  # type: ignore[no-untyped-def]
    run = probity(
        "gallery",
        "create",
        "strict",
        "--home",
        str(home),
        "--policy",
        "passports",
        "--retention-days",
        "365",
        "--floor",
        "min_inter_eye_px=150",
        "--json",
    )
    assert run.code == 0, run.err
    assert '"min_inter_eye_px": 150.0' in run.out
    run = probity("enrol", "strict", str(DATA / "obama.jpg"), "--home", str(home), *GOOD)
    assert run.code == 2
    assert "error[quality_refused]" in run.err and "150" in run.err
    bad = probity(
        "gallery",
        "create",
        "x",
        "--home",
        str(home),
        "--policy",
        "p",
        "--retention-days",
        "30",
        "--floor",
        "eyes=3",
    )
    assert bad.code == 2 and "KEY=VALUE" in bad.err


def test_a_command_waits_for_a_retraining_it_started_and_says_so(  # type: ignore[no-untyped-def]
    probity, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command that succeeded waits for the index retraining it started, telling
    the user on stderr (the retraining itself: tests/index/test_ivf_index.py); a command
    that failed does not wait (it changed nothing that could have started one)."""
    from probity.services.indexes import IndexSet

    calls: list[str] = []

    def finish(self: IndexSet, on_wait=None) -> list[str]:  # type: ignore[no-untyped-def]
        calls.append("finish")
        assert on_wait is not None
        on_wait("custody.dlib", 812_345)
        return ["custody.dlib"]

    monkeypatch.setattr(IndexSet, "finish_retraining", finish)
    run = probity("case", "list", "--home", str(home))
    assert run.code == 0, run.err
    assert calls == ["finish"]
    assert "Finishing the retraining of index custody.dlib (812,345 faces)" in run.err
    run = probity("case", "authorise", "NO-SUCH-CASE", "--status", "expired", "--home", str(home))
    assert run.code != 0 and "NO-SUCH-CASE" in run.err and calls == ["finish"]

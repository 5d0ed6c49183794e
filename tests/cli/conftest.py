"""End-to-end CLI fixtures: the real ``probity`` commands, the real dlib models, real photos.

The NASA photos are read from ../shared/faces (never copied into the project); tests that
need them skip with a clear message where that folder is absent. One home folder with the
gallery enrolled is shared by the whole session, because the real model is slow on a CPU.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from probity.interfaces.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SHARED_FACES = REPO.parent / "shared" / "faces"
DATA = REPO / "tests" / "data"

# Gallery: one photo per person; Morgan from andrew_morgan_1.jpg only. eileen_collins_2.png
# carries the HOG false face on the mission patch. The rest are distractors.
GALLERY_PHOTOS = {
    "andrew_morgan_1.jpg": "MORGAN",
    "nick_hague_1.jpg": "HAGUE",
    "alexander_gerst_1.jpg": "GERST",
    "eileen_collins_2.png": "COLLINS",
    "barack_obama_1.jpg": "OBAMA",
    "joe_biden_1.jpg": "BIDEN",
    "christina_koch_1.jpg": "KOCH",
    "jessica_meir_1.jpg": "MEIR",
    "scott_kelly_1.jpg": "KELLY",
    "peggy_whitson_1.jpg": "WHITSON",
    "anne_mcclain_1.jpg": "MCCLAIN",
}


COLLECTED_AT = (date.today() - timedelta(days=60)).isoformat()  # tests must not age


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def probity(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Call the CLI in-process: ``probity("search", ..., home=path)`` -> Run."""

    def call(*args: str) -> Run:
        capsys.readouterr()
        code = main([*args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return call


def shared_faces() -> Path:
    if not (SHARED_FACES / "andrew_morgan_1.jpg").exists():
        pytest.skip(f"{SHARED_FACES} not present: NASA photos are read from there, never copied")
    return SHARED_FACES


def write_manifest(path: Path, photos: dict[str, str], folder: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "path",
                "subject",
                "source",
                "lawful_basis",
                "collected_at",
                "jurisdiction",
                "collected_by",
            ]
        )
        for name, ref in photos.items():
            writer.writerow(
                [
                    str(folder / name),
                    ref,
                    f"nasa-portraits/{name}",
                    "public_task",
                    COLLECTED_AT,
                    "US",
                    "test-suite",
                ]
            )
    return path


@dataclass
class NasaHome:
    home: Path
    bulk_code: int
    bulk_out: str


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class HomeSeal:
    """The index key of a home as it stands on disk (its database's KEK epoch, its key
    files), to open the home's sealed index files in a test."""

    def __init__(self, home: Path) -> None:
        import sqlite3

        from probity.storage.keyring import Keyring, load_master_key

        master = load_master_key(env_value=None, key_file=home / "master.key")
        self.ring = Keyring(master, home / "keys")
        with sqlite3.connect(home / "probity.db") as db:
            (self.epoch,) = db.execute("SELECT epoch FROM keyring_state").fetchone()

    def current(self) -> tuple[int, bytes]:
        return int(self.epoch), self.ring.index_key(int(self.epoch))

    def key(self, epoch: int) -> bytes:
        return self.ring.index_key(epoch)

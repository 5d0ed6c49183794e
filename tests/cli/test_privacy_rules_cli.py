"""``probity sweep`` and ``probity jurisdiction ...`` run in-process, as a user runs them.

The CLI builds its services with the system clock; here ``build_services`` is wrapped so
every command of a test shares one manual clock (to move it two days on) and, where the
test does not need the real models, the fake engine. The last test runs the real dlib
models on the committed photos in tests/data."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from probity.config import Settings
from probity.engine.types import FaceEngine
from probity.index.vectors import normalise
from probity.interfaces.cli import common
from probity.services import container
from probity.services.clock import ManualClock
from probity.services.container import Services
from probity.services.indexes import IndexSlot
from tests.cli.conftest import DATA, Run
from tests.fakes import FakeEngine, make_image, unit

TODAY = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Home:
    path: Path
    clock: ManualClock
    cli: Callable[..., Run]

    def run(self, *args: str) -> Run:
        return self.cli(*args, "--home", str(self.path))

    def services(self) -> Services:
        return common.build_services(Settings(home=self.path))


def make_home(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    probity: Callable[..., Run],
    engine: FaceEngine | None,
) -> Home:
    clock = ManualClock(TODAY)
    real = container.build_services

    def build(settings: Settings) -> Services:
        return real(settings, engine=engine, clock=clock)

    monkeypatch.setattr(common, "build_services", build)
    home = Home(tmp_path / "home", clock, probity)
    assert home.run("init").code == 0
    return home


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probity: Callable[..., Run], fake: FakeEngine
) -> Home:
    return make_home(tmp_path, monkeypatch, probity, fake)


def gallery(home: Home, name: str, days: int) -> None:
    r = home.run(
        "gallery", "create", name, "--policy", "custody images", "--retention-days", str(days)
    )
    assert r.code == 0, r.err


def enrol(home: Home, name: str, image: Path, ref: str, place: str) -> Run:
    return home.run(
        "enrol", name, str(image), "--subject", ref, "--source", f"custody/{ref}",
        "--lawful-basis", "law_enforcement", "--collected-at", home.clock().date().isoformat(),
        "--jurisdiction", place,
    )  # fmt: skip


def fake_photo(tmp_path: Path, fake: FakeEngine, seed: int, vector: np.ndarray) -> Path:
    path = tmp_path / f"photo-{seed}.png"
    path.write_bytes(fake.register(make_image(seed), vector))
    return path


def count(s: Services, sql: str) -> int:
    with s.db.read() as session:
        return int(session.execute(text(sql)).scalar_one())


def blob_files(home: Home) -> list[Path]:
    return [p for p in (home.path / "blobs").rglob("*") if p.is_file()]


def nothing_left(home: Home) -> dict[str, Any]:
    s = home.services()
    try:
        return {
            "subjects": count(s, "SELECT count(*) FROM subjects"),
            "keys": count(s, "SELECT count(*) FROM subject_keys"),
            "enrolments": count(s, "SELECT count(*) FROM enrolments"),
            "templates": count(s, "SELECT count(*) FROM templates"),
            "vectors": sum(s.indexes.size(IndexSlot.of(g)) for g in s.galleries.all()),
        }
    finally:
        s.close()


def test_one_day_retention_two_days_later_probity_sweep_leaves_nothing(
    home: Home, fake: FakeEngine, tmp_path: Path
) -> None:
    gallery(home, "short", 1)
    vector = unit(5)
    assert enrol(home, "short", fake_photo(tmp_path, fake, 5, vector), "EXP-1", "GB").code == 0
    assert enrol(home, "short", fake_photo(tmp_path, fake, 6, unit(6)), "EXP-1", "GB").code == 0
    assert len(blob_files(home)) == 2

    r = home.run("sweep")
    assert r.code == 0 and "Nothing is due" in r.out

    home.clock.advance(timedelta(days=2))
    r = home.run("sweep")
    assert r.code == 0, r.err
    assert r.out.startswith("ER-") and "short/EXP-1: 2 enrolment(s)" in r.out
    assert "1 subject(s) erased whole" in r.out
    assert nothing_left(home) == dict.fromkeys(
        ("subjects", "keys", "enrolments", "templates", "vectors"), 0
    )
    assert blob_files(home) == []
    s = home.services()
    try:
        index_bytes = b"".join(
            s.indexes.path(IndexSlot.of(g)).read_bytes() for g in s.galleries.all()
        )
    finally:
        s.close()
    assert normalise(vector[None, :], vector.shape[0]).tobytes() not in index_bytes

    again = json.loads(home.run("sweep", "--json").out)
    assert again["receipts"] == [] and again["enrolments_erased"] == 0
    log = home.run("audit", "log", "--action", "retention.sweep", "--json")
    assert log.code == 0 and "retention.sweep" in log.out
    assert home.run("audit", "verify").code == 0


def test_jurisdiction_exclude_list_refuse_purge_and_lift(
    home: Home, fake: FakeEngine, tmp_path: Path
) -> None:
    gallery(home, "custody", 365)
    assert (
        enrol(home, "custody", fake_photo(tmp_path, fake, 1, unit(1)), "GB-1", "GB-SCT").code == 0
    )
    assert enrol(home, "custody", fake_photo(tmp_path, fake, 2, unit(2)), "FR-1", "FR").code == 0

    r = home.run("jurisdiction", "exclude", "gb", "--reason", "ICO enforcement notice")
    assert r.code == 0, r.err
    assert "Excluded GB (deployment-wide)" in r.out and "1 enrolment(s)" in r.out
    assert home.run("jurisdiction", "exclude", "GB", "--reason", "again").code == 4
    listed = json.loads(home.run("jurisdiction", "list", "--json").out)
    assert [(x["code"], x["scope"]) for x in listed] == [("GB", "deployment")]

    refused = enrol(home, "custody", fake_photo(tmp_path, fake, 3, unit(3)), "GB-2", "GB")
    assert refused.code == 2
    assert "error[jurisdiction_excluded]" in refused.err and "ICO enforcement" in refused.err

    r = home.run("jurisdiction", "purge")
    assert r.code == 0, r.err
    assert r.out.startswith("ER-") and "custody/GB-1: 1 enrolment(s)" in r.out
    assert "(jurisdiction)" in r.out
    assert json.loads(home.run("jurisdiction", "purge", "--json").out) == []
    left = nothing_left(home)
    assert left["subjects"] == left["enrolments"] == left["vectors"] == 1  # FR-1 untouched
    assert len(blob_files(home)) == 1

    r = home.run("jurisdiction", "lift", "GB", "--reason", "notice withdrawn")
    assert r.code == 0 and "stay purged" in r.out
    assert "No jurisdiction is excluded" in home.run("jurisdiction", "list").out
    assert home.run("jurisdiction", "lift", "GB", "--reason", "again").code == 3
    assert home.run("audit", "verify").code == 0


def test_sweep_on_the_real_models_with_the_committed_photos(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    probity: Callable[..., Run],
    engine: FaceEngine,
) -> None:
    home = make_home(tmp_path, monkeypatch, probity, engine)
    gallery(home, "short", 1)
    gallery(home, "long", 365)
    assert enrol(home, "short", DATA / "obama.jpg", "OBAMA", "US").code == 0
    assert enrol(home, "long", DATA / "biden.jpg", "BIDEN", "US").code == 0
    r = home.run(
        "case", "open", "C-1", "--offence", "robbery", "--justification",
        "still from the camera at the scene", "--authorisation", "W-1",
    )  # fmt: skip
    assert r.code == 0, r.err

    def found() -> list[str]:
        r = home.run("search", str(DATA / "obama2.jpg"), "--case", "C-1", "--no-threshold",
                     "--json")  # fmt: skip
        assert r.code == 0, r.err
        return [c["subject"] for f in json.loads(r.out)["faces"] for c in f["candidates"]]

    assert found()[0] == "OBAMA"
    home.clock.advance(timedelta(days=2))
    r = home.run("sweep")
    assert r.code == 0 and "short/OBAMA: 1 enrolment(s)" in r.out
    assert found() == ["BIDEN"]  # at no rank, with the threshold off
    left = nothing_left(home)
    assert left["subjects"] == left["enrolments"] == left["templates"] == left["vectors"] == 1
    assert home.run("audit", "verify").code == 0

"""``probity optout`` output and errors, fast: the CLI on a real home with the fake engine
(the real-model acceptance is test_optout_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import probity.interfaces.cli.common as common
from probity.config import Settings
from probity.services.container import Services, build_services
from tests.cli.conftest import COLLECTED_AT
from tests.fakes import FakeEngine, make_image, near, unit


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    engine = FakeEngine()

    def build(settings: Settings) -> Services:
        return build_services(settings, engine=engine)

    monkeypatch.setattr(common, "build_services", build)
    return engine


def test_receipts_are_printed_and_errors_are_one_line(
    probity, fake_cli: FakeEngine, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    home = str(tmp_path / "home")
    person = unit(5)
    enrolled = tmp_path / "enrolled.png"
    enrolled.write_bytes(fake_cli.register(make_image(1), near(person, 0.3, 1)))
    photo = tmp_path / "photo.png"
    photo.write_bytes(fake_cli.register(make_image(2), person))
    empty = tmp_path / "noface.png"
    empty.write_bytes(make_image(3))
    assert probity("init", "--home", home).code == 0
    assert probity(
        "gallery", "create", "custody", "--home", home, "--policy", "charged persons",
        "--retention-days", "365",
    ).code == 0  # fmt: skip
    run = probity(
        "enrol", "custody", str(enrolled), "--home", home, "--subject", "CRN-1", "--source",
        "suite/1", "--lawful-basis", "law_enforcement", "--collected-at", COLLECTED_AT,
        "--jurisdiction", "GB",
    )  # fmt: skip
    assert run.code == 0, run.err
    run = probity("optout", str(photo), "--reference", "LETTER-9", "--home", home)
    assert run.code == 0, run.err
    assert "Objection recorded: suppression " in run.out and "LETTER-9" in run.out
    assert "Compared 1 gallery template(s)" in run.out
    assert "receipt ER-" in run.out and "custody/CRN-1" in run.out
    bad = probity("optout", str(empty), "--reference", "LETTER-10", "--home", home)
    assert bad.code == 2
    assert bad.err.strip() == "error[no_face_found]: no face found in the objection photo"

"""``probity doctor`` through the real CLI entry: after an erasure interrupted past its commit
and with an orphan blob and a leftover key file in the home, ``--check`` reports each and
exits 1; ``doctor`` repairs them; a second ``--check`` finds nothing and exits 0.

The home is set up through the services with the fake engine (no face model is needed to
check a home); the commands under test are the real ones."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from probity.config import Settings
from probity.services import erasure_work
from probity.services.container import build_services
from probity.storage.keyring import Keyring, load_master_key
from tests.cli.conftest import Run
from tests.fakes import FakeEngine, make_image, unit
from tests.services.conftest import PROVENANCE


class Crash(BaseException):
    """Stands for the process dying at a crash point (BaseException: no handler eats it)."""


def _crash_after_commit(name: str) -> None:
    if name == "erasure.after-commit":
        raise Crash(name)


@pytest.fixture
def broken_home(
    probity,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A home where an erasure died right after its commit, with an orphan blob (an hour
    old) and the key file of a rotation that never committed."""
    home = tmp_path / "home"
    assert probity("init", "--home", str(home)).code == 0
    engine = FakeEngine()
    svc = build_services(Settings(home=home), engine=engine)
    try:
        svc.galleries.create(
            actor="tests", name="custody", inclusion_policy="charged persons", retention_days=365
        )
        for seed, subject in ((1, "KEEP"), (2, "GONE")):
            svc.enrolment.enrol(
                actor="tests",
                gallery="custody",
                subject=subject,
                image=engine.register(make_image(seed), unit(seed)),
                provenance=PROVENANCE,
            )
        monkeypatch.setattr(erasure_work, "crash_point", _crash_after_commit)
        with pytest.raises(Crash):
            svc.erasure.erase(actor="tests", gallery="custody", reference="GONE", reason="order")
        monkeypatch.undo()
        orphan = "c" * 32
        svc.erasure.vault.blobs.put(orphan, b"sealed bytes no row refers to")
        path = svc.settings.blob_dir / orphan[:2] / orphan
        an_hour_ago = time.time() - 3600
        os.utime(path, (an_hour_ago, an_hour_ago))
        master = load_master_key(env_value=None, key_file=svc.settings.master_key_path)
        Keyring(master, svc.settings.key_dir).write_kek(99)
    finally:
        svc.close()
    return home


def test_doctor_checks_then_repairs_then_finds_nothing(probity, broken_home: Path) -> None:  # type: ignore[no-untyped-def]
    home = str(broken_home)
    check: Run = probity("doctor", "--check", "--home", home)
    assert check.code == 1, check.err
    lines = check.out.strip().splitlines()
    kinds = sorted(line.split(":", 1)[0] for line in lines[:-1])
    # The index file still holds GONE's vector (its removal is in the log, not applied yet).
    assert kinds == ["index-gap", "leftover-key", "orphan-blob", "pending-erasure", "retired-key"]
    assert all(line.endswith("needs repair") for line in lines[:-1])
    assert "5 finding(s) need repair" in lines[-1]
    again = probity("doctor", "--check", "--home", home)  # a check changed nothing
    assert again.code == 1 and again.out == check.out

    repair = probity("doctor", "--home", home)
    assert repair.code == 0, repair.err
    # The pending erasure's completion catches the index up and shreds the retired key, so
    # those two are not found again by their own checks.
    assert "3 finding(s), 3 repaired." in repair.out, repair.out
    assert "pending-erasure" in repair.out and "completed" in repair.out

    clean = probity("doctor", "--check", "--home", home, "--json")
    assert clean.code == 0, clean.err
    report = json.loads(clean.out)
    assert report["findings"] == [] and report["needs_repair"] is False
    keys = sorted(p.name for p in (broken_home / "keys").iterdir())
    assert len(keys) == 1


def test_doctor_grace_minutes_leaves_younger_blobs(probity, broken_home: Path) -> None:  # type: ignore[no-untyped-def]
    run = probity("doctor", "--check", "--grace-minutes", "120", "--home", str(broken_home))
    assert "orphan-blob" not in run.out
    assert run.code == 1  # the other findings remain

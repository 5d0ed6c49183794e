"""The crash matrix (issue 12): real ``probity`` commands, the real default engine on the
committed photos, SQLite, each killed by SIGKILL at a named crash point; then a restart and
the invariants of ``tests/crash/harness.py`` (nothing lost, nothing duplicated, nothing left
behind, an erased subject's bytes nowhere in the home).

| command                      | points                                                       |
|------------------------------|--------------------------------------------------------------|
| ``enrol --manifest``         | enrol.after-commit@2, index.before-save                      |
| ``enrol IMAGE``              | enrol.after-commit                                           |
| ``erase``                    | erasure.after-commit, erasure.after-index,                   |
|                              | erasure.during-blob-deletion, erasure.before-key-destroy,    |
|                              | index.before-save                                            |
| ``sweep`` (retention)        | erasure.after-commit, erasure.during-blob-deletion           |
| ``gallery migrate`` (SFace → | migration.after-batch@2, migration.after-swap                |
| dlib)                        |                                                              |
| ``serve`` (API bulk job)     | enrol.after-commit@2                                         |

How to run one by hand: docs/crash-testing.md.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from probity.config import Settings
from probity.domain.accounts import OrganisationKind, Role
from probity.services.clock import system_clock
from probity.services.container import build_services
from tests.api.conftest import seed_people
from tests.cli.conftest import COLLECTED_AT, DATA
from tests.crash.harness import (
    ERASED,
    GALLERY,
    PHOTOS,
    Server,
    assert_home_consistent,
    capture,
    cli,
    index_files,
    ok,
    probity,
    restart,
    rows,
    rows_but,
    run_crashing,
    serving,
)

pytestmark = pytest.mark.crash

Fresh = Callable[[Path], Path]  # the conftest's fresh(): a copy of a prepared home


def _journal(home: Path) -> int:
    with sqlite3.connect(home / "probity.db") as db:
        (count,) = db.execute("SELECT count(*) FROM erasure_work").fetchone()
    return int(count)


def _receipts(home: Path, subject_id: str) -> int:
    with sqlite3.connect(home / "probity.db") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM erasure_receipts WHERE subject_id = ?", (subject_id,)
        ).fetchone()
    return int(count)


def _doctor_finds_something(home: Path) -> None:
    """``probity doctor --check`` (which changes nothing) sees what the crash left."""
    code, out, err = cli(home, "doctor", "--check")
    assert code == 1, (code, out, err)


# -- enrol --manifest --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "committed"),
    [("enrol.after-commit@2", 2), ("index.before-save", len(PHOTOS))],
    ids=["enrol.after-commit@2", "index.before-save"],
)
def test_enrol_manifest(
    point: str, committed: int, blank_home: Path, manifest: Path, fresh: Fresh
) -> None:
    """Killed after the 2nd row's commit (its vector and the 1st's not in the index) or
    before the index is first saved: the rows committed stay, once each, and are searchable
    after the restart; running the manifest again enrols the rest, skipping what is there."""
    home = fresh(blank_home)
    args = ["enrol", GALLERY, "--manifest", str(manifest), "--json"]
    run_crashing(home, args, point)
    _doctor_finds_something(home)
    restart(home, "doctor")
    assert_home_consistent(home, expected=rows(PHOTOS[:committed]))

    again = probity(home, *args)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["enrolled"], summary["skipped"]) == (len(PHOTOS) - committed, committed)
    assert_home_consistent(home, expected=rows())
    _each_found_by_its_own_photo(home)


def test_enrol_one_image(blank_home: Path, fresh: Fresh) -> None:
    """``probity enrol IMAGE`` killed after its commit: the enrolment is there, once, and
    the index catches up at the restart; enrolling the image again is refused as a
    duplicate."""
    home = fresh(blank_home)
    name, subject = PHOTOS[1]
    args = [
        "enrol", GALLERY, str(DATA / name), "--subject", subject, "--source",
        f"custody-suite/{name}", "--lawful-basis", "law_enforcement", "--collected-at",
        COLLECTED_AT, "--jurisdiction", "GB",
    ]  # fmt: skip
    run_crashing(home, args, "enrol.after-commit")
    _doctor_finds_something(home)
    restart(home, "doctor")
    assert_home_consistent(home, expected=rows([(name, subject)]))
    again = probity(home, *args)
    assert again.returncode != 0 and "already enrolled" in again.stderr, again.stderr
    assert_home_consistent(home, expected=rows([(name, subject)]))


def _each_found_by_its_own_photo(home: Path) -> None:
    """Every subject's first photo finds that subject at rank 1 (investigation mode)."""
    ok(
        home, "case", "open", "CR-1", "--offence", "robbery", "--justification",
        "still from the bank's camera", "--authorisation", "W-1",
    )  # fmt: skip
    first: dict[str, str] = {}
    for name, subject in PHOTOS:
        first.setdefault(subject, name)
    for subject, name in first.items():
        result = json.loads(
            ok(home, "search", str(DATA / name), "--case", "CR-1", "--no-threshold", "--json")
        )
        top = result["faces"][0]["candidates"][0]
        assert (top["rank"], top["subject"]) == (1, subject), (name, result)


# -- erase ---------------------------------------------------------------------------------------

ERASURE_POINTS = [
    "erasure.after-commit",
    "erasure.after-index",
    "erasure.during-blob-deletion",  # after the first of OBAMA's three blobs
    "erasure.before-key-destroy",
    "index.before-save",
]


@pytest.mark.parametrize("point", ERASURE_POINTS)
def test_erase(point: str, enrolled_home: Path, fresh: Fresh, tmp_path: Path) -> None:
    """Killed after the erasure's commit, at each step of what it must still do: an
    ordinary start finishes it (the journal), and nothing of the subject is left."""
    home = fresh(enrolled_home)
    erased = capture(home, ERASED, tmp_path)
    run_crashing(home, ["erase", ERASED, "--gallery", GALLERY, "--reason", "RR-12"], point)
    assert _journal(home) == 1  # the crash left work to finish: the checks below can fail
    assert _receipts(home, erased.subject_id) == 1  # committed with the erasure
    _doctor_finds_something(home)
    restart(home, "start")
    assert_home_consistent(home, expected=rows_but(ERASED), erased=[erased])


# -- sweep (retention) ----------------------------------------------------------------------


@pytest.mark.parametrize("point", ["erasure.after-commit", "erasure.during-blob-deletion"])
def test_sweep(point: str, enrolled_home: Path, fresh: Fresh, tmp_path: Path) -> None:
    """The retention sweep erases as an erasure does, so it crashes and recovers as one.
    A record whose retention has already run out is refused at enrolment, and a subprocess
    cannot be given a clock, so OBAMA's records are made due by ending their retention
    yesterday in the database."""
    home = fresh(enrolled_home)
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    with sqlite3.connect(home / "probity.db") as db:
        db.execute(
            "UPDATE enrolments SET retention_until = ? WHERE subject_id = "
            "(SELECT id FROM subjects WHERE reference = ?)",
            (yesterday, ERASED),
        )
    erased = capture(home, ERASED, tmp_path)
    run_crashing(home, ["sweep", "--json"], point)
    assert _journal(home) == 1
    assert _receipts(home, erased.subject_id) == 1
    _doctor_finds_something(home)
    restart(home, "start")
    assert_home_consistent(home, expected=rows_but(ERASED), erased=[erased])


# -- gallery migrate -----------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["migration.after-batch@2", "migration.after-swap"])
def test_gallery_migrate(point: str, enrolled_home: Path, fresh: Fresh) -> None:
    """From the default SFace to dlib: killed after the 2nd re-embedded template commits,
    or after the swap commits (old index file still there). The home is consistent after
    the restart (searches on the model the gallery is on), and running the migration again
    finishes it: one template per enrolment, of dlib, and one index file."""
    home = fresh(enrolled_home)
    args = ["gallery", "migrate", GALLERY, "--model", "dlib-resnet-v1", "--json"]
    run_crashing(home, args, point)
    settings = Settings(home=home)
    with sqlite3.connect(home / "probity.db") as db:
        (gallery_id, model) = db.execute("SELECT id, model_name FROM galleries").fetchone()
        (status,) = db.execute("SELECT status FROM model_migrations").fetchone()
    files = index_files(settings.index_dir, settings.index_backend)
    if point.startswith("migration.after-batch"):  # half-way: still on SFace
        assert (model, status) == ("sface-int8", "running")
    else:  # swapped, and the old model's index file still there
        assert (model, status) == ("dlib-resnet-v1", "swapped") and len(files) == 2, files
    restart(home, "doctor")
    assert_home_consistent(home, expected=rows())

    again = probity(home, *args)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["status"] == "swapped" and report["embedded"] == len(PHOTOS), report
    assert report["to_model"].startswith("dlib-resnet-v1@")
    assert_home_consistent(home, expected=rows())
    with sqlite3.connect(home / "probity.db") as db:
        (templates,) = db.execute("SELECT count(*) FROM templates").fetchone()
    assert templates == len(PHOTOS)
    files = index_files(settings.index_dir, settings.index_backend)
    assert [f.name for f in files] == [gallery_id], files  # dlib's file: the gallery id alone


# -- the server ------------------------------------------------------------------------------


def _job(server_url: str, key: str) -> httpx.Response:
    manifest = ["path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by"]
    manifest += [
        f"{name},{subject},custody-suite/{name},law_enforcement,{COLLECTED_AT},GB,crash-suite"
        for name, subject in PHOTOS
    ]
    files = [("manifest", ("intake.csv", "\n".join(manifest).encode(), "text/csv"))]
    files += [
        ("images", (name, (DATA / name).read_bytes(), "application/octet-stream"))
        for name, _ in PHOTOS
    ]
    return httpx.post(
        f"{server_url}/api/v1/galleries/{GALLERY}/jobs",
        files=files,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


def test_server_bulk_job(tmp_path: Path) -> None:
    """``probity serve`` killed after a bulk job's 2nd enrolment commits: the next start
    marks the job interrupted and removes its sealed staging; uploading the same job again
    enrols the other rows, skipping the two, and the home is whole."""
    home = tmp_path / "home"
    assert probity(home, "init").returncode == 0
    services = build_services(Settings(home=home))
    try:
        keys = seed_people(
            services, "Met", OrganisationKind.LAW_ENFORCEMENT,
            {"sup": [Role.SUPERVISOR], "cur": [Role.CURATOR]}, system_clock,
        )  # fmt: skip
    finally:
        services.close()
    auth = {"Authorization": f"Bearer {keys['cur']}"}
    log = tmp_path / "server.log"
    with serving(home, log, crash="enrol.after-commit@2") as server:
        r = httpx.post(
            f"{server.url}/api/v1/galleries",
            json={"name": GALLERY, "inclusion_policy": "charged persons", "retention_days": 365},
            headers=auth,
            timeout=30,
        )
        assert r.status_code == 201, r.text
        r = _job(server.url, keys["cur"])
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        code = server.process.wait(timeout=240)
    assert code == -9, f"server exited {code}:\n{log.read_text(errors='replace')}"
    staged = [p for p in (home / "staging").rglob("*") if p.is_file() and p.suffix != ".lock"]
    assert staged  # the dead job's sealed files: the staging check below can fail
    with sqlite3.connect(home / "probity.db") as db:
        assert db.execute("SELECT count(*) FROM enrolments").fetchone() == (2,)

    with serving(home, log) as server:
        r = httpx.get(f"{server.url}{location}", headers=auth, timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "interrupted", r.text
        r = _job(server.url, keys["cur"])
        assert r.status_code == 202, r.text
        job = _wait(server, r.headers["location"], auth)
        assert (job["status"], job["enrolled"], job["skipped"]) == ("done", 3, 2), job
    assert_home_consistent(home, expected=rows())


def _wait(server: Server, location: str, auth: dict[str, str]) -> dict[str, object]:
    """The job once it has ended: waits for the server's "enrolment job <id> ended" log
    line (an event), then reads the job once."""
    job_id = location.rstrip("/").rsplit("/", 1)[-1]
    assert server.output.wait_for(f"enrolment job {job_id} ended", timeout=240), location
    job: dict[str, object] = httpx.get(f"{server.url}{location}", headers=auth, timeout=30).json()
    return job

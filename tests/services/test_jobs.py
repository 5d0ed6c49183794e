"""Bulk enrolment jobs through the services, on real SQLite (and PostgreSQL), with the fake
engine: staging, checks before anything runs, results, interruptions, refusals."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from probity.domain.accounts import Actor, OrganisationKind, Role
from probity.domain.ids import new_id
from probity.domain.jobs import EnrolmentJob, JobKind, JobStatus
from probity.errors import (
    GalleryNotFound,
    ImageTooLarge,
    InvalidInput,
    JobNotFound,
    ManifestError,
    MissingProvenance,
    NotPermitted,
    ProbityError,
    TooManyFiles,
)
from probity.services.clock import ManualClock
from probity.services.container import Services
from probity.storage.jobs import Jobs
from tests.api.conftest import seed_people
from tests.fakes import BAD_QUALITY, FakeEngine, make_image, unit
from tests.services.conftest import ACTOR, PROVENANCE

HEADER = "path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by"


def row(path: str, subject: str, **changes: str) -> str:
    p = {**PROVENANCE, **changes}
    return ",".join(
        [
            path,
            subject,
            p["source"],
            p["lawful_basis"],
            p["collected_at"],
            p["jurisdiction"],
            p["collected_by"],
        ]
    )


def intake(fake_engine: FakeEngine) -> tuple[bytes, list[tuple[str, io.BytesIO]]]:
    """Six rows: three good people, a photo with no face, a corrupt file, and a row without
    its source. The manifest names folders; the uploads are file names only."""
    files = {
        "a.png": fake_engine.register(make_image(1), unit(1)),
        "b.png": fake_engine.register(make_image(2), unit(2)),
        "c.png": fake_engine.register(make_image(3), unit(3)),
        "noface.png": make_image(4),
        "broken.jpg": b"\xff\xd8\xff\xe0 not really a jpeg",
        "d.png": fake_engine.register(make_image(5), unit(5)),
    }
    fake_engine.add_face(files["c.png"], unit(6), BAD_QUALITY)  # a poor face beside C's
    manifest = "\n".join(
        [
            HEADER,
            row("photos/a.png", "A-1"),
            row("photos/b.png", "B-1"),
            row("photos/c.png", "C-1"),
            row("photos/noface.png", "N-1"),
            row("photos/broken.jpg", "X-1"),
            row("photos/d.png", "D-1", source=""),
        ]
    ).encode()
    return manifest, [(name, io.BytesIO(data)) for name, data in files.items()]


def run(svc: Services, manifest: bytes, images: list[tuple[str, io.BytesIO]]) -> EnrolmentJob:
    for _, stream in images:
        stream.seek(0)
    job = svc.jobs.start(
        actor=ACTOR,
        gallery="custody",
        manifest_name="intake.csv",
        manifest=manifest,
        images=images,
    )
    assert job.status is JobStatus.QUEUED
    assert svc.jobs.wait(job.id, timeout_s=60)
    return svc.jobs.get(job.id, actor=ACTOR, gallery="custody")


def test_a_job_enrols_good_rows_and_reports_each_refusal(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    manifest, images = intake(fake_engine)
    job = run(svc, manifest, images)
    assert job.status is JobStatus.DONE, job.error
    assert (job.total, job.done, job.percent) == (6, 6, 100)
    assert (job.enrolled, job.skipped, job.refused_count) == (3, 0, 3)
    assert job.manifest == "intake.csv"
    refused = {r.line: r for r in job.refused}
    assert sorted(refused) == [5, 6, 7]
    assert refused[5].path == "photos/noface.png" and "no face" in (refused[5].reason or "")
    assert refused[6].subject == "X-1" and "corrupt" in (refused[6].reason or "")
    assert "source" in (refused[7].reason or "")
    # The poor face beside C's is reported, and C enrolled.
    (faces,) = job.faces_refused
    assert faces.line == 4 and faces.reason is None
    assert any("confidence" in r for r in faces.refused_faces[0].reasons)
    # No reason or path mentions the staging folder.
    assert all(str(svc.settings.staging_dir) not in (r.reason or "") for r in job.reports)
    (gallery_row,) = svc.galleries.list()
    assert gallery_row[1:] == (3, 3)
    # The staging folder is gone; the staging root is private.
    assert list(svc.settings.staging_dir.iterdir()) == []
    assert stat.S_IMODE(os.stat(svc.settings.staging_dir).st_mode) == 0o700
    # The same upload again: the enrolled rows are skipped, the bad ones refused again.
    again = run(svc, manifest, images)
    assert (again.enrolled, again.skipped, again.refused_count) == (0, 3, 3)
    listed = svc.jobs.refused_images(actor=ACTOR, gallery=gallery)
    assert len(listed) == 6
    assert [j.id for j, _ in listed].count(again.id) == 3


def test_the_job_records_progress_while_it_runs(
    svc: Services, gallery: str, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    original = Jobs.progress

    def spy(self: Jobs, job_id: str, *, done: int, total: int, at: object) -> None:
        seen.append((done, total))
        original(self, job_id, done=done, total=total, at=at)  # type: ignore[arg-type]

    monkeypatch.setattr(Jobs, "progress", spy)
    monkeypatch.setattr("probity.services.jobs.PROGRESS_EVERY_S", 0.0)
    manifest, images = intake(fake_engine)
    run(svc, manifest, images)
    assert seen == [(n, 6) for n in range(1, 7)]


@pytest.mark.parametrize(
    ("manifest", "files", "error", "fragment"),
    [
        (b"path,subject\nx.png,A", ["x.png"], ManifestError, "lacks column(s): source"),
        (HEADER.encode(), [], ManifestError, "no rows"),
        (b"\xff\xfe not utf-8", [], ManifestError, "UTF-8"),
        (
            f"{HEADER}\n{row('x.png', 'A')}\n{row('y.png', 'B')}".encode(),
            ["x.png"],
            ManifestError,
            "y.png (line 3)",
        ),
        (f"{HEADER}\n{row('/etc/passwd', 'A')}".encode(), [], ManifestError, "/etc/passwd"),
        (
            f"{HEADER}\n{row('x.png', 'A')}".encode(),
            ["x.png", "sub/x.png"],
            InvalidInput,
            "two uploaded images are called 'x.png'",
        ),
        (
            f"{HEADER}\n{row('x.png', 'A')}".encode(),
            ["x.png", "y.png", "z.png", "w.png"],
            TooManyFiles,
            "at most 3 images",
        ),
        (
            "\n".join([HEADER] + [row(f"{n}.png", "A") for n in range(4)]).encode(),
            [],
            TooManyFiles,
            "more than 3 rows",
        ),
    ],
)
def test_uploads_are_checked_before_anything_is_staged(
    svc: Services,
    gallery: str,
    manifest: bytes,
    files: list[str],
    error: type[ProbityError],
    fragment: str,
) -> None:
    svc.jobs.max_files = 3
    with pytest.raises(error) as info:
        svc.jobs.start(
            actor=ACTOR,
            gallery=gallery,
            manifest_name="m.csv",
            manifest=manifest,
            images=[(name, io.BytesIO(make_image(9))) for name in files],
        )
    assert fragment in info.value.message
    assert not svc.settings.staging_dir.exists() or not any(svc.settings.staging_dir.iterdir())
    with svc.db.read() as session:
        assert Jobs(session).count() == 0


def test_an_oversized_image_refuses_the_upload_and_leaves_nothing(
    svc: Services, gallery: str
) -> None:
    svc.jobs.max_upload_bytes = 200
    with pytest.raises(ImageTooLarge, match=r"big\.png is larger than 200 bytes"):
        svc.jobs.start(
            actor=ACTOR,
            gallery=gallery,
            manifest_name="m.csv",
            manifest=f"{HEADER}\n{row('big.png', 'A')}".encode(),
            images=[("big.png", io.BytesIO(make_image(9)))],
        )
    assert list(svc.settings.staging_dir.iterdir()) == []


def test_a_failed_job_says_why_and_its_images_are_removed(
    svc: Services, gallery: str, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: object) -> None:
        raise ProbityError("face analysis failed: the engine stopped")

    monkeypatch.setattr(svc.enrolment, "enrol_manifest", broken)
    manifest, images = intake(fake_engine)
    job = run(svc, manifest, images)
    assert job.status is JobStatus.FAILED
    assert job.error == "face analysis failed: the engine stopped"
    assert list(svc.settings.staging_dir.iterdir()) == []


def test_a_job_whose_process_stopped_reads_as_interrupted_and_its_folder_is_swept(
    svc: Services, gallery: str, fake_engine: FakeEngine, clock: ManualClock
) -> None:
    manifest, images = intake(fake_engine)
    job = run(svc, manifest, images)
    with svc.db.transaction() as session:  # as if the server stopped mid-job
        Jobs(session).started(job.id, total=6, at=clock())
    leftover = svc.settings.staging_dir / job.id
    leftover.mkdir()
    (leftover / "00001.img").write_bytes(b"biometric")
    assert svc.jobs.get(job.id, actor=ACTOR, gallery=gallery).active
    clock.advance(timedelta(minutes=6))
    seen = svc.jobs.get(job.id, actor=ACTOR, gallery=gallery)
    assert seen.interrupted and not seen.active
    run(svc, manifest, images)  # the next upload sweeps the interrupted job's folder
    assert not leftover.exists()


def test_people_act_within_their_roles_and_organisation(
    svc: Services, gallery: str, fake_engine: FakeEngine, clock: ManualClock
) -> None:
    keys = seed_people(
        svc,
        "Met",
        OrganisationKind.LAW_ENFORCEMENT,
        {"sup": [Role.SUPERVISOR], "cur": [Role.CURATOR], "inv": [Role.INVESTIGATOR]},
        clock,
    )
    keys |= seed_people(
        svc, "Elsewhere", OrganisationKind.LAW_ENFORCEMENT, {"sup2": [Role.SUPERVISOR]}, clock
    )
    who: Callable[[str], Actor] = lambda name: svc.accounts.authenticate_key(keys[name])  # noqa: E731
    cur, inv = who("cur"), who("inv")
    svc.galleries.create(actor=cur, name="met", inclusion_policy="charged", retention_days=365)
    manifest, images = intake(fake_engine)
    with pytest.raises(NotPermitted):
        svc.jobs.start(
            actor=inv, gallery="met", manifest_name="m.csv", manifest=manifest, images=images
        )
    job = svc.jobs.start(
        actor=cur, gallery="met", manifest_name="m.csv", manifest=manifest, images=images
    )
    assert svc.jobs.wait(job.id)
    assert svc.jobs.get(job.id, actor=inv, gallery="met").enrolled == 3  # reading: allowed
    assert len(svc.jobs.refused_images(actor=inv, gallery="met")) == 3
    with pytest.raises(GalleryNotFound):
        svc.jobs.get(job.id, actor=who("sup2"), gallery="met")
    with pytest.raises(JobNotFound):  # a job of another gallery
        svc.jobs.get(job.id, actor=ACTOR, gallery=gallery)


def test_single_images_refused_through_the_pages_are_listed(
    svc: Services, gallery: str, fake_engine: FakeEngine, clock: ManualClock
) -> None:
    with pytest.raises(MissingProvenance):
        svc.jobs.enrol_one(
            actor=ACTOR,
            gallery=gallery,
            subject="S-1",
            image=io.BytesIO(fake_engine.register(make_image(1), unit(1))),
            filename="C:\\photos\\s1.png",
            provenance={**PROVENANCE, "lawful_basis": None},
        )
    clock.advance(timedelta(seconds=1))
    with pytest.raises(InvalidInput, match="no face"):
        svc.jobs.enrol_one(
            actor=ACTOR,
            gallery=gallery,
            subject="S-2",
            image=io.BytesIO(make_image(2)),
            filename="s2.png",
            provenance=PROVENANCE,
        )
    outcome = svc.jobs.enrol_one(
        actor=ACTOR,
        gallery=gallery,
        subject="S-3",
        image=io.BytesIO(fake_engine.register(make_image(3), unit(3))),
        filename="s3.png",
        provenance=PROVENANCE,
    )
    assert outcome.enrolment is not None
    listed = svc.jobs.refused_images(actor=ACTOR, gallery=gallery)
    assert [(r.path, r.subject, r.line) for _, r in listed] == [
        ("s2.png", "S-2", None),
        ("s1.png", "S-1", None),
    ]
    assert "lawful_basis" in (listed[1][1].reason or "")
    assert svc.jobs.recent(actor=ACTOR, gallery=gallery) == []  # not bulk uploads


@pytest.mark.postgres
def test_jobs_run_on_postgres(
    make_services: Callable[..., Services], postgres_url: str, fake_engine: FakeEngine
) -> None:
    svc = make_services(database_url=postgres_url)
    svc.galleries.create(
        actor=ACTOR, name="custody", inclusion_policy="charged", retention_days=365
    )
    manifest, images = intake(fake_engine)
    job = run(svc, manifest, images)
    assert (job.status, job.enrolled, job.refused_count) == (JobStatus.DONE, 3, 3)
    assert len(svc.jobs.refused_images(actor=ACTOR, gallery="custody")) == 3


def test_staged_files_are_private(
    svc: Services, gallery: str, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a job runs, its folder is 0700 and its files 0600."""
    modes: dict[str, int] = {}

    def look(**kwargs: object) -> object:
        manifest = Path(str(kwargs["manifest"]))
        modes["folder"] = stat.S_IMODE(os.stat(manifest.parent).st_mode)
        modes["manifest"] = stat.S_IMODE(os.stat(manifest).st_mode)
        for image in (manifest.parent / "images").iterdir():
            modes[image.name] = stat.S_IMODE(os.stat(image).st_mode)
        return original(**kwargs)

    original = svc.enrolment.enrol_manifest
    monkeypatch.setattr(svc.enrolment, "enrol_manifest", look)
    manifest, images = intake(fake_engine)
    assert run(svc, manifest, images).enrolled == 3
    assert modes.pop("folder") == 0o700
    assert set(modes.values()) == {0o600} and len(modes) == 7  # the manifest and 6 images


def test_an_erasure_can_forget_a_subject_in_the_job_reports(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    manifest, images = intake(fake_engine)
    job = run(svc, manifest, images)
    with svc.db.transaction() as session:
        assert Jobs(session).forget_subject(job.gallery_id, "X-1") == 1
        assert Jobs(session).forget_subject(job.gallery_id, "nobody") == 0
    after = svc.jobs.get(job.id, actor=ACTOR, gallery=gallery)
    assert after.refused_count == 2 and "X-1" not in {r.subject for r in after.reports}


# -- no leftovers (issue 12): sealed staging, owner locks, interrupted jobs ------------------

HOLDER = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)
"""A stand-in for a server process that accepted a job: it holds the job's owner lock until
it is killed."""


def hold_lock(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    if holder.stdout.readline().strip() != "held":
        holder.kill()
        holder.wait(timeout=30)
        pytest.fail("the lock holder did not start")
    return holder


def plant_job(svc: Services, gallery: str, *, status: JobStatus = JobStatus.RUNNING) -> str:
    """A bulk job row as a server leaves it when it dies mid-job: running, 2 of 6 rows done."""
    now = svc.clock()
    job = EnrolmentJob(
        id=new_id(),
        gallery_id=svc.galleries.get(gallery, actor=ACTOR).id,
        organisation_id=None,
        actor="curator",
        kind=JobKind.MANIFEST,
        manifest="intake.csv",
        status=status,
        total=6,
        done=2,
        enrolled=0,
        skipped=0,
        refused_count=0,
        reports=(),
        error=None,
        created_at=now,
        updated_at=now,
        started_at=now,
    )
    with svc.db.transaction() as session:
        Jobs(session).add(job)
    return job.id


def stage_leftovers(svc: Services, job_id: str) -> Path:
    """What a dead job leaves: its folder of sealed files (here: random bytes)."""
    folder = svc.settings.staging_dir / job_id
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "00001.img").write_bytes(os.urandom(200))
    (folder / "intake.csv").write_bytes(os.urandom(200))
    return folder


def test_staged_files_are_sealed_never_in_the_clear(
    svc: Services, gallery: str, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a job runs, no staged file holds an uploaded image's bytes or the manifest's
    text; the job still reads them (through the key only its process holds)."""
    manifest, images = intake(fake_engine)
    originals = [stream.getvalue() for _, stream in images]
    seen: dict[str, bytes] = {}

    def look(**kwargs: object) -> object:
        folder = Path(str(kwargs["manifest"])).parent
        seen.update({p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()})
        assert (svc.settings.staging_dir / f"{folder.name}.lock").exists()
        return original(**kwargs)

    original = svc.enrolment.enrol_manifest
    monkeypatch.setattr(svc.enrolment, "enrol_manifest", look)
    job = run(svc, manifest, images)
    assert (job.status, job.enrolled, job.refused_count) == (JobStatus.DONE, 3, 3)
    assert len(seen) == 7  # the manifest and 6 images
    for data in seen.values():
        assert all(o[16:48] not in data for o in originals if len(o) >= 48)
        assert b"A-1" not in data and b"photos" not in data and b"lawful" not in data
    assert list(svc.settings.staging_dir.iterdir()) == []  # folder and lock file gone


def test_a_job_left_running_by_a_killed_process_is_interrupted_at_start_and_resumes(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    manifest, images = intake(fake_engine)
    # A first upload enrolled A and B before its server was killed.
    first_two = "\n".join(manifest.decode().split("\n")[:3]).encode()
    assert run(svc, first_two, images[:2]).enrolled == 2
    job_id = plant_job(svc, gallery)
    folder = stage_leftovers(svc, job_id)
    lock = svc.settings.staging_dir / f"{job_id}.lock"
    holder = hold_lock(lock)
    try:
        # While its process lives, neither a start nor an upload touches it.
        assert svc.jobs.recover() == []
        assert folder.exists()
        assert svc.jobs.get(job_id, actor=ACTOR, gallery=gallery).active
    finally:
        holder.kill()  # SIGKILL: no clean-up runs; the kernel drops the lock
        holder.wait(timeout=30)

    assert svc.jobs.recover() == [job_id]
    assert not folder.exists() and not lock.exists()
    job = svc.jobs.get(job_id, actor=ACTOR, gallery=gallery)
    assert job.status is JobStatus.INTERRUPTED and job.interrupted and not job.active
    assert job.done == 2 and "upload the same manifest and images again" in (job.error or "")
    assert svc.jobs.recover() == []  # marked once
    assert job in svc.jobs.recent(actor=ACTOR, gallery=gallery)

    # Resuming: the same upload again enrols only what was missing, nothing twice.
    resumed = run(svc, manifest, images)
    assert (resumed.status, resumed.enrolled, resumed.skipped) == (JobStatus.DONE, 1, 2)
    (gallery_row,) = svc.galleries.list()
    assert gallery_row[1:] == (3, 3)  # 3 subjects, 3 enrolments
    assert list(svc.settings.staging_dir.iterdir()) == []


def test_an_upload_sweeps_a_dead_jobs_folder_at_once(
    svc: Services, gallery: str, fake_engine: FakeEngine
) -> None:
    """No need to wait for STALE_AFTER: a free owner lock means a dead owner."""
    job_id = plant_job(svc, gallery, status=JobStatus.QUEUED)
    folder = stage_leftovers(svc, job_id)
    holder = hold_lock(svc.settings.staging_dir / f"{job_id}.lock")
    holder.kill()
    holder.wait(timeout=30)
    manifest, images = intake(fake_engine)
    run(svc, manifest, images)
    assert not folder.exists()
    assert svc.jobs.get(job_id, actor=ACTOR, gallery=gallery).status is JobStatus.INTERRUPTED


def test_a_job_of_another_machine_is_marked_only_once_stale(
    svc: Services, gallery: str, clock: ManualClock
) -> None:
    """No folder or lock here: the job may be running elsewhere, so only its silence for
    STALE_AFTER marks it."""
    job_id = plant_job(svc, gallery)
    assert svc.jobs.recover() == []
    assert svc.jobs.get(job_id, actor=ACTOR, gallery=gallery).active
    clock.advance(timedelta(minutes=6))
    assert svc.jobs.recover() == [job_id]
    assert svc.jobs.get(job_id, actor=ACTOR, gallery=gallery).status is JobStatus.INTERRUPTED


def test_an_orphan_lock_file_is_removed(svc: Services, gallery: str) -> None:
    """A process that died between taking the lock and making the folder leaves a lock file
    only; it goes with the next sweep (and the job, had it a row, is interrupted)."""
    svc.settings.staging_dir.mkdir(mode=0o700, exist_ok=True)
    (svc.settings.staging_dir / f"{new_id()}.lock").write_bytes(b"")
    assert svc.jobs.recover() == []
    assert list(svc.settings.staging_dir.iterdir()) == []

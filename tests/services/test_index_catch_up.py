"""The template change log and index catch-up (issue 12, item 1): the database is the only
truth; an index that missed changes (a crash between a commit and its save, a deleted or
unreadable file, another process's writes) catches up before it answers, and says when it
cannot. Runs on SQLite and on the real PostgreSQL server (the log is written by triggers)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from probity.index import open_index
from probity.index.sealing import IndexFileUnreadable
from probity.services.container import Services
from probity.services.indexes import IndexBehind, IndexSet, IndexSlot
from tests.fakes import FakeEngine, make_image, near, unit
from tests.pg import postgres_url  # noqa: F401 - the fixture, used by the param below
from tests.services.conftest import ACTOR, PROVENANCE

GALLERY = "custody"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def home(request: pytest.FixtureRequest, make_services: Callable[..., Services]) -> Services:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    svc = make_services(database_url=url)
    svc.galleries.create(
        actor=ACTOR, name=GALLERY, inclusion_policy="charged persons", retention_days=365
    )
    return svc


def enrol(svc: Services, engine: FakeEngine, seed: int, subject: str | None = None) -> None:
    outcome = svc.enrolment.enrol(
        actor=ACTOR,
        gallery=GALLERY,
        subject=subject or f"S{seed}",
        image=engine.register(make_image(seed), unit(seed)),
        provenance=PROVENANCE,
    )
    assert outcome.enrolment is not None


def slot(svc: Services) -> IndexSlot:
    return IndexSlot.of(svc.galleries.get(GALLERY))


def log_rows(svc: Services) -> list[tuple[int, int, str]]:
    with svc.db.read() as s:
        rows = s.execute(text("SELECT seq, template_id, op FROM template_changes ORDER BY seq"))
        return [(int(a), int(b), str(c)) for a, b, c in rows]


@pytest.fixture
def no_index_saves(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A crash between each enrolment's commit and its index save: the index step never
    runs (the process that would have run it is gone)."""
    monkeypatch.setattr(IndexSet, "add", lambda self, slot, ids, vectors: None)
    yield
    monkeypatch.undo()


def test_every_template_change_is_logged_in_its_own_transaction(
    home: Services, fake_engine: FakeEngine
) -> None:
    enrol(home, fake_engine, 1)
    enrol(home, fake_engine, 2)
    home.subjects.remove(actor=ACTOR, gallery=GALLERY, reference="S1", reason="court order")
    rows = log_rows(home)
    assert [op for _, _, op in rows] == ["add", "add", "remove"]
    assert [seq for seq, _, _ in rows] == [1, 2, 3]
    assert rows[0][1] == rows[2][1]  # the removal names the template the first add made
    with home.db.read() as s:
        assert s.execute(text("SELECT seq FROM template_log_head")).scalar_one() == 3


def test_a_crash_before_the_index_save_is_caught_up_by_the_next_search(
    home: Services, fake_engine: FakeEngine, no_index_saves: None
) -> None:
    for seed in range(1, 4):
        enrol(home, fake_engine, seed)
    # What the crash left: 3 enrolments, an index that never saw them.
    before = home.maintenance.status()[0]
    assert (before.templates, before.vectors, before.behind) == (3, 0, 3)
    assert not before.in_step
    home.cases.open(
        actor=ACTOR,
        reference="C-1",
        offence="fraud",
        justification="suspect photographed at the bank counter",
        authorisation="A-1",
    )
    probe = fake_engine.register(make_image(90), near(unit(2), 0.1, 9))
    result = home.search.search(actor=ACTOR, case_reference="C-1", probe=probe)
    faces = result.faces
    assert faces and faces[0].candidates[0].subject_reference == "S2"
    assert result.threshold.gallery_templates == 3  # N counts the caught-up vectors
    after = home.maintenance.status()[0]
    assert (after.vectors, after.behind, after.in_step) == (3, 0, True)


def test_an_erasure_the_index_missed_is_removed_at_the_next_read(
    home: Services, fake_engine: FakeEngine
) -> None:
    enrol(home, fake_engine, 1)
    enrol(home, fake_engine, 2)
    index = home.indexes.get(slot(home))
    assert len(index) == 2
    with home.db.transaction() as s:  # the erasure committed; its process died after
        of_s1 = "subject_id IN (SELECT id FROM subjects WHERE reference = 'S1')"
        s.execute(text(f"DELETE FROM enrolments WHERE {of_s1}"))
        s.execute(text(f"DELETE FROM templates WHERE {of_s1}"))
    assert home.maintenance.status()[0].behind == 1
    assert home.indexes.size(slot(home)) == 1
    assert home.maintenance.status()[0].in_step


def test_another_process_sees_the_changes_of_this_one(
    home: Services, make_services: Callable[..., Services], fake_engine: FakeEngine
) -> None:
    """Two IndexSets over one home (the API server and a CLI enrolment): each reads the
    other's committed changes, saved or not."""
    other = IndexSet(
        directory=home.indexes.directory,
        backend=home.indexes.backend,
        seal=home.indexes.seal,
        log=home.indexes.log,
    )
    enrol(home, fake_engine, 1)
    assert other.size(slot(home)) == 1
    enrol(home, fake_engine, 2)
    assert other.size(slot(home)) == 2
    home.subjects.remove(actor=ACTOR, gallery=GALLERY, reference="S1", reason="court order")
    assert other.size(slot(home)) == 1


def test_a_missing_or_unreadable_file_is_rebuilt_from_the_log(
    home: Services, fake_engine: FakeEngine
) -> None:
    for seed in range(1, 4):
        enrol(home, fake_engine, seed)
    path = home.indexes.path(slot(home))
    path.write_bytes(b"not an index at all")  # corrupt, or a plain file of an older release
    fresh = IndexSet(
        directory=home.indexes.directory,
        backend=home.indexes.backend,
        seal=home.indexes.seal,
        log=home.indexes.log,
    )
    assert fresh.size(slot(home)) == 3
    assert sorted(fresh.get(slot(home)).ids().tolist()) == sorted(t for _, t, _ in log_rows(home))
    path.unlink()
    assert home.indexes.size(slot(home)) == 3


def test_a_search_over_an_index_that_cannot_catch_up_fails_clearly(
    home: Services, fake_engine: FakeEngine, no_index_saves: None
) -> None:
    enrol(home, fake_engine, 1)
    with home.db.transaction() as s:  # a template that no longer decrypts
        s.execute(text("UPDATE templates SET sealed_vector = :b"), {"b": b"\x01" + b"0" * 40})
    home.cases.open(
        actor=ACTOR,
        reference="C-1",
        offence="fraud",
        justification="suspect photographed at the bank counter",
        authorisation="A-1",
    )
    probe = fake_engine.register(make_image(90), unit(1))
    with pytest.raises(IndexBehind) as caught:
        home.search.search(actor=ACTOR, case_reference="C-1", probe=probe)
    assert "cannot catch up" in str(caught.value)
    assert "1 changes behind" in str(caught.value)
    assert home.maintenance.status()[0].behind == 1  # nothing was marked applied


def test_index_rebuild_replays_the_whole_log(home: Services, fake_engine: FakeEngine) -> None:
    for seed in range(1, 4):
        enrol(home, fake_engine, seed)
    home.subjects.remove(actor=ACTOR, gallery=GALLERY, reference="S2", reason="court order")
    rebuilt = home.maintenance.rebuild(actor=ACTOR)[0]
    assert (rebuilt.templates, rebuilt.vectors, rebuilt.in_step) == (2, 2, True)
    vectors = home.indexes.get(slot(home)).search(np.stack([unit(2)]), 5)[0]
    assert len(vectors) == 2


def test_an_erasure_reseals_every_gallery_index_so_old_copies_do_not_open(
    home: Services, fake_engine: FakeEngine, tmp_path: Path
) -> None:
    home.galleries.create(
        actor=ACTOR, name="other", inclusion_policy="charged persons", retention_days=365
    )
    enrol(home, fake_engine, 1)
    enrol(home, fake_engine, 2)
    other = IndexSlot.of(home.galleries.get("other"))
    home.enrolment.enrol(
        actor=ACTOR,
        gallery="other",
        subject="O1",
        image=fake_engine.register(make_image(3), unit(3)),
        provenance=PROVENANCE,
    )
    copies = {}
    for s in (slot(home), other):
        copies[s] = tmp_path / "before" / home.indexes.path(s).name
        copies[s].parent.mkdir(exist_ok=True)
        shutil.copy(home.indexes.path(s), copies[s])
    home.subjects.remove(actor=ACTOR, gallery=GALLERY, reference="S1", reason="court order")
    for s, copy in copies.items():
        # The other gallery's index changed in no way, yet its old file is dead too.
        with pytest.raises(IndexFileUnreadable):
            open_index(home.indexes.backend, copy.with_suffix(""), None, home.indexes.seal)
        current = open_index(
            home.indexes.backend, home.indexes.path(s).with_suffix(""), None, home.indexes.seal
        )
        assert len(current) == 1  # custody keeps S2, other keeps O1
        assert current.applied_seq == home.indexes.log.head()  # type: ignore[union-attr]


def test_warm_opens_and_catches_up_every_index(home: Services, fake_engine: FakeEngine) -> None:
    """What a server does at start, so its first search does not load the index."""
    enrol(home, fake_engine, 1)
    enrol(home, fake_engine, 2)
    of_s1 = "subject_id IN (SELECT id FROM subjects WHERE reference = 'S1')"
    with home.db.transaction() as s:  # a change the index has not seen (another process)
        s.execute(text(f"DELETE FROM enrolments WHERE {of_s1}"))
        s.execute(text(f"DELETE FROM templates WHERE {of_s1}"))
    indexes = home.indexes
    assert isinstance(indexes, IndexSet)
    indexes._open.clear()  # a fresh process: nothing open
    assert indexes.warm() == 1
    cached = indexes._open[slot(home).name][0]
    assert len(cached) == 1 and cached.applied_seq == indexes.log.head()  # type: ignore[union-attr]


def test_a_big_catch_up_decrypts_and_adds_in_batches(
    home: Services, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild with more templates than ``BUILD_BATCH`` holds one batch of vectors at a
    time (10M at once peaked at about 25 GiB) and ends with the same index."""
    import probity.services.indexes as indexes

    for seed in range(1, 8):
        enrol(home, fake_engine, seed)
    home.subjects.remove(actor=ACTOR, gallery=GALLERY, reference="S4", reason="court order")
    monkeypatch.setattr(indexes, "BUILD_BATCH", 2)
    batches: list[int] = []
    read = indexes.TemplateLog.vectors

    def counted(log: indexes.TemplateLog, ids: list[int]) -> object:
        batches.append(len(ids))
        return read(log, ids)

    monkeypatch.setattr(indexes.TemplateLog, "vectors", counted)
    rebuilt = home.maintenance.rebuild(actor=ACTOR)[0]
    assert (rebuilt.templates, rebuilt.vectors, rebuilt.in_step) == (6, 6, True)
    assert batches == [2, 2, 2]
    index = home.indexes.get(slot(home))
    for seed in (1, 2, 3, 5, 6, 7):
        assert index.search(np.stack([unit(seed)]), 1)[0][0].similarity > 0.999
    assert index.search(np.stack([unit(4)]), 1)[0][0].similarity < 0.999

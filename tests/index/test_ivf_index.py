"""The "ivf" backend once it is IVF (the contract tests cover its flat phase): training past
``FLAT_MAX``, candidates good enough for exact re-scoring, saves that rewrite only the
segments that changed, physical removal down to the segment files, crash leftovers.

``FLAT_MAX`` is lowered so a few thousand vectors make an IVF index (k-means on 2 cores in
well under a second)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import probity.index.ivf_index as ivf
from probity.index import index_plaintext, open_index
from probity.index.files import read_sealed
from probity.index.ivf_index import IvfIndex, segment_files
from probity.index.sealing import IndexFileUnreadable
from tests.index.conftest import FixedSeal

DIMENSION = 32
PEOPLE = 1500  # two templates each: 3,000 vectors


def unit(x: NDArray[np.float32]) -> NDArray[np.float32]:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ivf, "FLAT_MAX", 1000)
    monkeypatch.setattr(ivf, "SEGMENT_VECTORS", 256)


@pytest.fixture
def people() -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(centres, vectors): person p owns vectors 2p and 2p + 1."""
    rng = np.random.default_rng(7)
    centres = unit(rng.normal(size=(PEOPLE, DIMENSION)).astype(np.float32))
    noise = rng.normal(scale=0.1, size=(2 * PEOPLE, DIMENSION)).astype(np.float32)
    return centres, unit(np.repeat(centres, 2, axis=0) + noise)


@pytest.fixture
def built(
    tmp_path: Path, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> IvfIndex:
    _, vectors = people
    index = IvfIndex(tmp_path / "g.ivf", DIMENSION, seal)
    index.add(np.arange(len(vectors)), vectors)
    index.mark_applied(9)
    index.save()
    return index


def manifest(path: Path, seal: FixedSeal) -> dict[str, object]:
    payload, _ = read_sealed(path, seal=seal, backend="ivf")
    result: dict[str, object] = json.loads(payload.tobytes())
    return result


def test_past_flat_max_it_is_trained_and_says_how(built: IvfIndex, seal: FixedSeal) -> None:
    assert built.params is not None
    assert built.params.trained_on == 2 * PEOPLE
    saved = manifest(built.path, seal)
    assert saved["kind"] == "ivf-sq8"
    assert saved["params"] == {
        "nlist": built.params.nlist,
        "nprobe": built.params.nprobe,
        "segments": built.params.segments,
        "trained_on": 2 * PEOPLE,
    }
    assert built.params.segments > 1


def test_candidates_hold_the_exact_best_after_rescoring(
    built: IvfIndex, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    centres, vectors = people
    rng = np.random.default_rng(8)
    asked = rng.choice(PEOPLE, size=200, replace=False)
    queries = unit(centres[asked] + rng.normal(scale=0.1, size=(200, DIMENSION)))
    same = 0
    for q, hits in zip(queries, built.search(queries, 40), strict=True):
        candidates = np.asarray([h.id for h in hits])
        rescored = candidates[np.argmax(vectors[candidates] @ q)]
        same += int(rescored == np.argmax(vectors @ q))
    assert same >= 198  # 99 %: the service's exact re-scoring then ranks them exactly


def test_reopening_gives_the_same_answers(
    built: IvfIndex, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    _, vectors = people
    again = open_index("ivf", built.path.with_suffix(""), DIMENSION, seal)
    assert len(again) == len(built) and again.applied_seq == 9
    assert sorted(again.ids().tolist()) == sorted(built.ids().tolist())
    assert again.search(vectors[:20], 5) == built.search(vectors[:20], 5)


def test_a_save_after_one_add_rewrites_one_segment(
    built: IvfIndex, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    before = {p.name: p.read_bytes() for p in segment_files(built.path)}
    built.add([10_000], people[1][:1] * -1)
    built.save()
    after = {p.name: p.read_bytes() for p in segment_files(built.path)}
    assert len(set(after) - set(before)) == 1  # one new segment file ...
    assert len(set(before) - set(after)) == 1  # ... replacing one, deleted
    kept = set(before) & set(after)
    assert len(kept) == len(before) - 1
    assert all(before[name] == after[name] for name in kept)  # the rest untouched
    assert 10_000 in open_index("ivf", built.path.with_suffix(""), None, seal).ids()


def test_removal_takes_the_codes_out_of_every_file(
    built: IvfIndex, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    """The erasure byte scan for an IVF index: the removed template's 8-bit codes and id are
    in no decrypted segment, the others' still are; only the segments that held it change."""
    _, vectors = people
    faiss_index = built._index  # the SQ8 codes as FAISS stores them
    codes = faiss_index.sq.compute_codes(vectors[:2])
    kept_code = faiss_index.sq.compute_codes(vectors[500:501])
    stem = built.path.with_suffix("")
    plain = b"".join(index_plaintext("ivf", stem, seal))
    assert codes[0].tobytes() in plain and kept_code[0].tobytes() in plain  # the scan works
    before = {p.name for p in segment_files(built.path)}

    assert built.remove([0, 1]) == 2
    built.save()
    plain = b"".join(index_plaintext("ivf", stem, seal))
    assert codes[0].tobytes() not in plain and codes[1].tobytes() not in plain
    assert kept_code[0].tobytes() in plain
    assert {0, 1}.isdisjoint(built.ids().tolist())
    after = {p.name for p in segment_files(built.path)}
    assert 1 <= len(after - before) <= 2  # the segments that held person 0, rewritten
    assert len(after & before) >= len(before) - 2
    reopened = open_index("ivf", stem, None, seal)
    assert len(reopened) == 2 * PEOPLE - 2
    assert all(h.id not in (0, 1) for h in reopened.search(vectors[:2], 10)[0])


def test_a_rewritten_segment_gets_a_fresh_key(built: IvfIndex, seal: FixedSeal) -> None:
    """An old copy of a rewritten segment opens only with a key the old manifest held (sealed
    under an epoch an erasure destroys); the new manifest does not hold it."""
    old = {s["file"]: s["key"] for s in manifest(built.path, seal)["segments"]}  # type: ignore[attr-defined]
    built.remove([0])
    built.save()
    new = {s["file"]: s["key"] for s in manifest(built.path, seal)["segments"]}  # type: ignore[attr-defined]
    replaced = set(old) - set(new)
    assert replaced
    assert {old[f] for f in replaced}.isdisjoint(new.values())


def test_adding_an_existing_id_replaces_it_once_ivf(
    built: IvfIndex, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    _, vectors = people
    built.add([5], vectors[900:901])
    assert len(built) == 2 * PEOPLE
    assert built.search(vectors[900:901], 2)[0][0].id in (5, 900)
    assert all(h.id != 5 for h in built.search(vectors[5:6], 3)[0] if h.similarity > 0.999)


def test_it_retrains_when_the_gallery_has_grown(
    built: IvfIndex, seal: FixedSeal, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert built.params is not None
    first = built.params
    rng = np.random.default_rng(3)
    more = unit(rng.normal(size=(3 * 2 * PEOPLE + 10, DIMENSION)).astype(np.float32))
    built.add(np.arange(20_000, 20_000 + len(more)), more)
    assert built.wait_for_retraining(timeout=60)
    assert built.params is not None and built.params.trained_on > first.trained_on
    assert built.params.nlist >= first.nlist
    built.save()
    again = open_index("ivf", built.path.with_suffix(""), None, seal)
    assert len(again) == 2 * PEOPLE + len(more)
    assert again.search(more[:1], 1)[0][0].id == 20_000


def test_segments_a_crash_left_behind_are_deleted_at_open(built: IvfIndex, seal: FixedSeal) -> None:
    stray = built.path.parent / f"{built.path.name}-deadbeef0000-3.seg"
    stray.write_bytes(b"written before a crash, never named by a manifest")
    open_index("ivf", built.path.with_suffix(""), None, seal)
    assert not stray.exists()


def test_a_missing_segment_makes_the_index_unreadable(built: IvfIndex, seal: FixedSeal) -> None:
    segment_files(built.path)[0].unlink()
    with pytest.raises(IndexFileUnreadable):
        open_index("ivf", built.path.with_suffix(""), None, seal)


def test_a_segment_from_another_slot_is_refused(
    built: IvfIndex, seal: FixedSeal, tmp_path: Path
) -> None:
    """Segment names are authenticated: a segment renamed into the place of another (even
    of the same index) does not open."""
    first, second = segment_files(built.path)[:2]
    data = first.read_bytes()
    second.write_bytes(data)
    with pytest.raises(IndexFileUnreadable):
        open_index("ivf", built.path.with_suffix(""), None, seal)


def test_a_bulk_build_told_its_size_trains_once_for_that_size(
    tmp_path: Path, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    """``reserve``: batches added after it do not retrain at every 4x growth; the index is
    trained on the first batch with the parameters of the whole."""
    _, vectors = people
    rng = np.random.default_rng(5)
    more = unit(rng.normal(size=(4 * len(vectors), DIMENSION)).astype(np.float32))
    everything = np.concatenate([vectors, more])
    index = IvfIndex(tmp_path / "bulk.ivf", DIMENSION, seal)
    first = index.reserve(len(everything))
    assert first == min(
        len(everything), ivf.TRAIN_POINTS_PER_LIST * ivf.choose_params(len(everything)).nlist
    )
    trainings: list[int] = []
    original = IvfIndex._train

    def counted(self: IvfIndex, data: tuple[NDArray[np.int64], NDArray[np.float32]]) -> None:
        trainings.append(int(data[0].shape[0]))
        original(self, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IvfIndex, "_train", counted)
        index.add(np.arange(first), everything[:first])
        for start in range(first, len(everything), 1000):
            stop = min(start + 1000, len(everything))
            index.add(np.arange(start, stop), everything[start:stop])
    assert trainings == [first]
    assert index.params == ivf.choose_params(len(everything))
    assert len(index) == len(everything)
    # No fast stage was built beside the batches; the first search starts one, behind.
    assert index._fast is None and index._fast_thread is None
    hits = index.search(everything[-3:], 1)
    assert index._fast is not None and index._fast_thread is not None
    assert index.wait_for_fast_stage(timeout=60) and mirrors(index)
    assert [h[0].id for h in index.search(everything[-3:], 1)] == [h[0].id for h in hits]
    assert [h[0].id for h in hits] == [
        len(everything) - 3,
        len(everything) - 2,
        len(everything) - 1,
    ]
    # A non-empty or already trained index has no preference.
    assert index.reserve(10 * len(everything)) == 0


def test_a_retraining_is_built_beside_and_keeps_the_changes_made_meanwhile(
    built: IvfIndex, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    """Past 4x growth the new layout is trained in a background thread: searches and changes
    go on against the old one, and what changed meanwhile is in the new one after the swap."""
    import threading

    _, vectors = people
    first = built.params
    assert first is not None
    built_layout = threading.Event()
    release = threading.Event()

    def hold() -> None:  # the retraining thread, new layout built, before the swap
        built_layout.set()
        assert release.wait(timeout=60)

    rng = np.random.default_rng(4)
    more = unit(rng.normal(size=(3 * 2 * PEOPLE + 10, DIMENSION)).astype(np.float32))
    late = unit(rng.normal(size=(5, DIMENSION)).astype(np.float32))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ivf, "RETRAIN_HOOK", hold)
        built.add(np.arange(20_000, 20_000 + len(more)), more)  # returns: not trained inline
        assert built_layout.wait(timeout=60)
        assert built.params == first  # still the old layout, and it answers
        assert built.search(vectors[7:8], 1)[0][0].id == 7
        built.add(np.arange(90_000, 90_005), late)  # made during the retraining
        assert built.remove([3, 20_001]) == 2
        release.set()
        assert built.wait_for_retraining(timeout=60)
    assert built.params is not None and built.params.trained_on > first.trained_on
    assert len(built) == 2 * PEOPLE + len(more) + 5 - 2
    held = set(built.ids().tolist())
    assert {90_000, 90_004} <= held and not {3, 20_001} & held
    assert built.search(late[2:3], 1)[0][0].id == 90_002
    assert all(h.id != 3 for h in built.search(vectors[3:4], 5)[0])


def test_a_retraining_in_flight_is_dropped_by_clear(built: IvfIndex) -> None:
    import threading

    release = threading.Event()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ivf, "RETRAIN_HOOK", lambda: release.wait(timeout=60))
        rng = np.random.default_rng(6)
        more = unit(rng.normal(size=(3 * 2 * PEOPLE + 10, DIMENSION)).astype(np.float32))
        built.add(np.arange(20_000, 20_000 + len(more)), more)
        built.clear()
        release.set()
        assert built.wait_for_retraining(timeout=60)
    assert len(built) == 0 and built.params is None


def mirrors(index: IvfIndex) -> bool:
    """Whether the fast stage is the SQ8 lists, list by list and in order: each label the
    SQ8 position it stands for, each 4-bit code that of the SQ8 vector at that position."""
    from probity.index.ivf_fast import positions

    fast = index._fast
    assert fast is not None and index.params is not None
    for lst in range(index.params.nlist):
        size = index._list(lst)[0].shape[0]
        if not np.array_equal(fast.list_labels(lst), positions(lst, np.arange(size))):
            return False
        held, expected = fast.list_codes(lst)
        if not np.array_equal(held, expected):
            return False
    return len(fast) == len(index)


def test_the_fast_stage_mirrors_the_lists_through_adds_removals_and_reopening(
    built: IvfIndex, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    """The 4-bit first stage answers once IVF, holds what the SQ8 lists hold after every
    change, and never returns a removed id; its candidates, re-scored with SQ8 codes, hold
    each person's own templates."""
    centres, vectors = people
    assert built._fast is not None and built._fast.ready and mirrors(built)
    assert built.remove([4, 5, 11]) == 3
    rng = np.random.default_rng(9)
    extra = unit(rng.normal(size=(40, DIMENSION)).astype(np.float32))
    built.add(np.arange(50_000, 50_040), extra)
    built.add([6], vectors[100:101])  # replaces id 6: removed, then added
    assert mirrors(built)
    for person in (2, 5, 40, 700):
        got = [h.id for h in built.search(centres[person : person + 1], 10)[0]]
        expected = {2 * person, 2 * person + 1} - {4, 5, 11, 6}
        assert expected <= set(got), (person, got)
        assert not {4, 5, 11} & set(got)
    assert built.search(extra[3:4], 1)[0][0].id == 50_003
    built.save()
    again = IvfIndex(built.path, DIMENSION, seal)
    assert again._fast is not None and again._fast.ready and mirrors(again)
    assert [h.id for h in again.search(extra[7:8], 3)[0]] == [
        h.id for h in built.search(extra[7:8], 3)[0]
    ]


def test_a_large_index_opens_at_once_and_builds_its_fast_stage_behind(
    built: IvfIndex, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    """Past ``FAST_INLINE_MAX`` the fast stage is built in the background, a few lists at a
    time: searches use the SQ8 scan until it is ready, and changes made meanwhile reach it."""
    import threading

    _, vectors = people
    gate = threading.Event()
    opened = threading.Event()
    original = ivf.FastStage.train

    def held_train(stage: ivf.FastStage, sample: NDArray[np.uint8]) -> None:
        opened.set()
        assert gate.wait(timeout=60)
        original(stage, sample)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ivf, "FAST_INLINE_MAX", 0)
        patch.setattr(ivf, "FAST_CHUNK_LISTS", 3)
        patch.setattr(ivf.FastStage, "train", held_train)
        again = IvfIndex(built.path, DIMENSION, seal)
        assert opened.wait(timeout=60)
        assert again._fast is not None and not again._fast.ready
        assert again.search(vectors[9:10], 1)[0][0].id == 9  # the SQ8 scan answers
        assert again.remove([9, 300]) == 2
        rng = np.random.default_rng(12)
        late = unit(rng.normal(size=(6, DIMENSION)).astype(np.float32))
        again.add(np.arange(70_000, 70_006), late)
        gate.set()
        assert again.wait_for_fast_stage(timeout=60)
    assert mirrors(again)
    assert again.search(late[4:5], 1)[0][0].id == 70_004
    assert all(h.id not in (9, 300) for h in again.search(vectors[9:10], 5)[0])
    again.clear()
    assert again._fast is None and again.wait_for_fast_stage(timeout=1)


def test_changes_made_while_the_fast_stage_is_half_built_reach_it(built: IvfIndex) -> None:
    """The background build mirrors a few lists at a time: an add to a list already built
    is appended to it, one to a list not built yet is picked up when that list is built, and
    a removal rebuilds a built list; the finished stage is the SQ8 lists exactly."""
    from probity.index.ivf_fast import FastStage

    assert built.params is not None
    half = built.params.nlist // 2
    stage = FastStage(built._index, built._faiss)
    stage.train(stage.training_sample())
    stage.build(half)
    built._fast = stage
    rng = np.random.default_rng(21)
    extra = unit(rng.normal(size=(200, DIMENSION)).astype(np.float32))
    built.add(np.arange(60_000, 60_200), extra)
    lists = built._assign(extra)
    assert (lists < half).any() and (lists >= half).any()  # both kinds of list
    list_of = dict(zip(built._map_ids.tolist(), built._map_lists.tolist(), strict=True))
    gone = [i for i in range(400) if list_of[i] < half][:5]
    assert built.remove(gone) == 5
    assert not stage.ready
    stage.build(stage.nlist)
    assert stage.ready and mirrors(built)
    assert built.search(extra[17:18], 1)[0][0].id == 60_017


def test_an_index_dropped_while_its_fast_stage_builds_is_freed_and_the_build_stops(
    built: IvfIndex, seal: FixedSeal
) -> None:
    """The ``IndexSet`` drops an index when another process saved its file; the background
    build holds it only weakly, so the old index is freed and its build ends."""
    import gc
    import threading

    gate = threading.Event()
    original = ivf.FastStage.train

    def held_train(stage: ivf.FastStage, sample: NDArray[np.uint8]) -> None:
        assert gate.wait(timeout=60)
        original(stage, sample)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ivf, "FAST_INLINE_MAX", 0)
        patch.setattr(ivf.FastStage, "train", held_train)
        dropped = IvfIndex(built.path, DIMENSION, seal)
        stage, thread = dropped._fast, dropped._fast_thread
        assert stage is not None and thread is not None
        del dropped
        gc.collect()
        gate.set()
        thread.join(timeout=60)
    assert not thread.is_alive() and stage.built == 0


def test_the_fast_stage_grows_a_list_across_block_and_byte_boundaries() -> None:
    """Appends of many sizes to one list, through 32-code blocks and past 512 and 1,024
    entries (where FAISS's ``add_entries`` on a non-empty block list writes to the wrong
    place: the heap corruption seen at 10M): labels and codes mirror the SQ8 list after
    every append, and a removal after that rebuilds it."""
    import faiss

    from probity.index.ivf_fast import FastStage, positions

    rng = np.random.default_rng(31)
    sq = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(DIMENSION),
        DIMENSION,
        2,
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
        False,
    )
    sq.train(unit(rng.normal(size=(2000, DIMENSION)).astype(np.float32)))
    stage = FastStage(sq, faiss)
    stage.train(sq.sq.compute_codes(unit(rng.normal(size=(2000, DIMENSION)).astype(np.float32))))
    stage.build(stage.nlist)
    held = 0
    for size in (1, 30, 1, 200, 280, 1, 7, 500, 3, 1, 2):  # 512 and 1,024 hit, then crossed
        vectors = unit(rng.normal(size=(size, DIMENSION)).astype(np.float32))
        lists = np.zeros(size, np.int64)  # all into list 0
        ids = np.arange(held, held + size, dtype=np.int64)
        sq.add_core(size, faiss.swig_ptr(vectors), faiss.swig_ptr(ids), faiss.swig_ptr(lists))
        stage.add(lists, vectors)
        held += size
        assert np.array_equal(stage.list_labels(0), positions(0, np.arange(held)))
        got, expected = stage.list_codes(0)
        assert np.array_equal(got, expected), size
    assert held > 1024 and len(stage) == held
    stage.refill(0)  # as after a removal
    got, expected = stage.list_codes(0)
    assert np.array_equal(got, expected) and len(stage) == held


def same_lists(a: IvfIndex, b: IvfIndex) -> bool:
    """Whether two IVF indexes hold the same lists (ids and codes, in order) and map."""
    assert a.params is not None and b.params is not None
    for lst in range(a.params.nlist):
        ids_a, codes_a = a._list(lst)
        ids_b, codes_b = b._list(lst)
        if not (np.array_equal(ids_a, ids_b) and np.array_equal(codes_a, codes_b)):
            return False
    a._merge_pending()
    b._merge_pending()
    return bool(
        np.array_equal(a._map_ids, b._map_ids) and np.array_equal(a._map_lists, b._map_lists)
    )


def test_another_process_s_save_is_taken_in_by_reading_only_its_changed_segments(
    built: IvfIndex, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    """``reload``: after another process (here a second ``IvfIndex`` on the same file)
    added and removed a few vectors and saved, this one reads the segments that changed and
    no other, and then holds what a fresh open of the file holds: lists, map, fast stage,
    applied seq; its own later changes save as usual. Among the changes: an id that
    moves to another list, and ids this process added itself (still in its pending dict,
    not yet in its sorted map), one removed and one moved by the other process."""
    _, vectors = people
    rng = np.random.default_rng(31)
    own = unit(rng.normal(size=(3, DIMENSION)).astype(np.float32))
    built.add(np.arange(70_000, 70_003), own)
    built.save()
    assert 70_000 in built._pending
    other = IvfIndex(built.path, DIMENSION, seal)
    extra = unit(rng.normal(size=(3, DIMENSION)).astype(np.float32))
    assert other.remove([4, 5, 70_000]) == 3
    other.add([6, 70_001], -np.stack([vectors[6], own[1]]))  # other lists: moved
    other.add(np.arange(80_000, 80_003), extra)
    other.mark_applied(12)
    other.save()
    changed = {s.file for s in other._segments} - {s.file for s in built._segments}
    assert 0 < len(changed) < len(built._segments)
    read: list[str] = []
    original = IvfIndex._read_segment

    def counted(self: IvfIndex, segment: object) -> NDArray[np.uint8]:
        read.append(segment.file)  # type: ignore[attr-defined]
        return original(self, segment)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IvfIndex, "_read_segment", counted)
        assert built.reload()
    assert set(read) == changed and len(read) == len(changed)
    fresh = IvfIndex(built.path, DIMENSION, seal)
    assert same_lists(built, fresh) and mirrors(built)
    assert built.applied_seq == 12 and len(built) == len(fresh) == len(vectors) + 1 + 2
    assert built.search(extra[1:2], 1)[0][0].id == 80_001
    assert built.search(-vectors[6:7], 1)[0][0].id == 6
    assert all(h.id not in (4, 5) for h in built.search(vectors[4:5], 5)[0])
    # Nothing of its own to write; a change of its own afterwards saves as before.
    assert built._collect_writes() == []
    assert built.remove([80_002]) == 1
    built.save()
    again = IvfIndex(built.path, DIMENSION, seal)
    assert same_lists(built, again) and 80_002 not in again.ids().tolist()


def test_a_reload_is_refused_for_a_new_layout_or_unsaved_changes(
    built: IvfIndex, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    """A retraining elsewhere is a new layout, and changes this process has not saved
    would be lost: ``reload`` says False (the ``IndexSet`` then opens the file anew) and
    changes nothing; a changed segment that cannot be read raises, and changes nothing."""
    _, vectors = people
    other = IvfIndex(built.path, DIMENSION, seal)
    other.add([90_000], vectors[:1])
    other.save()
    assert built.remove([7]) == 1  # not saved
    before = built.ids().copy()
    assert not built.reload()
    assert np.array_equal(built.ids(), before)
    mine = IvfIndex(built.path, DIMENSION, seal)  # what the IndexSet does next: open anew
    other._start_retrain()
    assert other.wait_for_retraining(timeout=60)
    other.save()
    assert not mine.reload()
    mine = IvfIndex(built.path, DIMENSION, seal)
    third = IvfIndex(built.path, DIMENSION, seal)
    assert third.remove([8]) == 1
    third.save()
    changed = {s.file for s in third._segments} - {s.file for s in mine._segments}
    assert changed
    for name in changed:
        (built.path.parent / name).write_bytes(b"not a segment")
    before = mine.ids().copy()
    with pytest.raises(IndexFileUnreadable):
        mine.reload()
    assert np.array_equal(mine.ids(), before) and mine.applied_seq == 9


def test_an_index_set_takes_in_another_process_s_save_without_opening_the_index_anew(
    tmp_path: Path, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    """Two ``IndexSet`` objects over one folder (a running server and a CLI enrolment):
    the server's index object stays the same one after the CLI saved, and holds the CLI's
    vector; nothing but the changed segments was read."""
    from probity.domain.faces import ModelVersion
    from probity.services.indexes import IndexSet, IndexSlot

    _, vectors = people
    slot = IndexSlot("g1", ModelVersion("fake", "1", DIMENSION))
    server = IndexSet(directory=tmp_path / "index", backend="ivf", seal=seal)
    cli = IndexSet(directory=tmp_path / "index", backend="ivf", seal=seal)
    server.add(slot, list(range(len(vectors))), vectors)
    opened = server.get(slot)
    assert isinstance(opened, IvfIndex) and opened.params is not None
    rng = np.random.default_rng(41)
    late = unit(rng.normal(size=(1, DIMENSION)).astype(np.float32))
    cli.add(slot, [100_000], late)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IvfIndex, "_load", lambda self: pytest.fail("opened anew"))
        assert server.get(slot) is opened
    assert opened.search(late, 1)[0][0].id == 100_000
    assert server.search(slot, late, 1)[0][0].id == 100_000


def test_a_short_lived_process_finishes_the_retraining_it_started_and_saves_it(
    tmp_path: Path, seal: FixedSeal, people: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> None:
    """A CLI command whose enrolment makes the gallery cross the retraining threshold: the
    retraining runs in a daemon thread, which would die when the command exits. The CLI
    calls ``finish_retraining`` before exiting; the next process opens the retrained
    layout from the files, with nothing lost."""
    import threading

    from probity.domain.faces import ModelVersion
    from probity.services.indexes import IndexSet, IndexSlot

    _, vectors = people
    slot = IndexSlot("g1", ModelVersion("fake", "1", DIMENSION))
    first = IndexSet(directory=tmp_path / "index", backend="ivf", seal=seal)
    first.add(slot, list(range(len(vectors))), vectors)
    trained = first.get(slot)
    assert isinstance(trained, IvfIndex) and trained.params is not None
    before = trained.params

    release = threading.Event()
    told: list[tuple[str, int]] = []
    rng = np.random.default_rng(43)
    more = unit(rng.normal(size=(3 * 2 * PEOPLE + 10, DIMENSION)).astype(np.float32))
    cli = IndexSet(directory=tmp_path / "index", backend="ivf", seal=seal)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ivf, "RETRAIN_HOOK", lambda: release.wait(timeout=60))
        cli.add(slot, list(range(20_000, 20_000 + len(more))), more)
        opened = cli.get(slot)
        assert isinstance(opened, IvfIndex) and opened.retraining

        def tell(name: str, count: int) -> None:
            told.append((name, count))
            release.set()  # the retraining may finish only once the user has been told

        assert cli.finish_retraining(on_wait=tell) == [slot.name]
    assert told == [(slot.name, len(vectors) + len(more))]
    assert not opened.retraining

    later = open_index("ivf", tmp_path / "index" / slot.name, DIMENSION, seal)
    assert isinstance(later, IvfIndex) and later.params is not None
    assert later.params.trained_on == len(vectors) + len(more) > before.trained_on
    assert len(later) == len(vectors) + len(more)
    assert later.search(more[5:6], 1)[0][0].id == 20_005
    assert cli.finish_retraining() == []  # nothing in flight: no wait, no save

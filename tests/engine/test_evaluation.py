"""``engine/evaluation.py``: the protocols and metrics of ``probity evaluate``, on synthetic
folder trees and descriptors, each checked against a brute-force recomputation here."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from probity.engine import evaluation as ev
from probity.engine.fusion import FusionRule, fuse
from probity.errors import InvalidInput


def tree(root: Path, layout: dict[str, list[str]]) -> Path:
    for person, files in layout.items():
        (root / person).mkdir(parents=True, exist_ok=True)
        for name in files:
            (root / person / name).write_bytes(b"not decoded here")
    return root


def test_split_puts_each_image_where_the_protocol_says(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "set",
        {
            "alice": ["a3.jpg", "a1.jpg", "a2.jpg", "notes.txt"],
            "bob": ["b_2.png", "b_1.png"],
            "zed": ["z.jpg"],
            "carol": ["c.jpg"],
            "erin": ["e.jpeg"],
            "dave": ["d.jpg"],
            "empty": ["readme.md"],
            ".probity-cache": ["x.jpg"],
        },
    )
    dataset = ev.scan_dataset(root)
    assert [p.name for p in dataset.people] == ["alice", "bob", "carol", "dave", "erin", "zed"]
    assert dataset.people[0].images == ("alice/a1.jpg", "alice/a2.jpg", "alice/a3.jpg")
    split = ev.one_to_n_split(dataset.people)
    assert split.gallery == {
        "alice": "alice/a1.jpg",
        "bob": "bob/b_1.png",
        "carol": "carol/c.jpg",
        "erin": "erin/e.jpeg",
    }
    assert split.mated == {"alice": "alice/a2.jpg", "bob": "bob/b_2.png"}
    assert split.non_mated == {"dave": "dave/d.jpg", "zed": "zed/z.jpg"}


def test_scan_refuses_a_missing_folder_and_one_without_people(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        ev.scan_dataset(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(b"x")
    with pytest.raises(InvalidInput, match="no person sub-folder"):
        ev.scan_dataset(tmp_path / "flat")


def test_pairs_file_parsing() -> None:
    text = "2 1\nAnn 1 2\nAnn 1 Bo 3\n\nBo 1 12\nAnn 2 Bo 1\n"
    folds = ev.parse_pairs(text, exists=lambda p: True)
    assert folds == [
        [
            ev.Pair("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", True),
            ev.Pair("Ann/Ann_0001.jpg", "Bo/Bo_0003.jpg", False),
        ],
        [
            ev.Pair("Bo/Bo_0001.jpg", "Bo/Bo_0012.jpg", True),
            ev.Pair("Ann/Ann_0002.jpg", "Bo/Bo_0001.jpg", False),
        ],
    ]
    with pytest.raises(InvalidInput, match="line 3: expected 'name i j'"):
        ev.parse_pairs("1 1\nAnn 1 2\nAnn 1 Bo 1 2\n", exists=lambda p: True)
    with pytest.raises(InvalidInput, match="line 2: image number '0'"):
        ev.parse_pairs("1 1\nAnn 0 2\nAnn 1 Bo 1\n", exists=lambda p: True)
    with pytest.raises(InvalidInput, match=r"line 3: the dataset has no image Bo/Bo_0001\.jpg"):
        ev.parse_pairs("1 1\nAnn 1 2\nAnn 1 Bo 1\n", exists=lambda p: not p.startswith("Bo"))
    with pytest.raises(InvalidInput, match="header"):
        ev.parse_pairs("ten 300\n", exists=lambda p: True)
    with pytest.raises(InvalidInput, match="has 1 pair lines"):
        ev.parse_pairs("1 1\nAnn 1 2\n", exists=lambda p: True)


def test_all_pairs_distances_labels_and_folds() -> None:
    labels = ["a", "a", "a", "b", "b", "c"]
    vectors = np.random.default_rng(2).normal(0, 1, (6, 5))
    distances, same, fold = ev.all_pairs(vectors, labels, folds=3)
    pairs = list(itertools.combinations(range(6), 2))
    assert distances == pytest.approx(
        [float(np.linalg.norm(vectors[a] - vectors[b])) for a, b in pairs], abs=1e-9
    )
    assert same.tolist() == [labels[a] == labels[b] for a, b in pairs]
    genuine = [k for k, (a, b) in enumerate(pairs) if labels[a] == labels[b]]
    impostor = [k for k, (a, b) in enumerate(pairs) if labels[a] != labels[b]]
    assert [fold[k] for k in genuine] == [n % 3 for n in range(len(genuine))]
    assert [fold[k] for k in impostor] == [n % 3 for n in range(len(impostor))]
    assert same.sum() == len(genuine) == 4


def brute_threshold(d: list[float], s: list[bool]) -> float:
    values = sorted(set(d))
    scores = [(sum(1 for x, y in zip(d, s, strict=True) if (x <= t) == y), t) for t in values]
    nothing = sum(1 for y in s if not y)
    best_score = max(score for score, _ in scores)
    if nothing >= best_score:
        return values[0] - 1.0
    best = next(t for score, t in scores if score == best_score)
    larger = [v for v in values if v > best]
    return (best + larger[0]) / 2 if larger else best


def test_ten_fold_accuracy_matches_a_brute_force_recomputation() -> None:
    rng = np.random.default_rng(7)
    same = rng.random(200) < 0.3
    d = np.where(same, rng.normal(0.4, 0.1, 200), rng.normal(0.7, 0.1, 200))
    fold = np.arange(200) % 10
    result = ev.ten_fold(d, same, fold)
    accuracies = []
    for k in range(10):
        train = [n for n in range(200) if fold[n] != k]
        t = brute_threshold([float(d[n]) for n in train], [bool(same[n]) for n in train])
        test = [n for n in range(200) if fold[n] == k]
        accuracies.append(sum(1 for n in test if (d[n] <= t) == same[n]) / len(test))
    assert result.folds == pytest.approx(accuracies)
    assert result.accuracy == pytest.approx(sum(accuracies) / 10)
    mean = sum(accuracies) / 10
    assert result.sd == pytest.approx(math.sqrt(sum((a - mean) ** 2 for a in accuracies) / 10))
    assert 0.8 < result.accuracy < 1.0  # type: ignore[operator]


def test_ten_fold_with_too_few_pairs_is_null_with_a_reason() -> None:
    d = np.array([0.1, 0.2, 0.9])
    result = ev.ten_fold(d, np.array([True, True, False]), np.array([0, 1, 0]))
    assert result.accuracy is None and result.sd is None
    assert result.reason is not None and "too few pairs" in result.reason


def test_fmr_table_matches_brute_force_and_refuses_unresolvable_rates() -> None:
    rng = np.random.default_rng(3)
    genuine = rng.normal(0.4, 0.12, 300)
    impostor = rng.normal(0.8, 0.1, 2000)
    rows = ev.fmr_table(genuine, impostor)
    observed = sorted(set(genuine.tolist()) | set(impostor.tolist()))
    for row, target in zip(rows[:3], (1e-2, 1e-3, 1e-4), strict=True):
        if target == 1e-4:
            assert row.distance is None and row.reason is not None
            assert "not measurable" in row.reason and "2000 impostor pairs" in row.reason
            continue
        allowed = math.floor(target * 2000)
        t = max(x for x in observed if sum(1 for y in impostor if y <= x) <= allowed)
        assert row.distance == t
        assert row.fnmr == pytest.approx(sum(1 for g in genuine if g > t) / 300)
        assert row.fmr is not None and row.fmr <= target
        assert (row.genuine_pairs, row.impostor_pairs) == (300, 2000)
    assert all(r.distance is None for r in rows[2:])


def test_identification_matches_a_brute_force_ranking() -> None:
    rng = np.random.default_rng(11)
    people = [f"p{k}" for k in range(30)]
    centre = {p: rng.normal(0, 1, 8) for p in people}
    gallery = {p: centre[p] + rng.normal(0, 0.4, 8) for p in people[:-1]}  # p29 left out
    mated = {p: centre[p] + rng.normal(0, 0.4, 8) for p in people}
    mated["p3"] = None  # no face in the probe: a miss
    strangers = [rng.normal(0, 1, 8) for _ in range(150)] + [None]
    result = ev.identification(gallery, mated, strangers)

    def rank(person: str) -> int | None:
        probe = mated[person]
        if probe is None or person not in gallery:
            return None
        order = sorted(gallery, key=lambda g: (np.linalg.norm(probe - gallery[g]), g != person))
        own = float(np.linalg.norm(probe - gallery[person]))
        return 1 + sum(
            1 for g in order if g != person and np.linalg.norm(probe - gallery[g]) <= own
        )

    ranks = [rank(p) for p in people]
    assert result.rank1 == pytest.approx(sum(r == 1 for r in ranks) / 30)
    assert result.rank10 == pytest.approx(sum(r is not None and r <= 10 for r in ranks) / 30)
    top1 = sorted(
        min(float(np.linalg.norm(s - g)) for g in gallery.values()) if s is not None else math.inf
        for s in strangers
    )
    threshold = top1[1]  # floor(0.01 x 151) = 1 stranger may lie strictly below it
    assert result.threshold == pytest.approx(threshold, abs=1e-12)
    hits = sum(
        1
        for p in people
        if ranks[people.index(p)] == 1 and float(np.linalg.norm(mated[p] - gallery[p])) < threshold  # type: ignore[operator]
    )
    assert result.fnir_at_fpir == pytest.approx(1 - hits / 30)
    assert (result.mated_probes, result.non_mated_probes, result.gallery_size) == (30, 151, 29)


def test_fpir_needs_a_hundred_non_mated_probes() -> None:
    gallery = {"a": np.zeros(2), "b": np.ones(2)}
    result = ev.identification(gallery, {"a": np.zeros(2) + 0.1}, [np.ones(2) * 3])
    assert result.fnir_at_fpir is None and result.reason is not None
    assert "1 non-mated probes" in result.reason
    assert result.fnir_at_zero_fpir == 0.0  # the mate (0.14) is closer than the stranger's top-1


def test_fusion_protocol_against_a_direct_recomputation() -> None:
    rng = np.random.default_rng(5)
    people = [
        ev.Person(f"p{k}", tuple(f"p{k}/{n}.jpg" for n in range(1 + k % 4))) for k in range(12)
    ]
    vectors = {image: rng.normal(k, 0.8, 4) for k, p in enumerate(people) for image in p.images}
    results = ev.fusion_protocol(people, vectors, unit=False)
    probes = {p.name: p.images[1] for p in people if len(p.images) >= 3}
    assert set(results) == {"single", "best", "mean_best_two", "centroid"}
    for rule in ("best", "centroid", "single"):
        entries = {
            p.name: [i for i in p.images if i != probes.get(p.name)][
                : 1 if rule == "single" else None
            ]
            for p in people
        }
        chosen = FusionRule.BEST if rule == "single" else FusionRule(rule)

        def score(probe: np.ndarray, name: str) -> float:
            stack = np.stack([vectors[i] for i in entries[name]]).astype(np.float32)  # noqa: B023
            return fuse(probe.astype(np.float32), stack, chosen).distance  # noqa: B023

        hits = 0
        for name, image in probes.items():
            own = score(vectors[image], name)
            if all(score(vectors[image], other) > own for other in entries if other != name):
                hits += 1
        assert results[rule].rank1 == pytest.approx(hits / len(probes)), rule
        assert results[rule].mated_probes == results[rule].non_mated_probes == len(probes)

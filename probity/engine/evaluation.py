"""What ``probity evaluate`` measures, as pure functions over labels and descriptors.

The dataset is a folder with one sub-folder per person (LFW's layout: ``ROOT/<person>/<photo>``).
Everything below works on *relative paths* (``person/file.jpg``) and on numpy descriptors, so it
is tested on synthetic descriptor sets; running the engine over the photos and caching the
descriptors is ``engine/evaluation_run.py``.

Distances are Euclidean descriptor distances on the model's own scale (dlib's raw vectors, or
unit vectors for ``euclidean_unit`` models: the caller normalises those first). A pair or a
candidate counts as *accepted* at threshold ``t`` when its distance is ``<= t``.

Protocols (the figures are only comparable between runs that use the same one):

- **pairs**: 10-fold accuracy. For each fold the threshold is the one that maximises accuracy
  on the other nine folds (see :func:`best_threshold`), and the accuracy is counted on the
  held-out fold; the report gives the mean and the population sd (numpy's ``std``, as LFW
  evaluation code does) of the ten fold accuracies. With an LFW ``pairs.txt`` its folds are
  used; without one, every same-person and every different-person pair of the dataset is used
  and split by :func:`all_pairs` (the k-th genuine pair and the k-th impostor pair, in
  file-name order, go to fold k mod 10). Those folds are *unbalanced* (far more impostor than
  genuine pairs), so their accuracy is dominated by impostors: prefer a pairs file.
- **FMR table**: every same-person (genuine) and every different-person (impostor) pair of
  images with a face (:func:`fmr_table`).
- **1:N** (:func:`one_to_n_split`, :func:`identification`): a fixed gallery/probe split, see
  their docstrings.
- **fusion** (:func:`fusion_protocol`): several templates per person, see its docstring.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from probity.engine.fusion import FusionRule, fuse
from probity.errors import InvalidInput

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
FMR_TARGETS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
FOLDS = 10
TARGET_FPIR = 0.01
Distances = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    images: tuple[str, ...]  # relative paths "name/file", sorted by file name


@dataclass(frozen=True, slots=True)
class Dataset:
    root: Path
    people: tuple[Person, ...]  # sorted by name

    @property
    def name(self) -> str:
        return self.root.name

    def images(self) -> list[str]:
        """Every image, person by person, each person's in file-name order."""
        return [image for person in self.people for image in person.images]

    def labels(self) -> list[str]:
        return [person.name for person in self.people for _ in person.images]


def scan_dataset(root: Path) -> Dataset:
    """The people (sub-folders holding at least one image file, hidden folders skipped) of
    the folder ``root``. InvalidInput when the folder is missing or holds no person folder."""
    if not root.exists():
        raise InvalidInput(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder: give a folder with one sub-folder per person")
    people = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(
            f"{folder.name}/{f.name}"
            for f in folder.iterdir()
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        )
        if images:
            people.append(Person(folder.name, tuple(images)))
    if not people:
        raise InvalidInput(
            f"{root} holds no person sub-folder with images: lay it out as "
            f"{root}/<person>/<photo>.jpg"
        )
    return Dataset(root=root, people=tuple(people))


# --- pairs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pair:
    a: str  # relative path
    b: str
    same: bool


_NUMBER = re.compile(r"[1-9][0-9]*")


def lfw_path(name: str, number: str, line: int) -> str:
    if not _NUMBER.fullmatch(number):
        raise InvalidInput(f"pairs file line {line}: image number '{number}' is not 1, 2, 3 ...")
    return f"{name}/{name}_{int(number):04d}.jpg"


def parse_pairs(text: str, *, exists: Callable[[str], bool]) -> list[list[Pair]]:
    """The folds of an LFW ``pairs.txt``: a header ``folds pairs_per_fold`` (``10 300``), then
    per fold ``pairs_per_fold`` same-person lines ``name i j`` and ``pairs_per_fold``
    different-person lines ``name1 i name2 j``; image numbers are 1-based and name
    ``name/name_NNNN.jpg``. ``exists(relative_path)`` says whether the dataset holds an image.
    InvalidInput names the first bad line (malformed, missing image, wrong count)."""
    lines = [(n, line.split()) for n, line in enumerate(text.splitlines(), start=1)]
    lines = [(n, fields) for n, fields in lines if fields]
    if not lines:
        raise InvalidInput("the pairs file is empty")
    header_line, header = lines[0]
    if len(header) != 2 or not all(_NUMBER.fullmatch(h) for h in header):
        raise InvalidInput(
            f"pairs file line {header_line}: expected the header 'folds pairs_per_fold' "
            f"(e.g. '10 300'), got '{' '.join(header)}'"
        )
    folds, per_fold = int(header[0]), int(header[1])
    body = lines[1:]
    if len(body) != folds * 2 * per_fold:
        raise InvalidInput(
            f"the pairs file's header promises {folds} folds of {per_fold} same-person and "
            f"{per_fold} different-person pairs ({folds * 2 * per_fold} lines), but it has "
            f"{len(body)} pair lines"
        )
    result: list[list[Pair]] = []
    for index, (n, fields) in enumerate(body):
        if index % (2 * per_fold) == 0:
            result.append([])
        if len(fields) == 3:
            pair = Pair(lfw_path(fields[0], fields[1], n), lfw_path(fields[0], fields[2], n), True)
        elif len(fields) == 4:
            pair = Pair(lfw_path(fields[0], fields[1], n), lfw_path(fields[2], fields[3], n), False)
        else:
            raise InvalidInput(
                f"pairs file line {n}: expected 'name i j' or 'name1 i name2 j', got "
                f"'{' '.join(fields)}'"
            )
        for path in (pair.a, pair.b):
            if not exists(path):
                raise InvalidInput(f"pairs file line {n}: the dataset has no image {path}")
        result[-1].append(pair)
    return result


def all_pairs(
    vectors: NDArray[np.float64], labels: Sequence[str], folds: int = FOLDS
) -> tuple[Distances, NDArray[np.bool_], NDArray[np.int8]]:
    """Every pair (i < j) of the rows of ``vectors``, in row-major order (i, then j): its
    Euclidean distance, whether both rows have one label (a genuine pair), and its fold (the
    k-th genuine pair and the k-th impostor pair go to fold ``k mod folds``).

    Distances come from the Gram matrix (``|a|² + |b|² - 2 a·b``, BLAS, in row blocks of
    about 32 MB), exact to about 1e-7 for unit vectors. Memory is 10 bytes a pair (LFW's
    13,233 images: 87.5 million pairs, 0.9 GB)."""
    n = len(labels)
    codes = np.unique(np.asarray(labels), return_inverse=True)[1]
    v = vectors.astype(np.float64)
    squares = np.einsum("ij,ij->i", v, v)
    parts_d: list[Distances] = []
    parts_s: list[NDArray[np.bool_]] = []
    rows = max(1, (32 << 20) // (8 * max(1, n)))
    for start in range(0, max(0, n - 1), rows):
        stop = min(n - 1, start + rows)
        block = squares[start:stop, None] + squares[None, :] - 2 * (v[start:stop] @ v.T)
        np.maximum(block, 0, out=block)
        for r in range(start, stop):
            parts_d.append(np.sqrt(block[r - start, r + 1 :]))
            parts_s.append(codes[r + 1 :] == codes[r])
    distances = np.concatenate(parts_d) if parts_d else np.empty(0, dtype=np.float64)
    same = np.concatenate(parts_s) if parts_s else np.empty(0, dtype=bool)
    fold = np.empty(len(same), dtype=np.int8)
    for value in (True, False):
        where = np.flatnonzero(same == value)
        fold[where] = np.arange(len(where)) % folds
    return distances, same, fold


def best_threshold(distances: Distances, same: NDArray[np.bool_]) -> float:
    """The distance threshold that maximises accuracy (genuine pairs at or below it plus
    impostor pairs above it) on these pairs. Candidates are every distance observed (and
    "accept nothing"); ties go to the smallest; the threshold returned is half-way between the
    best candidate and the next larger observed distance, so a held-out pair at exactly the
    training value is not decided by rounding."""
    order = np.argsort(distances, kind="stable")
    return _best_sorted(distances[order], same[order])


def _best_sorted(d: Distances, s: NDArray[np.bool_]) -> float:
    """:func:`best_threshold` of pairs already sorted by distance."""
    if len(d) == 0:
        return 0.0
    # The last index of each run of equal distances: a threshold there accepts the whole run.
    last = np.append(np.flatnonzero(np.diff(d) != 0), len(d) - 1)
    values = d[last]
    genuine_at_or_below = np.cumsum(s)[last]
    impostor_at_or_below = (last + 1) - genuine_at_or_below
    total_impostor = len(d) - int(genuine_at_or_below[-1])
    correct = genuine_at_or_below + (total_impostor - impostor_at_or_below)
    best = int(np.argmax(correct))
    if total_impostor >= int(correct[best]):  # accepting nothing is at least as good
        return float(values[0]) - 1.0
    upper = values[best + 1] if best + 1 < len(values) else values[best]
    return float((values[best] + upper) / 2)


@dataclass(frozen=True, slots=True)
class PairsResult:
    accuracy: float | None
    sd: float | None
    folds: tuple[float, ...]
    thresholds: tuple[float, ...]
    reason: str | None = None


def ten_fold(distances: Distances, same: NDArray[np.bool_], fold: NDArray[Any]) -> PairsResult:
    """Accuracy by cross-validation over the folds in ``fold`` (see the module docstring).
    Null with a reason when a fold lacks a genuine or an impostor pair (too few pairs).
    The pairs are sorted once; each fold's training set is that order with the fold masked
    out, so it stays sorted (LFW's 87 million all-pairs: about a minute)."""
    folds = np.unique(fold).tolist()
    genuine_in = np.bincount(fold[same].astype(np.int64), minlength=max(folds or [0]) + 1)
    total_in = np.bincount(fold.astype(np.int64), minlength=max(folds or [0]) + 1)
    if not folds or any(genuine_in[k] == 0 or genuine_in[k] == total_in[k] for k in folds):
        return PairsResult(
            None,
            None,
            (),
            (),
            f"too few pairs for {FOLDS}-fold accuracy: {int(same.sum())} genuine and "
            f"{int((~same).sum())} impostor pairs; every fold needs at least one of each",
        )
    order = np.argsort(distances, kind="stable")
    d, s, f = distances[order], same[order], fold[order]
    accuracies, thresholds = [], []
    for k in folds:
        test = f == k
        t = _best_sorted(d[~test], s[~test])
        accuracies.append(float(np.mean((d[test] <= t) == s[test])))
        thresholds.append(t)
    return PairsResult(
        float(np.mean(accuracies)), float(np.std(accuracies)), tuple(accuracies), tuple(thresholds)
    )


# --- FMR table ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FmrRow:
    target_fmr: float
    genuine_pairs: int
    impostor_pairs: int
    distance: float | None = None  # the largest observed distance whose FMR <= target
    fmr: float | None = None  # the FMR measured at that distance
    fnmr: float | None = None
    reason: str | None = None  # why the row is not measurable


def fmr_table(
    genuine: Distances, impostor: Distances, targets: Sequence[float] = FMR_TARGETS
) -> list[FmrRow]:
    """For each target FMR: the largest observed distance (genuine or impostor) at which the
    share of impostor pairs with distance ``<=`` it is at most the target, and the share of
    genuine pairs above it (FNMR). A target needs at least ``1/target`` impostor pairs (one
    false match allowed); with fewer, the row is not measurable and says so."""
    g, im = np.sort(genuine), np.sort(impostor)
    candidates = np.unique(np.concatenate([g, im]))
    rows = []
    for target in targets:
        row = FmrRow(target, len(g), len(im))
        if len(g) == 0 or len(im) == 0:
            rows.append(_reason(row, "needs at least one genuine and one impostor pair"))
            continue
        if len(im) < math.ceil(1 / target - 1e-9):
            rows.append(
                _reason(
                    row,
                    f"not measurable: {len(im)} impostor pairs, FMR {target:g} needs at least "
                    f"{math.ceil(1 / target - 1e-9):,}",
                )
            )
            continue
        allowed = math.floor(target * len(im) + 1e-9)
        accepted = np.searchsorted(im, candidates, side="right")
        ok = np.flatnonzero(accepted <= allowed)
        if len(ok) == 0:
            rows.append(_reason(row, "the closest impostor distances are tied; no threshold"))
            continue
        distance = float(candidates[ok[-1]])
        fnmr = 1 - float(np.searchsorted(g, distance, side="right")) / len(g)
        fmr = float(np.searchsorted(im, distance, side="right")) / len(im)
        rows.append(FmrRow(target, len(g), len(im), distance, fmr, fnmr))
    return rows


def _reason(row: FmrRow, reason: str) -> FmrRow:
    return FmrRow(row.target_fmr, row.genuine_pairs, row.impostor_pairs, reason=reason)


def det_curve(
    genuine: Distances, impostor: Distances, max_points: int = 4000
) -> tuple[Distances, Distances]:
    """(FMR, FNMR) at the observed distances, for the DET plot: every distance on a small
    set, at most ``max_points`` on a large one (spaced geometrically along the sorted
    distances, so the low-FMR end, where the curve matters, keeps its detail)."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    if len(thresholds) > max_points:
        picks = np.unique(np.geomspace(1, len(thresholds), max_points).astype(np.int64) - 1)
        thresholds = thresholds[picks]
    fmr = np.searchsorted(np.sort(impostor), thresholds, side="right") / max(1, len(impostor))
    fnmr = 1 - np.searchsorted(np.sort(genuine), thresholds, side="right") / max(1, len(genuine))
    return fmr.astype(np.float64), fnmr.astype(np.float64)


# --- 1:N ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OneToNSplit:
    gallery: dict[str, str]  # person -> image
    mated: dict[str, str]  # person -> probe image (the person is in the gallery)
    non_mated: dict[str, str]  # person -> probe image (the person is not in the gallery)


def one_to_n_split(people: Sequence[Person]) -> OneToNSplit:
    """The fixed 1:N split. Gallery: the first image (by file name) of every person with two or
    more images, plus the first image of every other single-image person. Mated probes: the
    second image of every multi-image person. Non-mated probes: the single-image people sorted
    by name, those at positions 1, 3, 5 ... (positions 0, 2, 4 ... are in the gallery)."""
    gallery: dict[str, str] = {}
    mated: dict[str, str] = {}
    non_mated: dict[str, str] = {}
    for person in people:
        if len(person.images) >= 2:
            images = sorted(person.images)
            gallery[person.name] = images[0]
            mated[person.name] = images[1]
    singles = sorted((p for p in people if len(p.images) == 1), key=lambda p: p.name)
    for position, person in enumerate(singles):
        (gallery if position % 2 == 0 else non_mated)[person.name] = person.images[0]
    return OneToNSplit(gallery, mated, non_mated)


@dataclass(frozen=True, slots=True)
class Identification:
    rank1: float | None
    rank10: float | None
    cmc: tuple[float, ...]  # identification rate at rank 1, 2, ... gallery size
    fnir_at_fpir: float | None
    threshold: float | None  # distance: a candidate "exceeds" it when strictly closer
    fnir_at_zero_fpir: float | None  # threshold just below every non-mated top-1 distance
    mated_probes: int
    non_mated_probes: int
    gallery_size: int
    reason: str | None = None


def identification(
    gallery: Mapping[str, NDArray[np.float64]],
    mated: Mapping[str, NDArray[np.float64] | None],
    non_mated: Sequence[NDArray[np.float64] | None],
    *,
    fpir: float = TARGET_FPIR,
    distance: Callable[[NDArray[np.float64], NDArray[np.float64]], float] | None = None,
    exclude: Sequence[str | None] | None = None,
) -> Identification:
    """Rank-1, rank-10, the CMC and FNIR at ``fpir`` of one 1:N protocol.

    ``gallery``: person -> template (the people whose gallery image had no face are left out,
    so their mated probe counts as a miss). ``mated``: person -> probe descriptor (None: no
    face in the probe, a miss). ``non_mated``: probe descriptors of absent people (None: no
    face, which gives no candidate); ``exclude[k]`` names a gallery entry the k-th non-mated
    probe is not compared with (leave-person-out). ``distance(probe, template)`` defaults to
    Euclidean.

    A mate's rank is 1 + the number of *other* gallery entries at a distance ``<=`` the
    mate's (ties count against the mate). The FPIR threshold: each non-mated probe's top-1
    distance; the threshold is such that at most ``floor(fpir x n)`` of them lie strictly
    below it (the k+1-th smallest). FNIR = mated probes whose mate is not at rank 1 strictly
    below that threshold. FPIR 1 % needs at least 100 non-mated probes; with fewer it is null
    with a reason, and ``fnir_at_zero_fpir`` (threshold at the closest non-mated top-1) is
    the figure that a small set can give."""
    names = list(gallery)
    column = {name: k for k, name in enumerate(names)}
    templates = [gallery[n] for n in names]
    people = list(mated)
    valid = [p for p in people if mated[p] is not None and p in gallery]
    matrix = _matrix([mated[p] for p in valid], templates, distance)  # type: ignore[misc]
    ranks_of: dict[str, int] = {}
    own_of: dict[str, float] = {}
    for row, person in enumerate(valid):
        own = float(matrix[row, column[person]])
        ranks_of[person] = int(np.count_nonzero(matrix[row] <= own))  # the mate is one of them
        own_of[person] = own
    ranks = [ranks_of.get(p) for p in people]
    mate_distance = [own_of.get(p) for p in people]
    probes = [i for i, probe in enumerate(non_mated) if probe is not None]
    strangers = _matrix([non_mated[i] for i in probes], templates, distance)  # type: ignore[misc]
    skip = list(exclude) if exclude is not None else [None] * len(non_mated)
    for row, i in enumerate(probes):
        left_out = skip[i]
        if left_out is not None and left_out in column:
            strangers[row, column[left_out]] = math.inf
    top1 = sorted(
        [float(v) for v in (strangers.min(axis=1) if names else np.full(len(probes), np.inf))]
        + [math.inf] * (len(non_mated) - len(probes))
    )
    n_mated = len(ranks)
    size = max(1, len(names))  # the CMC runs to the gallery size (rank 1 for an empty one)
    counts = np.bincount(
        np.array([r for r in ranks if r is not None], dtype=np.int64), minlength=size + 1
    )
    cmc = tuple(float(c) / n_mated if n_mated else 0.0 for c in np.cumsum(counts[1 : size + 1]))

    def fnir(threshold: float) -> float:
        hits = sum(
            1
            for r, d in zip(ranks, mate_distance, strict=True)
            if r == 1 and d is not None and d < threshold
        )
        return 1 - hits / n_mated

    reason = None
    threshold = None
    value = None
    zero = fnir(top1[0]) if top1 and n_mated else None
    if not n_mated:
        reason = "no mated probes (no person with two or more images)"
    elif len(top1) < math.ceil(1 / fpir - 1e-9):
        reason = (
            f"not measurable: {len(top1)} non-mated probes, FPIR {fpir:g} needs at least "
            f"{math.ceil(1 / fpir - 1e-9)}"
        )
    else:
        threshold = top1[math.floor(fpir * len(top1) + 1e-9)]
        value = fnir(threshold)
    return Identification(
        rank1=cmc[0] if n_mated else None,
        rank10=cmc[min(9, len(cmc) - 1)] if n_mated else None,
        cmc=cmc,
        fnir_at_fpir=value,
        threshold=None if threshold is None or math.isinf(threshold) else float(threshold),
        fnir_at_zero_fpir=zero,
        mated_probes=n_mated,
        non_mated_probes=len(top1),
        gallery_size=len(names),
        reason=reason,
    )


def _matrix(
    probes: Sequence[NDArray[np.float64]],
    templates: Sequence[NDArray[np.float64]],
    distance: Callable[[NDArray[np.float64], NDArray[np.float64]], float] | None,
) -> NDArray[np.float64]:
    """(probes x templates) distances: Euclidean in numpy blocks of about 64 MB (LFW's 1:N,
    about 4,600 probes x 4,000 templates, takes seconds), or ``distance`` pair by pair."""
    out = np.zeros((len(probes), len(templates)), dtype=np.float64)
    if not probes or not templates:
        return out
    if distance is not None:
        for r, probe in enumerate(probes):
            for c, template in enumerate(templates):
                out[r, c] = distance(probe, template)
        return out
    stack = np.stack(templates).astype(np.float64)
    rows = max(1, (64 << 20) // (8 * stack.size))
    for start in range(0, len(probes), rows):
        block = np.stack(probes[start : start + rows]).astype(np.float64)
        out[start : start + rows] = np.linalg.norm(block[:, None, :] - stack[None, :, :], axis=2)
    return out


# --- fusion ------------------------------------------------------------------------------


def fusion_protocol(
    people: Sequence[Person],
    vectors: Mapping[str, NDArray[np.float64]],
    *,
    unit: bool,
    fpir: float = TARGET_FPIR,
) -> dict[str, Identification]:
    """One score per person, by rule (``engine/fusion.py``), against a single template.

    Probes: the second image (by file name) of each person with three or more images. That
    person's gallery entry holds all their *other* images; every other person's entry holds
    all their images. ``single`` uses only each person's first image instead (the probe's
    person included). Non-mated searches: each probe again, against the gallery without its
    own person (leave-person-out), so there are as many non-mated as mated searches.
    ``vectors``: relative path -> descriptor, only for images where a face was found (the
    others are left out of the entries; a probe without a face is a miss, an entry left empty
    leaves its person out of the gallery)."""
    probes = {p.name: sorted(p.images)[1] for p in people if len(p.images) >= 3}
    entries = {
        p.name: [i for i in sorted(p.images) if i != probes.get(p.name) and i in vectors]
        for p in people
    }
    mated = {name: vectors.get(image) for name, image in probes.items()}
    non_mated = list(mated.values())
    exclude = list(mated)
    results: dict[str, Identification] = {}
    for rule in ["single", *[r.value for r in FusionRule]]:
        chosen = FusionRule.BEST if rule == "single" else FusionRule(rule)
        stacks = {
            name: np.stack([vectors[i] for i in (images[:1] if rule == "single" else images)])
            for name, images in entries.items()
            if images
        }

        memo: dict[tuple[int, int], float] = {}

        def fused(
            probe: NDArray[np.float64],
            templates: NDArray[np.float64],
            rule: FusionRule = chosen,
            memo: dict[tuple[int, int], float] = memo,
        ) -> float:
            # The mated and the non-mated searches compare the same probes with the same
            # entries: each fused distance is computed once.
            key = (id(probe), id(templates))
            if key not in memo:
                memo[key] = fuse(
                    probe.astype(np.float32), templates.astype(np.float32), rule, unit=unit
                ).distance
            return memo[key]

        results[rule] = identification(
            stacks, mated, non_mated, fpir=fpir, distance=fused, exclude=exclude
        )
    return results

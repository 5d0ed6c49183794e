"""Running the product's own path over a folder-per-person dataset, and the report it gives.

For every image: decode (``engine/images.py``, the size and pixel limits of the settings), the
engine's ``analyse`` (detect, align, embed) in worker processes (``engine/pool.py``, the pool
``probity enrol --manifest`` uses), and the face a single-face probe search would take: the
largest face by box area. ``flip`` (test-time augmentation) also analyses the mirror image and
takes the mean of the two descriptors (renormalised to unit length for ``euclidean_unit``
models); a mirror without a face leaves the face's own descriptor. Search does *not* do this:
it is measured here only.

Descriptors are cached in ``<cache_dir>/<model key>[+flip].npz``: one row per image, keyed by
the relative path, file size and modification time (ns), with the file's sha256. A second run
over an unchanged folder analyses nothing. The file also records the engine settings that
change what is found (detector, upsampling, size caps, jitters; not the worker or thread
counts): a cache made under other settings is not used. Decoding errors are counted as
images without a face and listed by file.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from probity.config import EngineSettings
from probity.engine import evaluation as ev
from probity.engine.images import decode_image, read_image_bytes
from probity.engine.pool import Analysis, AnalysisPool, InlineAnalysisPool, ProcessAnalysisPool
from probity.engine.registry import EngineSet
from probity.engine.thresholds import distance_to_score
from probity.engine.types import AnalysedFace
from probity.errors import ProbityError

Progress = Callable[[int, int], None]
CACHE_VERSION = 1
_NOT_IN_FINGERPRINT = {"workers", "onnx_threads", "default_model", "model_dirs"}


def settings_fingerprint(settings: EngineSettings) -> str:
    """sha256 of the engine settings that change detections or descriptors."""
    relevant = settings.model_dump(mode="json", exclude=_NOT_IN_FINGERPRINT)
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


@dataclass
class Descriptors:
    """One row per image of the dataset (``paths`` in ``Dataset.images()`` order)."""

    model_key: str
    scale: str  # the model's distance: "euclidean" or "euclidean_unit"
    flip: bool
    paths: list[str]
    labels: list[str]
    vectors: NDArray[np.float64]  # (n, dimension); rows without a face are NaN
    found: NDArray[np.bool_]
    detectors: list[str]  # "hog", "cnn", "yunet"; "" where no face was found
    sha256: list[str]
    errors: dict[str, str] = field(default_factory=dict)  # path -> why it could not be decoded
    analysed: int = 0  # images analysed in this run
    from_cache: int = 0  # images read from the cache

    def by_path(self) -> dict[str, NDArray[np.float64]]:
        return {p: self.vectors[i] for i, p in enumerate(self.paths) if self.found[i]}

    def digest(self) -> str:
        """sha256 over the paths, the file digests and the descriptors: names the exact
        measurement a calibration came from."""
        h = hashlib.sha256(f"{self.model_key}|flip={self.flip}\n".encode())
        for i, path in enumerate(self.paths):
            h.update(f"{path}|{self.sha256[i]}|{int(self.found[i])}\n".encode())
        h.update(np.nan_to_num(self.vectors).astype("<f8").tobytes())
        return h.hexdigest()


def cache_file(cache_dir: Path, model_key: str, flip: bool) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._@-]", "_", model_key)
    return cache_dir / f"{safe}{'+flip' if flip else ''}.npz"


def largest(faces: list[AnalysedFace]) -> AnalysedFace | None:
    """The face a single-face probe search takes: the largest box area (first on ties)."""
    return max(faces, key=lambda f: f.box.width * f.box.height) if faces else None


def mirror_bytes(data: bytes, *, max_bytes: int, max_pixels: int) -> bytes:
    """The image flipped left to right (after EXIF orientation), as PNG bytes: lossless, so
    the worker decodes exactly the mirrored pixels."""
    image = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image.pixels[:, ::-1, :])).save(buffer, format="PNG")
    return buffer.getvalue()


def make_pool(
    engines: EngineSet,
    settings: EngineSettings,
    *,
    model_key: str,
    home_models: Path | None,
    workers: int,
    max_bytes: int,
    max_pixels: int,
) -> AnalysisPool:
    """Worker processes (each loads the model once, about 0.7 s) for more than one worker;
    the caller's engine in this process for one."""
    if workers > 1:
        return ProcessAnalysisPool(
            settings,
            model_key=model_key,
            home_models=home_models,
            workers=workers,
            max_bytes=max_bytes,
            max_pixels=max_pixels,
        )
    return InlineAnalysisPool(engines.get(model_key), max_bytes=max_bytes, max_pixels=max_pixels)


def compute_descriptors(
    dataset: ev.Dataset,
    *,
    engines: EngineSet,
    model_key: str,
    scale: str,
    pool: Callable[[], AnalysisPool],
    settings: EngineSettings,
    cache_dir: Path,
    flip: bool,
    max_bytes: int,
    max_pixels: int,
    on_progress: Progress | None = None,
) -> Descriptors:
    """Descriptors of every image of ``dataset`` under model ``model_key``, from the cache
    where the file is unchanged, otherwise analysed by ``pool()`` (created only if needed)."""
    paths, labels = dataset.images(), dataset.labels()
    fingerprint = settings_fingerprint(settings)
    cached = _read_cache(cache_file(cache_dir, model_key, flip), fingerprint)
    n = len(paths)
    dimension = engines.get(model_key).model.dimension
    vectors = np.full((n, dimension), np.nan, dtype=np.float64)
    found = np.zeros(n, dtype=bool)
    detectors, digests = [""] * n, [""] * n
    stats: list[tuple[int, int]] = []
    todo: list[int] = []
    result = Descriptors(model_key, scale, flip, paths, labels, vectors, found, detectors, digests)
    for i, path in enumerate(paths):
        st = (dataset.root / path).stat()
        stats.append((st.st_size, st.st_mtime_ns))
        row = cached.get((path, st.st_size, st.st_mtime_ns))
        if row is None:
            todo.append(i)
            continue
        found[i], detectors[i], digests[i], error, vector = row
        if found[i]:
            vectors[i] = vector
        if error:
            result.errors[path] = error
    result.from_cache = n - len(todo)
    done = result.from_cache
    if on_progress:
        on_progress(done, n)
    if todo:
        running = pool()
        try:
            for i, faces, mirrored, sha, error in _analyse(
                running, dataset.root, [paths[i] for i in todo], todo, flip, max_bytes, max_pixels
            ):
                digests[i] = sha
                if error:
                    result.errors[paths[i]] = error
                face = largest(faces)
                if face is not None:
                    found[i] = True
                    detectors[i] = face.detection.detector.value if face.detection else "unknown"
                    vectors[i] = _combine(face, largest(mirrored), flip, scale)
                done += 1
                if on_progress:
                    on_progress(done, n)
        finally:
            running.close()
        result.analysed = len(todo)
        _write_cache(cache_file(cache_dir, model_key, flip), result, stats, fingerprint)
    if scale == "euclidean_unit":
        norms = np.linalg.norm(vectors[found], axis=1, keepdims=True)
        vectors[found] = vectors[found] / np.maximum(norms, 1e-12)
    return result


def _combine(
    face: AnalysedFace, mirror: AnalysedFace | None, flip: bool, scale: str
) -> NDArray[np.float64]:
    vector = face.descriptor.astype(np.float64)
    if not flip or mirror is None:
        return vector
    mean = (vector + mirror.descriptor.astype(np.float64)) / 2
    if scale == "euclidean_unit":
        mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return mean


Row = tuple[int, list[AnalysedFace], list[AnalysedFace], str, str]


def _analyse(
    pool: AnalysisPool,
    root: Path,
    paths: list[str],
    rows: list[int],
    flip: bool,
    max_bytes: int,
    max_pixels: int,
) -> Iterator[Row]:
    """Yield (row, faces, mirror faces, sha256, error) in order, with a bounded number of
    images in flight (twice the workers: the pool stays busy, memory stays flat)."""
    in_flight: deque[tuple[int, Future[Analysis] | None, Future[Analysis] | None, str, str]] = (
        deque()
    )

    def drain(limit: int) -> Iterator[Row]:
        while len(in_flight) > limit:
            row, own, mirror, sha, error = in_flight.popleft()
            faces: list[AnalysedFace] = []
            mirrored: list[AnalysedFace] = []
            try:
                if own is not None:
                    sha, faces = own.result()
                if mirror is not None:
                    mirrored = mirror.result()[1]
            except ProbityError as exc:
                error = exc.message
            yield row, faces, mirrored, sha, error

    for row, path in zip(rows, paths, strict=True):
        try:
            data = read_image_bytes(root / path, max_bytes=max_bytes)
            sha = hashlib.sha256(data).hexdigest()
            mirror = (
                pool.submit(mirror_bytes(data, max_bytes=max_bytes, max_pixels=max_pixels))
                if flip
                else None
            )
            in_flight.append((row, pool.submit(data), mirror, sha, ""))
        except ProbityError as exc:
            in_flight.append((row, None, None, "", exc.message))
        yield from drain(2 * pool.workers)
    yield from drain(0)


def _read_cache(
    path: Path, fingerprint: str
) -> dict[tuple[str, int, int], tuple[bool, str, str, str, Any]]:
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != CACHE_VERSION or str(data["settings"]) != fingerprint:
                return {}
            return {
                (str(p), int(s), int(m)): (bool(f), str(d), str(h), str(e), v)
                for p, s, m, f, d, h, e, v in zip(
                    data["paths"],
                    data["sizes"],
                    data["mtimes"],
                    data["found"],
                    data["detectors"],
                    data["sha256"],
                    data["errors"],
                    data["vectors"],
                    strict=True,
                )
            }
    except (OSError, ValueError, KeyError):
        return {}  # an unreadable cache is rebuilt, never trusted


def _write_cache(
    path: Path, result: Descriptors, stats: list[tuple[int, int]], fingerprint: str
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez(
        temporary,
        version=np.array(CACHE_VERSION),
        settings=np.array(fingerprint),
        paths=np.array(result.paths, dtype=str),
        sizes=np.array([s for s, _ in stats], dtype=np.int64),
        mtimes=np.array([m for _, m in stats], dtype=np.int64),
        found=result.found,
        detectors=np.array(result.detectors, dtype=str),
        sha256=np.array(result.sha256, dtype=str),
        errors=np.array([result.errors.get(p, "") for p in result.paths], dtype=str),
        vectors=result.vectors.astype(np.float32),
    )
    temporary.replace(path)


def default_cache_dir(root: Path, home: Path) -> Path:
    """``<dataset>/.probity-cache`` where the dataset folder is writable, else a folder under
    the home named by a digest of the dataset's path."""
    inside = root / ".probity-cache"
    try:
        inside.mkdir(exist_ok=True)
        return inside
    except OSError:
        digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        return home / "cache" / "evaluate" / digest


# --- the report --------------------------------------------------------------------------


@dataclass
class Report:
    """What ``probity evaluate`` prints (``summary``, JSON-ready) and plots (the curves)."""

    summary: dict[str, Any]
    det: tuple[NDArray[np.float64], NDArray[np.float64]]  # (FMR, FNMR) at each distance
    cmc: tuple[float, ...]


def evaluate(
    dataset: ev.Dataset,
    descriptors: Descriptors,
    *,
    pairs: list[list[ev.Pair]] | None = None,
    fusion: bool = False,
) -> Report:
    """Every figure of the module docstring of ``engine/evaluation.py`` from ``descriptors``.

    With a pairs file, a pair whose image has no face counts as not accepted at any threshold
    (a genuine pair is then an error, an impostor pair is correctly rejected)."""
    d = descriptors
    scale = d.scale
    index = np.flatnonzero(d.found)
    labels = [d.labels[i] for i in index]
    vectors = d.vectors[index]
    distances, same, fold = ev.all_pairs(vectors, labels)
    genuine, impostor = distances[same], distances[~same]
    if pairs is None:
        pairs_result = ev.ten_fold(distances, same, fold)
        protocol = (
            f"all pairs of images with a face, k-th pair of each kind in fold k mod {ev.FOLDS}"
        )
        counts = (len(genuine), len(impostor))
    else:
        found = d.by_path()
        flat = [(k, p) for k, fold_pairs in enumerate(pairs) for p in fold_pairs]
        pd = np.array(
            [
                float(np.linalg.norm(found[p.a] - found[p.b]))
                if p.a in found and p.b in found
                else np.inf
                for _, p in flat
            ]
        )
        ps = np.array([p.same for _, p in flat], dtype=bool)
        pairs_result = ev.ten_fold(pd, ps, np.array([k for k, _ in flat], dtype=np.int64))
        protocol = f"pairs file, {len(pairs)} folds"
        counts = (int(ps.sum()), int((~ps).sum()))
    table = ev.fmr_table(genuine, impostor)
    split = ev.one_to_n_split(dataset.people)
    by_path = d.by_path()
    ident = ev.identification(
        {p: by_path[img] for p, img in split.gallery.items() if img in by_path},
        {p: by_path.get(img) for p, img in split.mated.items()},
        [by_path.get(img) for img in split.non_mated.values()],
    )
    detectors: dict[str, int] = {}
    for name in d.detectors:
        if name:
            detectors[name] = detectors.get(name, 0) + 1
    n = len(d.paths)
    summary: dict[str, Any] = {
        "dataset": dataset.name,
        "model": d.model_key,
        "distance_scale": scale,
        "flip": d.flip,
        "people": len(dataset.people),
        "images": n,
        "images_with_face": int(d.found.sum()),
        "faces_found": float(d.found.sum()) / n if n else 0.0,
        "faces_by_detector": detectors,
        "decode_errors": dict(d.errors),
        "analysed": d.analysed,
        "from_cache": d.from_cache,
        "descriptor_sha256": d.digest(),
        "pairs": {
            "accuracy": pairs_result.accuracy,
            "sd": pairs_result.sd,
            "folds": list(pairs_result.folds),
            "thresholds": list(pairs_result.thresholds),
            "protocol": protocol,
            "genuine_pairs": counts[0],
            "impostor_pairs": counts[1],
            "reason": pairs_result.reason,
        },
        "fmr_table": [fmr_row_json(row, scale) for row in table],
        "distances": separation(genuine, impostor),
        "one_to_n": identification_json(ident, scale)
        | {
            "gallery": sorted(split.gallery.values()),
            "mated": sorted(split.mated.values()),
            "non_mated": sorted(split.non_mated.values()),
        },
        "fusion": None,
    }
    if fusion:
        results = ev.fusion_protocol(dataset.people, by_path, unit=scale == "euclidean_unit")
        summary["fusion"] = {
            rule: {
                k: v
                for k, v in identification_json(r, scale).items()
                if k in ("rank1", "fnir_at_fpir", "fnir_at_zero_fpir", "mated_probes", "reason")
            }
            for rule, r in results.items()
        } | {
            "protocol": "probe = 2nd image of each person with 3+ images; their entry = their "
            "other images, everyone else's = all their images; 'single' = first image only; "
            "non-mated = each probe against the gallery without its own person"
        }
    return Report(summary=summary, det=ev.det_curve(genuine, impostor), cmc=ident.cmc)


def separation(genuine: NDArray[np.float64], impostor: NDArray[np.float64]) -> dict[str, Any]:
    """How far apart the genuine and impostor distances lie: the extremes (a positive
    ``margin`` = closest impostor minus farthest genuine means one threshold separates every
    pair), the means, and d' = (mean impostor - mean genuine) / sqrt of the mean variance.
    On a set too small for any FMR target these still show whether an option moves the two
    distributions apart."""
    if len(genuine) == 0 or len(impostor) == 0:
        return {"genuine_max": None, "impostor_min": None, "margin": None, "d_prime": None}
    spread = float(np.sqrt((np.var(genuine) + np.var(impostor)) / 2))
    return {
        "genuine_mean": float(np.mean(genuine)),
        "genuine_max": float(np.max(genuine)),
        "impostor_mean": float(np.mean(impostor)),
        "impostor_min": float(np.min(impostor)),
        "margin": float(np.min(impostor) - np.max(genuine)),
        "d_prime": (float(np.mean(impostor) - np.mean(genuine)) / spread) if spread > 0 else None,
    }


def fmr_row_json(row: ev.FmrRow, scale: str) -> dict[str, Any]:
    return {
        "target_fmr": row.target_fmr,
        "distance": row.distance,
        "similarity": distance_to_score(row.distance, scale) if row.distance is not None else None,
        "fmr": row.fmr,
        "fnmr": row.fnmr,
        "genuine_pairs": row.genuine_pairs,
        "impostor_pairs": row.impostor_pairs,
        "reason": row.reason,
    }


def identification_json(result: ev.Identification, scale: str) -> dict[str, Any]:
    return {
        "rank1": result.rank1,
        "rank10": result.rank10,
        "fnir_at_fpir": result.fnir_at_fpir,
        "fpir": ev.TARGET_FPIR,
        "threshold_distance": result.threshold,
        "threshold_similarity": (
            distance_to_score(result.threshold, scale) if result.threshold is not None else None
        ),
        "fnir_at_zero_fpir": result.fnir_at_zero_fpir,
        "mated_probes": result.mated_probes,
        "non_mated_probes": result.non_mated_probes,
        "gallery_size": result.gallery_size,
        "reason": result.reason,
        "cmc": list(result.cmc),
    }

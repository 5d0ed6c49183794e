"""``probity evaluate`` and ``probity calibrate`` on real photos with the real default model
(YuNet + SFace), checked against a recomputation from the descriptors the run cached.

The labelled folder is built in tmp_path from tests/data (obama x4, biden, collins) and, where
../shared/faces exists, the NASA photos (copied into tmp_path only, never into the project).
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from probity.config import Settings
from probity.engine import evaluation as ev
from probity.engine.evaluation_run import cache_file
from probity.engine.onnx_engine import OnnxEngine
from probity.services.container import build_services
from tests.cli.conftest import DATA, SHARED_FACES

SFACE = "sface-int8@opencv_zoo-2021dec-int8bq"
LOCAL = {
    "obama": ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg"],
    "biden": ["biden.jpg"],
    "collins": ["astronaut.png"],
}
NASA = {
    "collins": ["eileen_collins_1.jpg"],
    "biden": ["joe_biden_1.jpg"],
    "morgan": ["andrew_morgan_1.jpg", "andrew_morgan_2.jpg"],
    "gerst": ["alexander_gerst_1.jpg"],
    "hague": ["nick_hague_1.jpg"],
    "koch": ["christina_koch_1.jpg"],
    "meir": ["jessica_meir_1.jpg"],
}


def labelled_folder(root: Path, *, nasa: bool) -> Path:
    for source, layout in [(DATA, LOCAL)] + ([(SHARED_FACES, NASA)] if nasa else []):
        for person, files in layout.items():
            (root / person).mkdir(parents=True, exist_ok=True)
            for name in files:
                shutil.copy(source / name, root / person / name)
    return root


@pytest.fixture(scope="module")
def nasa_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SHARED_FACES / "andrew_morgan_1.jpg").exists():
        pytest.skip(f"{SHARED_FACES} not present: NASA photos are read from there, never copied")
    return labelled_folder(tmp_path_factory.mktemp("eval") / "people", nasa=True)


def test_evaluate_figures_match_a_recomputation_and_the_cache_is_used(  # type: ignore[no-untyped-def]
    probity, nasa_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    args = ["evaluate", str(nasa_set), "--json", "--workers", "1", "--cache", str(cache)]
    run = probity(*args, "--home", str(tmp_path / "home"), "--out", str(out), "--fusion")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["model"] == SFACE and data["analysed"] == 14 and data["from_cache"] == 0
    for name in ("det.png", "cmc.png", "evaluation.json"):
        assert (out / name).stat().st_size > 0
    assert (out / "evaluation.pdf").read_bytes().startswith(b"%PDF")

    # Recompute from the cached descriptors, independently of engine/evaluation.py.
    with np.load(cache_file(cache, SFACE, False)) as npz:
        paths = [str(p) for p in npz["paths"]]
        found = npz["found"].astype(bool)
        vectors = npz["vectors"].astype(np.float64)
        detectors = [str(d) for d in npz["detectors"]]
    assert paths == sorted(paths, key=lambda p: (p.split("/")[0], p))
    assert data["faces_found"] == pytest.approx(found.mean())
    assert data["faces_by_detector"] == {"yunet": int(found.sum())}
    assert set(detectors) == {"yunet"}
    vec = {p: v / np.linalg.norm(v) for p, v, f in zip(paths, vectors, found, strict=True) if f}
    genuine, impostor = [], []
    for a, b in itertools.combinations(sorted(vec), 2):
        d = float(np.linalg.norm(vec[a] - vec[b]))
        (genuine if a.split("/")[0] == b.split("/")[0] else impostor).append(d)
    assert len(genuine) == 6 + 1 + 1 + 1 and len(impostor) == 91 - 9
    row = data["fmr_table"][0]
    assert (row["target_fmr"], row["genuine_pairs"], row["impostor_pairs"]) == (0.01, 9, 82)
    assert row["distance"] is None and "not measurable" in row["reason"]  # 82 < 100
    assert all(r["distance"] is None for r in data["fmr_table"])
    assert data["pairs"]["accuracy"] is None and "too few pairs" in data["pairs"]["reason"]

    # 1:N: gallery obama.jpg, biden.jpg, astronaut.png, andrew_morgan_1, alexander_gerst_1,
    # christina_koch_1; singles sorted gerst, hague, koch, meir: hague and meir are non-mated.
    one = data["one_to_n"]
    assert one["gallery"] == sorted(
        [
            "obama/obama.jpg",
            "biden/biden.jpg",
            "collins/astronaut.png",
            "morgan/andrew_morgan_1.jpg",
            "gerst/alexander_gerst_1.jpg",
            "koch/christina_koch_1.jpg",
        ]
    )
    assert one["non_mated"] == ["hague/nick_hague_1.jpg", "meir/jessica_meir_1.jpg"]
    gallery = {p.split("/")[0]: vec[p] for p in one["gallery"]}
    hits = 0
    for probe in one["mated"]:
        person = probe.split("/")[0]
        nearest = min(gallery, key=lambda g: float(np.linalg.norm(vec[probe] - gallery[g])))
        hits += nearest == person
    assert one["rank1"] == pytest.approx(hits / len(one["mated"]))
    assert one["fnir_at_fpir"] is None and "2 non-mated probes" in one["reason"]
    assert set(data["fusion"]) >= {"single", "best", "mean_best_two", "centroid"}

    # A second run reads the cache: the engine is not called at all.
    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("analyse called although every descriptor is cached")

    monkeypatch.setattr(OnnxEngine, "analyse", refuse)
    again = probity(*args, "--home", str(tmp_path / "home"))
    assert again.code == 0, again.err
    second = json.loads(again.out)
    assert second["analysed"] == 0 and second["from_cache"] == 14
    assert second["descriptor_sha256"] == data["descriptor_sha256"]
    assert second["one_to_n"] == data["one_to_n"]

    # Engine settings that change detections make the cache stale.
    monkeypatch.undo()
    monkeypatch.setenv("PROBITY_ENGINE__YUNET_MAX_SIDE", "480")
    third = json.loads(probity(*args, "--home", str(tmp_path / "home")).out)
    assert third["analysed"] == 14 and third["from_cache"] == 0


def test_calibrate_refuses_a_set_too_small_then_writes_resets_and_audits(  # type: ignore[no-untyped-def]
    probity, nasa_set: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    assert probity("init", "--home", str(home)).code == 0
    cache = ["--cache", str(tmp_path / "cache"), "--workers", "1"]
    small = probity("calibrate", str(nasa_set), "--home", str(home), *cache)
    assert small.code == 2
    assert "only 0 of the 5 FMR targets are measurable" in small.err
    assert "Traceback" not in small.err and not (home / "calibration").exists()

    # The real measurement, with an FMR table from 9 genuine and 2,000 impostor distances
    # (no labelled set here is large enough: 1e-3 needs 1,000 impostor pairs).
    settings = Settings(home=home)
    run = probity("evaluate", str(nasa_set), "--json", "--home", str(home), *cache)
    measured = json.loads(run.out)
    rng = np.random.default_rng(1)
    rows = ev.fmr_table(rng.normal(0.8, 0.1, 9), rng.normal(1.3, 0.08, 2000))
    measured["fmr_table"] = [
        {
            "target_fmr": r.target_fmr,
            "distance": r.distance,
            "similarity": None if r.distance is None else 1 - r.distance**2 / 2,
            "fmr": r.fmr,
            "fnmr": r.fnmr,
            "genuine_pairs": r.genuine_pairs,
            "impostor_pairs": r.impostor_pairs,
        }
        for r in rows
    ]
    services = build_services(settings)
    try:
        written = services.calibration.write(actor="tester", model_key=SFACE, measured=measured)
        table = services.engines.table(services.engines.get(SFACE).model)
    finally:
        services.close()
    assert written.path == home / "calibration" / f"{SFACE}.json"
    assert table.origin == "deployment" and [p.fmr for p in table.points] == [1e-2, 1e-3]
    assert table.source == "deployment calibration people, " + written.document["date"] + (
        ", 9 genuine / 2,000 impostor pairs"
    )

    listed = json.loads(probity("models", "--home", str(home), "--json").out)["models"]
    sface = next(m for m in listed if m["key"] == SFACE)
    dlib = next(m for m in listed if m["key"] != SFACE)
    assert sface["fmr_table_origin"] == "deployment" and dlib["fmr_table_origin"] == "shipped"
    assert sface["fmr_table_source"] == table.source
    assert [p["fmr"] for p in sface["fmr_table"]] == [1e-2, 1e-3]

    reset = probity("calibrate", "--reset", "--model", "sface-int8", "--home", str(home))
    assert reset.code == 0, reset.err
    listed = json.loads(probity("models", "--home", str(home), "--json").out)["models"]
    assert next(m for m in listed if m["key"] == SFACE)["fmr_table_origin"] == "shipped"
    again = probity("calibrate", "--reset", "--model", "sface-int8", "--home", str(home))
    assert again.code == 3 and "no deployment calibration" in again.err

    log = json.loads(probity("audit", "log", "--json", "--home", str(home)).out)
    events = [e for e in log if e["action"].startswith("model.")]
    assert [e["action"] for e in events] == ["model.calibrated", "model.calibration_reset"]
    assert events[0]["details"]["descriptor_sha256"] == measured["descriptor_sha256"]
    assert probity("audit", "verify", "--home", str(home)).code == 0


@pytest.mark.parametrize(
    ("layout", "pairs", "message"),
    [
        (None, None, "does not exist"),
        ({}, None, "holds no person sub-folder"),
        (
            {"ann": ["ann_0001.jpg", "ann_0002.jpg"]},
            "1 1\nann 1 2\nann 1 bo 1 x\n",
            "line 3: expected 'name i j'",
        ),
        ({"ann": ["ann_0001.jpg"]}, "1 1\nann 1 2\nann 1 bo 1\n", "no image ann/ann_0002.jpg"),
    ],
)
def test_bad_input_is_one_error_line(  # type: ignore[no-untyped-def]
    probity, tmp_path: Path, layout: dict[str, list[str]] | None, pairs: str | None, message: str
) -> None:
    root = tmp_path / "set"
    if layout is not None:
        root.mkdir()
        (root / "loose.jpg").write_bytes(b"x")
        for person, files in layout.items():
            (root / person).mkdir()
            for name in files:
                (root / person / name).write_bytes(b"x")
    extra = []
    if pairs is not None:
        (tmp_path / "pairs.txt").write_text(pairs)
        extra = ["--pairs", str(tmp_path / "pairs.txt")]
    run = probity("evaluate", str(root), "--home", str(tmp_path / "home"), *extra)
    assert run.code == 2
    assert run.err.startswith("error[invalid_input]: ") and message in run.err
    assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1


def test_evaluate_on_the_project_photos_alone(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Without ../shared/faces: three people, every image has a face, nothing crashes on a
    set far too small for 10 folds or for any FMR target."""
    root = labelled_folder(tmp_path / "people", nasa=False)
    run = probity("evaluate", str(root), "--json", "--workers", "1", "--home", str(tmp_path / "h"))
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["images"] == 6 and data["faces_found"] == 1.0
    assert data["one_to_n"]["mated"] == ["obama/obama2.jpg"]
    assert data["one_to_n"]["gallery"] == ["biden/biden.jpg", "obama/obama.jpg"]
    assert data["one_to_n"]["non_mated"] == ["collins/astronaut.png"]
    assert data["one_to_n"]["rank1"] == 1.0

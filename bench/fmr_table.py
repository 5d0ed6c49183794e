"""Produce the FMR → distance table for the shipped model from a labelled face dataset.

The table Probity ships (probity/engine/thresholds.py) holds dlib's published LFW operating
points. This script measures the same thing on any dataset a deployment may lawfully hold,
laid out one folder per person (LFW's layout: ``ROOT/<person>/<photo>``), through Probity's
own engine (HOG/CNN detection, 5-point alignment, ResNet descriptor, the probe quality
floor): every same-person pair is a genuine comparison, every different-person pair an
impostor comparison. For each candidate threshold it reports

- FMR: the share of impostor pairs at or below the distance (a false match), and
- FNMR: the share of genuine pairs above it (a false non-match),

and, for each target FMR, the largest distance that keeps FMR at or below it, which is how
``threshold_for_fmr`` reads the table. Photos with no face or more than one face that passes
the probe floor are skipped and counted.

Usage::

    .venv/bin/python bench/fmr_table.py ROOT [--targets 0.0003,0.005,0.022] [--max-per-person 10]

With no LFW copy on this machine (nothing may be downloaded at run time), it can be run on a
folder built from the photos in tests/data and ../shared/faces (``--demo``); with so few
identities the figures only show that the procedure works, not a usable operating point.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from probity.config import EngineSettings
from probity.domain.faces import PROBE_QUALITY_FLOOR
from probity.engine.dlib_engine import DlibEngine
from probity.engine.images import read_image_file
from probity.engine.quality import quality_reasons

REPO = Path(__file__).resolve().parents[1]
DEMO = {  # person -> photos (tests/data, then ../shared/faces read in place)
    "obama": ["tests/data/obama.jpg", "tests/data/obama2.jpg", "tests/data/obama3.jpg"],
    "biden": ["tests/data/biden.jpg", "../shared/faces/joe_biden_1.jpg"],
    "collins": ["tests/data/astronaut.png", "../shared/faces/eileen_collins_1.jpg"],
    "morgan": ["../shared/faces/andrew_morgan_1.jpg", "../shared/faces/andrew_morgan_2.jpg"],
    "gerst": [
        "../shared/faces/alexander_gerst_1.jpg",
        "../shared/faces/alexander_gerst_2_profile.jpg",
    ],
    "hague": ["../shared/faces/nick_hague_1.jpg"],
    "koch": ["../shared/faces/christina_koch_1.jpg"],
    "meir": ["../shared/faces/jessica_meir_1.jpg"],
    "kelly": ["../shared/faces/scott_kelly_1.jpg"],
    "whitson": ["../shared/faces/peggy_whitson_1.jpg"],
    "mcclain": ["../shared/faces/anne_mcclain_1.jpg"],
}


def build_demo(folder: Path) -> Path:
    for person, photos in DEMO.items():
        for rel in photos:
            src = (REPO / rel).resolve()
            if src.exists():
                (folder / person).mkdir(parents=True, exist_ok=True)
                (folder / person / src.name).symlink_to(src)  # read in place, never copied
    return folder


def descriptors(root: Path, max_per_person: int) -> tuple[list[str], np.ndarray, int]:
    engine = DlibEngine(EngineSettings())
    labels: list[str] = []
    vectors: list[np.ndarray] = []
    skipped = 0
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(p for p in person.iterdir() if p.is_file())[:max_per_person]
        for photo in photos:
            try:
                image = read_image_file(photo, max_bytes=50 << 20, max_pixels=50_000_000)
            except Exception:
                skipped += 1
                continue
            faces = [
                f
                for f in engine.analyse(image)
                if not quality_reasons(f.quality, PROBE_QUALITY_FLOOR)
            ]
            if len(faces) != 1:
                skipped += 1
                continue
            labels.append(person.name)
            vectors.append(faces[0].descriptor)
    return labels, np.stack(vectors), skipped


def table(labels: list[str], vectors: np.ndarray, targets: list[float]) -> dict[str, object]:
    genuine, impostor = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        d = float(np.linalg.norm(vectors[i] - vectors[j]))
        (genuine if labels[i] == labels[j] else impostor).append(d)
    g, im = np.sort(np.array(genuine)), np.sort(np.array(impostor))
    rows = []
    for threshold in (0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70):
        fmr = float(np.searchsorted(im, threshold, side="right")) / max(1, len(im))
        fnmr = 1 - float(np.searchsorted(g, threshold, side="right")) / max(1, len(g))
        rows.append({"distance": threshold, "fmr": round(fmr, 5), "fnmr": round(fnmr, 5)})
    operating = []
    for target in targets:
        allowed = int(np.floor(target * len(im)))  # impostor pairs we may accept
        distance = float(im[allowed] - 1e-6) if allowed < len(im) else float("inf")
        accepted_g = float(np.searchsorted(g, distance, side="right")) / max(1, len(g))
        operating.append(
            {
                "target_fmr": target,
                "max_distance": round(distance, 4),
                "fnmr": round(1 - accepted_g, 4),
            }
        )
    return {
        "identities": len(set(labels)),
        "templates": len(labels),
        "genuine_pairs": len(g),
        "impostor_pairs": len(im),
        "table": rows,
        "operating_points": operating,
        "closest_impostor": round(float(im[0]), 4) if len(im) else None,
        "farthest_genuine": round(float(g[-1]), 4) if len(g) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, nargs="?")
    parser.add_argument("--demo", action="store_true", help="tests/data + ../shared/faces")
    parser.add_argument("--targets", default="0.0003,0.005,0.022")
    parser.add_argument("--max-per-person", type=int, default=10)
    args = parser.parse_args()
    targets = [float(t) for t in args.targets.split(",")]
    tmp = None
    if args.demo:
        tmp = Path(tempfile.mkdtemp())
        root = build_demo(tmp)
    elif args.root:
        root = args.root
    else:
        parser.error("give ROOT or --demo")
    try:
        labels, vectors, skipped = descriptors(root, args.max_per_person)
    finally:
        if tmp:
            shutil.rmtree(tmp)
    result = table(labels, vectors, targets) | {"skipped_photos": skipped, "dataset": str(root)}
    out = REPO / "bench" / "results" / ("fmr_table_demo.json" if args.demo else "fmr_table.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{result['identities']} identities, {result['templates']} templates, "
        f"{result['genuine_pairs']} genuine / {result['impostor_pairs']} impostor pairs, "
        f"{skipped} photos skipped"
    )
    print("| distance | FMR | FNMR |\n|---:|---:|---:|")
    for row in result["table"]:  # type: ignore[attr-defined]
        print(f"| {row['distance']:.2f} | {row['fmr']:.4%} | {row['fnmr']:.2%} |")
    print(
        f"closest impostor pair {result['closest_impostor']}, "
        f"farthest genuine pair {result['farthest_genuine']}"
    )


if __name__ == "__main__":
    main()

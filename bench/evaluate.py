"""Accuracy through the product's own path: ``probity evaluate`` for each model, with and
without ``--flip``, with ``--fusion``; one JSON per model under bench/results/.

    .venv/bin/python bench/evaluate.py /data/lfw [--pairs /data/lfw/pairs.txt]
    .venv/bin/python bench/evaluate.py --demo        # tests/data + ../shared/faces

It calls the CLI's own ``measure`` (interfaces/cli/evaluate.py): the same scan, decode,
analyse, largest-face choice, descriptor cache and metrics as ``probity evaluate``; nothing
here computes a figure itself. (This replaces bench/fmr_table.py: the FMR table is the
``fmr_table`` part of the output.)

``--demo`` builds a folder-per-person tree of symbolic links (the NASA photos are read in
place, never copied into the project) from every labelled photo on this machine, one copy of
each distinct file (by sha256: tests/data/obama.jpg and ../shared/faces/barack_obama_1.jpg are
the same file and count once). Left out: 32bit.png (an RGBA copy of obama2.jpg),
multi_morgan_hague.jpg (two people: "the largest face" would pick one arbitrarily) and the
no-face photos. That is 19 photos of 11 people: enough to show the procedure, far too few for
figures that separate models or rules.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from probity.config import Settings
from probity.interfaces.cli.evaluate import measure

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "faces"
DEMO = {  # person -> photos (tests/data, then ../shared/faces)
    "obama": [
        "tests/data/obama.jpg",
        "tests/data/obama2.jpg",
        "tests/data/obama3.jpg",
        "tests/data/obama_partial_face.jpg",
        "tests/data/obama_partial_face2.jpg",
        "../shared/faces/barack_obama_1.jpg",
        "../shared/faces/barack_obama_partial_face.jpg",
    ],
    "biden": ["tests/data/biden.jpg", "../shared/faces/joe_biden_1.jpg"],
    "collins": [
        "tests/data/astronaut.png",
        "../shared/faces/eileen_collins_1.jpg",
        "../shared/faces/eileen_collins_2.png",
    ],
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
MODELS = ("dlib-resnet-v1", "sface-int8")


def build_demo(folder: Path) -> Path:
    """The demo tree in ``folder`` (symbolic links), each distinct file once."""
    seen: set[str] = set()
    for person, photos in DEMO.items():
        for rel in photos:
            src = (REPO / rel).resolve()
            if not src.exists():
                continue
            digest = hashlib.sha256(src.read_bytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            (folder / person).mkdir(parents=True, exist_ok=True)
            (folder / person / src.name).symlink_to(src)
    return folder


def run(root: Path, pairs: Path | None, models: list[str], cache: Path) -> dict[str, Any]:
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="probity-bench-home-")))
    results: dict[str, Any] = {}
    for model in models:
        runs = {}
        for flip in (False, True):
            started = time.perf_counter()
            report = measure(
                settings,
                root,
                model=model,
                pairs_file=pairs,
                workers=None,
                cache=cache,
                flip=flip,
                fusion=True,
                hidden=False,
            )
            wall = round(time.perf_counter() - started, 2)  # analysis (or cache) and metrics
            runs["flip" if flip else "plain"] = report.summary | {"wall_s": wall}
        results[model] = runs
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, nargs="?")
    parser.add_argument("--demo", action="store_true", help="tests/data + ../shared/faces")
    parser.add_argument("--pairs", type=Path, help="an LFW pairs.txt for the pairs accuracy")
    parser.add_argument("--model", action="append", help="model name or key (default: both)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "probity-bench-evaluate-cache",
        help="descriptor cache (a second run over the same photos analyses nothing)",
    )
    args = parser.parse_args()
    if args.demo:
        root = build_demo(Path(tempfile.mkdtemp(prefix="probity-demo-")) / "demo")
    elif args.root:
        root = args.root
    else:
        parser.error("give ROOT or --demo")
    results = run(root, args.pairs, args.model or list(MODELS), args.cache)
    for model, runs in results.items():
        name = model.split("@")[0]
        target = REPO / "bench" / "results" / f"evaluate_{name}.json"
        target.write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
        for variant, s in runs.items():
            one, pairs = s["one_to_n"], s["pairs"]
            rows = {f"{r['target_fmr']:g}": r for r in s["fmr_table"]}
            at2 = rows["0.01"]
            gap = s["distances"]
            print(
                f"{name} {variant}: faces {s['images_with_face']}/{s['images']}, pairs "
                f"accuracy {pairs['accuracy']} (sd {pairs['sd']}), FMR 1e-2 at "
                f"{at2['distance']} FNMR {at2['fnmr']}, farthest genuine "
                f"{gap['genuine_max']:.4f}, closest impostor {gap['impostor_min']:.4f}, "
                f"d' {gap['d_prime']:.3f}, {s['wall_s']:.1f} s, rank-1 {one['rank1']}, rank-10 "
                f"{one['rank10']}, FNIR at FPIR 1 % {one['fnir_at_fpir']} "
                f"(at zero false positives {one['fnir_at_zero_fpir']}); fusion rank-1 "
                + ", ".join(
                    f"{rule} {r['rank1']}" for rule, r in s["fusion"].items() if rule != "protocol"
                )
            )
        print(f"wrote {target}")


if __name__ == "__main__":
    main()

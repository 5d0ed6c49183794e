"""``probity evaluate`` and ``probity calibrate``: the product's own accuracy on a labelled
folder (one sub-folder per person) that the deployment holds.

``evaluate`` reports 10-fold pairs accuracy, the all-pairs FMR table, rank-1 / rank-10 and FNIR
at FPIR 1 % of a fixed 1:N split, the share of images with a face, and (``--out``) the DET and
CMC curves as PNG and a PDF. ``--flip`` and ``--fusion`` measure options that search does not
use (mirror-image augmentation; one score per person from several templates). The protocols
are in ``engine/evaluation.py``; descriptors are cached, so a second run is quick.

``calibrate`` runs the same measurement and writes the FMR table into the home as the
deployment's own (audited), which searches then use instead of the shipped table;
``calibrate --reset`` goes back to the shipped one. Neither needs a GPU; evaluate needs no
initialised home.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from probity.config import Settings
from probity.engine.evaluation import parse_pairs, scan_dataset
from probity.engine.evaluation_run import (
    Report,
    compute_descriptors,
    default_cache_dir,
    make_pool,
)
from probity.engine.evaluation_run import (
    evaluate as run_evaluation,
)
from probity.engine.registry import build_engine_set
from probity.errors import InvalidInput
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    out,
    print_json,
    progress_bar,
    services,
    settings_for,
)
from probity.interfaces.render.evaluation_report import text_lines, write_pdf, write_plots

DatasetArg = Annotated[Path, typer.Argument(help="Folder with one sub-folder per person.")]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="Installed model key or name (default: the default model)."),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", min=1, help="Worker processes (default: min(2, CPU count))."),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="Descriptor cache folder (default <dataset>/.probity-cache, or under the home "
        "when the dataset folder is read-only).",
    ),
]
PairsOpt = Annotated[
    Path | None,
    typer.Option("--pairs", help="LFW pairs.txt: 'folds pairs_per_fold', then the pair lines."),
]


def measure(
    settings: Settings,
    dataset_root: Path,
    *,
    model: str | None,
    pairs_file: Path | None,
    workers: int | None,
    cache: Path | None,
    flip: bool,
    fusion: bool,
    hidden: bool,
) -> Report:
    """Scan, analyse (cached) and measure: what both commands run."""
    dataset = scan_dataset(dataset_root.expanduser())
    engines = build_engine_set(
        settings.engine,
        home_models=settings.models_dir,
        calibration_dir=settings.calibration_dir,
    )
    engine = engines.resolve(model) if model else engines.default
    key = engine.model.key
    scale = next((c.distance for c in engines.cards() if c.model.key == key), "euclidean")
    pairs = None
    if pairs_file is not None:
        try:
            text = pairs_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read the pairs file {pairs_file}: {exc}") from exc
        present = set(dataset.images())
        pairs = parse_pairs(text, exists=present.__contains__)
    count = workers or min(2, os.cpu_count() or 1)
    limits = settings.limits
    with progress_bar("analysing", hidden=hidden) as update:
        descriptors = compute_descriptors(
            dataset,
            engines=engines,
            model_key=key,
            scale=scale,
            pool=lambda: make_pool(
                engines,
                settings.engine,
                model_key=key,
                home_models=settings.models_dir,
                workers=count,
                max_bytes=limits.max_upload_bytes,
                max_pixels=limits.max_image_pixels,
            ),
            settings=settings.engine,
            cache_dir=cache or default_cache_dir(dataset.root, settings.home),
            flip=flip,
            max_bytes=limits.max_upload_bytes,
            max_pixels=limits.max_image_pixels,
            on_progress=update,
        )
    return run_evaluation(dataset, descriptors, pairs=pairs, fusion=fusion)


@app.command("evaluate")
def evaluate(
    dataset: DatasetArg,
    model: ModelOpt = None,
    pairs: PairsOpt = None,
    workers: WorkersOpt = None,
    cache: CacheOpt = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write det.png, cmc.png, evaluation.pdf and evaluation.json."),
    ] = None,
    flip: Annotated[
        bool, typer.Option("--flip", help="Descriptor = mean of the face and its mirror image.")
    ] = False,
    fusion: Annotated[
        bool, typer.Option("--fusion", help="Also measure the one-score-per-person rules.")
    ] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Measure a model on a labelled folder: pairs accuracy, FMR table, rank-1/10, FNIR at
    FPIR 1 %, faces found; DET and CMC curves with --out."""
    settings = settings_for(home)
    report = measure(
        settings,
        dataset,
        model=model,
        pairs_file=pairs,
        workers=workers,
        cache=cache,
        flip=flip,
        fusion=fusion,
        hidden=json_out,
    )
    written: list[str] = []
    if out_dir is not None:
        plots = write_plots(report, out_dir)
        pdf = write_pdf(report, out_dir, plots)
        summary_path = out_dir / "evaluation.json"
        summary_path.write_text(json.dumps(report.summary, indent=2) + "\n", encoding="utf-8")
        written = [str(p) for p in (*plots, pdf, summary_path)]
    if json_out:
        print_json(report.summary | {"files": written})
        return
    for line in text_lines(report.summary):
        out.print(line, markup=False, highlight=False)
    for path in written:
        out.print(f"wrote {path}", markup=False, highlight=False)


@app.command("calibrate")
def calibrate(
    dataset: Annotated[
        Path | None, typer.Argument(help="Folder with one sub-folder per person.")
    ] = None,
    model: ModelOpt = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Remove the deployment table: use the shipped one.")
    ] = False,
    workers: WorkersOpt = None,
    cache: CacheOpt = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Measure the FMR table on a labelled folder and make it this deployment's table for
    the model (audited); --reset goes back to the shipped table."""
    who = actor_name(actor)
    settings = settings_for(home)
    if reset:
        if dataset is not None:
            raise InvalidInput("--reset takes no DATASET")
        if not model:
            raise InvalidInput("--reset needs --model KEY")
        with services(home) as s:
            key = s.engines.resolve(model).model.key
            path = s.calibration.reset(actor=who, model_key=key)
        if json_out:
            print_json({"model": key, "removed": str(path), "fmr_table_origin": "shipped"})
        else:
            out.print(f"Removed {path}: {key} uses its shipped FMR table again.", markup=False)
        return
    if dataset is None:
        raise InvalidInput("give the DATASET folder to calibrate on (or --reset --model KEY)")
    with services(home) as s:  # refuse before the long measurement when the home is not ready
        key = (s.engines.resolve(model) if model else s.engines.default).model.key
    report = measure(
        settings,
        dataset,
        model=key,
        pairs_file=None,
        workers=workers,
        cache=cache,
        flip=False,
        fusion=False,
        hidden=json_out,
    )
    with services(home) as s:
        written = s.calibration.write(actor=who, model_key=key, measured=report.summary)
    points = written.document["points"]
    if json_out:
        print_json(
            {
                "model": key,
                "file": str(written.path),
                "source": written.source,
                "points": points,
                "fmr_table_origin": "deployment",
            }
        )
        return
    table = Table("FMR", "distance", "similarity", "FNMR", title=f"{key}: {written.source}")
    for p in points:
        table.add_row(
            f"{p['fmr']:g}", f"{p['distance']:.4f}", f"{p['similarity']:.4f}", f"{p['fnmr']:.2%}"
        )
    out.print(table)
    out.print(f"Wrote {written.path}; searches now use this table.", markup=False)

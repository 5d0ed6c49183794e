"""``probity models``: every face model installed here, with what a reviewer needs to judge it.

For each model: its key (``name@version``, what every template records), licence, where the
file comes from, its sha256, the descriptor's dimension and distance, the training data as the
model's authors describe it, the figures measured on it (the model file's ``[measured]``
table), whether new galleries get it, and its FMR table with where that table comes from:
``shipped`` (the model's own) or ``deployment`` (measured here by ``probity calibrate``, with
its dataset, date and pair counts).
``--verify`` also reads each ONNX file and checks its digest now (otherwise that happens when
a model is first used). Nothing here needs a database: the list comes from the engine
settings and the model files (``<home>/models``, ``PROBITY_ENGINE__MODEL_DIRS``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from probity.engine.registry import EngineSet, InstalledModel, build_engine_set
from probity.engine.yunet import YUNET_LICENCE, YUNET_SHA256, yunet_path
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import HomeOpt, JsonOpt, out, print_json, settings_for

VerifyOpt = Annotated[
    bool, typer.Option("--verify", help="Read every ONNX model file now and check its sha256.")
]


def card_dict(engines: EngineSet, card: InstalledModel, *, verified: bool | None) -> dict[str, Any]:
    """One model as ``probity models --json`` prints it."""
    table = engines.table(card.model)
    spec = card.spec
    return {
        "key": card.model.key,
        "name": card.model.name,
        "version": card.model.version,
        "default": card.model.key == engines.default.model.key,
        "origin": card.origin,
        "licence": card.licence,
        "source": card.source,
        "file": str(spec.resolve_file()) if spec is not None else None,
        "sha256": card.sha256,
        "verified": verified,
        "dimension": card.model.dimension,
        "distance": card.distance,
        "training_data": card.training_data,
        "input": (
            {
                "size": list(spec.input_size),
                "channel_order": spec.channel_order,
                "mean": list(spec.mean),
                "std": list(spec.std),
            }
            if spec is not None
            else None
        ),
        "measured": dict(spec.measured) if spec is not None else {},
        "fmr_table": [{"fmr": p.fmr, "distance": p.distance, "fnmr": p.fnmr} for p in table.points],
        "fmr_table_source": table.source,
        "fmr_table_origin": table.origin,
    }


@app.command("models")
def models(home: HomeOpt = None, verify: VerifyOpt = False, json_out: JsonOpt = False) -> None:
    """List every installed face model: key, licence, source, sha256, dimension, training
    data, measured figures and FMR table; the default (new galleries' model) first."""
    settings = settings_for(home)
    engines = build_engine_set(
        settings.engine,
        home_models=settings.models_dir,
        calibration_dir=settings.calibration_dir,
    )
    rows = []
    for card in engines.cards():
        verified: bool | None = None
        if verify and card.spec is not None:
            card.spec.read_verified()  # IntegrityError (a ProbityError) names file and digests
            verified = True
        rows.append(card_dict(engines, card, verified=verified))
    detector = {
        "name": "YuNet",
        "licence": YUNET_LICENCE,
        "file": str(yunet_path()),
        "sha256": YUNET_SHA256,
    }
    if json_out:
        print_json({"models": rows, "detector": detector})
        return
    for row in rows:
        title = f"{row['key']}{'  (default for new galleries)' if row['default'] else ''}"
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        table.add_row("origin", row["origin"])
        table.add_row("licence", row["licence"])
        table.add_row("source", row["source"])
        if row["file"]:
            table.add_row("file", row["file"])
        table.add_row("sha256", row["sha256"] + ("  (checked now)" if row["verified"] else ""))
        table.add_row("dimension", f"{row['dimension']} ({row['distance']} distance)")
        table.add_row("training data", row["training_data"])
        for key, value in row["measured"].items():
            table.add_row(f"measured: {key}", str(value))
        points = ", ".join(
            f"FMR {p['fmr']:g} at {p['distance']:.3f}"
            + (f" (FNMR {p['fnmr']:.2%})" if p["fnmr"] is not None else "")
            for p in row["fmr_table"]
        )
        table.add_row(
            f"FMR table ({row['fmr_table_origin']})",
            f"{points}; source: {row['fmr_table_source']}",
        )
        out.print(table)
    out.print(
        f"Detector: {detector['name']} ({detector['licence']}), sha256 {detector['sha256']}",
        highlight=False,
    )

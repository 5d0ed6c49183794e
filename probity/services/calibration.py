"""A deployment's own FMR tables: writing one from a measurement, and going back to the
shipped table. Both are audited (``model.calibrated``, ``model.calibration_reset``).

The measurement is ``probity evaluate``'s (``engine/evaluation_run.py``): the all-pairs FMR
table on a labelled folder the deployment holds. Only the points the pair counts resolve are
written (FMR 1e-3 needs at least 1,000 impostor pairs), and a table with fewer than two is
refused: thresholds are interpolated between measured points and never extrapolated, so one
point would leave every other operating point unsupported. Calibrating with a set that does
not look like the deployment's probes and gallery (pose, age, capture) gives thresholds that
do not hold for them; the audit event records the dataset and the descriptor set's sha256 so
a reviewer can ask which data set the thresholds came from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probity.domain.accounts import Action
from probity.domain.audit import AuditAction, AuditRecord
from probity.engine.calibration_file import FORMAT, MIN_POINTS, calibration_path, source_text
from probity.engine.registry import EngineSet
from probity.errors import InvalidInput, NotFound
from probity.services.access import AccessGuard, Who, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.storage.db import Database


@dataclass(frozen=True, slots=True)
class Calibration:
    model_key: str
    path: Path
    document: dict[str, Any]

    @property
    def source(self) -> str:
        return source_text(self.document)


class CalibrationService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        engines: EngineSet,
        folder: Path,
        guard: AccessGuard,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.engines = engines
        self.folder = folder
        self.guard = guard

    def write(self, *, actor: Who, model_key: str, measured: dict[str, Any]) -> Calibration:
        """Write the FMR table of ``measured`` (an evaluation summary of model ``model_key``)
        as the deployment's table for that model, audited. InvalidInput when fewer than two
        of its points are measurable, or when it was measured with another model or with
        ``--flip`` (search does not flip, so its thresholds would not hold)."""
        self.guard.check(actor, Action.GALLERY_CREATE)
        model = self.engines.get(model_key).model
        if measured.get("model") != model.key:
            raise InvalidInput(f"the measurement is of {measured.get('model')}, not {model.key}")
        if measured.get("flip"):
            raise InvalidInput(
                "a calibration must be measured without --flip: searches do not flip the probe"
            )
        rows = measured["fmr_table"]
        points = [
            {
                "fmr": r["target_fmr"],
                "distance": r["distance"],
                "fnmr": r["fnmr"],
                "similarity": r["similarity"],
                "measured_fmr": r["fmr"],
            }
            for r in rows
            if r["distance"] is not None
        ]
        impostors = rows[0]["impostor_pairs"] if rows else 0
        if len(points) < MIN_POINTS:
            raise InvalidInput(
                f"only {len(points)} of the {len(rows)} FMR targets are measurable on "
                f"{measured.get('dataset')} ({impostors:,} impostor pairs); a deployment table "
                f"needs at least {MIN_POINTS} (FMR 1e-3 needs 1,000 impostor pairs, 1e-4 needs "
                "10,000): calibrate on a larger labelled set. The shipped table stays in use."
            )
        now = self.clock()
        document: dict[str, Any] = {
            "format": FORMAT,
            "model": model.key,
            "dataset": measured["dataset"],
            "date": now.date().isoformat(),
            "measured_at": now.isoformat(),
            "people": measured["people"],
            "images": measured["images"],
            "images_with_face": measured["images_with_face"],
            "genuine_pairs": rows[0]["genuine_pairs"],
            "impostor_pairs": impostors,
            "descriptor_sha256": measured["descriptor_sha256"],
            "distance_scale": measured["distance_scale"],
            "points": points,
        }
        path = calibration_path(self.folder, model.key)
        with self.db.transaction() as session:
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.MODEL_CALIBRATED,
                    details={
                        "model": model.key,
                        "dataset": document["dataset"],
                        "genuine_pairs": document["genuine_pairs"],
                        "impostor_pairs": impostors,
                        "descriptor_sha256": document["descriptor_sha256"],
                        "points": [{"fmr": p["fmr"], "distance": p["distance"]} for p in points],
                        "file": str(path),
                    },
                ),
            )
            _write_atomically(path, json.dumps(document, indent=2) + "\n")
        return Calibration(model.key, path, document)

    def reset(self, *, actor: Who, model_key: str) -> Path:
        """Remove the deployment's table of ``model_key`` (the shipped table is used again),
        audited. NotFound when the model has no deployment table."""
        self.guard.check(actor, Action.GALLERY_CREATE)
        model = self.engines.get(model_key).model
        path = calibration_path(self.folder, model.key)
        if not path.exists():
            raise NotFound(f"{model.key} has no deployment calibration: it uses its shipped table")
        with self.db.transaction() as session:
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.MODEL_CALIBRATION_RESET,
                    details={"model": model.key, "file": str(path)},
                ),
            )
            path.unlink()
        return path


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)

"""One score per person: fusing a subject's several templates into one distance.

A subject enrolled from several photos holds several templates. A search must rank people, not
photos, so each candidate subject gets one fused distance from all of its templates (of the
gallery's model) to the probe. The rules, measured with ``probity evaluate --fusion``:

- ``best``: the smallest distance over the subject's templates. It keeps the meaning of the
  model's 1:1 FMR table per comparison, so a search's per-comparison FMR is FPIR divided by
  the number of *templates* compared (a subject with m templates gives a stranger m chances).
- ``mean_best_two``: the mean of the two smallest distances (the single distance when the
  subject has one template). One lucky template cannot carry a stranger alone.
- ``centroid``: the distance from the probe to the mean of the subject's templates, each first
  scaled to unit length when the model's distances are on unit vectors.

The distances are Euclidean on the model's own scale (see ``engine/thresholds.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class FusionRule(StrEnum):
    BEST = "best"
    MEAN_BEST_TWO = "mean_best_two"
    CENTROID = "centroid"


DEFAULT_RULE = FusionRule.BEST
"""The rule searches use. ``best`` is the one whose threshold arithmetic stays exact (one
comparison per template, as the FMR table was measured); see bench/README.md for the figures
of every rule from ``probity evaluate --fusion``."""


@dataclass(frozen=True, slots=True)
class Fused:
    distance: float  # the fused distance, on the model's scale
    best: int  # index (into the templates given) of the template closest to the probe
    count: int  # how many templates were fused


def fuse(
    probe: NDArray[np.float32],
    templates: NDArray[np.float32],
    rule: FusionRule = DEFAULT_RULE,
    *,
    unit: bool = False,
) -> Fused:
    """The fused distance of ``probe`` (d,) to one subject's ``templates`` (m, d), m >= 1.

    ``unit`` says the model's distances are on L2-normalised vectors (``euclidean_unit``): the
    centroid is then the mean of the unit templates, scaled back to unit length."""
    if templates.ndim != 2 or templates.shape[0] == 0:
        raise ValueError("fuse needs at least one template, as an (m, d) array")
    distances = np.linalg.norm(templates - probe[None, :], axis=1)
    best = int(np.argmin(distances))
    count = int(templates.shape[0])
    if rule is FusionRule.BEST or count == 1:
        value = float(distances[best])
    elif rule is FusionRule.MEAN_BEST_TWO:
        value = float(np.mean(np.sort(distances)[:2]))
    else:
        rows = templates.astype(np.float64)
        if unit:
            rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        centre = rows.mean(axis=0)
        if unit:
            centre = centre / max(float(np.linalg.norm(centre)), 1e-12)
        value = float(np.linalg.norm(centre - probe.astype(np.float64)))
    return Fused(distance=value, best=best, count=count)

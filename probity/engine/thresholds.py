"""False-match rate → distance thresholds for each shipped model, and the 1:N operating point.

Distances are Euclidean descriptor distances: on dlib's raw (unnormalised) output, or on unit
vectors for the ONNX recognisers. The shipped ``dlib-resnet-v1`` table is the all-pairs
measurement of the held-out benchmark, cited as "LFW, all pairs, measured 2026-12" (242,257
same-person and 87,307,271 different-person pairs; bare dlib pipeline, HOG/CNN detection,
5-point alignment, 150 px chip, no jitter):

| FMR (1:1) | distance | FNMR (1:1) |
|---|---|---|
| 1e-2 | 0.615 | 1.9 % |
| 1e-3 | 0.542 | 6.8 % |
| 1e-4 | 0.472 | 29.6 % |
| 1e-5 | 0.411 | 65.0 % |
| 1e-6 | 0.356 | 89.2 % |

These are **1:1** rates: the chance that one comparison of two different people comes this
close. A search compares the probe with every template of the gallery, so the nearest stranger
gets closer as the gallery grows (3,715 people: dlib's old "FMR 0.5 %" distance 0.60 left a
candidate "within threshold" for 98.6 % of the probes of absent people). A search therefore
states its operating point as a target FPIR (the chance that a search for someone absent marks
any row) at the gallery's size: :func:`threshold_for_fpir` reads the per-comparison FMR
``FPIR / N`` (N = templates compared) off the table, interpolated in log10(FMR), and says so
when the table does not reach that low. :func:`threshold_for_fmr` stays for 1:1 use (verify,
the objection list) with the same interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass

from probity.domain.search import Threshold
from probity.errors import InvalidInput, UnsupportedOperatingPoint


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    distance: float
    fmr: float
    fnmr: float | None


@dataclass(frozen=True, slots=True)
class FmrTable:
    """A model's measured 1:1 operating points and the scale its distances are on.

    ``distance`` is ``euclidean`` (the vectors as the model gives them: dlib) or
    ``euclidean_unit`` (L2-normalised vectors, 0..2: the ONNX recognisers)."""

    model_name: str
    points: tuple[OperatingPoint, ...]
    source: str
    distance: str = "euclidean"
    origin: str = "shipped"  # "shipped" (the model's own table) or "deployment" (calibrated here)


DLIB_TABLE = FmrTable(
    model_name="dlib-resnet-v1",
    points=(  # LFW, all pairs, measured 2026-12 (the module docstring)
        OperatingPoint(0.615, 1e-2, 0.019),
        OperatingPoint(0.542, 1e-3, 0.068),
        OperatingPoint(0.472, 1e-4, 0.296),
        OperatingPoint(0.411, 1e-5, 0.650),
        OperatingPoint(0.356, 1e-6, 0.892),
    ),
    source="LFW, all pairs, measured 2026-12 (engine/thresholds.py)",
)
TABLES: dict[str, FmrTable] = {DLIB_TABLE.model_name: DLIB_TABLE}
"""The tables compiled in, by model name; ONNX models bring theirs in their model file."""
SOURCE = DLIB_TABLE.source


def supported_fmrs(model: str | FmrTable) -> tuple[float, ...]:
    """The target false-match rates a search may ask for: the model's measured rows, lowest
    first (empty for a model without a table). ``model`` is a table or the name of a
    compiled-in one."""
    table = TABLES.get(model) if isinstance(model, str) else model
    return tuple(sorted(p.fmr for p in table.points)) if table is not None else ()


def require_supported_fmr(model: str | FmrTable, target_fmr: float) -> None:
    """Refuse (422) a ``target_fmr`` that is not one of the model's measured rows. Without
    this, 0.01 would quietly become the 0.005 row below it: the caller would believe they
    searched at 1 % and the report would say 0.5 %. Interpolating between rows would invent
    a measurement we do not have, so the choice is refused with the supported values."""
    supported = supported_fmrs(model)
    model_name = model if isinstance(model, str) else model.model_name
    if not any(abs(target_fmr - f) <= 1e-12 for f in supported):
        listed = ", ".join(f"{f:g}" for f in supported) or "none"
        raise UnsupportedOperatingPoint(
            f"target FMR {target_fmr:g} is not a measured operating point of {model_name}; "
            f"choose one of: {listed}"
        )


def threshold_for_fmr(model: str | FmrTable, target_fmr: float | None) -> Threshold:
    """The largest tabulated distance whose FMR does not exceed ``target_fmr``.

    ``model`` is a table, or the name of a compiled-in one. ``None`` turns the threshold off
    (the full ranked candidate list). A target below the lowest tabulated FMR is refused
    rather than extrapolated.
    """
    if target_fmr is None:
        return Threshold(target_fmr=None, max_distance=None, source="threshold off")
    table = TABLES.get(model) if isinstance(model, str) else model
    if table is None:
        raise InvalidInput(f"no FMR table for model {model}")
    if not 0 < target_fmr < 1:
        raise InvalidInput(f"target FMR must be between 0 and 1, got {target_fmr}")
    eligible = [p for p in table.points if p.fmr <= target_fmr]
    if not eligible:
        lowest = min(p.fmr for p in table.points) if table.points else None
        raise InvalidInput(
            f"no operating point at or below FMR {target_fmr:g} for {table.model_name}"
            + (f"; the lowest measured is {lowest:g}" if lowest is not None else "")
        )
    best = max(eligible, key=lambda p: p.distance)
    return Threshold(target_fmr=best.fmr, max_distance=best.distance, source=table.source)


def distance_to_score(distance: float, scale: str = "euclidean") -> float:
    """The similarity score Probity reports, higher is more similar, rounded to 4 places.

    - ``euclidean`` (dlib): ``max(0, 1 - distance)``; 1.0 is an identical descriptor, 0.4 is
      dlib's published 0.6 operating point.
    - ``euclidean_unit`` (ONNX recognisers, unit vectors): the cosine similarity
      ``1 - distance² / 2`` clipped to 0..1; for SFace the FMR 1e-3 point (distance 1.128)
      is a score of 0.364, FMR 1e-5 (0.977) is 0.523.

    Scores of two models are not on one scale: compare a model's scores only with its own
    table. A score is a similarity, never a probability.
    """
    if scale == "euclidean_unit":
        return round(min(1.0, max(0.0, 1.0 - distance * distance / 2.0)), 4)
    return round(max(0.0, 1.0 - distance), 4)


def fmr_at(table: FmrTable, distance: float) -> float:
    """The 1:1 false-match rate at ``distance`` on ``table``: log10(FMR) interpolated linearly
    in distance between measured points, and extended along the nearest two points beyond
    them (clamped to 1e-12..1). Used to rank candidates of two models on one scale: "how
    often would a stranger's face come this close under this model"."""
    points = sorted(table.points, key=lambda p: p.distance)
    if len(points) < 2:
        raise InvalidInput(f"the FMR table of {table.model_name} has fewer than two points")
    import math

    if distance <= points[0].distance:
        a, b = points[0], points[1]
    elif distance >= points[-1].distance:
        a, b = points[-2], points[-1]
    else:
        b = next(p for p in points if p.distance >= distance)
        a = points[points.index(b) - 1]
    la, lb = math.log10(a.fmr), math.log10(b.fmr)
    span = b.distance - a.distance
    value = la if span <= 0 else la + (lb - la) * (distance - a.distance) / span
    return min(1.0, max(1e-12, 10**value))

"""False-match rate → distance thresholds for each shipped model.

Distances are dlib's Euclidean descriptor distances on the model's raw (unnormalised) output.
The table for ``dlib-resnet-v1`` is the LFW pairs measurement of the bare dlib pipeline
(HOG or CNN detection, 5-point alignment, 150 px chip, no jitter) recorded in DESIGN.md:

| distance | FMR (1:1) | FNMR (1:1) |
|---|---|---|
| 0.55 | 0.03 % | 8.9 % |
| 0.60 | 0.5 % | 3.4 % |
| 0.65 | 2.2 % | 2.0 % |

These are **1:1** rates. In 1:N search the nearest impostor gets closer as the gallery grows
(at 3,700 identities a 1 % false-positive identification rate needs distance < 0.40), so
the candidate list stays ranked and the threshold only marks which candidates clear the
chosen 1:1 operating point. Choose a lower FMR for large galleries.
"""

from __future__ import annotations

from dataclasses import dataclass

from probity.domain.search import Threshold
from probity.errors import InvalidInput, UnsupportedOperatingPoint


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    distance: float
    fmr: float
    fnmr: float


TABLES: dict[str, tuple[OperatingPoint, ...]] = {
    "dlib-resnet-v1": (
        OperatingPoint(0.55, 0.0003, 0.089),
        OperatingPoint(0.60, 0.005, 0.034),
        OperatingPoint(0.65, 0.022, 0.020),
    ),
}
SOURCE = "LFW pairs, bare dlib pipeline (engine/thresholds.py)"


def supported_fmrs(model_name: str) -> tuple[float, ...]:
    """The target false-match rates a search may ask for: the model's measured rows, lowest
    first (empty for a model without a table)."""
    return tuple(sorted(p.fmr for p in TABLES.get(model_name, ())))


def require_supported_fmr(model_name: str, target_fmr: float) -> None:
    """Refuse (422) a ``target_fmr`` that is not one of the model's measured rows. Without
    this, 0.01 would quietly become the 0.005 row below it: the caller would believe they
    searched at 1 % and the report would say 0.5 %. Interpolating between rows would invent
    a measurement we do not have, so the choice is refused with the supported values."""
    supported = supported_fmrs(model_name)
    if not any(abs(target_fmr - f) <= 1e-12 for f in supported):
        listed = ", ".join(f"{f:g}" for f in supported) or "none"
        raise UnsupportedOperatingPoint(
            f"target FMR {target_fmr:g} is not a measured operating point of {model_name}; "
            f"choose one of: {listed}"
        )


def threshold_for_fmr(model_name: str, target_fmr: float | None) -> Threshold:
    """The largest tabulated distance whose FMR does not exceed ``target_fmr``.

    ``None`` turns the threshold off (the full ranked candidate list). A target below the
    lowest tabulated FMR is refused rather than extrapolated.
    """
    if target_fmr is None:
        return Threshold(target_fmr=None, max_distance=None, source="threshold off")
    table = TABLES.get(model_name)
    if table is None:
        raise InvalidInput(f"no FMR table for model {model_name}")
    if not 0 < target_fmr < 1:
        raise InvalidInput(f"target FMR must be between 0 and 1, got {target_fmr}")
    eligible = [p for p in table if p.fmr <= target_fmr]
    if not eligible:
        lowest = min(p.fmr for p in table)
        raise InvalidInput(
            f"no operating point at or below FMR {target_fmr:g} for {model_name}; "
            f"the lowest measured is {lowest:g}"
        )
    best = max(eligible, key=lambda p: p.distance)
    return Threshold(target_fmr=best.fmr, max_distance=best.distance, source=SOURCE)


def distance_to_score(distance: float) -> float:
    """The one similarity scale Probity reports: ``max(0, 1 - distance)``, rounded to 4 places.
    1.0 is an identical descriptor; 0.4 is dlib's published 0.6 operating point."""
    return round(max(0.0, 1.0 - distance), 4)

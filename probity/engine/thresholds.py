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

import itertools
import math
from dataclasses import dataclass

from probity.domain.search import Threshold, ThresholdMode
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


def _table(model: str | FmrTable) -> FmrTable:
    table = TABLES.get(model) if isinstance(model, str) else model
    if table is None:
        raise InvalidInput(f"no FMR table for model {model}")
    return table


def supported_fmrs(model: str | FmrTable) -> tuple[float, ...]:
    """The model's measured false-match rates, lowest first (empty for a model without a
    table). A 1:1 target may be any rate between the first and the last (interpolated)."""
    table = TABLES.get(model) if isinstance(model, str) else model
    return tuple(sorted(p.fmr for p in table.points)) if table is not None else ()


def fmr_range(table: FmrTable) -> tuple[float, float]:
    """The lowest and highest false-match rate the table measured."""
    rates = supported_fmrs(table)
    if not rates:
        raise InvalidInput(f"the FMR table of {table.model_name} is empty")
    return rates[0], rates[-1]


def distance_at_fmr(table: FmrTable, fmr: float) -> float | None:
    """The distance at which one comparison of two different people has false-match rate
    ``fmr``, read off the table: linear in log10(FMR) between the two measured points around
    it (a measured point exactly). None when ``fmr`` lies outside the measured range: below
    the lowest rate no measurement says where the threshold is, and we never extrapolate."""
    points = sorted(table.points, key=lambda p: p.fmr)
    if not points or not 0 < fmr < 1:
        return None
    tolerance = 1e-9
    if fmr < points[0].fmr * (1 - tolerance) or fmr > points[-1].fmr * (1 + tolerance):
        return None
    for low, high in itertools.pairwise(points):
        if low.fmr * (1 - tolerance) <= fmr <= high.fmr * (1 + tolerance):
            la, lb = math.log10(low.fmr), math.log10(high.fmr)
            if lb - la <= 0:
                return low.distance
            share = min(1.0, max(0.0, (math.log10(fmr) - la) / (lb - la)))
            return round(low.distance + share * (high.distance - low.distance), 4)
    return points[0].distance  # a one-point table asked for exactly its point


def require_supported_fmr(model: str | FmrTable, target_fmr: float) -> None:
    """Refuse (422) a 1:1 ``target_fmr`` outside the model's measured range. Inside it the
    threshold is interpolated between measured points; outside it would be invented."""
    table = _table(model)
    if distance_at_fmr(table, target_fmr) is None:
        rates = supported_fmrs(table)
        listed = f"{rates[0]:g} to {rates[-1]:g}" if rates else "none"
        raise UnsupportedOperatingPoint(
            f"target FMR {target_fmr:g} lies outside what {table.model_name}'s table measured "
            f"({listed}); choose a rate in that range"
        )


def threshold_for_fmr(model: str | FmrTable, target_fmr: float | None) -> Threshold:
    """A 1:1 threshold: the distance at ``target_fmr`` (interpolated, see
    :func:`distance_at_fmr`). For verify and the objection list, where one comparison is
    made per person; a search uses :func:`threshold_for_fpir`. ``None`` is investigation mode
    (nothing marked). A rate outside the table is refused (422)."""
    if target_fmr is None:
        return Threshold(target_fmr=None, max_distance=None, source="threshold off")
    table = _table(model)
    if not 0 < target_fmr < 1:
        raise InvalidInput(f"target FMR must be between 0 and 1, got {target_fmr}")
    require_supported_fmr(table, target_fmr)
    return Threshold(
        target_fmr=target_fmr,
        max_distance=distance_at_fmr(table, target_fmr),
        source=table.source,
        mode=ThresholdMode.FMR,
        table_origin=table.origin,
    )


def investigation(table: FmrTable, *, subjects: int, templates: int) -> Threshold:
    """NIST's investigation mode, the default: the ranked list, no row marked."""
    return Threshold(
        target_fmr=None,
        max_distance=None,
        source=table.source,
        mode=ThresholdMode.INVESTIGATION,
        gallery_subjects=subjects,
        gallery_templates=templates,
        table_origin=table.origin,
    )


def threshold_for_fpir(
    table: FmrTable, target_fpir: float, *, subjects: int, templates: int
) -> Threshold:
    """The 1:N threshold for a target FPIR (false positive identification rate: the chance
    that a search for someone who is not in the gallery marks any row) over a gallery of
    ``subjects`` people holding ``templates`` templates.

    Each template is one comparison (a subject's fused score is its best template, see
    ``engine/fusion.py``), and for small FMR the chance that none of N comparisons falls
    within the threshold is about 1 - N x FMR, so the per-comparison FMR is FPIR / N with N
    the template count. Where the table does not reach that low (a large gallery, a strict
    target), the threshold is unreachable: the answer says why and marks no row. Where FPIR / N
    is above the table's highest rate (a tiny gallery), the table's highest measured point is
    used: stricter than asked, never looser."""
    if not 0 < target_fpir < 1:
        raise InvalidInput(f"target FPIR must be between 0 and 1, got {target_fpir}")
    comparisons = max(1, templates)
    wanted = target_fpir / comparisons
    low, high = fmr_range(table)

    def made(fmr: float, distance: float | None, unreachable: str | None = None) -> Threshold:
        return Threshold(
            target_fmr=fmr,
            max_distance=distance,
            source=table.source,
            mode=ThresholdMode.FPIR,
            target_fpir=target_fpir,
            gallery_subjects=subjects,
            gallery_templates=templates,
            table_origin=table.origin,
            unreachable=unreachable,
        )

    if wanted < low * (1 - 1e-9):
        return made(
            wanted,
            None,
            f"FPIR {target_fpir:g} over {comparisons:,} templates needs a false-match rate of "
            f"{wanted:.2g} per comparison; {table.model_name}'s table measured down to {low:g} "
            "only, so no row is marked",
        )
    fmr = min(wanted, high)
    return made(fmr, distance_at_fmr(table, fmr))


def expected_strangers(table: FmrTable, distance: float, comparisons: int) -> float:
    """How many templates of unrelated people a gallery of ``comparisons`` templates is
    expected to hold at least this close to the probe: comparisons x FMR(distance), with the
    1:1 FMR read off the table (:func:`fmr_at`). A row whose figure is 1 or more is what a
    stranger's face is expected to produce by chance in a gallery this size."""
    return comparisons * fmr_at(table, distance)


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

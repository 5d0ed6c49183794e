"""Search results: faces found in a probe and the candidates for each.

A candidate is an investigative lead, never an identification: no field here says
"identified" or "match".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from probity.domain.faces import FaceBox, Quality
from probity.domain.gallery import Provenance
from probity.domain.ids import CaseId, EnrolmentId, GalleryId, SearchId, SubjectId


class ThresholdMode(StrEnum):
    """How a search's candidate rows are marked.

    - ``investigation`` (the default, NIST's investigation mode): the ranked list, no row
      marked; every row is a lead to be checked, and the list says how many of its rows a
      gallery this size is expected to produce by chance.
    - ``fpir``: rows within the distance at which a search for someone absent marks any row
      with the target FPIR, at this gallery's size.
    - ``fmr``: a 1:1 rate, for verify (one probe against one named subject) only.
    """

    INVESTIGATION = "investigation"
    FPIR = "fpir"
    FMR = "fmr"


class FaceOutcome(StrEnum):
    CANDIDATES = "candidates"
    NO_CANDIDATE_ABOVE_THRESHOLD = "no_candidate_above_threshold"
    REFUSED_QUALITY = "refused_quality"  # the probe face is below the probe quality floor


class SearchOutcome(StrEnum):
    CANDIDATES = "candidates"
    NO_CANDIDATE_ABOVE_THRESHOLD = "no_candidate_above_threshold"
    NO_FACE_FOUND = "no_face_found"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One subject on a face's candidate list, with the enrolment that came closest.

    ``distance`` is the model's descriptor distance (0 = same vector): Euclidean on dlib's raw
    descriptors (published operating point 0.6), Euclidean on unit vectors for the ONNX
    recognisers (0..2). ``score`` is the model's similarity scale (``engine/thresholds.py:
    distance_to_score``): ``1 - distance`` for dlib, the cosine similarity for ONNX models.
    Ranking is by distance within one model; a search over galleries of several models ranks
    by each distance's 1:1 false-match rate on its own model's table.
    """

    rank: int
    subject_id: SubjectId
    subject_reference: str
    gallery_id: GalleryId
    gallery_name: str
    enrolment_id: EnrolmentId
    score: float
    distance: float
    provenance: Provenance
    # True/False: the row is/is not within the search's threshold (fpir or fmr mode); None in
    # investigation mode, where no row is marked.
    within_threshold: bool | None = None
    fused: int = 1  # how many of the subject's enrolments were fused into this one score
    # Templates of unrelated people a gallery this size is expected to hold at least this
    # close (gallery templates x the 1:1 FMR at this distance); None without a table.
    expected_strangers: float | None = None


@dataclass(frozen=True, slots=True)
class FaceResult:
    index: int
    box: FaceBox
    quality: Quality
    outcome: FaceOutcome
    candidates: tuple[Candidate, ...] = ()
    refusal_reasons: tuple[str, ...] = ()
    # How many of the list's rows a gallery this size is expected to produce by chance: the
    # sum over rows of min(1, expected_strangers). A list of 50 for someone who is enrolled
    # still holds about 49 strangers; each row is a lead to check, not a finding.
    expected_false_candidates: float | None = None


@dataclass(frozen=True, slots=True)
class Threshold:
    """A search's operating point, and everything a reader needs to judge its rows.

    In ``fpir`` mode ``target_fmr`` is the per-comparison FMR used (about target FPIR / the
    gallery's template count); in ``fmr`` mode (verify) it is the 1:1 rate asked for; in
    investigation mode it is None and ``max_distance`` too. ``unreachable`` says why no row is
    marked although a target was asked (the table does not reach the FMR it needs)."""

    target_fmr: float | None
    max_distance: float | None
    source: str  # where the FMR -> distance mapping comes from
    # A search over galleries of several models: each model's own distance (model key,
    # distance); max_distance is then the first model's.
    by_model: tuple[tuple[str, float | None], ...] = ()
    mode: ThresholdMode = ThresholdMode.INVESTIGATION
    target_fpir: float | None = None
    gallery_subjects: int | None = None  # people in the galleries searched
    gallery_templates: int | None = None  # templates compared (N in FPIR / N)
    unreachable: str | None = None
    table_origin: str = "shipped"  # "shipped" or "deployment" (probity calibrate)

    @property
    def marks(self) -> bool:
        """Whether rows are marked within/outside a threshold at all."""
        return self.max_distance is not None


@dataclass(frozen=True, slots=True)
class SearchResult:
    id: SearchId
    case_id: CaseId
    case_reference: str
    gallery_names: tuple[str, ...]
    probe_sha256: str
    model_key: str
    threshold: Threshold
    top_k: int
    outcome: SearchOutcome
    faces: tuple[FaceResult, ...] = field(default_factory=tuple)
    at: datetime | None = None  # when it ran (set on stored searches read back)
    actor: str | None = None  # who ran it (set on stored searches read back)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """A 1:1 verify: one probe face against one named subject, within a case.

    ``within_threshold`` says whether the subject's fused distance is within the distance of
    the 1:1 false-match rate in ``threshold`` (mode ``fmr``): how often two different people
    come this close. It is a lead for an examiner to check, never an identification."""

    id: str
    case_reference: str
    subject_id: SubjectId
    subject_reference: str
    gallery_name: str
    model_key: str
    probe_sha256: str
    face: int
    box: FaceBox
    quality: Quality
    enrolment_id: EnrolmentId  # the subject's enrolment closest to the probe
    distance: float
    score: float
    fused: int
    threshold: Threshold
    within_threshold: bool
    at: datetime
    actor: str


def threshold_wording(t: Threshold) -> str:
    """One sentence that says what the search's marking means, for pages, reports and the
    CLI (the same words everywhere)."""
    size = (
        f"{t.gallery_subjects:,} people ({t.gallery_templates:,} templates)"
        if t.gallery_subjects is not None and t.gallery_templates is not None
        else "the galleries searched"
    )
    table = f"{t.table_origin} table: {t.source}"
    if t.mode is ThresholdMode.FMR:
        return (
            f"1:1 verify at FMR {t.target_fmr:g}: distance ≤ {t.max_distance} "
            f"is within threshold ({table})"
        )
    if t.mode is ThresholdMode.FPIR and t.unreachable:
        return f"Gallery of {size}; target FPIR {t.target_fpir:g}: {t.unreachable} ({table})"
    if t.mode is ThresholdMode.FPIR:
        return (
            f"Gallery of {size}; target FPIR {t.target_fpir:g} (a search for someone absent "
            f"marks a row {t.target_fpir:.2%} of the time): FMR {t.target_fmr:.2g} per "
            f"comparison, distance ≤ {t.max_distance} is marked ({table})"
        )
    return (
        f"Investigation mode: a ranked list from a gallery of {size}, no row marked; every row "
        f"is a lead to check ({table})"
    )

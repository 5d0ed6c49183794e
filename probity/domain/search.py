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


@dataclass(frozen=True, slots=True)
class FaceResult:
    index: int
    box: FaceBox
    quality: Quality
    outcome: FaceOutcome
    candidates: tuple[Candidate, ...] = ()
    refusal_reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Threshold:
    """The decision threshold of a search, from a target false-match rate."""

    target_fmr: float | None  # None: threshold off, the full ranked list is returned
    max_distance: float | None
    source: str  # where the FMR -> distance mapping comes from
    # A search over galleries of several models: each model's own distance for target_fmr
    # (model key, distance); max_distance is then the first model's.
    by_model: tuple[tuple[str, float | None], ...] = ()


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

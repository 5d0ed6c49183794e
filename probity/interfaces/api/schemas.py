"""Request and response bodies of the REST API (OpenAPI is generated from these).

Search results have exactly the shape of ``probity search --json`` (built by
``interfaces/render/results.py``); the models here only describe it. No field is named like
"identified" or "match": a candidate is an investigative lead, and every search response
carries the notice that says so.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from probity.domain.accounts import OrganisationKind, Role
from probity.domain.case import AuthorisationStatus
from probity.domain.review import ReviewDecision

T = TypeVar("T")


class ProblemError(BaseModel):
    """One refused field of a request (``loc``: where, ``msg``: why)."""

    loc: list[str]
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details. ``code`` is stable; ``detail`` is for people."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[ProblemError] | None = None


class Page(BaseModel, Generic[T]):
    """Every list: ``data`` (this page), ``count`` (all matching), ``limit``, ``offset``."""

    data: list[T]
    count: int
    limit: int
    offset: int


# -- auth and accounts ---------------------------------------------------------------------


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class LoginOut(BaseModel):
    username: str
    organisation: str
    roles: list[str]
    csrf_token: str = Field(description="send as X-CSRF-Token on unsafe requests")
    expires_in_s: int


class Me(BaseModel):
    username: str
    organisation: str
    organisation_kind: OrganisationKind
    roles: list[str]
    training_expires: datetime | None


class OrganisationIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: OrganisationKind


class OrganisationOut(BaseModel):
    id: str
    name: str
    kind: OrganisationKind


class UserIn(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    organisation: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1)
    training_expires: date | None = None
    password: str | None = Field(
        None,
        max_length=1000,
        description=(
            "the first web password (at least 12 characters); without one, issue a reset "
            "code (POST /api/v1/users/{username}/password-reset)"
        ),
    )


class PasswordChangeIn(BaseModel):
    current: str = Field(min_length=1, max_length=1000, description="the password now")
    password: str = Field(min_length=1, max_length=1000, description="the new one (12+)")


class PasswordResetOut(BaseModel):
    username: str
    code: str = Field(description="shown once: hand it to the person; works once")
    expires_at: datetime


class PasswordResetIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    code: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000, description="the new one (12+)")


class UserUpdate(BaseModel):
    """An admin's change to an account: only the fields sent are changed."""

    roles: list[Role] | None = Field(None, min_length=1, description="the complete new set")
    training_expires: date | None = Field(
        None, description="training attestation valid until the end of this day (UTC)"
    )
    active: bool | None = Field(None, description="false deactivates, true reactivates")


class UserOut(BaseModel):
    username: str
    organisation: str
    roles: list[str]
    approved: bool
    training_expires: datetime | None
    active: bool


class ApiKeyIn(BaseModel):
    label: str = Field(min_length=1, max_length=200)


class ApiKeyInfoOut(BaseModel):
    key_id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyOut(BaseModel):
    key_id: str
    key: str = Field(description="shown once; store it now")


# -- galleries and enrolment -----------------------------------------------------------------


class GalleryIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    inclusion_policy: str = Field(min_length=1, max_length=2000)
    retention_days: int = Field(ge=1, le=36500)
    jurisdictions: list[str] = Field(default_factory=list, max_length=50)
    model: str | None = Field(
        default=None,
        max_length=200,
        description="face model, a name or full key (GET /api/v1/models); default: the "
        "deployment's default model",
    )


class MigrationIn(BaseModel):
    model: str = Field(min_length=1, max_length=200, description="the new model: name or key")
    drop_refused: bool = Field(
        default=False,
        description="erase (with receipts) the enrolments the new model refuses, then swap; "
        "without it the swap waits while any face is refused",
    )


class MigrationRefusalOut(BaseModel):
    enrolment_id: str
    subject: str
    reasons: list[str]


class MigrationOut(BaseModel):
    id: str
    gallery: str
    from_model: str
    to_model: str
    status: str = Field(description="running, awaiting_decision or swapped")
    enrolments: int
    embedded: int
    refused: list[MigrationRefusalOut]
    started_at: datetime
    started_by: str
    updated_at: datetime
    finished_at: datetime | None
    erased_receipts: list[str]
    holds: int = Field(
        description="subjects withheld for objections the new model has no template of"
    )
    index_vectors: int
    error: str | None


class GalleryOut(BaseModel):
    id: str
    name: str
    inclusion_policy: str
    retention_days: int
    jurisdictions: list[str]
    model: str
    quality_floor: dict[str, float]
    created_at: datetime
    subjects: int | None = None
    enrolments: int | None = None


class Provenance(BaseModel):
    source: str
    lawful_basis: str
    lawful_basis_reference: str | None
    collected_at: str
    collected_by: str | None
    jurisdiction: str
    retention_until: str


class RefusedFace(BaseModel):
    box: list[int]
    reasons: list[str]


class EnrolmentOut(BaseModel):
    status: str
    subject: str
    reason: str | None
    enrolment_id: str | None
    box: list[int] | None
    quality: dict[str, float | str] | None
    provenance: Provenance | None
    refused_faces: list[RefusedFace]


class HeldEnrolmentOut(BaseModel):
    """One enrolment a subject holds (no image, no template)."""

    enrolment_id: str
    box: list[int]
    quality: dict[str, float | str]
    provenance: Provenance
    created_at: datetime
    created_by: str


class JobRowOut(BaseModel):
    """A manifest row the job reports on (no biometric data)."""

    line: int | None = Field(description="manifest line, header = 1 (None: a single upload)")
    path: str = Field(description="the path as the manifest wrote it")
    subject: str
    reason: str | None = Field(description="why the row was refused; None: it was enrolled")
    refused_faces: list[RefusedFace] = Field(description="faces below the quality floor")


class JobOut(BaseModel):
    """A bulk enrolment job. Poll until ``status`` is done, failed or interrupted, or
    ``interrupted`` is true (the server stopped mid-job: upload the same manifest and images
    again to resume; rows already enrolled are skipped)."""

    id: str
    gallery: str
    manifest: str
    status: str = Field(
        description=(
            "queued, running, done, failed or interrupted (the server stopped mid-job; "
            "upload again to resume)"
        )
    )
    interrupted: bool = Field(
        description="the job's process stopped before it ended: upload again to resume"
    )
    total: int = Field(description="manifest rows")
    done: int = Field(description="rows finished")
    percent: int
    enrolled: int
    skipped: int = Field(description="rows already enrolled (same subject, same image)")
    refused_count: int
    refused: list[JobRowOut] = Field(description="refused rows, with the reason")
    faces_refused: list[JobRowOut] = Field(
        description="enrolled rows in which other faces were below the quality floor"
    )
    error: str | None = Field(description="why a failed job stopped")
    actor: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RemovalIn(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)


class RemovalOut(BaseModel):
    subject_id: str
    reference: str
    gallery: str
    enrolments: int
    templates: int
    index_vectors_removed: int
    receipt: str = Field(description="the erasure receipt number (no biometric data)")


# -- cases ---------------------------------------------------------------------------------


class CaseIn(BaseModel):
    reference: str = Field(min_length=1, max_length=200)
    offence: str = Field(min_length=1, max_length=100)
    justification: str = Field(min_length=10, max_length=5000)
    authorisation: str | None = Field(None, max_length=200, description="id, when granted")
    pending: bool = Field(False, description="searching on a pending authorisation (48 h)")
    authority: str | None = Field(None, max_length=200)


class AuthorisationIn(BaseModel):
    status: AuthorisationStatus = Field(description="granted, rejected or expired")
    authorisation: str | None = Field(None, max_length=200)
    authority: str | None = Field(None, max_length=200)


class AuthorisationOut(BaseModel):
    status: AuthorisationStatus
    reference: str | None
    authority: str | None
    requested_at: datetime


class CaseOut(BaseModel):
    id: str
    reference: str
    offence: str
    justification: str
    authorisation: AuthorisationOut
    opened_at: datetime
    opened_by: str
    searchable: bool
    searchable_reason: str


# -- searches ------------------------------------------------------------------------------


class ThresholdOut(BaseModel):
    mode: str = Field(description="investigation (nothing marked), fpir (1:N) or fmr (1:1 verify)")
    target_fpir: float | None = Field(
        description="the FPIR asked for: the chance a search for someone absent marks any row"
    )
    target_fmr: float | None = Field(
        description="the per-comparison false-match rate used (about FPIR / gallery_templates)"
    )
    max_distance: float | None = Field(description="rows at or below are marked; null: none")
    gallery_subjects: int | None
    gallery_templates: int | None = Field(description="templates compared (N of FPIR / N)")
    unreachable: str | None = Field(description="why no row is marked although asked")
    table: str = Field(description="shipped (the model's) or deployment (probity calibrate)")
    source: str
    max_distance_by_model: dict[str, float | None]
    wording: str


class CandidateOut(BaseModel):
    rank: int
    subject: str
    subject_id: str
    gallery: str
    score: float = Field(
        description=(
            "the model's similarity, higher is more similar: 1 - distance for dlib, the cosine "
            "similarity for ONNX models; a similarity, never a probability"
        )
    )
    distance: float = Field(description="the model's Euclidean descriptor distance (fused)")
    enrolment_id: str = Field(description="the enrolment closest to the probe")
    within_threshold: bool | None = Field(description="null in investigation mode")
    fused: int = Field(description="how many of the subject's enrolments were fused")
    expected_strangers: float | None = Field(
        description="templates of unrelated people a gallery this size holds this close"
    )
    provenance: Provenance


class FaceOut(BaseModel):
    face: int
    box: list[int] = Field(description="left, top, width, height in probe pixels")
    quality: dict[str, float | str]
    outcome: str
    refusal_reasons: list[str]
    candidates: list[CandidateOut]
    expected_false_candidates: float | None = Field(
        None, description="rows a gallery this size is expected to produce by chance"
    )


class SearchOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "an investigative lead"})

    search_id: str
    case: str
    notice: str
    outcome: str
    galleries: list[str]
    model: str
    threshold: ThresholdOut
    top_k: int
    probe_sha256: str
    faces: list[FaceOut]
    at: datetime | None = None
    actor: str | None = None


class VerifyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"description": "a 1:1 lead, not an identification"}
    )

    verify_id: str
    case: str
    notice: str
    gallery: str
    subject: str
    subject_id: str
    model: str
    probe_sha256: str
    face: int
    box: list[int]
    quality: dict[str, float | str]
    enrolment_id: str = Field(description="the subject's enrolment closest to the probe")
    distance: float
    score: float
    fused: int
    within_threshold: bool
    threshold: ThresholdOut
    at: datetime
    actor: str


# -- reviews -------------------------------------------------------------------------------


class ReviewIn(BaseModel):
    decision: ReviewDecision
    note: str = Field("", max_length=4000)


class ReviewOut(BaseModel):
    reviewer: str
    decision: ReviewDecision
    note: str
    at: datetime


class CandidateReviewsOut(BaseModel):
    search_id: str
    face: int
    subject_id: str
    reviews_recorded: int
    hidden: bool = Field(
        description="true while you could still review: others' decisions are withheld"
    )
    reviews: list[ReviewOut]
    own: ReviewOut | None
    lead: bool = Field(description="confirmed by two different reviewers")
    notice: str


class LeadOut(BaseModel):
    search_id: str
    face: int
    subject_id: str
    case: str
    confirmed_by: list[str]
    notice: str


# -- audit ---------------------------------------------------------------------------------


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    organisation: str | None
    action: str
    case: str | None
    galleries: list[str]
    subjects: list[str]
    details: dict[str, object]
    hash: str


class VerificationOut(BaseModel):
    ok: bool
    mode: str = Field("full", description="full, or incremental (from the verified point)")
    from_seq: int = Field(0, description="the events after this one were re-hashed")
    events_checked: int = Field(description="events re-hashed by this verification")
    first_broken_seq: int | None
    reason: str | None
    checkpoints_checked: int
    problems: list[str] = Field(default_factory=list, description="every failure found")
    notes: list[str] = Field(
        default_factory=list, description="not failures: a witness behind, a failing sink"
    )
    witness_entries: int = 0
    witness_seq: int | None = Field(None, description="the newest event a witness entry names")


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


# -- rights requests -----------------------------------------------------------------------


class RightsRequestOut(BaseModel):
    """A rights request as its privacy officer sees it. ``due_at``: the end (23:59:59 UTC)
    of the deadline's day, one calendar month after filing, three once extended."""

    receipt: str = Field(description="RR-<year>-<10 hex>: what the person holds")
    kind: str = Field(description="access, objection or erasure")
    status: str = Field(description="open, extended, closed or refused")
    filed_at: datetime
    filed_by: str = Field(description="'public' for the public privacy page")
    due_at: datetime
    overdue: bool
    days_left: int = Field(description="whole days to the deadline; negative when overdue")
    extension_reason: str | None
    contact: str
    identifiers: dict[str, str]
    details: str
    has_photo: bool = Field(description="a photo is held until the request closes")
    closed_at: datetime | None
    handled_by: str | None
    outcome: str | None
    result: dict[str, object] = Field(description="erasure receipts, exports, the objection")


class ExtensionIn(BaseModel):
    reason: str = Field(min_length=3, max_length=2000, description="told to the person")


class ClosureIn(BaseModel):
    status: Literal["closed", "refused"] = "closed"
    outcome: str = Field(
        min_length=3, max_length=5000, description="what was done, or why it was refused"
    )


class RequestErasureIn(BaseModel):
    gallery: str = Field(min_length=1, max_length=200)
    reference: str = Field(min_length=1, max_length=200, description="the subject's reference")
    reason: str | None = Field(None, max_length=2000)


class ErasureReceiptOut(BaseModel):
    """Proof of one erasure; holds no biometric data."""

    receipt: str
    at: datetime
    gallery: str
    subject_reference: str
    cause: str
    request_id: str | None
    enrolments: int
    templates: int
    blobs: int
    index_vectors_removed: int

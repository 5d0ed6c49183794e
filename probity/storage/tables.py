"""SQLAlchemy 2 table definitions. The schema itself is created by the Alembic migrations in
``storage/migrations``; a test checks the two agree."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from probity.storage.types import JSONText, UTCDateTime

ID = String(32)


class Base(DeclarativeBase):
    pass


class GalleryRow(Base):
    __tablename__ = "galleries"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    inclusion_policy: Mapped[str] = mapped_column(Text)
    retention_days: Mapped[int] = mapped_column(Integer)
    jurisdictions: Mapped[Any] = mapped_column(JSONText)
    quality_floor: Mapped[Any] = mapped_column(JSONText)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(100))
    model_dimension: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)


class SubjectRow(Base):
    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("gallery_id", "reference", name="uq_subject_reference"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    gallery_id: Mapped[str] = mapped_column(ForeignKey("galleries.id"), index=True)
    reference: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SubjectKeyRow(Base):
    """The subject's data key, wrapped (AES-256-GCM) by the master key. Deleting this row is
    crypto-shredding: every image and template of the subject becomes unreadable, backups
    included."""

    __tablename__ = "subject_keys"
    __table_args__ = (
        # (subject_id, wrapped_key): a search's key reads are answered from this index
        # alone, one page a key instead of two (migration 0019 says why).
        Index("ix_subject_keys_covering", "subject_id", "wrapped_key"),
    )

    subject_id: Mapped[str] = mapped_column(ID, primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TemplateRow(Base):
    """An encrypted face descriptor. ``id`` is the label the vector index uses."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    gallery_id: Mapped[str] = mapped_column(ForeignKey("galleries.id"), index=True)
    model_key: Mapped[str] = mapped_column(String(200))
    sealed_vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EnrolmentRow(Base):
    __tablename__ = "enrolments"
    __table_args__ = (UniqueConstraint("subject_id", "image_sha256", name="uq_enrolment_image"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    gallery_id: Mapped[str] = mapped_column(ForeignKey("galleries.id"), index=True)
    # Indexed: a search reads the enrolments behind its index hits by template id
    # (``Enrolments.by_template_ids``); without it that read is a table scan.
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"), index=True)
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    image_blob: Mapped[str] = mapped_column(String(64))
    box: Mapped[Any] = mapped_column(JSONText)
    quality: Mapped[Any] = mapped_column(JSONText)
    source: Mapped[str] = mapped_column(Text)
    lawful_basis: Mapped[str] = mapped_column(String(50))
    lawful_basis_reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    collected_at: Mapped[date] = mapped_column(Date)
    collected_by: Mapped[str | None] = mapped_column(Text, nullable=True)
    jurisdiction: Mapped[str] = mapped_column(String(20))
    retention_until: Mapped[date] = mapped_column(Date, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class CaseRow(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    reference: Mapped[str] = mapped_column(String(200), unique=True)
    offence: Mapped[str] = mapped_column(String(100))
    justification: Mapped[str] = mapped_column(Text)
    auth_status: Mapped[str] = mapped_column(String(20))
    auth_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    auth_authority: Mapped[str | None] = mapped_column(String(200), nullable=True)
    auth_requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    # The case's data key for its probe images, wrapped by the master key (keyring.py).
    wrapped_probe_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class SearchRow(Base):
    __tablename__ = "searches"
    # The rate limits count one person's / one organisation's searches since a moment
    # (``StoredSearches.count_since``) on every search: (who, at) answers that from the index.
    __table_args__ = (
        Index("ix_searches_user_at", "user_id", "at"),
        Index("ix_searches_organisation_at", "organisation_id", "at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    probe_sha256: Mapped[str] = mapped_column(String(64))
    galleries: Mapped[Any] = mapped_column(JSONText)
    model_key: Mapped[str] = mapped_column(String(200))
    threshold: Mapped[Any] = mapped_column(JSONText)
    top_k: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(40))
    faces: Mapped[Any] = mapped_column(JSONText)  # per face: box, quality, outcome
    # Who searched, for rate limits and reports (None for the local operator).
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    organisation_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)


class SearchCandidateRow(Base):
    __tablename__ = "search_candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[str] = mapped_column(ForeignKey("searches.id"), index=True)
    face_index: Mapped[int] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(Integer)
    subject_id: Mapped[str] = mapped_column(ID, index=True)
    gallery_id: Mapped[str] = mapped_column(ID)
    enrolment_id: Mapped[str] = mapped_column(ID)
    score: Mapped[float] = mapped_column(Float)
    distance: Mapped[float] = mapped_column(Float)
    within_threshold: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    fused: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    expected_strangers: Mapped[float | None] = mapped_column(Float, nullable=True)


class AuditEventRow(Base):
    """Append-only. ``at`` is kept as the exact ISO text that was hashed."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str | None] = mapped_column(String(200), nullable=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    case_reference: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    galleries: Mapped[Any] = mapped_column(JSONText)
    subject_ids: Mapped[Any] = mapped_column(JSONText)
    details: Mapped[Any] = mapped_column(JSONText)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """One row: the last sequence number and hash. Appenders lock it (SELECT ... FOR UPDATE on
    PostgreSQL; SQLite's write lock) so concurrent writers cannot fork the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpointRow(Base):
    """A signed statement "event ``seq`` has hash ``hash``" (see keyring.CheckpointSigner)."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(40))
    public_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class AuditVerifiedRow(Base):
    """One row (id 1): where the last successful verification ended (``seq``, ``hash``, when,
    by whom, the witness read so far), and the outcome of the most recent one, passed or
    failed (``last_*``). An incremental verify starts at ``seq``; a failure never moves it."""

    __tablename__ = "audit_verified"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    verified_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    witness_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    witness_read: Mapped[Any] = mapped_column(JSONText)  # {path: [bytes, lines]}
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_by: Mapped[str] = mapped_column(String(200))
    last_ok: Mapped[bool] = mapped_column(Boolean)
    last_mode: Mapped[str] = mapped_column(String(20))
    last_from_seq: Mapped[int] = mapped_column(Integer)
    last_events_checked: Mapped[int] = mapped_column(Integer)
    last_first_broken_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class OrganisationRow(Base):
    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    roles: Mapped[Any] = mapped_column(JSONText)
    approved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    training_expires: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    # An admin's one-time reset code (sha256) and when it stops working; both cleared on use.
    password_reset_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    password_reset_expires: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiKeyRow(Base):
    """An API key: only its public id and an argon2 hash of the secret are stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ProbeRow(Base):
    """A probe image, encrypted with its case's data key; deleted with the case's results."""

    __tablename__ = "probes"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    search_id: Mapped[str] = mapped_column(ForeignKey("searches.id"), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    blob_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReviewRow(Base):
    """One person's decision on one candidate. A person reviews a candidate at most once."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint(
            "search_id", "face_index", "subject_id", "reviewer_id", name="uq_review_once"
        ),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    search_id: Mapped[str] = mapped_column(ForeignKey("searches.id"), index=True)
    face_index: Mapped[int] = mapped_column(Integer)
    subject_id: Mapped[str] = mapped_column(ID)
    reviewer_id: Mapped[str] = mapped_column(ID, index=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class SpentFormTokenRow(Base):
    """A public form token (services/rights.py ``FormTokens``) that has been used: a token
    works once. Kept until the token would have expired anyway, then deleted."""

    __tablename__ = "spent_form_tokens"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SessionRow(Base):
    """A web login. Only the sha256 of the session token is stored, so a database reader
    cannot take over a session; the CSRF token is compared on every unsafe request."""

    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class EnrolmentJobRow(Base):
    """A bulk enrolment (or a refused single upload, for the list of refused images). Polled
    by the pages and the API from any process while the job thread updates it. ``reports``
    holds no biometric data: manifest paths, subject references, reasons and face boxes."""

    __tablename__ = "enrolment_jobs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    gallery_id: Mapped[str] = mapped_column(ForeignKey("galleries.id"), index=True)
    organisation_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    manifest: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    enrolled: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    refused_count: Mapped[int] = mapped_column(Integer)
    # [{line, path, subject, reason, refused_faces: [{box, reasons}]}], in manifest order.
    reports: Mapped[Any] = mapped_column(JSONText)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


# -- data-subject rights (issue 5) ---------------------------------------------------------------


class RightsRequestRow(Base):
    """An access, objection or erasure request. ``contact`` (how to answer) and
    ``identifiers`` (non-biometric: reference numbers, the gallery a person believes holds
    them) are all a requester is asked for. A photo, where one is needed to find the person,
    is sealed under the request's own key (``photo_key``, wrapped by the master key) and both
    are deleted when the request closes."""

    __tablename__ = "rights_requests"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    receipt: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    organisation_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    filed_by: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    extension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    contact: Mapped[str] = mapped_column(Text)
    identifiers: Mapped[Any] = mapped_column(JSONText)
    details: Mapped[str] = mapped_column(Text)
    photo_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)
    photo_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    handled_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[Any] = mapped_column(JSONText, nullable=True)


class ErasureReceiptRow(Base):
    """Proof that a subject was erased, kept after everything else about them is gone. Holds
    no biometric data: the reference the gallery knew them by, counts, and why."""

    __tablename__ = "erasure_receipts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the receipt number
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str | None] = mapped_column(String(200), nullable=True)
    gallery: Mapped[str] = mapped_column(String(200))
    subject_id: Mapped[str] = mapped_column(ID, index=True)
    subject_reference: Mapped[str] = mapped_column(String(200))
    cause: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    enrolments: Mapped[int] = mapped_column(Integer)
    templates: Mapped[int] = mapped_column(Integer)
    blobs: Mapped[int] = mapped_column(Integer)
    index_vectors: Mapped[int] = mapped_column(Integer)
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    # What the index erasure guarantees on the home's backend (0018; older receipts: NULL).
    index_statement: Mapped[str | None] = mapped_column(Text, nullable=True)


class SuppressionRow(Base):
    """One objection's face template (the suppression list). Sealed under its own key, for
    this purpose only: it is compared with gallery templates at enrolment and with
    candidates at search, and never searched for itself."""

    __tablename__ = "suppression_templates"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # The objection this template belongs to: one objection has a template per model, all
    # sharing the objection's id (the id of its first template). None on rows written
    # before models were many: their own id is the objection's.
    objection_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    reference: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    organisation_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    model_key: Mapped[str] = mapped_column(String(200))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class SuppressionVersionRow(Base):
    """One row (id 1): the version of the suppression list. Every transaction that inserts or
    deletes a ``suppression_templates`` row bumps it (``version`` + 1 and a fresh random
    ``token``), so a process that keeps the decrypted list in memory can tell, with one
    primary-key read, whether it is still the list in the database
    (services/suppression.py, ``SuppressionService._load``). The token makes a repeated
    counter (a home restored from an older backup, then written to) read as a change."""

    __tablename__ = "suppression_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    token: Mapped[str] = mapped_column(ID)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class KeyringStateRow(Base):
    """One row (id 1): the epoch of the current key-encryption key (storage/keyring.py).
    Writers that wrap a new data key read it under a shared lock, a rotation under an
    exclusive one, so no key is ever wrapped under a KEK that is being retired."""

    __tablename__ = "keyring_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class KekBucketRow(Base):
    """One bucket of the key-encryption-key tree (storage/vault.py, migration 0016): its KEK
    of ``generation``, sealed under the root KEK of ``epoch`` (``keys/kek-<epoch>.key``).
    Data keys of format 3 name their bucket and generation; an erasure gives the erased
    owners' buckets a new generation and re-seals every bucket under the next root."""

    __tablename__ = "kek_buckets"

    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    sealed_kek: Mapped[bytes] = mapped_column(LargeBinary)


class KekStaleBucketRow(Base):
    """A bucket one of whose data keys was dropped outside an erasure (a rights request's
    photo key when the request closes): the next rotation gives it a fresh KEK as if an
    owner in it had been erased, then deletes the row (storage/vault.py ``forget_key``)."""

    __tablename__ = "kek_stale_buckets"

    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


def bucket_of_wrapped(column: Any) -> Any:
    """``substr(column, 1, 3)``: a format-3 wrapped key's format byte and bucket. The same
    expression, literals included, in the index and in the queries (storage/vault.py), so
    both SQLite and PostgreSQL use the index for one bucket's rows."""
    return func.substr(column, literal_column("1"), literal_column("3"))


WRAPPED_KEY_BUCKET_INDEXES = (
    Index("ix_subject_keys_kek_bucket", bucket_of_wrapped(SubjectKeyRow.wrapped_key)),
    Index("ix_cases_kek_bucket", bucket_of_wrapped(CaseRow.wrapped_probe_key)),
    Index("ix_rights_requests_kek_bucket", bucket_of_wrapped(RightsRequestRow.photo_key)),
    Index("ix_suppression_templates_kek_bucket", bucket_of_wrapped(SuppressionRow.wrapped_key)),
)
"""Expression indexes on the first three bytes of every wrapped-key column (bucket lookup
for a bounded rotation; legacy formats 1 and 2 sort below ``b"\\x03"``)."""


class JurisdictionRuleRow(Base):
    """An exclusion rule as data: records collected in ``code`` (or a subdivision of it:
    "GB" covers "GB-SCT") are refused at enrolment, never returned by search, and purged.

    ``scope`` is the organisation whose galleries the rule binds, or ``"*"`` for every
    gallery of the deployment (a string, not NULL, so that it can be part of the key)."""

    __tablename__ = "jurisdiction_rules"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


# -- model migrations (issue 10) -----------------------------------------------------------------


class ModelMigrationRow(Base):
    """A gallery's move from one face model to another (services/migration.py). At most one
    per gallery is unfinished (``status`` running or awaiting a decision on refused faces);
    rerunning the migration continues it."""

    __tablename__ = "model_migrations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    gallery_id: Mapped[str] = mapped_column(ForeignKey("galleries.id"), index=True)
    from_model_key: Mapped[str] = mapped_column(String(200))
    to_model_name: Mapped[str] = mapped_column(String(100))
    to_model_version: Mapped[str] = mapped_column(String(100))
    to_model_dimension: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # At the swap: {"refused": [{enrolment_id, subject, reasons}], "erased_receipts": [...]}
    # (the refused enrolments' items went with their erasure). No biometric data.
    outcome: Mapped[Any] = mapped_column(JSONText, nullable=True)


class ModelMigrationItemRow(Base):
    """One enrolment re-embedded by a migration: the new template (``template_id``, a row of
    the new model in ``templates``) or why the new model refused the face (``reasons``, no
    biometric data). The primary key is what makes a resumed migration never embed an
    enrolment twice."""

    __tablename__ = "model_migration_items"

    migration_id: Mapped[str] = mapped_column(ForeignKey("model_migrations.id"), primary_key=True)
    enrolment_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    subject_id: Mapped[str] = mapped_column(ID, index=True)
    template_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    box: Mapped[Any] = mapped_column(JSONText, nullable=True)
    quality: Mapped[Any] = mapped_column(JSONText, nullable=True)
    reasons: Mapped[Any] = mapped_column(JSONText, nullable=True)  # refused: [reason, ...]


class SuppressionHoldRow(Base):
    """A gallery subject withheld from search because an objection matched them on a model
    the objection has a template of, recorded when their gallery moved to a model the
    objection has none of (services/suppression.py, "Legacy objections"). Deleted with the
    subject."""

    __tablename__ = "suppression_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(ID, index=True)
    objection_id: Mapped[str] = mapped_column(ID, index=True)
    model_key: Mapped[str] = mapped_column(String(200))  # the model the match was made on
    distance: Mapped[float] = mapped_column(Float)
    migration_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotencyKeyRow(Base):
    """One ``Idempotency-Key`` a person used for a search or an enrolment. Holds ids and a
    digest of the request, never the request: ``resource_id`` is NULL while the first attempt
    runs, then the id of what it made (a search or an enrolment)."""

    __tablename__ = "idempotency_keys"

    actor: Mapped[str] = mapped_column(String(240), primary_key=True)
    operation: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class TemplateLogHeadRow(Base):
    """One row (id 1): the seq of the newest ``template_changes`` row. The database
    triggers of migration 0014 bump it for every template inserted or deleted; a reader that
    sees head H can rely on every change with seq <= H being visible (writers serialise on
    this row until they commit)."""

    __tablename__ = "template_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class TemplateChangeRow(Base):
    """One change to the set of templates: ``op`` "add" (a template row was inserted) or
    "remove" (it was deleted), written by a database trigger in the same transaction. Each
    vector index records the last ``seq`` it applied and catches up from here
    (services/indexes.py). Never written by application code. No biometric data: ids only."""

    __tablename__ = "template_changes"
    # A catch-up reads one slot's changes after its applied seq.
    __table_args__ = (Index("ix_template_changes_slot", "gallery_id", "model_key", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    gallery_id: Mapped[str] = mapped_column(ID)
    model_key: Mapped[str] = mapped_column(String(200))
    template_id: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(6))


class GalleryCountRow(Base):
    """How many subjects and enrolments a gallery holds, kept by database triggers on
    ``subjects`` and ``enrolments`` in the same transaction as each insert or delete
    (migration 0017): a search's and a gallery page's counts in one primary-key read instead
    of a COUNT that grows with the gallery. Never written by application code."""

    __tablename__ = "gallery_counts"

    gallery_id: Mapped[str] = mapped_column(ID, primary_key=True)
    subjects: Mapped[int] = mapped_column(BigInteger)
    enrolments: Mapped[int] = mapped_column(BigInteger)


class TemplateCountRow(Base):
    """How many templates a gallery holds of one model, kept by database triggers on
    ``templates`` (migration 0017): what ``index status`` compares each index with, read in
    one primary-key read. Never written by application code."""

    __tablename__ = "template_counts"

    gallery_id: Mapped[str] = mapped_column(ID, primary_key=True)
    model_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    templates: Mapped[int] = mapped_column(BigInteger)


class ErasureWorkRow(Base):
    """What a committed erasure must still do outside the database, written in the erasure's
    own transaction and deleted once done (services/erasure_work.py): ``blobs`` (JSON list of
    blob ids to delete), ``galleries`` (JSON list of gallery ids whose index files must catch
    up and be resealed), ``kek_floor`` (destroy every key-encryption key file below this
    epoch; None when the erasure did not rotate). Every step is idempotent, so a crash at any
    point is finished by the next start, the sweeper or ``probity doctor``."""

    __tablename__ = "erasure_work"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    blobs: Mapped[str] = mapped_column(Text)
    galleries: Mapped[str] = mapped_column(Text)
    kek_floor: Mapped[int | None] = mapped_column(Integer, nullable=True)

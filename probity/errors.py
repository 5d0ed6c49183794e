"""One exception tree for Probity. Each error has a stable ``code`` and an HTTP ``status``.

Services and lower layers raise these; only interfaces translate them (the CLI prints
``error[<code>]: <message>`` and exits with ``exit_code``; the API will answer problem+json).

    ProbityError (500)
    ├── InvalidInput (400)
    │   ├── MissingProvenance (422)        a provenance field or the lawful basis is missing
    │   ├── InvalidImage (400)             not an image, truncated, corrupt, unsupported
    │   ├── ImageTooLarge (413)            over max_upload_bytes or max_image_pixels
    │   ├── NoFaceFound (422)              the image holds no detectable face
    │   ├── QualityRefused (422)           every face is below the quality floor
    │   ├── JurisdictionExcluded (422)     collected in a jurisdiction a rule excludes
    │   ├── ManifestError (400)            a manifest file is unreadable or lacks columns
    │   ├── UnsupportedOperatingPoint (422) a target FMR the model's table does not hold
    │   ├── IdempotencyKeyReused (422)     the same Idempotency-Key with a different request
    │   └── TooManyFiles (413)             a bulk upload over the image or row count limit
    ├── NotFound (404)
    │   ├── GalleryNotFound, SubjectNotFound, EnrolmentNotFound, CaseNotFound, SearchNotFound,
    │   └── CandidateNotFound, JobNotFound, RequestNotFound
    ├── Conflict (409)
    │   ├── AlreadyExists                  a gallery/case reference in use
    │   ├── AlreadyEnrolled                the same image is already enrolled for the subject
    │   ├── ObjectionOnFile                the face matches the suppression list (an objection)
    │   ├── AlreadyReviewed                this person already reviewed this candidate
    │   └── IdempotencyInProgress          the first request with this key is still running
    ├── Unauthenticated (401)              no credentials, or a bad key, password or session
    ├── NotPermitted (403)
    │   ├── CaseNotSearchable              authorisation pending > 48 h, rejected or expired
    │   ├── CsrfFailed                     a session request without its CSRF token
    │   └── NoOpenCase                     a search without a case
    ├── RateLimited (429)                  too many searches or login attempts; retry later
    ├── NotInitialised (409)               the home folder has no database or master key
    └── IntegrityError (500)               stored data fails its check (decryption, model)
"""

from __future__ import annotations


class ProbityError(Exception):
    code = "internal_error"
    status = 500
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ProbityError):
    code = "invalid_input"
    status = 400
    exit_code = 2


class MissingProvenance(InvalidInput):
    code = "missing_provenance"
    status = 422

    def __init__(self, field: str, message: str | None = None) -> None:
        super().__init__(message or f"provenance field '{field}' is required")
        self.field = field


class InvalidImage(InvalidInput):
    code = "invalid_image"


class ImageTooLarge(InvalidImage):
    code = "image_too_large"
    status = 413


class NoFaceFound(InvalidInput):
    code = "no_face_found"
    status = 422


class QualityRefused(InvalidInput):
    code = "quality_refused"
    status = 422


class JurisdictionExcluded(InvalidInput):
    """An enrolment refused because a jurisdiction rule excludes where the record was
    collected (``probity jurisdiction exclude``). 422: the request is well formed, but this
    record may not be held here while the rule stands."""

    code = "jurisdiction_excluded"
    status = 422


class ManifestError(InvalidInput):
    code = "invalid_manifest"


class TooManyFiles(InvalidInput):
    code = "too_many_files"
    status = 413


class UnsupportedOperatingPoint(InvalidInput):
    """A target false-match rate that is not a row of the model's measured table. Refused
    rather than rounded to a neighbour, so the threshold a search reports is the one asked."""

    code = "unsupported_operating_point"
    status = 422


class IdempotencyKeyReused(InvalidInput):
    """An ``Idempotency-Key`` already used by this person for a different request."""

    code = "idempotency_key_reused"
    status = 422


class NotFound(ProbityError):
    code = "not_found"
    status = 404
    exit_code = 3


class GalleryNotFound(NotFound):
    code = "gallery_not_found"


class SubjectNotFound(NotFound):
    code = "subject_not_found"


class EnrolmentNotFound(NotFound):
    code = "enrolment_not_found"


class CaseNotFound(NotFound):
    code = "case_not_found"


class SearchNotFound(NotFound):
    code = "search_not_found"


class CandidateNotFound(NotFound):
    code = "candidate_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class MigrationNotFound(NotFound):
    code = "migration_not_found"


class RequestNotFound(NotFound):
    """No rights request with that receipt number (or one of another organisation's)."""

    code = "rights_request_not_found"


class Conflict(ProbityError):
    code = "conflict"
    status = 409
    exit_code = 4


class AlreadyExists(Conflict):
    code = "already_exists"


class AlreadyEnrolled(Conflict):
    code = "already_enrolled"


class AlreadyReviewed(Conflict):
    code = "already_reviewed"


class IdempotencyInProgress(Conflict):
    """A repeat of a request whose first attempt (same key) has not finished yet."""

    code = "idempotency_in_progress"


class ObjectionOnFile(Conflict):
    """An enrolment refused because its face matches the suppression list (someone who
    objected). 409, not 422: the image itself is valid and well formed; it conflicts with
    what is on file, and sending it again gets the same answer until that record changes."""

    code = "objection_on_file"


class NotPermitted(ProbityError):
    code = "not_permitted"
    status = 403
    exit_code = 5


class Unauthenticated(ProbityError):
    code = "unauthenticated"
    status = 401
    exit_code = 5


class CsrfFailed(NotPermitted):
    code = "csrf_failed"


class RateLimited(ProbityError):
    code = "rate_limited"
    status = 429
    exit_code = 10

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CaseNotSearchable(NotPermitted):
    code = "case_not_searchable"


class NoOpenCase(NotPermitted):
    code = "no_open_case"


class NotInitialised(ProbityError):
    code = "not_initialised"
    status = 409
    exit_code = 6


class IntegrityError(ProbityError):
    code = "integrity_error"
    status = 500
    exit_code = 7

"""Rights requests (access, objection, erasure): filing, the deadline clock, the privacy
officer's actions, and the access export.

Who does what:

- **Anyone** files a request on the public privacy page (no account, actor ``"public"``) and
  looks up its status by receipt number; the lookup shows the status and dates only.
- A **privacy officer** (``rights.handle``) files a request received another way (letter,
  e-mail), lists and reads the requests of their organisation and those filed on the public
  page (which belong to the deployment: organisation None), extends a deadline once, erases
  the subject(s) an erasure request names, makes the access export, applies an objection,
  and closes or refuses the request. The local operator (CLI) may do all of this.

A photo is processed for the request only: sealed under its own data key (purpose
``rights-photo``, owner the request id, wrapped key in ``rights_requests.photo_key``) into
the blob store. When the request closes (or is refused) the key and the blob are destroyed
in the closing transaction, and ``rights.photo_deleted`` is recorded with it.

Public filing is rate-limited, modestly, because it needs no account: at most
PUBLIC_PER_ADDRESS_PER_HOUR (5) well-formed filings an hour from one network address
(counted in each API process's memory, keyed by a hash of the address, never stored; with N
processes behind a balancer an address may get up to N x 5) and PUBLIC_PER_HOUR (200)
filings an hour across the whole deployment (counted in the database, so it holds across
processes; a flood can make genuine people wait, which is why the page offers writing to
the privacy officer as well). A person refused is told to try again later. Status lookups
are limited per address the same way (60 an hour), and are not audited: they reveal no
personal data, and auditing anonymous reads would let anyone grow the append-only log
without bound.

Finding a person by their photo (``lookup_by_photo``): where an access or erasure request
came with a photo because the person has no reference, the officer may compare that photo,
decrypted for that call only, with every gallery template they may handle, by the exact scan
an objection makes (``SuppressionService.find_matches``), at the suppression distance
(``PROBITY_SUPPRESSION__TARGET_FMR``, default 0.005 → distance 0.60: one comparison falsely
matches a stranger 0.5 % of the time on LFW pairs, so a gallery of N templates yields about
N × 0.005 unrelated records, 50 per 10,000). The list is shown to the officer, never stored
and never acted on by itself: the officer checks each possible match and then uses the
ordinary export or erasure on the record they choose. Each lookup is audited
(``rights.photo_lookup``: counts, subject ids and distances).

Closed requests do not keep contact details for ever (``forget_closed``, run by the
retention sweeper): ``PROBITY_RIGHTS__KEEP_CLOSED_DAYS`` (default 365) after a request is
closed or refused, its ``contact``, ``identifiers`` and ``details`` are blanked. The receipt,
kind, dates, status, outcome and what was done stay: the annual report and the audit trail
need them, and none of them says how to reach the person.

Everything else is audited: ``rights.file``, ``rights.extend``, ``rights.close`` (closed or
refused, with the handling time the annual report counts), ``rights.photo_read``,
``rights.photo_deleted``, ``rights.photo_lookup``, ``rights.export`` and ``rights.forget``;
erasures and objections are recorded by the erasure and suppression services with the
request's id. No audit event holds the person's contact details, identifier values or any
biometric data.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import io
import json
import secrets
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from probity.domain.accounts import Action, Resource
from probity.domain.audit import AuditAction, AuditEvent, AuditRecord
from probity.domain.ids import new_id
from probity.domain.rights import (
    MAX_CONTACT,
    MAX_DETAILS,
    MIN_REASON,
    PUBLIC_FILER,
    RECEIPT_PREFIX,
    PublicStatus,
    RequestKind,
    RequestStatus,
    RightsRequest,
    clean_identifiers,
    due_at,
    extension_problem,
    handling_days,
    photo_problem,
)
from probity.engine.images import decode_image
from probity.engine.types import Vector
from probity.errors import (
    Conflict,
    CsrfFailed,
    InvalidInput,
    ProbityError,
    RateLimited,
    RequestNotFound,
    SubjectNotFound,
)
from probity.services.access import AccessGuard, Who, name_of, organisation_id_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.erasure import (
    ErasureCause,
    ErasureReceipt,
    ErasureService,
    new_receipt_number,
)
from probity.services.galleries import GalleryService
from probity.services.suppression import GalleryScan, PhotoFace
from probity.storage.db import Database
from probity.storage.keyring import Keyring
from probity.storage.repositories import AuditLog, Enrolments, Subjects
from probity.storage.rights import RightsRequests
from probity.storage.tables import SpentFormTokenRow
from probity.storage.vault import RIGHTS_PHOTO, Vault

PHOTO_PURPOSE = RIGHTS_PHOTO
"""The purpose a request's photo key is wrapped for (see ``Vault.new_purpose_key``; the
key-wrapping rotation re-wraps ``rights_requests.photo_key`` under it)."""

PUBLIC_PER_ADDRESS_PER_HOUR = 5
PUBLIC_PER_HOUR = 200
LOOKUPS_PER_ADDRESS_PER_HOUR = 60
FORM_TOKEN_LIFETIME = timedelta(hours=2)
"""How long the public form's token stays valid: long enough to write a request, short
enough that a token copied from the page cannot be replayed for days."""

KEEP_CLOSED_DAYS = 365
"""Days a closed or refused request keeps the person's contact details, identifiers and
details (``forget_closed``); see ``config.RightsSettings.keep_closed_days``."""

LOOKUP_NOTICE = (
    "Records for checking, not an identification: each record within the "
    "suppression distance of the request's photo, closest first. Strangers fall within it "
    "too (at the false-match rate shown, per record compared): compare the photos yourself "
    "before exporting or erasing anything."
)

EXPORT_NOTICE = (
    "A copy of the data this Probity deployment holds about you in one gallery, and every "
    "search in which you were returned as a candidate. A candidate is an investigative lead "
    "for a person to check, never an identification."
)

# -- seams -----------------------------------------------------------------------------------


class ObjectionOutcome(Protocol):
    """What the suppression service returns for one objection."""

    @property
    def suppression_id(self) -> str: ...

    @property
    def receipts(self) -> Sequence[ErasureReceipt]: ...

    def as_dict(self) -> dict[str, object]: ...


class Objections(Protocol):
    """The suppression service as rights requests use it (services/suppression.py)."""

    def object(
        self, *, actor: Who, image: bytes, reference: str, request_id: str | None
    ) -> ObjectionOutcome: ...

    @property
    def max_distance(self) -> float: ...

    @property
    def target_fmr(self) -> float: ...

    def face_of(self, image: bytes, *, what: str = ...) -> PhotoFace: ...

    def find_matches(self, *, actor: Who, descriptors: Mapping[str, Vector]) -> GalleryScan: ...


PdfRenderer = Callable[[Mapping[str, Any]], bytes]
"""Renders the export's ``subject.json`` content as a PDF (interfaces/render): the service
takes the bytes from it, so services do not import interfaces."""


# -- the public form's token and rate limits -----------------------------------------------


def derive_form_secret(master_key: bytes) -> bytes:
    """The key that signs public-form tokens: derived from the master key (HKDF-SHA256, its
    own label), so every API process signs and checks alike and nothing new is stored."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"probity/rights-form/v1"
    ).derive(master_key)


class FormTokens:
    """Short-lived signed tokens for the public filing form, which has no session and so no
    CSRF token: ``<issued unix time>.<nonce>.<HMAC-SHA256>``. A page from another site cannot
    read one (same-origin policy), so it cannot post the form on a visitor's behalf; a token
    expires after FORM_TOKEN_LIFETIME, so one taken from the page cannot be replayed later."""

    def __init__(self, secret: bytes, clock: Clock) -> None:
        self._secret = secret
        self._clock = clock

    def _mac(self, issued: str, nonce: str) -> str:
        message = f"probity/rights-form|{issued}|{nonce}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def issue(self) -> str:
        issued = str(int(self._clock().timestamp()))
        nonce = secrets.token_hex(8)
        return f"{issued}.{nonce}.{self._mac(issued, nonce)}"

    def check(self, token: str) -> datetime:
        """Raise CsrfFailed unless ``token`` was issued here within its lifetime; returns
        when it expires (the caller spends it: see ``RightsService.check_form_token``)."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            raise CsrfFailed("the form is out of date or incomplete; reload the page and retry")
        issued, nonce, mac = parts
        if not hmac.compare_digest(mac.encode(), self._mac(issued, nonce).encode()):
            raise CsrfFailed("the form is out of date or incomplete; reload the page and retry")
        age = self._clock().timestamp() - int(issued)
        if not -60 <= age <= FORM_TOKEN_LIFETIME.total_seconds():
            raise CsrfFailed("the form has expired (after 2 hours); reload the page and retry")
        return datetime.fromtimestamp(int(issued), tz=UTC) + FORM_TOKEN_LIFETIME


class AddressWindow:
    """At most ``limit`` events an hour per network address, in this process's memory. The
    address is kept only as a hash, only while it has events in the window."""

    def __init__(self, limit: int, window_s: float = 3600.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, address: str, now: float | None = None) -> int | None:
        """Count one event; None when allowed, else seconds until the next is allowed."""
        moment = time.monotonic() if now is None else now
        key = hashlib.sha256(address.encode()).hexdigest()
        with self._lock:
            if len(self._hits) > 10_000:  # forget addresses whose window has emptied
                for k in [k for k, v in self._hits.items() if v[-1] <= moment - self.window_s]:
                    del self._hits[k]
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= moment - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, int(hits[0] + self.window_s - moment) + 1)
            hits.append(moment)
            return None


# -- the service -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhotoMatch:
    """One possible match of a request's photo: a gallery record for the officer to check
    (never an identification). ``rank`` 1 is the closest; ``distance`` is dlib Euclidean,
    at or under the suppression distance."""

    gallery: str
    subject_reference: str
    subject_id: str
    distance: float
    rank: int

    def as_dict(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "gallery": self.gallery,
            "subject_reference": self.subject_reference,
            "subject_id": self.subject_id,
            "distance": self.distance,
        }


@dataclass(frozen=True, slots=True)
class AccessExport:
    """An access export: the zip's bytes and the facts recorded about it."""

    data: bytes
    sha256: str
    subject_id: str
    enrolments: int
    searches: int


class RightsService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        guard: AccessGuard,
        galleries: GalleryService,
        vault: Vault,
        erasure: ErasureService,
        form_secret: bytes,
        max_upload_bytes: int,
        max_image_pixels: int,
        suppression: Objections | None = None,
        public_per_address_per_hour: int = PUBLIC_PER_ADDRESS_PER_HOUR,
        public_per_hour: int = PUBLIC_PER_HOUR,
        keep_closed_days: int = KEEP_CLOSED_DAYS,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.guard = guard
        self.galleries = galleries
        self.vault = vault
        self.erasure = erasure
        self.suppression = suppression
        self.forms = FormTokens(form_secret, clock)
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels
        self.public_per_hour = public_per_hour
        self.keep_closed_days = keep_closed_days
        self._filings = AddressWindow(public_per_address_per_hour)
        self._lookups = AddressWindow(LOOKUPS_PER_ADDRESS_PER_HOUR)

    # -- filing and the public lookup -------------------------------------------------------

    def file(
        self,
        *,
        actor: Who,
        kind: RequestKind | str,
        contact: str,
        identifiers: Mapping[str, str] | None = None,
        details: str = "",
        photo: bytes | None = None,
        client: str | None = None,
    ) -> RightsRequest:
        """File a request; returns it with its receipt number and deadline (one calendar
        month, see ``domain.rights.due_at``).

        ``actor`` is ``PUBLIC_FILER`` ("public") for the public page, which is rate-limited
        by ``client`` (the network address) and across the deployment; anyone else filing
        on a person's behalf needs ``rights.handle``. Only what the request needs is taken:
        ``contact`` (how to answer, up to 500 characters), non-biometric ``identifiers``
        and, where ``photo_problem`` allows it, one photo (at most ``max_upload_bytes``, a
        decodable image). Raises InvalidInput / InvalidImage / RateLimited."""
        public = actor == PUBLIC_FILER
        if not public:
            self.guard.check(actor, Action.RIGHTS_HANDLE)
        try:
            kind = RequestKind(kind)
        except ValueError:
            raise InvalidInput(
                f"unknown request kind {kind!r}: access, objection or erasure"
            ) from None
        try:
            cleaned = clean_identifiers(identifiers or {})
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        contact = contact.strip()
        if not 3 <= len(contact) <= MAX_CONTACT:
            raise InvalidInput(
                f"say how to answer you (an e-mail or postal address, {MAX_CONTACT} characters "
                "at most)"
            )
        if len(details) > MAX_DETAILS:
            raise InvalidInput(f"the details are longer than {MAX_DETAILS} characters")
        photo = photo or None
        problem = photo_problem(kind, cleaned, has_photo=photo is not None)
        if problem:
            raise InvalidInput(problem)
        if photo is not None:
            decode_image(photo, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels)
        if public:
            # Counted once the request is well formed: someone correcting a mistake on the
            # form does not use up their hour.
            self._limit(self._filings, client, "requests")
        now = self.clock()
        request = RightsRequest(
            id=new_id(),
            receipt=new_receipt_number(RECEIPT_PREFIX, now),
            kind=kind,
            status=RequestStatus.OPEN,
            organisation_id=None if public else organisation_id_of(actor),
            filed_at=now,
            filed_by=PUBLIC_FILER if public else name_of(actor),
            due_at=due_at(now),
            contact=contact,
            identifiers=cleaned,
            details=details.strip(),
            has_photo=photo is not None,
        )
        with self.db.transaction() as session:
            repo = RightsRequests(session)
            if public:
                since = now - timedelta(hours=1)
                if repo.count_filed_since(filed_by=PUBLIC_FILER, since=since) >= (
                    self.public_per_hour
                ):
                    raise RateLimited(
                        "too many requests are being filed right now; please try again in an "
                        "hour, or write to the privacy officer",
                        retry_after_s=3600,
                    )
            blob: str | None = None
            sealed = wrapped = None
            if photo is not None:
                blob = new_id()
                key, wrapped = self.vault.new_purpose_key(session, PHOTO_PURPOSE, request.id)
                sealed = self.vault.seal_with(key, photo, _photo_aad(request.id, blob))
            repo.add(request, photo_blob=blob, photo_key=wrapped)
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=None if public else organisation_of(actor),
                    action=AuditAction.RIGHTS_FILE,
                    details={
                        "request_id": request.id,
                        "receipt": request.receipt,
                        "kind": kind.value,
                        "due_at": request.due_at.isoformat(),
                        "identifier_names": sorted(cleaned),
                        "photo": photo is not None,
                    },
                ),
            )
            if blob is not None and sealed is not None:
                # Last inside the transaction: if writing the blob fails, nothing commits.
                self.vault.blobs.put(blob, sealed)
        return request

    def form_token(self) -> str:
        """A fresh token for the public filing form (see ``FormTokens``)."""
        return self.forms.issue()

    def check_form_token(self, token: str) -> None:
        """Check a public form's token and spend it: a token works once, so a copy of a
        sent form (a proxy log, a browser's history, a script) cannot be replayed within the
        token's lifetime. Spent tokens are kept, by digest, in the database (so every API
        process refuses a replay) until they would have expired anyway."""
        expires = self.forms.check(token)
        digest = hashlib.sha256(token.encode()).hexdigest()
        try:
            with self.db.transaction() as session:
                session.execute(
                    delete(SpentFormTokenRow).where(SpentFormTokenRow.expires_at <= self.clock())
                )
                session.add(SpentFormTokenRow(nonce=digest, expires_at=expires))
                session.flush()
        except SqlIntegrityError:
            raise CsrfFailed(
                "this form was already sent; reload the page to send another"
            ) from None

    def status(self, *, receipt: str, client: str | None = None) -> PublicStatus:
        """The public lookup: status and dates only, for whoever holds the receipt number
        (40 random bits: not guessable at LOOKUPS_PER_ADDRESS_PER_HOUR). Unknown and
        malformed numbers get the same answer."""
        if client is not None:
            self._limit(self._lookups, client, "status lookups")
        wanted = receipt.strip().upper()
        with self.db.read() as session:
            found = RightsRequests(session).by_receipt(wanted) if len(wanted) <= 40 else None
        if found is None:
            raise RequestNotFound(f"no request with receipt number {wanted[:40]!r}")
        return PublicStatus(
            receipt=found.receipt,
            status=found.status,
            filed_on=found.filed_at.date().isoformat(),
            due_on=found.due_at.date().isoformat(),
            closed_on=found.closed_at.date().isoformat() if found.closed_at else None,
        )

    def _limit(self, window: AddressWindow, client: str | None, what: str) -> None:
        retry = window.take(client or "unknown")
        if retry is not None:
            raise RateLimited(
                f"at most {window.limit} {what} an hour from one address; try again later",
                retry_after_s=retry,
            )

    # -- the officer's view ------------------------------------------------------------------

    def list(self, *, actor: Who, status: RequestStatus | None = None) -> list[RightsRequest]:
        """Requests the actor handles (their organisation's and the public page's), the
        earliest deadline first."""
        self.guard.check(actor, Action.RIGHTS_HANDLE)
        with self.db.read() as session:
            found = RightsRequests(session).all(status=status)
        return [r for r in found if self.guard.sees(actor, r.organisation_id)]

    def get(self, *, actor: Who, receipt: str) -> RightsRequest:
        """One request by receipt number; another organisation's reads as not found."""
        self.guard.check(actor, Action.RIGHTS_HANDLE)
        with self.db.read() as session:
            found = RightsRequests(session).by_receipt(receipt.strip().upper())
        if found is None or not self.guard.sees(actor, found.organisation_id):
            raise RequestNotFound(f"no rights request with receipt number '{receipt}'")
        self.guard.check(actor, Action.RIGHTS_HANDLE, Resource(found.organisation_id))
        return found

    def _open(self, actor: Who, receipt: str, kind: RequestKind | None = None) -> RightsRequest:
        request = self.get(actor=actor, receipt=receipt)
        if not request.status.is_open:
            raise Conflict(f"request {request.receipt} is {request.status.value}")
        if kind is not None and request.kind is not kind:
            raise Conflict(f"request {request.receipt} is an {request.kind.value} request")
        return request

    def photo(self, *, actor: Who, receipt: str) -> bytes:
        """The request's photo, decrypted, for the officer to look at (audited as
        ``rights.photo_read``). NotFound when there is none (never given, or deleted)."""
        request = self.get(actor=actor, receipt=receipt)
        with self.db.transaction() as session:
            image = self._photo_bytes(session, request)
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.RIGHTS_PHOTO_READ,
                    details={"request_id": request.id, "receipt": request.receipt},
                ),
            )
        return image

    def _photo_bytes(self, session: Session, request: RightsRequest) -> bytes:
        found = RightsRequests(session).photo(request.receipt)
        if found is None:
            raise RequestNotFound(f"request {request.receipt} holds no photo")
        request_id, blob, wrapped = found
        key = self.vault.open_purpose_key(session, PHOTO_PURPOSE, request_id, wrapped)
        return self.vault.open_with(key, self.vault.blobs.get(blob), _photo_aad(request_id, blob))

    # -- the officer's actions ---------------------------------------------------------------

    def extend(self, *, actor: Who, receipt: str, reason: str) -> RightsRequest:
        """Extend the deadline once by two further months (Art 12(3)), with the reason the
        person is told. Only while the first month runs; see ``extension_problem``."""
        request = self.get(actor=actor, receipt=receipt)
        now = self.clock()
        problem = extension_problem(
            status=request.status, filed_at=request.filed_at, now=now, reason=reason
        )
        if problem:
            raise (Conflict if len(reason.strip()) >= MIN_REASON else InvalidInput)(problem)
        new_due = due_at(request.filed_at, extended=True)
        with self.db.transaction() as session:
            updated = RightsRequests(session).update(
                request.receipt,
                status=RequestStatus.EXTENDED,
                due_at=new_due,
                extension_reason=reason.strip(),
            )
            self._record(
                session,
                actor,
                AuditAction.RIGHTS_EXTEND,
                request,
                reason=reason.strip(),
                previous_due_at=request.due_at.isoformat(),
                due_at=new_due.isoformat(),
            )
        return updated

    def close(self, *, actor: Who, receipt: str, outcome: str) -> RightsRequest:
        """Close an answered request with what was done (``outcome``, told to the person).
        An objection closes only once it is on the suppression list (``apply_objection``);
        otherwise refuse it with the reason. The photo, if any, is destroyed."""
        request = self._open(actor, receipt)
        if request.kind is RequestKind.OBJECTION and "suppression_id" not in request.result:
            raise Conflict(
                "apply the objection (the face goes on the suppression list) before closing "
                "it, or refuse it with a reason"
            )
        return self._finish(actor, request, RequestStatus.CLOSED, outcome)

    def refuse(self, *, actor: Who, receipt: str, reason: str) -> RightsRequest:
        """Refuse a request with the reason told to the person (e.g. Art 12(5): manifestly
        unfounded or excessive; a restriction under the law-enforcement rules). The photo,
        if any, is destroyed."""
        return self._finish(actor, self._open(actor, receipt), RequestStatus.REFUSED, reason)

    def _finish(
        self, actor: Who, request: RightsRequest, status: RequestStatus, text: str
    ) -> RightsRequest:
        if len(text.strip()) < MIN_REASON:
            word = "outcome" if status is RequestStatus.CLOSED else "reason"
            raise InvalidInput(f"say what the {word} is: the person is told it")
        now = self.clock()
        with self.db.transaction() as session:
            repo = RightsRequests(session)
            photo = repo.photo(request.receipt)
            updated = repo.update(
                request.receipt,
                status=status,
                closed_at=now,
                handled_by=name_of(actor),
                outcome=text.strip(),
                photo_blob=None,
                photo_key=None,
            )
            self._record(
                session,
                actor,
                AuditAction.RIGHTS_CLOSE,
                request,
                status=status.value,
                filed_at=request.filed_at.isoformat(),
                due_at=request.due_at.isoformat(),
                extended=request.status is RequestStatus.EXTENDED,
                overdue=request.overdue(now),
                handling_days=handling_days(request.filed_at, now),
            )
            if photo is not None:
                # The key row goes with the update above (the shredding); the blob goes
                # now, last in the transaction, so the event below says what was done. The
                # key's bucket rotates at the next erasure, so a backup taken before now
                # stops opening the photo then (storage/vault.py ``forget_key``).
                request_id, blob, _ = photo
                self.vault.forget_key(session, Keyring.purpose_aad(RIGHTS_PHOTO, request_id))
                self.vault.blobs.delete(blob)
                self._record(
                    session,
                    actor,
                    AuditAction.RIGHTS_PHOTO_DELETED,
                    request,
                    key_destroyed=True,
                    blob_deleted=not self.vault.blobs.exists(blob),
                )
        return updated

    def erase_subject(
        self,
        *,
        actor: Who,
        receipt: str,
        gallery: str,
        reference: str,
        reason: str | None = None,
    ) -> ErasureReceipt:
        """Erase the subject the officer found for an erasure request (by gallery and the
        reference the gallery knows them by), through the one erasure path. The receipt is
        kept in the request's ``result``; call again for each record found."""
        request = self._open(actor, receipt, RequestKind.ERASURE)
        done = self.erasure.erase(
            actor=actor,
            gallery=gallery,
            reference=reference,
            reason=(reason or "").strip() or f"erasure request {request.receipt}",
            cause=ErasureCause.REQUEST,
            request_id=request.id,
        )
        self._add_result(request, "erasures", done.as_dict())
        return done

    def apply_objection(self, *, actor: Who, receipt: str) -> Mapping[str, Any]:
        """Put the objection's photo on the suppression list (services/suppression.py): its
        face is kept out of enrolments and search results, and the gallery records it
        matches are erased. Returns the request's updated ``result``."""
        request = self._open(actor, receipt, RequestKind.OBJECTION)
        if "suppression_id" in request.result:
            raise Conflict(f"the objection of request {request.receipt} is already on file")
        if self.suppression is None:
            raise Conflict("objections by face are not available in this deployment")
        with self.db.read() as session:
            image = self._photo_bytes(session, request)
        outcome = self.suppression.object(
            actor=actor, image=image, reference=request.receipt, request_id=request.id
        )
        summary = {k: v for k, v in outcome.as_dict().items() if k != "receipts"}
        return self._add_result(
            request,
            "erasures",
            *[r.as_dict() for r in outcome.receipts],
            suppression_id=outcome.suppression_id,
            objection=summary,
        )

    def lookup_by_photo(self, *, actor: Who, receipt: str) -> builtins.list[PhotoMatch]:
        """The gallery records whose face is within the suppression distance of the photo an
        open access or erasure request came with, closest first: possible matches for the
        officer to check, never an identification, and never acted on by this call.

        The photo is decrypted for this call only and must show exactly one face meeting
        the gallery quality floor (NoFaceFound, QualityRefused, InvalidInput otherwise). It
        is compared with every template of every gallery the actor may handle, by the
        objection's exact scan, at ``suppression.max_distance`` (default 0.60: FMR 0.5 % per
        comparison on LFW pairs, so about 50 unrelated records per 10,000 templates; see
        services/suppression.py). The list is returned, not stored; the officer then uses
        ``access_export`` or ``erase_subject`` on the record they chose. Audited as
        ``rights.photo_lookup`` (counts, subject ids, distances; no biometric data), also
        when the photo has no usable face. Needs ``rights.handle``; Conflict for a closed
        request, an objection (apply it instead) or a request without a photo."""
        request = self._open(actor, receipt)
        if request.kind is RequestKind.OBJECTION:
            raise Conflict(
                f"request {request.receipt} is an objection: apply it (its photo goes on the "
                "suppression list) rather than looking the person up"
            )
        if not request.has_photo:
            raise Conflict(
                f"request {request.receipt} holds no photo: find the record by the "
                "identifiers it gives"
            )
        if self.suppression is None:
            raise Conflict("finding a person by photo is not available in this deployment")
        with self.db.read() as session:
            image = self._photo_bytes(session, request)
        try:
            face = self.suppression.face_of(image, what="request's photo")
        except ProbityError as exc:
            self._record_alone(
                actor, AuditAction.RIGHTS_PHOTO_LOOKUP, request, outcome="refused", reason=exc.code
            )
            raise
        finally:
            del image  # decrypted for this call only
        scan = self.suppression.find_matches(actor=actor, descriptors=face.descriptors)
        with self.db.read() as session:
            subjects = Subjects(session).get_many(m.subject_id for m in scan.matches)
        kept = [m for m in scan.matches if m.subject_id in subjects]  # erased since: gone
        matches = [
            PhotoMatch(
                gallery=m.gallery,
                subject_reference=subjects[m.subject_id].reference,
                subject_id=m.subject_id,
                distance=m.distance,
                rank=rank,
            )
            for rank, m in enumerate(kept, start=1)
        ]
        self._record_alone(
            actor,
            AuditAction.RIGHTS_PHOTO_LOOKUP,
            request,
            galleries=scan.galleries,
            subject_ids=tuple(m.subject_id for m in matches),
            outcome="compared",
            photo_sha256=face.photo_sha256,
            faces=face.faces,
            templates_compared=scan.templates_compared,
            templates_skipped=scan.templates_skipped,
            max_distance=self.suppression.max_distance,
            target_fmr=self.suppression.target_fmr,
            possible_matches=len(matches),
            matches=[[m.subject_id, m.gallery, m.distance] for m in matches],
        )
        return matches

    def _record_alone(
        self,
        actor: Who,
        action: AuditAction,
        request: RightsRequest,
        *,
        galleries: tuple[str, ...] = (),
        subject_ids: tuple[str, ...] = (),
        **details: Any,
    ) -> None:
        self.audit.record_alone(
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=action,
                galleries=galleries,
                subject_ids=subject_ids,
                details={
                    "request_id": request.id,
                    "receipt": request.receipt,
                    "kind": request.kind.value,
                    **details,
                },
            )
        )

    def forget_closed(self, *, actor: Who, now: datetime | None = None) -> int:
        """Blank ``contact``, ``identifiers`` and ``details`` of every request closed or
        refused more than ``keep_closed_days`` days before ``now`` (default: the clock's);
        returns how many were blanked. The receipt, kind, dates, status, outcome and result
        stay, for the annual report and the audit trail. A privacy officer's call reaches
        the requests they handle (their organisation's and the public page's); the local
        operator's, and the retention sweeper's, every one. Audited as ``rights.forget``
        (receipts and the cut-off) when it blanked anything; a request already blanked is
        not counted again. Needs ``rights.handle``."""
        self.guard.check(actor, Action.RIGHTS_HANDLE)
        at = now or self.clock()
        cutoff = at - timedelta(days=self.keep_closed_days)
        with self.db.transaction() as session:
            repo = RightsRequests(session)
            due = [
                r for r in repo.closed_before(cutoff) if self.guard.sees(actor, r.organisation_id)
            ]
            for request in due:
                repo.update(request.receipt, contact="", identifiers={}, details="")
            if due:
                self.audit.record(
                    session,
                    AuditRecord(
                        actor=name_of(actor),
                        organisation=organisation_of(actor),
                        action=AuditAction.RIGHTS_FORGET,
                        details={
                            "keep_closed_days": self.keep_closed_days,
                            "closed_before": cutoff.isoformat(),
                            "requests": len(due),
                            "receipts": [r.receipt for r in due],
                            "request_ids": [r.id for r in due],
                            "blanked": ["contact", "identifiers", "details"],
                        },
                    ),
                )
        return len(due)

    def _add_result(
        self, request: RightsRequest, key: str, *items: Mapping[str, Any], **fields: Any
    ) -> Mapping[str, Any]:
        with self.db.transaction() as session:
            repo = RightsRequests(session)
            current = repo.by_receipt(request.receipt)
            result = dict(current.result if current else {})
            result[key] = [*result.get(key, []), *items]
            result.update(fields)
            return repo.update(request.receipt, result=result).result

    def _record(
        self,
        session: Session,
        actor: Who,
        action: AuditAction,
        request: RightsRequest,
        **details: Any,
    ) -> None:
        self.audit.record(
            session,
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=action,
                details={
                    "request_id": request.id,
                    "receipt": request.receipt,
                    "kind": request.kind.value,
                    **details,
                },
            ),
        )

    # -- the access export -------------------------------------------------------------------

    def access_export(
        self,
        *,
        actor: Who,
        gallery: str,
        reference: str,
        render_pdf: PdfRenderer,
        receipt: str | None = None,
    ) -> AccessExport:
        """The access export (Art 15) of the subject ``reference`` of ``gallery``: a zip of

        - ``subject.json``: every enrolment's provenance and image SHA-256, and every search
          in which the subject was returned as a candidate (date, organisation, case
          reference, face, rank, distance) — taken from the audit log's ``search.run``
          events, so searches whose results were purged since still count;
        - ``images/``: the enrolled images themselves, decrypted, as they were uploaded;
        - ``report.pdf``: the same facts for a reader (``render_pdf``).

        With ``receipt`` the export answers that access request (noted in its ``result``).
        Audited as ``rights.export`` with counts and the zip's SHA-256; the zip itself is
        made on demand and kept nowhere."""
        request = self._open(actor, receipt, RequestKind.ACCESS) if receipt else None
        target = self.galleries.get(gallery, actor=actor, action=Action.RIGHTS_HANDLE)
        now = self.clock()
        with self.db.read() as session:
            subject = Subjects(session).find(target.id, reference)
            if subject is None:
                raise SubjectNotFound(f"no subject '{reference}' in gallery '{gallery}'")
            enrolled = sorted(
                Enrolments(session).for_subject(subject.id), key=lambda e: e[0].created_at
            )
            key = self.vault.subject_key(session, subject.id)
            images = [self.vault.get_image(key, subject.id, blob) for _, blob in enrolled]
            events = AuditLog(session).events_naming_subject(
                action=AuditAction.SEARCH.value, subject_id=subject.id
            )
            searches = [_search_entry(event, subject.id) for event in events]
        files: list[tuple[str, bytes]] = []
        entries: list[dict[str, Any]] = []
        for number, ((enrolment, _), image) in enumerate(zip(enrolled, images, strict=True), 1):
            name = f"images/{number:02d}-{enrolment.image_sha256[:12]}.{_extension(image)}"
            files.append((name, image))
            p = enrolment.provenance
            entries.append(
                {
                    "file": name,
                    "image_sha256": enrolment.image_sha256,
                    "enrolled_at": enrolment.created_at.isoformat(),
                    "enrolled_by": enrolment.created_by,
                    "face_box": enrolment.box.as_list(),
                    "provenance": {
                        "source": p.source,
                        "lawful_basis": p.lawful_basis.value,
                        "lawful_basis_reference": p.lawful_basis_reference,
                        "collected_at": p.collected_at.isoformat(),
                        "collected_by": p.collected_by,
                        "jurisdiction": p.jurisdiction,
                        "retention_until": p.retention_until.isoformat(),
                    },
                }
            )
        document: dict[str, Any] = {
            "notice": EXPORT_NOTICE,
            "generated_at": now.isoformat(),
            "generated_by": name_of(actor),
            "request": request.receipt if request else None,
            "gallery": {
                "name": target.name,
                "inclusion_policy": target.inclusion_policy,
                "retention_days": target.retention_days,
            },
            "subject": {
                "reference": subject.reference,
                "subject_id": subject.id,
                "created_at": subject.created_at.isoformat(),
            },
            "enrolments": entries,
            "searches": searches,
            "counts": {"enrolments": len(entries), "searches": len(searches)},
        }
        data = _zip(
            [
                ("subject.json", json.dumps(document, indent=2, ensure_ascii=False).encode()),
                *files,
                ("report.pdf", render_pdf(document)),
            ]
        )
        digest = hashlib.sha256(data).hexdigest()
        with self.db.transaction() as session:
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.RIGHTS_EXPORT,
                    galleries=(target.name,),
                    subject_ids=(subject.id,),
                    details={
                        "request_id": request.id if request else None,
                        "receipt": request.receipt if request else None,
                        "reference": subject.reference,
                        "enrolments": len(entries),
                        "searches": len(searches),
                        "zip_sha256": digest,
                    },
                ),
            )
        if request is not None:
            self._add_result(
                request,
                "exports",
                {
                    "at": now.isoformat(),
                    "gallery": target.name,
                    "reference": subject.reference,
                    "enrolments": len(entries),
                    "searches": len(searches),
                    "zip_sha256": digest,
                },
            )
        return AccessExport(data, digest, subject.id, len(entries), len(searches))


def _photo_aad(request_id: str, blob: str) -> bytes:
    return f"probity/{PHOTO_PURPOSE}/{request_id}/{blob}".encode()


def _search_entry(event: AuditEvent, subject_id: str) -> dict[str, Any]:
    """One search that returned the subject, from its ``search.run`` event: when, by which
    organisation, in which case, and where they were ranked on each face's list (rank 1 is
    the closest) at what distance."""
    details = event.details
    places = []
    for face in details.get("faces") or []:
        for rank, candidate in enumerate(face.get("candidates") or [], start=1):
            if candidate and candidate[0] == subject_id:
                places.append({"face": face.get("face"), "rank": rank, "distance": candidate[2]})
    return {
        "at": event.at.isoformat(),
        "organisation": event.organisation,
        "case_reference": event.case_reference,
        "search_id": details.get("search_id"),
        "outcome": details.get("outcome"),
        "returned_as": places,
        "audit_seq": event.seq,
    }


_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"WEBP", 8, "webp"),
    (b"GIF8", 0, "gif"),
    (b"BM", 0, "bmp"),
    (b"II*\x00", 0, "tif"),
    (b"MM\x00*", 0, "tif"),
    (b"ftypavif", 4, "avif"),
    (b"ftyp", 4, "heic"),
)


def _extension(image: bytes) -> str:
    """The file extension for an image's bytes, from its signature (what was uploaded)."""
    for magic, offset, ext in _SIGNATURES:
        if image[offset : offset + len(magic)] == magic:
            return ext
    return "bin"


_MEDIA_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "avif": "image/avif",
    "heic": "image/heic",
}


def image_media_type(image: bytes) -> str:
    """The media type of an image's bytes, from its signature (for serving a photo)."""
    return _MEDIA_TYPES.get(_extension(image), "application/octet-stream")


def _zip(files: Sequence[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()


__all__ = [
    "KEEP_CLOSED_DAYS",
    "LOOKUP_NOTICE",
    "PHOTO_PURPOSE",
    "AccessExport",
    "FormTokens",
    "Objections",
    "PhotoMatch",
    "RightsService",
    "derive_form_secret",
    "image_media_type",
]

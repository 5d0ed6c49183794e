"""Objection / opt-out by face: the suppression list.

A person who objects (GDPR Art 21; the ACLU v. Clearview opt-out) sends one photo. Its face
descriptor becomes a **suppression template**: sealed (AES-256-GCM) under its own data key,
wrapped for the purpose "suppression" only, never added to a gallery index and never
searched for itself. It is used in three places, always as "is this face within the
suppression distance of someone who objected?":

1. **At the objection** (``object``): every gallery template within the distance is found.
   Subjects within the stricter *erase distance* (``erase_target_fmr``, default 0.0003 →
   dlib 0.505) are erased through ``ErasureService.erase_subjects`` (cause ``objection``), one
   receipt each; the others (between 0.505 and 0.593) are not erased but listed as
   ``withheld``: search never returns them and enrolment refuses them, and a privacy officer
   erases them by hand after looking. An erasure cannot be undone; a withheld record can
   be released. This keeps an objection from erasing ~50 strangers per 10,000 templates.
2. **At enrolment** (``check_enrolment``): a matching face is refused with
   ``ObjectionOnFile`` ("objection on file"); nothing is written.
3. **At search** (``withhold``): a candidate subject with any template that matches is
   dropped before ranking, with or without the search threshold.

The same exact scan also serves a rights request that came with a photo and no reference
(``find_matches``, called by ``RightsService.lookup_by_photo``): it lists the gallery
subjects within the suppression distance for a privacy officer to check, and stores,
erases and withholds nothing.

**The threshold.** ``PROBITY_SUPPRESSION__TARGET_FMR`` (default 0.005) is mapped by the
model's measured table in ``engine/thresholds.py`` (LFW, all pairs, measured 2026-12;
interpolated in log FMR between measured points) to a distance: for dlib 0.005 → **0.593**,
between the 1e-3 point (0.542, FNMR 6.8 %) and the 1e-2 point (0.615, FNMR 1.9 %); for SFace
1.170. A false match removes someone from search (or erases their record); a miss keeps
processing someone who objected, so we err towards suppression: these are **1:1** rates and
every use here is 1:N.

- Enrolment and search compare one face with M suppression templates: the chance that
  *some* objector falsely matches an unrelated face is about ``1 - (1 - FMR)^M``. At 0.005:
  5 % with 10 objectors, 39 % with 100. At 0.0003: 0.3 % and 3 %. A deployment whose list
  grows past a few dozen people should lower ``target_fmr`` to 0.0003 (dlib 0.505: about
  a fifth of objectors' photos missed), or the list will refuse many lawful enrolments.
- An objection compares one face with the N templates of every gallery in scope: about
  ``FMR × N`` unrelated records fall under the distance (50 per 10,000 at 0.005, 3 at
  0.0003) and are erased only under the stricter erase distance. Erasure cannot be undone;
  each one has a receipt and an audit event with its distance, so a privacy officer can see
  what an objection did.
- LFW's impostor pairs are mostly of different people at random; look-alikes and relatives
  match more often than FMR says.

The objection photo must meet the gallery quality floor (``QualityFloor()``, stricter than
the probe floor): a blurred or tiny face gives a descriptor near the "average face", which
falls within 0.60 of many strangers, and those strangers would be erased.

**Scope.** A suppression template recorded by the local operator (a plain string actor)
applies to every gallery. One recorded by a privacy officer of an organisation applies to
that organisation's galleries and to shared galleries (no organisation), which is exactly
what that officer may erase in; another organisation's galleries are not touched.

**Finding gallery matches: decrypt and compare, not the index.** ``object`` reads every
template of every gallery in scope from the database, decrypts it and computes the exact
Euclidean distance. The alternative, asking each gallery's vector index for neighbours, is
faster for large galleries but can miss: the index ranks by cosine similarity of
unnormalised descriptors (so no cosine radius provably covers a Euclidean one), returns a
fixed top-k (someone enrolled more than k times, or a crowd of look-alikes, overflows it),
and is derived data that may lag the templates after a crash. A miss here is the failure we
must not have; an objection is rare and a scan is linear (measured on 2 cores with one
subject per template: about 40 µs a template, 0.4 s per 10,000, mostly loading rows, then
AES-GCM; the subjects' wrapped keys are fetched a batch at a time).

**Search and enrolment keep the decrypted list in memory, checked against a version row.**
Opening M templates costs one key unwrap and one AES-GCM open each; done on every search and
enrolment it cost 9 / 47 / 373 ms at 100 / 1,000 / 10,000 objectors. Each service instance
(one per process: ``build_services``) therefore keeps, per model key, the decrypted list and
the version of the list it was read at (``suppression_version``, one row, bumped in the
same transaction as every insert or delete of a suppression template, whichever process
writes it). Every call reads that row (one primary-key read) and decrypts again only when it
changed, so an objection recorded by any process applies to the next search or enrolment in
every process. The copy lives in process memory only (the decrypted descriptors, 8 bytes a
dimension each: about 10 MB at 10,000 objectors of 128-d); they passed through the same
memory on every call before. Nothing about the list is written to disk but the sealed rows.

**Every model.** An objection's photo is described by *every installed model* (the faces are
found once, by the default engine, and each other engine describes the same face), and one
sealed template per model is stored, all sharing the objection's ``suppression_id``
(``objection_id`` column). A gallery's records are compared only with templates of the
gallery's model, at that model's own distance (its FMR table). The objection is refused when a
model that a gallery in scope uses cannot give a usable template of the photo (that gallery
would not be protected); models no gallery uses are stored where they can be. Gallery
templates of a model the objection has no template of are skipped (``templates_skipped``).

**Legacy objections across a model change.** Objections filed before models were many have
a template of dlib-resnet-v1 only, and their photo is gone (it is never stored), so no
template of a newer model can ever be made for them. They stay enforced in two ways:

1. *At enrolment* into a gallery of model B, every objection applying to it that has a
   template of another installed model A but none of B is checked on A: the new face (as B's
   engine detected it) is described by A's engine (``describe``) and compared with A's
   templates at A's own distance. One extra embedding per enrolment per such model (about
   70 ms for dlib), only while such objections exist.
2. *At a gallery's migration* from model A to B (services/migration.py), every subject of the
   gallery whose templates of A are within A's suppression distance of an objection that has
   no template of B gets a **hold** (``suppression_holds``: subject, objection, model A,
   distance), written in the swap's transaction. ``withhold`` drops every subject with a
   hold from search, whatever the model, so a record the objection withheld before the swap
   is still withheld after it (its new templates of B could not be compared with anything).
   A hold goes with its subject at erasure (``ErasureService``); erasing is also how a
   privacy officer ends one (there is no "release" of a withheld record yet).

Refusing the migration instead would leave a deployment on dlib for as long as one legacy
objection exists, which is for ever: the objection is not withdrawn by time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from probity.domain.accounts import Action
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import ModelVersion, QualityFloor
from probity.domain.gallery import Gallery
from probity.domain.ids import new_id
from probity.engine.images import decode_image
from probity.engine.quality import quality_reasons
from probity.engine.registry import EngineSet
from probity.engine.thresholds import threshold_for_fmr
from probity.engine.types import AnalysedFace, DecodedImage, Detection, Vector
from probity.errors import (
    IntegrityError,
    InvalidInput,
    NoFaceFound,
    ObjectionOnFile,
    QualityRefused,
)
from probity.services.access import AccessGuard, Who, name_of, organisation_id_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.erasure import ErasureCause, ErasureReceipt, ErasureService
from probity.services.galleries import GalleryService
from probity.storage.db import Database
from probity.storage.repositories import SealedTemplate, Templates
from probity.storage.tables import (
    SubjectKeyRow,
    SuppressionHoldRow,
    SuppressionRow,
    SuppressionVersionRow,
    TemplateRow,
)
from probity.storage.vault import SUPPRESSION, Vault

SCAN_BATCH = 1000
"""Gallery templates decrypted and compared at a time during an objection's scan."""

OBJECTION_MESSAGE = "objection on file"
"""The reason every refusal starts with (enrolment error, bulk manifest row)."""


@dataclass(frozen=True, slots=True)
class SuppressedMatch:
    """A gallery subject an objection matched (and erased): ids and a distance only."""

    subject_id: str
    gallery: str
    distance: float


@dataclass(frozen=True, slots=True)
class GalleryScan:
    """What ``find_matches`` found: the galleries scanned (names), how many of their
    templates were decrypted and compared, how many were skipped (another model), and the
    subjects within ``max_distance``, closest first, each once at its closest template."""

    galleries: tuple[str, ...]
    templates_compared: int
    templates_skipped: int
    matches: tuple[SuppressedMatch, ...]


@dataclass(frozen=True, slots=True)
class PhotoFace:
    """The one usable face of a photo (``face_of``): its descriptor under each model that
    could describe it (model key -> vector), how many faces were detected in all, and the
    SHA-256 of the photo's bytes (for the audit log)."""

    descriptors: Mapping[str, Vector]
    faces: int
    photo_sha256: str


@dataclass(frozen=True, slots=True)
class Objection:
    """What one objection did. ``faces`` is how many faces were detected in the photo
    (exactly one of them met the quality floor and was used); ``templates_compared`` how many
    gallery templates were decrypted and compared; ``receipts`` one per erased subject."""

    suppression_id: str
    reference: str
    request_id: str | None
    faces: int
    max_distance: float
    target_fmr: float
    galleries: tuple[str, ...]
    templates_compared: int
    templates_skipped: int  # of another model than the engine's: not comparable
    matches: tuple[SuppressedMatch, ...]  # erased: at or under ``erase_distance``
    receipts: list[ErasureReceipt] = field(default_factory=list)
    erase_distance: float = 0.0
    # Matched within max_distance but not erase_distance: withheld from search and refused
    # re-enrolment, not erased; a privacy officer decides each one.
    withheld: tuple[SuppressedMatch, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "suppression_id": self.suppression_id,
            "reference": self.reference,
            "request_id": self.request_id,
            "faces": self.faces,
            "threshold": {
                "max_distance": self.max_distance,
                "target_fmr": self.target_fmr,
                "erase_distance": self.erase_distance,
            },
            "withheld_not_erased": [
                {"subject_id": m.subject_id, "gallery": m.gallery, "distance": m.distance}
                for m in self.withheld
            ],
            "galleries": list(self.galleries),
            "templates_compared": self.templates_compared,
            "templates_skipped": self.templates_skipped,
            "matches": [
                {"subject_id": m.subject_id, "gallery": m.gallery, "distance": m.distance}
                for m in self.matches
            ],
            "receipts": [r.as_dict() for r in self.receipts],
        }


@dataclass(frozen=True, slots=True)
class _List:
    """The decrypted suppression list for one model: objection ids, owning organisation
    (None: deployment-wide) and the descriptors, shape (M, dimension)."""

    ids: tuple[str, ...]
    organisations: tuple[str | None, ...]
    vectors: NDArray[np.float64]
    squared: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Each row's squared norm, computed once per list (``_distances`` needs it on every
    search: at 10,000 objectors recomputing it, with a float64 copy of the matrix, was most
    of a search's 87 ms in ``withhold``)."""
    single: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 1), np.float32))
    """The same matrix in float32 (exactly the stored values: templates are sealed as
    float32), for ``_near_any``'s first pass."""
    largest_norm: float = 0.0
    """The largest row norm, for ``_near_any``'s bound on float32 rounding."""
    masks: dict[str | None, NDArray[np.bool_]] = field(default_factory=dict)
    """``applying_to`` per gallery organisation, kept with the list (a Python loop over
    every row each time cost 12 ms a search at 20,000 rows)."""

    @classmethod
    def of(
        cls,
        ids: tuple[str, ...],
        organisations: tuple[str | None, ...],
        matrix: NDArray[np.float64],
    ) -> _List:
        """The list with its derived arrays, all read-only (shared between calls and
        threads)."""
        matrix.setflags(write=False)
        squared = (matrix**2).sum(1)
        squared.setflags(write=False)
        single = matrix.astype(np.float32)
        single.setflags(write=False)
        return cls(ids, organisations, matrix, squared, single, float(np.sqrt(squared.max())))

    def applying_to(self, gallery_organisation: str | None) -> NDArray[np.bool_]:
        """Which templates apply to a gallery owned by ``gallery_organisation``."""
        mask = self.masks.get(gallery_organisation)
        if mask is None:
            mask = np.array(
                [_applies(o, gallery_organisation) for o in self.organisations], dtype=bool
            )
            mask.setflags(write=False)
            self.masks[gallery_organisation] = mask  # same value from any thread: no lock
        return mask


def _applies(list_organisation: str | None, gallery_organisation: str | None) -> bool:
    """A template recorded deployment-wide applies everywhere; an organisation's applies to
    its own galleries and to shared ones (the galleries its privacy officer may erase in)."""
    return (
        list_organisation is None
        or gallery_organisation is None
        or list_organisation == gallery_organisation
    )


def bump_list_version(session: Session, at: Any) -> None:
    """Mark the suppression list as changed, in the caller's transaction: call it in every
    transaction that inserts or deletes a ``SuppressionRow`` (today only ``object``), so
    that no process keeps using its decrypted copy of the list (``SuppressionService._load``).
    Re-wrapping the rows' keys at a key rotation changes no template and needs no bump.

    ``version + 1`` is computed by the database, so concurrent writers on PostgreSQL each
    add one (the row lock orders them); the fresh token makes the pair unique even where the
    counter repeats (a home restored from an older backup and then written to)."""
    changed = session.execute(
        update(SuppressionVersionRow)
        .where(SuppressionVersionRow.id == 1)
        .values(version=SuppressionVersionRow.version + 1, token=new_id(), changed_at=at)
    )
    if getattr(changed, "rowcount", 1) != 1:
        raise IntegrityError("suppression_version is missing (run 'probity migrate')")


def _list_version(session: Session) -> tuple[int, str] | None:
    """The list's (version, token): one primary-key read. None on a schema without the row
    (nothing is then kept between calls)."""
    row = session.execute(
        select(SuppressionVersionRow.version, SuppressionVersionRow.token).where(
            SuppressionVersionRow.id == 1
        )
    ).one_or_none()
    return None if row is None else (int(row[0]), str(row[1]))


def _aad(suppression_id: str) -> bytes:
    return b"probity/suppression-template/" + suppression_id.encode()


def _distances(
    a: NDArray[Any], b: NDArray[Any], b_squared: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Euclidean distances between every row of ``a`` (n, d) and of ``b`` (m, d): (n, m),
    in float64 through |a|² + |b|² - 2ab, so no (n, m, d) array is built. ``b_squared``:
    the rows' squared norms of ``b`` if known (a suppression list keeps them)."""
    a64 = np.asarray(a, dtype=np.float64)  # no copy when already float64
    b64 = np.asarray(b, dtype=np.float64)
    b2 = (b64**2).sum(1) if b_squared is None else b_squared
    squared: NDArray[np.float64] = (a64**2).sum(1)[:, None] + b2[None, :] - 2.0 * (a64 @ b64.T)
    distances: NDArray[np.float64] = np.sqrt(np.maximum(squared, 0.0))
    return distances


_FLOAT32_SLACK = 256 * float(np.finfo(np.float32).eps)
"""``_near_any``'s bound on float32 rounding, relative to (|a| + |b|)²: a squared distance
|a|² + |b|² - 2ab over d = 128 dimensions computed in float32 is off by at most about
d x eps x (|a| + |b|)² (rounding of the dot product's partial sums, worst case; the typical
error is about the square root of that). 256 x eps leaves a factor of two over the worst
case. For unit vectors that is 1.2e-4 in squared distance."""


def _near_any(
    rows: NDArray[Any],
    suppressed: _List,
    masks: Sequence[NDArray[np.bool_]],
    limits: Sequence[float],
) -> list[bool]:
    """For each row of ``rows`` (n, d): is any template of the list that applies to it
    (``masks[i]``) within ``limits[i]``? The same answers as comparing ``_distances`` (float64)
    with the limits, at about half its cost.

    How: the (n, M) squared distances are computed in float32 (BLAS sgemm, half the memory
    traffic of float64; at 10,000 objectors x 40 candidates the float64 matrix was about 8 ms
    of a search). A row whose nearest applying template is clearly inside or clearly outside
    its limit (by more than the rounding bound ``_FLOAT32_SLACK``) is decided there; a row
    within the bound of its limit, which is rare, is computed again in float64 with
    ``_distances``, so no borderline objector can flip."""
    single = np.asarray(rows, dtype=np.float32)
    norms = np.sqrt((single.astype(np.float64) ** 2).sum(1))
    own = (single * single).sum(1, dtype=np.float32)
    squared = own[:, None] + suppressed.squared.astype(np.float32)[None, :]
    squared -= np.float32(2.0) * (single @ suppressed.single.T)
    answers: list[bool] = []
    for i, (mask, limit) in enumerate(zip(masks, limits, strict=True)):
        applying = squared[i][mask]
        if applying.size == 0:
            answers.append(False)
            continue
        nearest = float(applying.min())
        slack = _FLOAT32_SLACK * (float(norms[i]) + suppressed.largest_norm) ** 2
        if nearest < limit * limit - slack:
            answers.append(True)
        elif nearest > limit * limit + slack:
            answers.append(False)
        else:  # too close to call in float32: the float64 distances decide
            exact = _distances(
                np.asarray(rows[i], dtype=np.float64)[None, :],
                suppressed.vectors[mask],
                suppressed.squared[mask],
            )[0]
            answers.append(bool((exact <= limit).any()))
    return answers


class SuppressionService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        engines: EngineSet,
        galleries: GalleryService,
        vault: Vault,
        erasure: ErasureService,
        guard: AccessGuard,
        target_fmr: float,
        max_upload_bytes: int,
        erase_target_fmr: float | None = None,
        max_image_pixels: int,
        quality_floor: QualityFloor | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.engines = engines
        self.galleries = galleries
        self.vault = vault
        self.erasure = erasure
        self.guard = guard
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels
        self.quality_floor = quality_floor or QualityFloor()
        self._wanted_fmr = target_fmr
        self._erase_fmr = min(erase_target_fmr or target_fmr, target_fmr)
        self._points: dict[str, tuple[float, float, float]] = {}
        # The decrypted list per model key, with the list version it was read at (see
        # ``_load``). Held in this process's memory only, for the life of the instance:
        # the objectors' descriptors, which every search and enrolment compares with anyway.
        # Shared by the server's threads, so only read and replaced under the lock.
        self._lists: dict[str, tuple[tuple[int, str], _List]] = {}
        # Every row's (id, objection id, organisation, model key), nothing biometric, under
        # the version it was read at (``_legacy_objections``).
        self._legacy_rows: (
            tuple[tuple[int, str], list[tuple[str, str | None, str | None, str]]] | None
        ) = None
        self._lists_lock = threading.Lock()

    # -- the operating points, per model --------------------------------------------------------

    def operating_point(self, model: ModelVersion) -> tuple[float, float, float]:
        """(suppression distance, its tabulated 1:1 FMR, erase distance) on ``model``'s
        table. Looked up on first use, not at build time: a model without an FMR table (an
        operator's model) still builds; it fails only once the list has to be consulted."""
        point = self._points.get(model.key)
        if point is None:
            table = self.engines.table(model)
            wanted = threshold_for_fmr(table, self._wanted_fmr)
            erase = threshold_for_fmr(table, self._erase_fmr)
            assert wanted.max_distance is not None and wanted.target_fmr is not None
            assert erase.max_distance is not None
            point = (
                wanted.max_distance,
                wanted.target_fmr,
                min(erase.max_distance, wanted.max_distance),
            )
            self._points[model.key] = point
        return point

    @property
    def _default(self) -> ModelVersion:
        return self.engines.default.model

    @property
    def erase_distance(self) -> float:
        """The stricter distance under which an objection erases a record at once (on the
        default model's scale; each gallery is compared on its own model's)."""
        return self.operating_point(self._default)[2]

    @property
    def max_distance(self) -> float:
        """The suppression distance on the default model: a face at or under it matches."""
        return self.operating_point(self._default)[0]

    @property
    def target_fmr(self) -> float:
        """The 1:1 false-match rate of ``max_distance`` (the setting; the distance is
        interpolated in the model's table)."""
        return self.operating_point(self._default)[1]

    # -- the objection ------------------------------------------------------------------------

    def object(
        self, *, actor: Who, image: bytes, reference: str, request_id: str | None = None
    ) -> Objection:
        """Record an objection from one photo and erase every gallery subject it matches.

        ``reference`` is the privacy officer's reference for the objection (a letter, a
        rights request's receipt); ``request_id`` links it to a rights request. The photo
        must show exactly one face meeting the gallery quality floor (else NoFaceFound,
        QualityRefused or InvalidInput, and nothing is written); the photo itself is never
        stored here. One suppression template per installed model is committed (and
        audited as ``objection.record``) *before* the gallery scan, so even if the erasure
        fails half-way the person is already refused at enrolment and withheld from search.
        Needs RIGHTS_HANDLE (privacy officers; the local operator).
        """
        self.guard.check(actor, Action.RIGHTS_HANDLE)
        ref = reference.strip()
        if not ref:
            raise InvalidInput("a reference for the objection is required")
        if len(ref) > 200:
            raise InvalidInput("the objection's reference is longer than 200 characters")
        targets = self.galleries.all(actor)
        for model in {g.model.key: g.model for g in targets}.values():
            _ = self.operating_point(model)  # no FMR table for a model in use: refuse now
        decoded = decode_image(
            image, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
        )
        photo = self._describe(decoded, what="objection photo", needed=targets)
        suppression_id = new_id()
        with self.db.transaction() as session:
            # Every process's copy of the list is out of date once this commits.
            bump_list_version(session, self.clock())
            for n, (model_key, descriptor) in enumerate(photo.descriptors.items()):
                row_id = suppression_id if n == 0 else new_id()
                key, wrapped = self.vault.new_purpose_key(session, SUPPRESSION, row_id)
                data = np.ascontiguousarray(descriptor, dtype="<f4").tobytes()
                session.add(
                    SuppressionRow(
                        id=row_id,
                        objection_id=suppression_id,
                        reference=ref,
                        request_id=request_id,
                        organisation_id=organisation_id_of(actor),
                        model_key=model_key,
                        sealed=Vault.seal_with(key, data, _aad(row_id)),
                        wrapped_key=wrapped,
                        created_at=self.clock(),
                        created_by=name_of(actor),
                    )
                )
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.OBJECTION_RECORD,
                    details={
                        "suppression_id": suppression_id,
                        "reference": ref,
                        "request_id": request_id,
                        "photo_sha256": decoded.sha256,
                        "faces": photo.faces,
                        "model": self._default.key,
                        "models": sorted(photo.descriptors),
                        "max_distance": self.max_distance,
                        "target_fmr": self.target_fmr,
                    },
                ),
            )
        compared, skipped, found = self._scan(targets, photo.descriptors)
        matches = [m for m in found if m.erase]
        withheld = [m for m in found if not m.erase]
        receipts = self.erasure.erase_subjects(
            actor=actor,
            subject_ids=[m.match.subject_id for m in matches],
            reason=f"objection on file (suppression {suppression_id})",
            cause=ErasureCause.OBJECTION,
            request_id=request_id,
        )
        self.audit.record_alone(
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=AuditAction.OBJECTION_APPLIED,
                galleries=tuple(g.name for g in targets),
                subject_ids=tuple(m.match.subject_id for m in matches),
                details={
                    "suppression_id": suppression_id,
                    "request_id": request_id,
                    "templates_compared": compared,
                    "templates_skipped": skipped,
                    "max_distance": self.max_distance,
                    "erase_distance": self.erase_distance,
                    "matches": [_row(m.match) for m in matches],
                    "withheld": [_row(m.match) for m in withheld],
                    "receipts": [r.number for r in receipts],
                },
            )
        )
        return Objection(
            suppression_id=suppression_id,
            reference=ref,
            request_id=request_id,
            faces=photo.faces,
            max_distance=self.max_distance,
            target_fmr=self.target_fmr,
            galleries=tuple(g.name for g in targets),
            templates_compared=compared,
            templates_skipped=skipped,
            matches=tuple(m.match for m in matches),
            receipts=receipts,
            erase_distance=self.erase_distance,
            withheld=tuple(m.match for m in withheld),
        )

    # -- a rights request's photo lookup (services/rights.py) ---------------------------------

    def face_of(self, image: bytes, *, what: str = "photo") -> PhotoFace:
        """The one face of ``image`` that meets the gallery quality floor, as an objection
        photo must (a poor photo falls within the distance of many strangers), under every
        installed model that can describe it. Raises InvalidImage, NoFaceFound,
        QualityRefused or InvalidInput (several faces), naming ``what`` the photo is.
        Nothing is stored or audited here."""
        decoded = decode_image(
            image, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
        )
        return self._describe(decoded, what=what, needed=())

    def find_matches(self, *, actor: Who, descriptors: Mapping[str, Vector]) -> GalleryScan:
        """Every gallery subject within the suppression distance of the photo's
        ``descriptors`` (model key -> vector, from ``face_of``), by the same exact scan an
        objection makes (every template of every gallery ``actor`` may handle, decrypted and
        compared on its gallery's model; see the module's note on why not the index).
        Stores, erases and audits nothing: the caller records what it did with the list.
        Needs RIGHTS_HANDLE (privacy officers; the local operator)."""
        self.guard.check(actor, Action.RIGHTS_HANDLE)
        targets = self.galleries.all(actor)
        for model in {g.model.key: g.model for g in targets}.values():
            _ = self.operating_point(model)
        compared, skipped, found = self._scan(targets, descriptors)
        return GalleryScan(
            tuple(g.name for g in targets), compared, skipped, tuple(m.match for m in found)
        )

    # -- shared by the objection and the lookup ------------------------------------------------

    def _describe(
        self, decoded: DecodedImage, *, what: str, needed: Sequence[Gallery]
    ) -> PhotoFace:
        """The photo's one usable face under the default model, then the same face under
        every other installed model (described from the same detection). A model that one
        of ``needed`` galleries uses must give a usable template too, else QualityRefused:
        that gallery would not be protected."""
        default = self.engines.default
        faces = default.analyse(decoded)
        face = self._one_face(faces, what=what)
        descriptors: dict[str, Vector] = {default.model.key: face.descriptor}
        in_use = {g.model.key: g.name for g in needed}
        for engine in self.engines:
            key = engine.model.key
            if key in descriptors:
                continue
            other = (
                engine.describe(decoded, [face.detection])[0]
                if face.detection is not None
                else None
            )
            reasons = (
                ["the model cannot align the face"]
                if other is None
                else quality_reasons(other.quality, self.quality_floor)
            )
            if other is not None and not reasons:
                descriptors[key] = other.descriptor
            elif key in in_use:
                raise QualityRefused(
                    f"the {what} gives no usable face for model {key}, which gallery "
                    f"'{in_use[key]}' holds: {', '.join(reasons)}"
                )
        return PhotoFace(descriptors, len(faces), decoded.sha256)

    def _one_face(
        self, faces: list[AnalysedFace], *, what: str = "objection photo"
    ) -> AnalysedFace:
        """The one face meeting the quality floor, else a precise error."""
        if not faces:
            raise NoFaceFound(f"no face found in the {what}")
        accepted = [f for f in faces if not quality_reasons(f.quality, self.quality_floor)]
        if not accepted:
            detail = "; ".join(
                f"face at {f.box.as_list()}: "
                f"{', '.join(quality_reasons(f.quality, self.quality_floor))}"
                for f in faces
            )
            raise QualityRefused(
                f"no face in the {what} meets the quality floor (a poor photo would "
                f"match strangers): {detail}"
            )
        if len(accepted) > 1:
            raise InvalidInput(
                f"the {what} shows {len(accepted)} faces; it must show exactly one "
                "person (crop it first)"
            )
        return accepted[0]

    def _scan(
        self, targets: list[Gallery], descriptors: Mapping[str, Vector]
    ) -> tuple[int, int, list[_Found]]:
        """Every template of every gallery in ``targets``, decrypted and compared with the
        descriptor of its gallery's model: (templates compared, templates skipped, matches
        sorted by distance). A subject appears once, at its closest template."""
        best: dict[str, _Found] = {}
        compared = skipped = 0
        with self.db.read() as session:
            for gallery in targets:
                descriptor = descriptors.get(gallery.model.key)
                keys: dict[str, bytes] = {}  # this call only: never kept past the scan
                batch: list[SealedTemplate] = []
                point = self.operating_point(gallery.model) if descriptor is not None else None
                for template in Templates(session).for_gallery(gallery.id):
                    if (
                        descriptor is None
                        or point is None
                        or template.model_key != gallery.model.key
                    ):
                        skipped += 1
                        continue
                    batch.append(template)
                    if len(batch) >= SCAN_BATCH:
                        self._compare(session, gallery, batch, keys, descriptor, point, best)
                        compared, batch = compared + len(batch), []
                if batch and descriptor is not None and point is not None:
                    self._compare(session, gallery, batch, keys, descriptor, point, best)
                    compared += len(batch)
        matches = sorted(best.values(), key=lambda m: (m.match.distance, m.match.subject_id))
        return compared, skipped, matches

    def _compare(
        self,
        session: Session,
        gallery: Gallery,
        batch: list[SealedTemplate],
        keys: dict[str, bytes],
        descriptor: Vector,
        point: tuple[float, float, float],
        best: dict[str, _Found],
    ) -> None:
        max_distance, _, erase_distance = point
        missing = list({t.subject_id for t in batch} - keys.keys())
        # One query puts the batch's wrapped keys in the session's identity map (held here,
        # since the map keeps only weak references), so subject_key needs no query each.
        held = (
            list(
                session.scalars(select(SubjectKeyRow).where(SubjectKeyRow.subject_id.in_(missing)))
            )
            if missing
            else []
        )
        for subject_id in missing:
            keys[subject_id] = self.vault.subject_key(session, subject_id)
        del held
        vectors = np.stack(
            [Vault.open_vector(keys[t.subject_id], t.subject_id, t.sealed_vector) for t in batch]
        )
        probe = np.asarray(descriptor, dtype=np.float64)[None, :]
        distances = _distances(vectors, probe)[:, 0]
        for t, d in zip(batch, distances, strict=True):
            if d <= max_distance:
                found = best.get(t.subject_id)
                if found is None or d < found.match.distance:
                    best[t.subject_id] = _Found(
                        SuppressedMatch(t.subject_id, gallery.name, round(float(d), 4)),
                        erase=bool(d <= erase_distance),
                    )

    # -- the list at enrolment and search -----------------------------------------------------

    def _load(self, model_key: str) -> _List:
        """The suppression list for one model, decrypted: the copy kept in memory while the
        list's version in the database is the one it was read at, else read and decrypted
        again (and kept). A copy is never used once any process has committed a change.

        Why this is never stale: a writer changes the rows and the version in one
        transaction, and the version is read here *before* the rows. Whatever the version
        read says, every change committed up to it is visible to the rows read after it (on
        SQLite both reads see one snapshot of the read transaction; on PostgreSQL, read
        committed, the later statement sees at least as much). So the copy kept under
        version V holds at least every template of V; if a writer commits between the two
        reads, the copy holds more (its templates) and the next call reads the new version
        and rebuilds. Reading the rows first and the version second could keep the old rows
        under the new version, for good; hence the order."""
        with self.db.read() as session:
            version = _list_version(session)
            with self._lists_lock:
                kept = self._lists.get(model_key)
            if kept is not None and version is not None and kept[0] == version:
                return kept[1]
            rows = list(
                session.execute(
                    select(
                        SuppressionRow.id,
                        SuppressionRow.objection_id,
                        SuppressionRow.organisation_id,
                        SuppressionRow.sealed,
                        SuppressionRow.wrapped_key,
                    ).where(SuppressionRow.model_key == model_key)
                )
            )
            listed = self._decrypt(session, rows)  # the session reads bucket KEKs
        if version is not None:
            # Two threads may rebuild at once; if the one that read an older version stores
            # last, the next call finds a version mismatch and rebuilds: slower, never stale.
            with self._lists_lock:
                self._lists[model_key] = (version, listed)
        return listed

    def _decrypt(self, session: Session, rows: Sequence[Any]) -> _List:
        """Open each row's purpose key and template. The matrix is made read-only: it is
        shared between calls and threads."""
        if not rows:
            empty = np.zeros((0, 1), dtype=np.float64)
            empty.setflags(write=False)
            return _List((), (), empty)
        vectors = []
        for row_id, _, _, sealed, wrapped in rows:
            key = self.vault.open_purpose_key(session, SUPPRESSION, row_id, wrapped)
            data = Vault.open_with(key, sealed, _aad(row_id))
            vectors.append(np.frombuffer(data, dtype="<f4").astype(np.float64))
        return _List.of(
            tuple(objection or row_id for row_id, objection, *_ in rows),
            tuple(r[2] for r in rows),
            np.stack(vectors),
        )

    def check_enrolment(
        self,
        *,
        actor: Who,
        gallery: Gallery,
        descriptor: Vector,
        reference: str,
        image_sha256: str,
        image: bytes | None = None,
        detection: Detection | None = None,
    ) -> None:
        """Refuse (ObjectionOnFile, "objection on file") a face within the suppression
        distance of a template of the gallery's model that applies to ``gallery``; audited as
        ``enrolment.refused_objection`` with the nearest template's objection id and
        distance. Call it before anything of the enrolment is written.

        With ``image`` (the enrolment's bytes) and ``detection`` (where the gallery's engine
        found the face), objections that have no template of the gallery's model are checked
        on a model they do have (module docstring, "Legacy objections")."""
        model = gallery.model
        suppressed = self._load(model.key)
        if suppressed.ids:
            mask = suppressed.applying_to(gallery.organisation_id)
            if mask.any():
                found = self._nearest(suppressed, mask, descriptor, model)
                if found is not None:
                    self._refuse(actor, gallery, reference, image_sha256, model, *found)
        if image is None or detection is None:
            return
        decoded: DecodedImage | None = None
        for other, objections in self._legacy_objections(gallery).items():
            if not self.engines.has(other):
                continue  # not installed here: nothing can describe the face for it
            engine = self.engines.get(other)
            if decoded is None:
                decoded = decode_image(
                    image, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
                )
            face = engine.describe(decoded, [detection])[0]
            if face is None:
                continue  # the other model cannot align this face: nothing to compare
            listed = self._load(other)
            mask = np.array([i in objections for i in listed.ids], dtype=bool)
            if not mask.any():
                continue
            found = self._nearest(listed, mask, face.descriptor, engine.model)
            if found is not None:
                self._refuse(actor, gallery, reference, image_sha256, engine.model, *found)

    def _nearest(
        self, suppressed: _List, mask: NDArray[np.bool_], descriptor: Vector, model: ModelVersion
    ) -> tuple[str, float, float] | None:
        """(objection id, distance, max distance) of the nearest template under ``mask``
        within ``model``'s suppression distance, else None."""
        max_distance = self.operating_point(model)[0]
        distances = _distances(np.asarray(descriptor)[None, :], suppressed.vectors[mask])[0]
        nearest = int(np.argmin(distances))
        distance = float(distances[nearest])
        if distance > max_distance:
            return None
        ids = [i for i, keep in zip(suppressed.ids, mask, strict=True) if keep]
        return ids[nearest], distance, max_distance

    def _legacy_objections(self, gallery: Gallery) -> dict[str, set[str]]:
        """Objections applying to ``gallery`` that have no template of its model, by the
        other models they have templates of: {model key: {objection id}}. Nothing is
        decrypted; the rows' (id, objection, organisation, model) are kept in memory under
        the list's version like the decrypted lists (``_load`` argues why that is never
        stale), so an enrolment reads one primary-key row here, not every suppression row
        (issue "Scale": that read grew with the number of objectors)."""
        with self.db.read() as session:
            version = _list_version(session)
            with self._lists_lock:
                kept = self._legacy_rows
            if kept is not None and version is not None and kept[0] == version:
                rows = kept[1]
            else:
                rows = [
                    (str(a), None if b is None else str(b), c, str(d))
                    for a, b, c, d in session.execute(
                        select(
                            SuppressionRow.id,
                            SuppressionRow.objection_id,
                            SuppressionRow.organisation_id,
                            SuppressionRow.model_key,
                        )
                    )
                ]
                if version is not None:
                    with self._lists_lock:
                        self._legacy_rows = (version, rows)
        models: dict[str, set[str]] = {}
        for row_id, objection, organisation, model_key in rows:
            if _applies(organisation, gallery.organisation_id):
                models.setdefault(objection or row_id, set()).add(model_key)
        out: dict[str, set[str]] = {}
        for objection, keys in models.items():
            if gallery.model.key in keys:
                continue
            for key in keys:
                out.setdefault(key, set()).add(objection)
        return out

    def _refuse(
        self,
        actor: Who,
        gallery: Gallery,
        reference: str,
        image_sha256: str,
        model: ModelVersion,
        objection_id: str,
        distance: float,
        max_distance: float,
    ) -> None:
        self.audit.record_alone(
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=AuditAction.ENROL_REFUSED_OBJECTION,
                galleries=(gallery.name,),
                details={
                    "subject_reference": reference,
                    "image_sha256": image_sha256,
                    "suppression_id": objection_id,
                    "distance": round(distance, 4),
                    "max_distance": max_distance,
                    "model": model.key,
                },
            )
        )
        raise ObjectionOnFile(
            f"{OBJECTION_MESSAGE}: the face matches the suppression list of people who "
            "objected to being processed; nothing was enrolled"
        )

    def withhold(
        self,
        templates: Mapping[int, SealedTemplate],
        vectors: Mapping[int, Vector],
        *,
        known: Mapping[int, SealedTemplate] | None = None,
        keys: Mapping[str, bytes] | None = None,
    ) -> dict[int, Vector]:
        """``vectors`` (decrypted search hits, by template id) without every template of any
        subject who matches the list: a subject one of whose templates (among the hits, or
        any other of theirs) is within the suppression distance of a template of the same
        model applying to its gallery, or who has a hold (a legacy objection matched them
        before their gallery changed model), is never a candidate, at any rank or threshold.
        Costs one query for the holds and one version read per model (``_load``: the list is
        decrypted again only after it changed); the hit subjects' other templates, if any,
        are decrypted for this call only.

        ``known`` and ``keys``: a caller that has already read every template of the hit
        subjects (``Templates.for_subjects``) and their data keys passes them, and the other
        templates are taken from there instead of read again (the search's re-scoring does:
        at 10M, with the database larger than the page cache, each read is random I/O)."""
        if not vectors:
            return dict(vectors)
        galleries: dict[str, Gallery] = {g.id: g for g in self.galleries.all()}
        owners = {tid: (templates[tid].subject_id, templates[tid].gallery_id) for tid in vectors}
        models = {templates[tid].model_key for tid in vectors}
        withheld: set[str] = self.held({owner for owner, _ in owners.values()})
        for model_key in models:
            suppressed = self._load(model_key)
            if not suppressed.ids:
                continue
            hits = [tid for tid in vectors if templates[tid].model_key == model_key]
            subjects: set[str] = {owners[tid][0] for tid in hits}
            others: list[tuple[Vector, str, str]]
            if known is not None and keys is not None:
                others = [
                    (
                        Vault.open_vector(keys[t.subject_id], t.subject_id, t.sealed_vector),
                        t.subject_id,
                        t.gallery_id,
                    )
                    for tid, t in known.items()
                    if t.subject_id in subjects and t.model_key == model_key and tid not in vectors
                ]
            else:
                others = self._other_templates(subjects, model_key, exclude=set(vectors))
            every = [(vectors[tid], *owners[tid]) for tid in hits] + list(others)
            masks: list[NDArray[np.bool_]] = []
            limits: list[float] = []
            for _, _, gallery_id in every:
                gallery = galleries.get(gallery_id)
                masks.append(
                    suppressed.applying_to(gallery.organisation_id if gallery is not None else None)
                )
                model = gallery.model if gallery is not None else self._default
                limits.append(self.operating_point(model)[0])
            near = _near_any(np.stack([v for v, _, _ in every]), suppressed, masks, limits)
            withheld.update(
                subject_id for (_, subject_id, _), hit in zip(every, near, strict=True) if hit
            )
        return {tid: v for tid, v in vectors.items() if owners[tid][0] not in withheld}

    # -- holds: legacy objections across a model change --------------------------------------

    def held(self, subject_ids: set[str]) -> set[str]:
        """Which of ``subject_ids`` have a suppression hold (one query)."""
        if not subject_ids:
            return set()
        with self.db.read() as session:
            return set(
                session.scalars(
                    select(SuppressionHoldRow.subject_id).where(
                        SuppressionHoldRow.subject_id.in_(subject_ids)
                    )
                )
            )

    def legacy_holds(self, gallery: Gallery, new_model: ModelVersion) -> list[Hold]:
        """The holds a migration of ``gallery`` to ``new_model`` must write: every subject
        whose templates of the gallery's current model are within that model's suppression
        distance of an objection (applying to the gallery) that has no template of
        ``new_model``; one per subject and objection, at the closest template. Decrypts the
        gallery's templates for this call only (the objections' come from ``_load``)."""
        old = gallery.model
        objections = self._legacy_objections(replace(gallery, model=new_model)).get(old.key, set())
        if not objections:
            return []
        listed = self._load(old.key)
        mask = np.array([i in objections for i in listed.ids], dtype=bool)
        if not mask.any():
            return []
        max_distance = self.operating_point(old)[0]
        ids = [i for i, keep in zip(listed.ids, mask, strict=True) if keep]
        vectors = listed.vectors[mask]
        best: dict[tuple[str, str], float] = {}
        with self.db.read() as session:
            keys: dict[str, bytes] = {}
            for template in Templates(session).for_gallery(gallery.id):
                if template.model_key != old.key:
                    continue
                if template.subject_id not in keys:
                    keys[template.subject_id] = self.vault.subject_key(session, template.subject_id)
                vector = Vault.open_vector(
                    keys[template.subject_id], template.subject_id, template.sealed_vector
                )
                distances = _distances(np.asarray(vector)[None, :], vectors)[0]
                for objection, d in zip(ids, distances, strict=True):
                    if d <= max_distance:
                        pair = (template.subject_id, objection)
                        best[pair] = min(best.get(pair, float(d)), float(d))
        return [
            Hold(subject, objection, old.key, round(distance, 4))
            for (subject, objection), distance in sorted(best.items())
        ]

    def _other_templates(
        self, subject_ids: set[str], model_key: str, *, exclude: set[int]
    ) -> list[tuple[Vector, str, str]]:
        """The subjects' templates of ``model_key`` that are not among ``exclude`` (most
        subjects have one template, so usually none), decrypted: (vector, subject id,
        gallery id)."""
        found: list[tuple[Vector, str, str]] = []
        with self.db.read() as session:
            rows = session.scalars(
                select(TemplateRow).where(
                    TemplateRow.subject_id.in_(subject_ids), TemplateRow.model_key == model_key
                )
            ).all()
            keys: dict[str, bytes] = {}
            for row in rows:
                if row.id in exclude:
                    continue
                if row.subject_id not in keys:
                    keys[row.subject_id] = self.vault.subject_key(session, row.subject_id)
                vector = Vault.open_vector(keys[row.subject_id], row.subject_id, row.sealed_vector)
                found.append((vector, row.subject_id, row.gallery_id))
        return found


@dataclass(frozen=True, slots=True)
class Hold:
    """A subject to keep withholding after a model change (``legacy_holds``)."""

    subject_id: str
    objection_id: str
    model_key: str  # the model the match was made on
    distance: float


@dataclass(frozen=True, slots=True)
class _Found:
    match: SuppressedMatch
    erase: bool  # within the gallery model's erase distance


def _row(match: SuppressedMatch) -> list[object]:
    return [match.subject_id, match.gallery, match.distance]

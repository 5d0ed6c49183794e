"""Objection / opt-out by face: the suppression list.

A person who objects (GDPR Art 21; the ACLU v. Clearview opt-out) sends one photo. Its face
descriptor becomes a **suppression template**: sealed (AES-256-GCM) under its own data key,
wrapped for the purpose "suppression" only, never added to a gallery index and never
searched for itself. It is used in three places, always as "is this face within the
suppression distance of someone who objected?":

1. **At the objection** (``object``): every gallery template within the distance is found.
   Subjects within the stricter *erase distance* (``erase_target_fmr``, default 0.0003 →
   0.55) are erased through ``ErasureService.erase_subjects`` (cause ``objection``), one
   receipt each; the others (between 0.55 and 0.60) are not erased but listed as
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
published table in ``engine/thresholds.py`` (LFW pairs, bare dlib pipeline) to a distance:
0.005 → **0.60**, where one comparison falsely matches a stranger 0.5 % of the time (FMR)
and misses the same person 3.4 % of the time (FNMR). The other points: 0.55 → FMR 0.03 %,
FNMR 8.9 %; 0.65 → FMR 2.2 %, FNMR 2.0 %. A false match removes someone from search (or
erases their record); a miss keeps processing someone who objected, so we err towards
suppression, but not to 0.65: these are **1:1** rates and every use here is 1:N.

- Enrolment and search compare one face with M suppression templates: the chance that
  *some* objector falsely matches an unrelated face is about ``1 - (1 - FMR)^M``. At 0.60:
  5 % with 10 objectors, 39 % with 100. At 0.55: 0.3 % and 3 %. A deployment whose list
  grows past a few dozen people should lower ``target_fmr`` to 0.0003 (and accept that 8.9 %
  of objectors' photos are missed), or the list will refuse many lawful enrolments.
- An objection compares one face with the N templates of every gallery in scope: about
  ``FMR × N`` unrelated records fall under the distance (50 per 10,000 at 0.60, 3 at 0.55)
  and are erased. Erasure cannot be undone; each one has a receipt and an audit event with
  its distance, so a privacy officer can see what an objection did.
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

**Search and enrolment decrypt the list per call; nothing is cached.** Opening M templates
costs one key unwrap and one AES-GCM open each (measured: 1 ms for 100 objectors, 8 ms for
1,000, per search or enrolment; small next to 0.2–0.6 s of face detection). An in-memory
cache would have to be invalidated across API processes whenever an objection is recorded,
and a stale one would return someone who objected; not worth it at this size. Nothing about
the list is written to disk but the sealed rows.

**Not handled here.** A model migration must re-embed suppression templates, but the photo
is not kept (the rights request deletes it when it closes). Until that is built, a
suppression template of another model than the engine's is not compared at enrolment or
search, and gallery templates of another model are skipped at the objection (counted as
``templates_skipped``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from probity.domain.accounts import Action
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import QualityFloor
from probity.domain.gallery import Gallery
from probity.domain.ids import new_id
from probity.engine.images import decode_image
from probity.engine.quality import quality_reasons
from probity.engine.thresholds import threshold_for_fmr
from probity.engine.types import AnalysedFace, FaceEngine, Vector
from probity.errors import InvalidInput, NoFaceFound, ObjectionOnFile, QualityRefused
from probity.services.access import AccessGuard, Who, name_of, organisation_id_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.erasure import ErasureCause, ErasureReceipt, ErasureService
from probity.services.galleries import GalleryService
from probity.storage.db import Database
from probity.storage.repositories import SealedTemplate, Templates
from probity.storage.tables import SubjectKeyRow, SuppressionRow, TemplateRow
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
    """The one usable face of a photo (``face_of``): its descriptor, how many faces were
    detected in all, and the SHA-256 of the photo's bytes (for the audit log)."""

    descriptor: Vector
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
    """The decrypted suppression list for the engine's model: ids, owning organisation
    (None: deployment-wide) and the descriptors, shape (M, dimension)."""

    ids: tuple[str, ...]
    organisations: tuple[str | None, ...]
    vectors: NDArray[np.float64]

    def applying_to(self, gallery_organisation: str | None) -> NDArray[np.bool_]:
        """Which templates apply to a gallery owned by ``gallery_organisation``."""
        return np.array([_applies(o, gallery_organisation) for o in self.organisations], dtype=bool)


def _applies(list_organisation: str | None, gallery_organisation: str | None) -> bool:
    """A template recorded deployment-wide applies everywhere; an organisation's applies to
    its own galleries and to shared ones (the galleries its privacy officer may erase in)."""
    return (
        list_organisation is None
        or gallery_organisation is None
        or list_organisation == gallery_organisation
    )


def _aad(suppression_id: str) -> bytes:
    return b"probity/suppression-template/" + suppression_id.encode()


def _distances(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.float64]:
    """Euclidean distances between every row of ``a`` (n, d) and of ``b`` (m, d): (n, m),
    in float64 through |a|² + |b|² - 2ab, so no (n, m, d) array is built."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    squared: NDArray[np.float64] = (
        (a64**2).sum(1)[:, None] + (b64**2).sum(1)[None, :] - 2.0 * (a64 @ b64.T)
    )
    distances: NDArray[np.float64] = np.sqrt(np.maximum(squared, 0.0))
    return distances


class SuppressionService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        engine: FaceEngine,
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
        self.engine = engine
        self.galleries = galleries
        self.vault = vault
        self.erasure = erasure
        self.guard = guard
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels
        self.quality_floor = quality_floor or QualityFloor()
        self._wanted_fmr = target_fmr
        self._erase_fmr = min(erase_target_fmr or target_fmr, target_fmr)

    @cached_property
    def _operating_point(self) -> tuple[float, float]:
        # Looked up on first use, not at build time: an engine without an FMR table (an
        # operator's model) still builds; it fails only once the list has to be consulted.
        threshold = threshold_for_fmr(self.engine.model.name, self._wanted_fmr)
        assert threshold.max_distance is not None and threshold.target_fmr is not None
        return threshold.max_distance, threshold.target_fmr

    @cached_property
    def erase_distance(self) -> float:
        """The stricter distance under which an objection erases a record at once."""
        threshold = threshold_for_fmr(self.engine.model.name, self._erase_fmr)
        assert threshold.max_distance is not None
        return min(threshold.max_distance, self.max_distance)

    @property
    def max_distance(self) -> float:
        """The suppression distance: a face at or under it matches (dlib Euclidean)."""
        return self._operating_point[0]

    @property
    def target_fmr(self) -> float:
        """The tabulated 1:1 false-match rate of ``max_distance`` (LFW pairs)."""
        return self._operating_point[1]

    # -- the objection ------------------------------------------------------------------------

    def object(
        self, *, actor: Who, image: bytes, reference: str, request_id: str | None = None
    ) -> Objection:
        """Record an objection from one photo and erase every gallery subject it matches.

        ``reference`` is the privacy officer's reference for the objection (a letter, a
        rights request's receipt); ``request_id`` links it to a rights request. The photo
        must show exactly one face meeting the gallery quality floor (else NoFaceFound,
        QualityRefused or InvalidInput, and nothing is written); the photo itself is never
        stored here. The suppression template is committed (and audited as
        ``objection.record``) *before* the gallery scan, so even if the erasure fails
        half-way the person is already refused at enrolment and withheld from search.
        Needs RIGHTS_HANDLE (privacy officers; the local operator).
        """
        self.guard.check(actor, Action.RIGHTS_HANDLE)
        _ = self._operating_point  # no FMR table for the engine's model: refuse before any work
        ref = reference.strip()
        if not ref:
            raise InvalidInput("a reference for the objection is required")
        if len(ref) > 200:
            raise InvalidInput("the objection's reference is longer than 200 characters")
        decoded = decode_image(
            image, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
        )
        faces = self.engine.analyse(decoded)
        descriptor = self._one_face(faces)
        suppression_id = new_id()
        model_key = self.engine.model.key
        with self.db.transaction() as session:
            key, wrapped = self.vault.new_purpose_key(session, SUPPRESSION, suppression_id)
            data = np.ascontiguousarray(descriptor, dtype="<f4").tobytes()
            session.add(
                SuppressionRow(
                    id=suppression_id,
                    reference=ref,
                    request_id=request_id,
                    organisation_id=organisation_id_of(actor),
                    model_key=model_key,
                    sealed=Vault.seal_with(key, data, _aad(suppression_id)),
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
                        "faces": len(faces),
                        "model": model_key,
                        "max_distance": self.max_distance,
                        "target_fmr": self.target_fmr,
                    },
                ),
            )
        targets, compared, skipped, found = self._scan(actor, descriptor)
        matches = [m for m in found if m.distance <= self.erase_distance]
        withheld = [m for m in found if m.distance > self.erase_distance]
        receipts = self.erasure.erase_subjects(
            actor=actor,
            subject_ids=[m.subject_id for m in matches],
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
                subject_ids=tuple(m.subject_id for m in matches),
                details={
                    "suppression_id": suppression_id,
                    "request_id": request_id,
                    "templates_compared": compared,
                    "templates_skipped": skipped,
                    "max_distance": self.max_distance,
                    "erase_distance": self.erase_distance,
                    "matches": [[m.subject_id, m.gallery, m.distance] for m in matches],
                    "withheld": [[m.subject_id, m.gallery, m.distance] for m in withheld],
                    "receipts": [r.number for r in receipts],
                },
            )
        )
        return Objection(
            suppression_id=suppression_id,
            reference=ref,
            request_id=request_id,
            faces=len(faces),
            max_distance=self.max_distance,
            target_fmr=self.target_fmr,
            galleries=tuple(g.name for g in targets),
            templates_compared=compared,
            templates_skipped=skipped,
            matches=tuple(matches),
            receipts=receipts,
            erase_distance=self.erase_distance,
            withheld=tuple(withheld),
        )

    # -- a rights request's photo lookup (services/rights.py) ---------------------------------

    def face_of(self, image: bytes, *, what: str = "photo") -> PhotoFace:
        """The one face of ``image`` that meets the gallery quality floor, as an objection
        photo must (a poor photo falls within the distance of many strangers). Raises
        InvalidImage, NoFaceFound, QualityRefused or InvalidInput (several faces), naming
        ``what`` the photo is. Nothing is stored or audited here."""
        decoded = decode_image(
            image, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
        )
        faces = self.engine.analyse(decoded)
        return PhotoFace(self._one_face(faces, what=what), len(faces), decoded.sha256)

    def find_matches(self, *, actor: Who, descriptor: Vector) -> GalleryScan:
        """Every gallery subject within ``max_distance`` of ``descriptor``, by the same exact
        scan an objection makes (every template of every gallery ``actor`` may handle,
        decrypted and compared; see the module's note on why not the index). Stores,
        erases and audits nothing: the caller records what it did with the list. Needs
        RIGHTS_HANDLE (privacy officers; the local operator)."""
        self.guard.check(actor, Action.RIGHTS_HANDLE)
        _ = self._operating_point  # no FMR table for the engine's model: refuse before any work
        targets, compared, skipped, found = self._scan(actor, descriptor)
        return GalleryScan(tuple(g.name for g in targets), compared, skipped, tuple(found))

    # -- shared by the objection and the lookup ------------------------------------------------

    def _one_face(self, faces: list[AnalysedFace], *, what: str = "objection photo") -> Vector:
        """The descriptor of the one face meeting the quality floor, else a precise error."""
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
        return accepted[0].descriptor

    def _scan(
        self, actor: Who, descriptor: Vector
    ) -> tuple[list[Gallery], int, int, list[SuppressedMatch]]:
        """Every template of every gallery ``actor`` may erase in, decrypted and compared:
        (galleries, templates compared, templates skipped, matches sorted by distance).
        A subject appears once, at its closest template."""
        model_key = self.engine.model.key
        targets = self.galleries.all(actor)
        best: dict[str, SuppressedMatch] = {}
        compared = skipped = 0
        probe = np.asarray(descriptor, dtype=np.float64)[None, :]
        with self.db.read() as session:
            for gallery in targets:
                keys: dict[str, bytes] = {}  # this call only: never kept past the scan
                batch: list[SealedTemplate] = []
                for template in Templates(session).for_gallery(gallery.id):
                    if template.model_key != model_key:
                        skipped += 1
                        continue
                    batch.append(template)
                    if len(batch) >= SCAN_BATCH:
                        self._compare(session, gallery, batch, keys, probe, best)
                        compared, batch = compared + len(batch), []
                if batch:
                    self._compare(session, gallery, batch, keys, probe, best)
                    compared += len(batch)
        matches = sorted(best.values(), key=lambda m: (m.distance, m.subject_id))
        return targets, compared, skipped, matches

    def _compare(
        self,
        session: Session,
        gallery: Gallery,
        batch: list[SealedTemplate],
        keys: dict[str, bytes],
        probe: NDArray[np.float64],
        best: dict[str, SuppressedMatch],
    ) -> None:
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
        distances = _distances(vectors, probe)[:, 0]
        for t, d in zip(batch, distances, strict=True):
            if d <= self.max_distance:
                found = best.get(t.subject_id)
                if found is None or d < found.distance:
                    best[t.subject_id] = SuppressedMatch(t.subject_id, gallery.name, round(d, 4))

    # -- the list at enrolment and search -----------------------------------------------------

    def _load(self) -> _List:
        """The suppression list for the engine's model, decrypted for this call only."""
        model_key = self.engine.model.key
        with self.db.read() as session:
            rows = list(
                session.execute(
                    select(
                        SuppressionRow.id,
                        SuppressionRow.organisation_id,
                        SuppressionRow.sealed,
                        SuppressionRow.wrapped_key,
                    ).where(SuppressionRow.model_key == model_key)
                )
            )
        dimension = self.engine.model.dimension
        if not rows:
            return _List((), (), np.zeros((0, dimension), dtype=np.float64))
        vectors = []
        for row_id, _, sealed, wrapped in rows:
            key = self.vault.open_purpose_key(SUPPRESSION, row_id, wrapped)
            data = Vault.open_with(key, sealed, _aad(row_id))
            vectors.append(np.frombuffer(data, dtype="<f4").astype(np.float64))
        return _List(tuple(r[0] for r in rows), tuple(r[1] for r in rows), np.stack(vectors))

    def check_enrolment(
        self,
        *,
        actor: Who,
        gallery: Gallery,
        descriptor: Vector,
        reference: str,
        image_sha256: str,
    ) -> None:
        """Refuse (ObjectionOnFile, "objection on file") a face within the suppression
        distance of a template that applies to ``gallery``; audited as
        ``enrolment.refused_objection`` with the nearest template's id and distance. Call it
        before anything of the enrolment is written."""
        suppressed = self._load()
        if not suppressed.ids:
            return
        mask = suppressed.applying_to(gallery.organisation_id)
        if not mask.any():
            return
        distances = _distances(np.asarray(descriptor)[None, :], suppressed.vectors[mask])[0]
        nearest = int(np.argmin(distances))
        distance = float(distances[nearest])
        if distance > self.max_distance:
            return
        ids = [i for i, keep in zip(suppressed.ids, mask, strict=True) if keep]
        self.audit.record_alone(
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=AuditAction.ENROL_REFUSED_OBJECTION,
                galleries=(gallery.name,),
                details={
                    "subject_reference": reference,
                    "image_sha256": image_sha256,
                    "suppression_id": ids[nearest],
                    "distance": round(distance, 4),
                    "max_distance": self.max_distance,
                },
            )
        )
        raise ObjectionOnFile(
            f"{OBJECTION_MESSAGE}: the face matches the suppression list of people who "
            "objected to being processed; nothing was enrolled"
        )

    def withhold(
        self, templates: Mapping[int, SealedTemplate], vectors: Mapping[int, Vector]
    ) -> dict[int, Vector]:
        """``vectors`` (decrypted search hits, by template id) without every template of any
        subject who matches the list: a subject one of whose templates (among the hits, or
        any other of theirs) is within the suppression distance of a template applying to
        its gallery is never a candidate, at any rank or threshold. Costs one query when
        the list is empty; otherwise the list and the hit subjects' other templates are
        decrypted for this call only."""
        suppressed = self._load()
        if not suppressed.ids or not vectors:
            return dict(vectors)
        organisation: dict[str, str | None] = {
            g.id: g.organisation_id for g in self.galleries.all()
        }
        owners = {tid: (templates[tid].subject_id, templates[tid].gallery_id) for tid in vectors}
        others = self._other_templates({s for s, _ in owners.values()}, exclude=set(vectors))
        every = [(vectors[tid], *owners[tid]) for tid in vectors] + list(others)
        distances = _distances(np.stack([v for v, _, _ in every]), suppressed.vectors)
        masks: dict[str | None, NDArray[np.bool_]] = {}
        withheld: set[str] = set()
        for row, (_, subject_id, gallery_id) in enumerate(every):
            owner = organisation.get(gallery_id)  # an unknown gallery: every template applies
            if owner not in masks:
                masks[owner] = suppressed.applying_to(owner)
            if (distances[row][masks[owner]] <= self.max_distance).any():
                withheld.add(subject_id)
        return {tid: v for tid, v in vectors.items() if owners[tid][0] not in withheld}

    def _other_templates(
        self, subject_ids: set[str], *, exclude: set[int]
    ) -> list[tuple[Vector, str, str]]:
        """The subjects' templates that are not among ``exclude`` (most subjects have one
        template, so usually none), decrypted: (vector, subject id, gallery id)."""
        model_key = self.engine.model.key
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

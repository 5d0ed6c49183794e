"""Search: one probe against one or more galleries, within a case.

The probe's faces are found once, by the engine of the first gallery's model; a search over
galleries of several models embeds each face once per model (``FaceEngine.describe``). For
each face that meets the probe quality floor, each gallery's index returns its nearest
templates by cosine similarity; the service then decrypts those few templates and re-scores
them with the model's exact Euclidean distance (the scale its FMR table is on), keeps the best
template per subject, ranks by distance (by the distance's 1:1 FMR when the galleries hold
different models) and marks which candidates clear each model's threshold. The candidate
list is an investigative lead, never an identification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from probity.domain.accounts import Action
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import DetectorMode, QualityFloor
from probity.domain.gallery import Enrolment, Gallery, Subject
from probity.domain.ids import CaseId, SearchId, new_id
from probity.domain.search import (
    Candidate,
    FaceOutcome,
    FaceResult,
    SearchOutcome,
    SearchResult,
    Threshold,
)
from probity.engine.images import decode_image
from probity.engine.quality import quality_reasons
from probity.engine.registry import EngineSet
from probity.engine.thresholds import (
    FmrTable,
    distance_to_score,
    fmr_at,
    require_supported_fmr,
    threshold_for_fmr,
)
from probity.engine.types import AnalysedFace, DecodedImage
from probity.errors import CaseNotSearchable, InvalidInput, RateLimited
from probity.policy.cases import case_search_decision
from probity.policy.ratelimit import SEARCH_WINDOW_S, SearchLimits, search_rate_decision
from probity.services.access import AccessGuard, Who, name_of, organisation_id_of, organisation_of
from probity.services.audit import AuditService
from probity.services.cases import CaseService
from probity.services.clock import Clock
from probity.services.galleries import GalleryService
from probity.services.idempotency import IdempotencyService, fingerprint
from probity.services.indexes import IndexSet, IndexSlot
from probity.services.jurisdictions import JurisdictionService
from probity.services.observers import SearchObserver, observed
from probity.services.results import ResultService
from probity.services.suppression import SuppressionService
from probity.storage.casework import Probes, StoredSearches
from probity.storage.db import Database
from probity.storage.repositories import Cases, Enrolments, Searches, Subjects, Templates
from probity.storage.vault import Vault

OVERFETCH = 4
"""Templates fetched from the index per wanted candidate: a subject with several enrolments
takes several index hits, and we want ``top_k`` distinct subjects."""


@dataclass(frozen=True, slots=True)
class _Found:
    """The enrolments (by template id) and subjects (by id) behind a search's index hits."""

    enrolments: dict[int, Enrolment]
    subjects: dict[str, Subject]


@dataclass(frozen=True, slots=True)
class _Scored:
    distance: float
    template_id: int
    gallery: Gallery
    rank_key: float  # the distance (one model), or its 1:1 FMR (several models)


Described = dict[str, list[AnalysedFace | None]]
"""Per model key, each probe face (in the primary engine's order) as that model sees it;
None where the model's engine cannot align the face."""


class SearchService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        engines: EngineSet,
        cases: CaseService,
        galleries: GalleryService,
        vault: Vault,
        indexes: IndexSet,
        probe_floor: QualityFloor,
        max_upload_bytes: int,
        max_image_pixels: int,
        default_top_k: int,
        default_target_fmr: float,
        guard: AccessGuard,
        limits: SearchLimits,
        suppression: SuppressionService | None = None,
        jurisdictions: JurisdictionService | None = None,
        idempotency: IdempotencyService | None = None,
        results: ResultService | None = None,
    ) -> None:
        self.observers: list[SearchObserver] = []  # the server's metrics (observers.py)
        self.db = db
        self.idempotency = idempotency
        self.results = results
        self.audit = audit
        self.clock = clock
        self.engines = engines
        self.cases = cases
        self.galleries = galleries
        self.vault = vault
        self.indexes = indexes
        self.probe_floor = probe_floor
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels
        self.default_top_k = default_top_k
        self.default_target_fmr = default_target_fmr
        self.guard = guard
        self.limits = limits
        self.suppression = suppression
        self.jurisdictions = jurisdictions

    def search(
        self,
        *,
        actor: Who,
        case_reference: str,
        probe: bytes,
        galleries: Sequence[str] = (),
        top_k: int | None = None,
        target_fmr: float | None = None,
        threshold_off: bool = False,
        face: int | None = None,
        detector: DetectorMode | None = None,
        idempotency_key: str | None = None,
    ) -> SearchResult:
        """Search every face of ``probe`` (or only face number ``face``, 1-based, left to
        right) in the named galleries (all the actor may see, when empty). ``top_k``
        subjects per face. The probe image is kept, encrypted with the case's key, until
        the case's results are purged.

        ``target_fmr`` must be one of the model's measured operating points
        (``supported_fmrs``); any other value is refused (422), never moved to a neighbour.
        With ``idempotency_key``, a repeat of the same request by the same person returns
        the stored search instead of running (and auditing, and rate-counting) a second one
        (``services/idempotency.py``). The answer carries ``at`` and ``actor`` as a stored
        search read back does."""
        if idempotency_key is None or self.idempotency is None or self.results is None:
            return self._run(
                actor,
                case_reference,
                probe,
                galleries,
                top_k,
                target_fmr,
                threshold_off,
                face,
                detector,
            )
        results = self.results
        request = fingerprint(
            case=case_reference,
            probe=probe,
            galleries=sorted(galleries),
            top_k=top_k,
            target_fmr=target_fmr,
            threshold_off=threshold_off,
            face=face,
            detector=detector.value if detector else None,
        )
        return self.idempotency.once(
            actor=actor,
            operation="search",
            key=idempotency_key,
            request=request,
            perform=lambda: self._run(
                actor,
                case_reference,
                probe,
                galleries,
                top_k,
                target_fmr,
                threshold_off,
                face,
                detector,
            ),
            made=lambda result: str(result.id),
            replay=lambda search_id: results.get(search_id, actor=actor),
        )

    @observed
    def _run(
        self,
        actor: Who,
        case_reference: str,
        probe: bytes,
        galleries: Sequence[str],
        top_k: int | None,
        target_fmr: float | None,
        threshold_off: bool,
        face: int | None,
        detector: DetectorMode | None,
    ) -> SearchResult:
        case = self.cases.get(case_reference, actor=actor, action=Action.SEARCH_RUN)
        decision = case_search_decision(case, self.clock())
        if not decision.allowed:
            self._deny(actor, case.reference, decision.reason)
            raise CaseNotSearchable(decision.reason)
        self._check_rate(actor, case.reference)
        k = top_k or self.default_top_k
        if not 1 <= k <= 100:
            raise InvalidInput("top-k must be between 1 and 100")
        targets = self._targets(galleries, actor)
        models = {g.model.key: g.model for g in targets}  # in the order the galleries came
        tables = {key: self.engines.table(model) for key, model in models.items()}
        if target_fmr is not None and not threshold_off:
            for table in tables.values():  # a measured row of every model searched
                require_supported_fmr(table, target_fmr)
        fmr = None if threshold_off else (target_fmr or self.default_target_fmr)
        thresholds = {key: threshold_for_fmr(table, fmr) for key, table in tables.items()}
        threshold = _combined(thresholds)
        image = decode_image(
            probe, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
        )
        described = self._describe(image, list(models), detector)
        faces = [f for f in described[next(iter(models))] if f is not None]
        if face is not None and not 1 <= face <= len(faces):
            raise InvalidInput(f"face {face} does not exist: the probe shows {len(faces)} face(s)")
        chosen = [(i, f) for i, f in enumerate(faces, start=1) if face is None or i == face]
        results = self._search_faces(chosen, described, targets, k, thresholds, tables)
        outcome = _overall(results)
        result = SearchResult(
            id=SearchId(new_id()),
            case_id=CaseId(case.id),
            case_reference=case.reference,
            gallery_names=tuple(g.name for g in targets),
            probe_sha256=image.sha256,
            model_key=", ".join(models),
            threshold=threshold,
            top_k=k,
            outcome=outcome,
            faces=tuple(results),
            at=self.clock(),
            actor=name_of(actor),
        )
        blob_id = new_id()
        try:
            with self.db.transaction() as session:
                self._record(session, actor, result, image.sha256)
                self._keep_probe(session, case.id, result.id, blob_id, image.sha256, probe)
        except BaseException:
            self.vault.blobs.delete(blob_id)  # the probe must not outlive a failed search
            raise
        return result

    def _keep_probe(
        self, session: Session, case_id: str, search_id: str, blob_id: str, sha: str, probe: bytes
    ) -> None:
        key = self.vault.case_key(session, case_id)
        if key is None:  # a case opened before probes were kept
            key, wrapped = self.vault.new_case_key(session, case_id)
            Cases(session).set_wrapped_probe_key(case_id, wrapped)
        self.vault.put_probe(key, case_id, blob_id, probe)
        Probes(session).add(
            probe_id=new_id(),
            case_id=case_id,
            search_id=search_id,
            sha256=sha,
            blob_id=blob_id,
            at=self.clock(),
        )

    def _deny(self, actor: Who, case_reference: str, reason: str) -> None:
        self.audit.record_alone(
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=AuditAction.SEARCH_DENIED,
                case_reference=case_reference,
                details={"reason": reason},
            )
        )

    def _check_rate(self, actor: Who, case_reference: str) -> None:
        if isinstance(actor, str):
            return  # the local operator's batch work is not rate limited
        since = self.clock() - timedelta(seconds=SEARCH_WINDOW_S)
        with self.db.read() as session:
            searches = StoredSearches(session)
            decision = search_rate_decision(
                user_count=searches.count_since(since, user_id=actor.user_id),
                organisation_count=searches.count_since(
                    since, organisation_id=actor.organisation_id
                ),
                limits=self.limits,
            )
        if not decision.allowed:
            self._deny(actor, case_reference, decision.reason)
            raise RateLimited(decision.reason, retry_after_s=SEARCH_WINDOW_S)

    def _record(self, session: Session, actor: Who, result: SearchResult, sha: str) -> None:
        """Save the search and append its audit event (ids, distances, digest: no images)."""
        Searches(session).add(
            result,
            actor=name_of(actor),
            at=result.at or self.clock(),
            user_id=None if isinstance(actor, str) else actor.user_id,
            organisation_id=organisation_id_of(actor),
        )
        threshold = result.threshold
        self.audit.record(
            session,
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=AuditAction.SEARCH,
                case_reference=result.case_reference,
                galleries=result.gallery_names,
                subject_ids=tuple(
                    sorted({c.subject_id for f in result.faces for c in f.candidates})
                ),
                details={
                    "search_id": result.id,
                    "probe_sha256": sha,
                    "model": result.model_key,
                    "threshold": threshold.max_distance,
                    "target_fmr": threshold.target_fmr,
                    "top_k": result.top_k,
                    "outcome": result.outcome.value,
                    "faces": [
                        {
                            "face": f.index,
                            "outcome": f.outcome.value,
                            "candidates": [
                                [c.subject_id, c.enrolment_id, c.distance] for c in f.candidates
                            ],
                        }
                        for f in result.faces
                    ],
                },
            ),
        )

    def _targets(self, names: Sequence[str], actor: Who) -> list[Gallery]:
        if names:
            targets = [self.galleries.get(n, actor=actor) for n in dict.fromkeys(names)]
        else:
            targets = self.galleries.all(actor)
        if not targets:
            raise InvalidInput("there is no gallery to search: create and fill one first")
        for g in targets:
            if not self.engines.has(g.model.key):
                raise InvalidInput(
                    f"gallery '{g.name}' holds {g.model.key} templates, a model not installed "
                    f"here (installed: {', '.join(self.engines.keys())})"
                )
        return targets

    def _describe(
        self, image: DecodedImage, models: list[str], detector: DetectorMode | None
    ) -> Described:
        """The probe's faces, found once by the first model's engine, then described by
        each other model's engine from the same detections."""
        primary = self.engines.get(models[0])
        faces = primary.analyse(image, detector)
        described: Described = {models[0]: list(faces)}
        detections = [f.detection for f in faces]
        for key in models[1:]:
            engine = self.engines.get(key)
            if all(d is not None for d in detections):
                described[key] = engine.describe(image, [d for d in detections if d is not None])
            else:  # an engine that does not report its detections (a test fake)
                own = engine.analyse(image, detector)
                described[key] = list(own) if len(own) == len(faces) else [None] * len(faces)
        return described

    def _search_faces(
        self,
        faces: list[tuple[int, AnalysedFace]],
        described: Described,
        targets: list[Gallery],
        k: int,
        thresholds: dict[str, Threshold],
        tables: dict[str, FmrTable],
    ) -> list[FaceResult]:
        searchable = [(i, f) for i, f in faces if not quality_reasons(f.quality, self.probe_floor)]
        hits_per_face: dict[int, list[_Scored]] = {i: [] for i, _ in searchable}
        found = _Found({}, {})
        # Each face's descriptor under each model: (face number, model key) -> vector.
        vectors = {
            (i, key): seen[i - 1].descriptor  # type: ignore[union-attr]
            for key, seen in described.items()
            for i, _ in searchable
            if seen[i - 1] is not None
        }
        if searchable:
            raw: dict[int, list[tuple[int, Gallery]]] = {i: [] for i, _ in searchable}
            for gallery in targets:
                asked = [i for i, _ in searchable if (i, gallery.model.key) in vectors]
                if not asked:
                    continue
                queries = np.stack([vectors[(i, gallery.model.key)] for i in asked])
                per_query = self.indexes.search(
                    IndexSlot.of(gallery), queries.astype(np.float32), k * OVERFETCH
                )
                for i, hits in zip(asked, per_query, strict=True):
                    raw[i].extend((h.id, gallery) for h in hits)
            hits_per_face, found = self._rescore(searchable, raw, vectors, tables)
        return [
            self._face_result(i, f, hits_per_face.get(i), found, k, thresholds, tables)
            for i, f in faces
        ]

    def _rescore(
        self,
        searchable: list[tuple[int, AnalysedFace]],
        raw: dict[int, list[tuple[int, Gallery]]],
        probes: dict[tuple[int, str], NDArray[np.float32]],
        tables: dict[str, FmrTable],
    ) -> tuple[dict[int, list[_Scored]], _Found]:
        """Exact distances for every hit, from the decrypted templates, each on its gallery's
        model, and the enrolments and subjects behind the hits: all read in one
        transaction."""
        wanted = {tid for hits in raw.values() for tid, _ in hits}
        with self.db.read() as session:
            sealed = Templates(session).get_many(wanted)
            keys = {
                sid: self.vault.subject_key(session, sid)
                for sid in {t.subject_id for t in sealed.values()}
            }
            enrolments = Enrolments(session).by_template_ids(sealed)
            subjects = Subjects(session).get_many(e.subject_id for e in enrolments.values())
        if self.jurisdictions is not None:  # never a record from an excluded jurisdiction
            held_in = {g.id: g for hits in raw.values() for _, g in hits}
            hidden = self.jurisdictions.withheld(enrolments, held_in)
            sealed = {tid: t for tid, t in sealed.items() if tid not in hidden}
        vectors = {
            tid: Vault.open_vector(keys[t.subject_id], t.subject_id, t.sealed_vector)
            for tid, t in sealed.items()
        }
        if self.suppression is not None:  # never a candidate who objected (any rank)
            vectors = self.suppression.withhold(sealed, vectors)
        several = len(tables) > 1
        scored: dict[int, list[_Scored]] = {}
        for i, _ in searchable:
            scored[i] = []
            for tid, gallery in raw[i]:
                if tid not in vectors:  # a stale index entry without a template is ignored
                    continue
                key = gallery.model.key
                distance = float(np.linalg.norm(vectors[tid] - probes[(i, key)]))
                rank_key = fmr_at(tables[key], distance) if several else distance
                scored[i].append(_Scored(distance, tid, gallery, rank_key))
        return scored, _Found(enrolments, subjects)

    def _face_result(
        self,
        index: int,
        face: AnalysedFace,
        scored: list[_Scored] | None,
        found: _Found,
        k: int,
        thresholds: dict[str, Threshold],
        tables: dict[str, FmrTable],
    ) -> FaceResult:
        if scored is None:
            return FaceResult(
                index=index,
                box=face.box,
                quality=face.quality,
                outcome=FaceOutcome.REFUSED_QUALITY,
                refusal_reasons=tuple(quality_reasons(face.quality, self.probe_floor)),
            )
        scored = sorted(scored, key=lambda s: s.rank_key)
        scored = [s for s in scored if _within(s, thresholds[s.gallery.model.key])]
        enrolments, subjects = found.enrolments, found.subjects
        candidates: list[Candidate] = []
        seen: set[str] = set()
        for s in scored:
            enrolment = enrolments.get(s.template_id)
            if enrolment is None or enrolment.subject_id in seen:
                continue
            seen.add(enrolment.subject_id)
            subject = subjects[enrolment.subject_id]
            candidates.append(
                Candidate(
                    rank=len(candidates) + 1,
                    subject_id=subject.id,
                    subject_reference=subject.reference,
                    gallery_id=s.gallery.id,
                    gallery_name=s.gallery.name,
                    enrolment_id=enrolment.id,
                    score=distance_to_score(s.distance, tables[s.gallery.model.key].distance),
                    distance=round(s.distance, 4),
                    provenance=enrolment.provenance,
                )
            )
            if len(candidates) == k:
                break
        return FaceResult(
            index=index,
            box=face.box,
            quality=face.quality,
            outcome=(
                FaceOutcome.CANDIDATES if candidates else FaceOutcome.NO_CANDIDATE_ABOVE_THRESHOLD
            ),
            candidates=tuple(candidates),
        )


def _within(scored: _Scored, threshold: Threshold) -> bool:
    return threshold.max_distance is None or scored.distance <= threshold.max_distance


def _combined(thresholds: dict[str, Threshold]) -> Threshold:
    """The search's threshold: its one model's, or (several models) the first model's with
    every model's own distance in ``by_model``."""
    first = next(iter(thresholds.values()))
    if len(thresholds) == 1:
        return first
    return Threshold(
        target_fmr=first.target_fmr,
        max_distance=first.max_distance,
        source="; ".join(dict.fromkeys(t.source for t in thresholds.values())),
        by_model=tuple((key, t.max_distance) for key, t in thresholds.items()),
    )


def _overall(faces: list[FaceResult]) -> SearchOutcome:
    if not faces:
        return SearchOutcome.NO_FACE_FOUND
    if any(f.outcome is FaceOutcome.CANDIDATES for f in faces):
        return SearchOutcome.CANDIDATES
    return SearchOutcome.NO_CANDIDATE_ABOVE_THRESHOLD

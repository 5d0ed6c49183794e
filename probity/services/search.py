"""Search: one probe against one or more galleries, within a case.

The probe's faces are found once, by the engine of the first gallery's model; a search over
galleries of several models embeds each face once per model (``FaceEngine.describe``). For
each face that meets the probe quality floor, each gallery's index returns its nearest
templates by cosine similarity. The service then reads *every* template of the subjects behind
those hits, decrypts them, and gives each subject one fused distance (``engine/fusion.py``,
the best template by default) with the model's exact Euclidean distance, the scale its FMR
table is on. Subjects are ranked by fused distance (by the distance's 1:1 FMR when the
galleries hold different models).

Marking (``domain.search.ThresholdMode``): by default nothing is marked (investigation mode)
and each row carries how many strangers a gallery of this size is expected to hold at least
that close; with a target FPIR, rows within the distance for that FPIR at this gallery's size
are marked (``engine/thresholds.threshold_for_fpir``). A 1:1 rate is used only by
:meth:`SearchService.verify`, one probe against one named subject. The candidate list is an
investigative lead, never an identification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    ThresholdMode,
    VerifyResult,
)
from probity.engine.fusion import DEFAULT_RULE, fuse
from probity.engine.images import decode_image
from probity.engine.quality import quality_reasons
from probity.engine.registry import EngineSet
from probity.engine.thresholds import (
    FmrTable,
    distance_to_score,
    expected_strangers,
    fmr_at,
    investigation,
    threshold_for_fmr,
    threshold_for_fpir,
)
from probity.engine.types import AnalysedFace, DecodedImage
from probity.errors import (
    CaseNotSearchable,
    IntegrityError,
    InvalidInput,
    RateLimited,
    SubjectNotFound,
)
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
    """One candidate subject for one probe face: its fused distance and best template."""

    distance: float  # fused over the subject's templates of the gallery's model
    template_id: int  # the template closest to the probe (its enrolment is named)
    gallery: Gallery
    rank_key: float  # the distance (one model), or its 1:1 FMR (several models)
    fused: int  # templates fused


@dataclass(frozen=True, slots=True)
class _Size:
    """The galleries searched: people, and templates compared (N of FPIR / N)."""

    subjects: int
    templates: int


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
        default_target_fpir: float | None,
        guard: AccessGuard,
        limits: SearchLimits,
        suppression: SuppressionService | None = None,
        jurisdictions: JurisdictionService | None = None,
        idempotency: IdempotencyService | None = None,
        results: ResultService | None = None,
        verify_target_fmr: float = 1e-3,
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
        self.default_target_fpir = default_target_fpir
        self.verify_target_fmr = verify_target_fmr
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
        target_fpir: float | None = None,
        threshold_off: bool = False,
        face: int | None = None,
        detector: DetectorMode | None = None,
        idempotency_key: str | None = None,
    ) -> SearchResult:
        """Search every face of ``probe`` (or only face number ``face``, 1-based, left to
        right) in the named galleries (all the actor may see, when empty). ``top_k``
        subjects per face. The probe image is kept, encrypted with the case's key, until
        the case's results are purged.

        ``target_fpir`` (0..1) marks the rows within the distance at which a search for
        someone absent marks any row with that chance, at the searched galleries' size; None
        (and ``threshold_off``) is investigation mode, the default unless
        ``PROBITY_SEARCH__DEFAULT_TARGET_FPIR`` is set: the ranked list, nothing marked.
        ``threshold_off`` forces investigation mode whatever the default.

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
                target_fpir,
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
            target_fpir=target_fpir,
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
                target_fpir,
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
        target_fpir: float | None,
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
        size = self._size(targets)
        fpir = None if threshold_off else (target_fpir or self.default_target_fpir)
        thresholds = {
            key: (
                investigation(table, subjects=size.subjects, templates=size.templates)
                if fpir is None
                else threshold_for_fpir(
                    table, fpir, subjects=size.subjects, templates=size.templates
                )
            )
            for key, table in tables.items()
        }
        threshold = _combined(thresholds)
        image = decode_image(
            probe, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
        )
        described = self._describe(image, list(models), detector)
        faces = [f for f in described[next(iter(models))] if f is not None]
        if face is not None and not 1 <= face <= len(faces):
            raise InvalidInput(f"face {face} does not exist: the probe shows {len(faces)} face(s)")
        chosen = [(i, f) for i, f in enumerate(faces, start=1) if face is None or i == face]
        results = self._search_faces(chosen, described, targets, k, thresholds, tables, size)
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

    def verify(
        self,
        *,
        actor: Who,
        case_reference: str,
        probe: bytes,
        gallery: str,
        subject_reference: str,
        target_fmr: float | None = None,
        face: int | None = None,
        detector: DetectorMode | None = None,
    ) -> VerifyResult:
        """1:1: is the face in ``probe`` (face number ``face``, needed when it shows several)
        within the 1:1 threshold of subject ``subject_reference`` of ``gallery``? Within a case
        its searches may run under, audited (``search.verify``). Refused while the person's
        search rate is over its limit; a verify is not itself a stored search, so it does not
        add to that count (it names one subject, and the audit log holds every one).

        The subject's templates are fused as in a search (``engine/fusion.py``). The
        threshold is the distance at ``target_fmr`` (default
        ``PROBITY_SEARCH__VERIFY_TARGET_FMR``), interpolated in the model's table; a rate
        outside the table is refused (422). A subject withheld by a jurisdiction rule or an
        objection is reported as not found, as in a search it is never listed."""
        case = self.cases.get(case_reference, actor=actor, action=Action.SEARCH_RUN)
        decision = case_search_decision(case, self.clock())
        if not decision.allowed:
            self._deny(actor, case.reference, decision.reason)
            raise CaseNotSearchable(decision.reason)
        self._check_rate(actor, case.reference)
        (target,) = self._targets([gallery], actor)
        table = self.engines.table(target.model)
        threshold = threshold_for_fmr(table, target_fmr or self.verify_target_fmr)
        image = decode_image(
            probe, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
        )
        faces = [f for f in self.engines.get(target.model.key).analyse(image, detector) if f]
        if not faces:
            raise InvalidInput("no face found in the probe: nothing to verify")
        if face is None and len(faces) > 1:
            raise InvalidInput(
                f"the probe shows {len(faces)} faces: choose one with face (1 = leftmost)"
            )
        number = face or 1
        if not 1 <= number <= len(faces):
            raise InvalidInput(
                f"face {number} does not exist: the probe shows {len(faces)} face(s)"
            )
        chosen = faces[number - 1]
        reasons = quality_reasons(chosen.quality, self.probe_floor)
        if reasons:
            raise InvalidInput(
                f"face {number} is below the probe quality floor: {'; '.join(reasons)}"
            )
        subject, enrolments, vectors = self._subject_templates(target, subject_reference)
        tids = sorted(vectors)
        fused = fuse(
            chosen.descriptor,
            np.stack([vectors[t] for t in tids]),
            DEFAULT_RULE,
            unit=table.distance == "euclidean_unit",
        )
        distance = round(fused.distance, 4)
        result = VerifyResult(
            id=new_id(),
            case_reference=case.reference,
            subject_id=subject.id,
            subject_reference=subject.reference,
            gallery_name=target.name,
            model_key=target.model.key,
            probe_sha256=image.sha256,
            face=number,
            box=chosen.box,
            quality=chosen.quality,
            enrolment_id=enrolments[tids[fused.best]].id,
            distance=distance,
            score=distance_to_score(fused.distance, table.distance),
            fused=fused.count,
            threshold=threshold,
            within_threshold=threshold.max_distance is not None
            and distance <= threshold.max_distance,
            at=self.clock(),
            actor=name_of(actor),
        )
        self.audit.record_alone(
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=AuditAction.VERIFY,
                case_reference=case.reference,
                galleries=(target.name,),
                subject_ids=(subject.id,),
                details={
                    "verify_id": result.id,
                    "probe_sha256": image.sha256,
                    "model": target.model.key,
                    "face": number,
                    "target_fmr": threshold.target_fmr,
                    "threshold": threshold.max_distance,
                    "table": threshold.table_origin,
                    "distance": distance,
                    "fused": fused.count,
                    "within_threshold": result.within_threshold,
                },
            )
        )
        return result

    def _subject_templates(
        self, gallery: Gallery, reference: str
    ) -> tuple[Subject, dict[int, Enrolment], dict[int, NDArray[np.float32]]]:
        """The subject's enrolments and decrypted templates (of the gallery's model) that a
        search could list: none withheld by a jurisdiction rule or an objection."""
        missing = SubjectNotFound(f"no subject '{reference}' in gallery '{gallery.name}'")
        with self.db.read() as session:
            subject = Subjects(session).find(gallery.id, reference)
            if subject is None:
                raise missing
            sealed = {
                tid: t
                for tid, t in Templates(session).for_subjects([subject.id]).items()
                if t.model_key == gallery.model.key
            }
            enrolments = Enrolments(session).by_template_ids(sealed)
            key = self.vault.subject_key(session, subject.id) if sealed else b""
        if self.jurisdictions is not None:
            hidden = self.jurisdictions.withheld(enrolments, {gallery.id: gallery})
            sealed = {tid: t for tid, t in sealed.items() if tid not in hidden}
        vectors = {
            tid: Vault.open_vector(key, t.subject_id, t.sealed_vector)
            for tid, t in sealed.items()
            if tid in enrolments
        }
        if self.suppression is not None:
            vectors = self.suppression.withhold(sealed, vectors)
        if not vectors:
            raise missing
        return subject, enrolments, vectors

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
                    "mode": threshold.mode.value,
                    "threshold": threshold.max_distance,
                    "target_fpir": threshold.target_fpir,
                    "target_fmr": threshold.target_fmr,
                    "gallery_subjects": threshold.gallery_subjects,
                    "gallery_templates": threshold.gallery_templates,
                    "table": threshold.table_origin,
                    "unreachable": threshold.unreachable,
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

    def _size(self, targets: list[Gallery]) -> _Size:
        """People in the galleries searched, and the templates the search compares the probe
        with: the vectors in each gallery's index, exactly the comparisons made, read in O(1)
        (a COUNT over the templates table took 33 ms at 300,000 templates:
        bench/search_path_indexes.py)."""
        with self.db.read() as session:
            subjects = Subjects(session)
            people = sum(subjects.count(g.id) for g in targets)
        return _Size(
            subjects=people,
            templates=sum(self.indexes.size(IndexSlot.of(g)) for g in targets),
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
        size: _Size,
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
            hits_per_face, found = self._rescore(searchable, raw, vectors, tables, k)
        return [
            self._face_result(i, f, hits_per_face.get(i), found, k, thresholds, tables, size)
            for i, f in faces
        ]

    def _rescore(
        self,
        searchable: list[tuple[int, AnalysedFace]],
        raw: dict[int, list[tuple[int, Gallery]]],
        probes: dict[tuple[int, str], NDArray[np.float32]],
        tables: dict[str, FmrTable],
        k: int,
    ) -> tuple[dict[int, list[_Scored]], _Found]:
        """One fused distance per candidate subject, from all of the subject's decrypted
        templates of the gallery's model, and the enrolments and subjects of the candidates
        the search will show: the hits' templates name the subjects, then one read fetches
        every template of those subjects and their keys (one transaction); the names are
        read afterwards for each face's first ``k`` only (``_names``).

        Why the names come last: at 10M faces the database is larger than the page cache,
        and every row read is a random read from disk. A search ranks about ``k x
        OVERFETCH`` subjects but shows ``k``; reading the enrolment and subject rows of
        the shown ones only saves about three quarters of those reads. The exception is a
        jurisdiction rule in force: it withholds templates by their enrolment's
        jurisdiction before fusing, so then every candidate's enrolment is read first."""
        wanted = {tid for hits in raw.values() for tid, _ in hits}
        galleries = {g.id: g for hits in raw.values() for _, g in hits}
        exclusions = self.jurisdictions.exclusions() if self.jurisdictions is not None else None
        enrolments: dict[int, Enrolment] | None = None
        with self.db.read() as session:
            templates = Templates(session)
            hit_owners = {t.subject_id for t in templates.get_many(wanted).values()}
            every = sealed = templates.for_subjects(hit_owners)
            keys = self.vault.subject_keys(session, hit_owners)
            missing = hit_owners - keys.keys()
            if missing:  # a template whose subject's key is gone: as subject_key says
                raise IntegrityError(f"subject {min(missing)} has no data key (erased?)")
            sealed = {  # only the templates of a searched gallery's own model
                tid: t
                for tid, t in sealed.items()
                if t.gallery_id in galleries and t.model_key == galleries[t.gallery_id].model.key
            }
            if exclusions:  # never a record from an excluded jurisdiction
                enrolments = Enrolments(session).by_template_ids(sealed)
        if self.jurisdictions is not None and exclusions and enrolments is not None:
            hidden = self.jurisdictions.withheld(enrolments, galleries, exclusions=exclusions)
            sealed = {tid: t for tid, t in sealed.items() if tid not in hidden}
        vectors = {
            tid: Vault.open_vector(keys[t.subject_id], t.subject_id, t.sealed_vector)
            for tid, t in sealed.items()
        }
        if self.suppression is not None:  # never a candidate who objected (any rank)
            vectors = self.suppression.withhold(sealed, vectors, known=every, keys=keys)
        by_subject: dict[str, list[int]] = {}
        for tid in sorted(vectors):
            by_subject.setdefault(sealed[tid].subject_id, []).append(tid)
        several = len(tables) > 1
        scored: dict[int, list[_Scored]] = {}
        for i, _ in searchable:
            scored[i] = []
            named = {sealed[tid].subject_id for tid, _ in raw[i] if tid in vectors}
            for subject_id in sorted(named):
                tids = by_subject[subject_id]
                gallery = galleries[sealed[tids[0]].gallery_id]
                key = gallery.model.key
                fused = fuse(
                    probes[(i, key)],
                    np.stack([vectors[tid] for tid in tids]),
                    DEFAULT_RULE,
                    unit=tables[key].distance == "euclidean_unit",
                )
                rank_key = fmr_at(tables[key], fused.distance) if several else fused.distance
                scored[i].append(
                    _Scored(fused.distance, tids[fused.best], gallery, rank_key, fused.count)
                )
            scored[i].sort(key=lambda s: (s.rank_key, s.template_id))
        return scored, self._names(scored, k, enrolments)

    def _names(
        self, ranked: dict[int, list[_Scored]], k: int, enrolments: dict[int, Enrolment] | None
    ) -> _Found:
        """The enrolment and subject rows of each face's first ``k`` ranked candidates that
        have both (``_face_result`` lists exactly those). ``enrolments``: every candidate's
        enrolment, when the caller had to read them all (a jurisdiction rule in force).

        One read transaction, usually one query each for enrolments and subjects: a
        candidate whose rows are gone (erased since the vectors were read, in another
        transaction) is passed over, and the next ranked ones are read in their place."""
        found = _Found({}, {})
        asked: set[int] = set()
        with self.db.read() as session:
            rows, people = Enrolments(session), Subjects(session)
            while True:
                need = [tid for face in ranked.values() for tid in _unread(face, k, asked, found)]
                if not need:
                    return found
                asked.update(need)
                got = (
                    rows.by_template_ids(need)
                    if enrolments is None
                    else {tid: enrolments[tid] for tid in need if tid in enrolments}
                )
                found.subjects.update(
                    people.get_many({e.subject_id for e in got.values()} - found.subjects.keys())
                )
                found.enrolments.update(
                    {tid: e for tid, e in got.items() if e.subject_id in found.subjects}
                )

    def _face_result(
        self,
        index: int,
        face: AnalysedFace,
        scored: list[_Scored] | None,
        found: _Found,
        k: int,
        thresholds: dict[str, Threshold],
        tables: dict[str, FmrTable],
        size: _Size,
    ) -> FaceResult:
        if scored is None:
            return FaceResult(
                index=index,
                box=face.box,
                quality=face.quality,
                outcome=FaceOutcome.REFUSED_QUALITY,
                refusal_reasons=tuple(quality_reasons(face.quality, self.probe_floor)),
            )
        enrolments, subjects = found.enrolments, found.subjects
        candidates: list[Candidate] = []
        for s in scored:  # ranked (``_rescore``)
            enrolment = enrolments.get(s.template_id)
            if enrolment is None:  # a template without an enrolment row is ignored
                continue
            subject = subjects[enrolment.subject_id]
            table = tables[s.gallery.model.key]
            threshold = thresholds[s.gallery.model.key]
            candidates.append(
                Candidate(
                    rank=len(candidates) + 1,
                    subject_id=subject.id,
                    subject_reference=subject.reference,
                    gallery_id=s.gallery.id,
                    gallery_name=s.gallery.name,
                    enrolment_id=enrolment.id,
                    score=distance_to_score(s.distance, table.distance),
                    distance=round(s.distance, 4),
                    provenance=enrolment.provenance,
                    within_threshold=_within(s.distance, threshold),
                    fused=s.fused,
                    expected_strangers=_strangers(table, s.distance, size.templates),
                )
            )
            if len(candidates) == k:
                break
        # A target asked for (even one the table cannot reach) makes "candidates" mean "rows
        # within the threshold"; in investigation mode it means "a list".
        marks = any(t.mode is not ThresholdMode.INVESTIGATION for t in thresholds.values())
        marked = any(c.within_threshold for c in candidates)
        return FaceResult(
            index=index,
            box=face.box,
            quality=face.quality,
            outcome=(
                FaceOutcome.CANDIDATES
                if (marked if marks else candidates)
                else FaceOutcome.NO_CANDIDATE_ABOVE_THRESHOLD
            ),
            candidates=tuple(candidates),
            expected_false_candidates=round(
                sum(min(1.0, c.expected_strangers or 0.0) for c in candidates), 2
            ),
        )


def _unread(ranked: list[_Scored], k: int, asked: set[int], found: _Found) -> list[int]:
    """The template ids, in rank order, whose rows must still be read for this face to show
    ``k`` candidates: walking down the ranking, a candidate already read counts if its rows
    were found, and one not yet read is taken as if it will be found."""
    need: list[int] = []
    shown = 0
    for s in ranked:
        if shown == k:
            break
        if s.template_id not in asked:
            need.append(s.template_id)
            shown += 1
        elif s.template_id in found.enrolments:
            shown += 1
    return need


def _within(distance: float, threshold: Threshold) -> bool | None:
    """Whether a row is within the threshold; None when the threshold marks nothing
    (investigation mode, or a target the table cannot reach)."""
    if threshold.max_distance is None:
        return None
    return round(distance, 4) <= threshold.max_distance


def _strangers(table: FmrTable, distance: float, templates: int) -> float | None:
    """The row's expected strangers at least this close (None for a table too small)."""
    if len(table.points) < 2:
        return None
    return round(expected_strangers(table, distance, max(1, templates)), 4)


def _combined(thresholds: dict[str, Threshold]) -> Threshold:
    """The search's threshold: its one model's, or (several models) the first model's with
    every model's own distance in ``by_model``."""
    first = next(iter(thresholds.values()))
    if len(thresholds) == 1:
        return first
    unreachable = [t.unreachable for t in thresholds.values() if t.unreachable]
    return replace(
        first,
        source="; ".join(dict.fromkeys(t.source for t in thresholds.values())),
        by_model=tuple((key, t.max_distance) for key, t in thresholds.items()),
        unreachable="; ".join(unreachable) or None,
        table_origin=", ".join(dict.fromkeys(t.table_origin for t in thresholds.values())),
    )


def _overall(faces: list[FaceResult]) -> SearchOutcome:
    if not faces:
        return SearchOutcome.NO_FACE_FOUND
    if any(f.outcome is FaceOutcome.CANDIDATES for f in faces):
        return SearchOutcome.CANDIDATES
    return SearchOutcome.NO_CANDIDATE_ABOVE_THRESHOLD

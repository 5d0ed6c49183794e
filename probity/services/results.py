"""Reading stored searches back: the same ``SearchResult`` a search returned, rebuilt from
the saved rows, with candidates' names and provenance joined in at read time. A candidate
whose subject has since been removed from its gallery is left out (their data is gone; the
audit log still records that they were returned)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from probity.domain.accounts import Action, Resource
from probity.domain.case import Case
from probity.domain.faces import FaceBox, Quality
from probity.domain.ids import CaseId, EnrolmentId, GalleryId, SearchId, SubjectId
from probity.domain.review import CandidateRef
from probity.domain.search import (
    Candidate,
    FaceOutcome,
    FaceResult,
    SearchOutcome,
    SearchResult,
    Threshold,
    ThresholdMode,
)
from probity.engine.crops import face_crop_jpeg, upright_jpeg
from probity.engine.images import upright_size
from probity.errors import CandidateNotFound, SearchNotFound
from probity.services.access import AccessGuard, Who
from probity.services.cases import CaseService
from probity.services.jurisdictions import JurisdictionService
from probity.storage.casework import Probes, StoredSearch, StoredSearches
from probity.storage.db import Database
from probity.storage.repositories import Cases, Enrolments, Galleries, Subjects
from probity.storage.vault import Vault


@dataclass(frozen=True, slots=True)
class CandidateView:
    """One candidate of one face of a stored search, with what a compare view shows."""

    search: SearchResult
    face: FaceResult
    candidate: Candidate


def find_candidate(result: SearchResult, ref: CandidateRef) -> Candidate | None:
    """The candidate ``ref`` names in ``result``; None where its subject was removed from
    the gallery since the search (their data is gone, so they are no longer shown)."""
    face = next((f for f in result.faces if f.index == ref.face), None)
    found = face.candidates if face else ()
    return next((c for c in found if c.subject_id == ref.subject_id), None)


class ResultService:
    def __init__(
        self,
        *,
        db: Database,
        cases: CaseService,
        guard: AccessGuard,
        vault: Vault,
        max_upload_bytes: int = 25 * 1024 * 1024,
        max_image_pixels: int = 50_000_000,
        jurisdictions: JurisdictionService | None = None,
    ) -> None:
        self.db = db
        self.cases = cases
        self.guard = guard
        self.vault = vault
        # Stored images passed these limits when they came in; the same limits are applied
        # when they are decoded again for crops, so a changed setting cannot be bypassed.
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels
        # Candidates from a jurisdiction excluded since the search are left out on reading
        # back, as the purge would leave them out: hiding them now and erasing them later
        # give the same answer.
        self.jurisdictions = jurisdictions

    def _readable(self, search_id: str, actor: Who) -> tuple[StoredSearch, Case]:
        """The stored search, if ``actor`` may read its case's results (existence,
        organisation and SEARCH_READ), without rebuilding it."""
        with self.db.read() as session:
            stored = StoredSearches(session).get(search_id)
            case = Cases(session).get(stored.case_id) if stored else None
        if stored is None or case is None or not self.guard.sees(actor, case.organisation_id):
            raise SearchNotFound(f"no search with id '{search_id}'")
        self.guard.check(actor, Action.SEARCH_READ, Resource(case.organisation_id))
        return stored, case

    def get(self, search_id: str, *, actor: Who) -> SearchResult:
        """One stored search, if ``actor`` may read its case's results."""
        stored, case = self._readable(search_id, actor)
        return self.rebuild(case, [stored])[0]

    def probe_image(self, search_id: str, *, actor: Who) -> bytes:
        """The search's probe image as uploaded, decrypted with its case's key, for someone
        who may read the search's results."""
        return self._probe(self._readable(search_id, actor)[0])

    def probe_jpeg(self, search_id: str, *, actor: Who) -> bytes:
        """The probe as an upright JPEG (the page shows it with the faces boxed)."""
        return upright_jpeg(
            self.probe_image(search_id, actor=actor),
            max_bytes=self.max_upload_bytes,
            max_pixels=self.max_image_pixels,
        )

    def probe_size(self, search_id: str, *, actor: Who) -> tuple[int, int]:
        """(width, height) of the upright probe in pixels, the frame of the face boxes, read
        from the image header only."""
        return upright_size(self.probe_image(search_id, actor=actor))

    def _probe(self, stored: StoredSearch) -> bytes:
        with self.db.read() as session:
            blob = Probes(session).blob_for_search(stored.id)
            key = self.vault.case_key(session, stored.case_id)
        if blob is None or key is None:
            raise SearchNotFound(f"search '{stored.id}' has no stored probe")
        return self.vault.get_probe(key, stored.case_id, blob)

    def face(self, search_id: str, face: int, *, actor: Who) -> tuple[SearchResult, FaceResult]:
        """One face of a stored search (numbered from 1, left to right)."""
        result = self.get(search_id, actor=actor)
        found = next((f for f in result.faces if f.index == face), None)
        if found is None:
            raise CandidateNotFound(f"search '{search_id}' has no face {face}")
        return result, found

    def candidate(self, search_id: str, face: int, subject_id: str, *, actor: Who) -> CandidateView:
        """One candidate of one face, for the compare view. A subject removed from its
        gallery since the search is no longer a candidate here (their data is gone)."""
        result, found = self.face(search_id, face, actor=actor)
        match = next((c for c in found.candidates if c.subject_id == subject_id), None)
        if match is None:
            raise CandidateNotFound(
                f"subject {subject_id} is not a candidate for face {face} of this search"
            )
        return CandidateView(result, found, match)

    def candidates_for(
        self, refs: Iterable[CandidateRef], *, actor: Who
    ) -> list[tuple[SearchResult, CandidateRef, Candidate]]:
        """The candidate each ref names, with its search (each search read once), in the
        order given; refs whose subject was removed since are left out."""
        searches: dict[str, SearchResult] = {}
        out = []
        for ref in refs:
            if ref.search_id not in searches:
                searches[ref.search_id] = self.get(ref.search_id, actor=actor)
            result = searches[ref.search_id]
            candidate = find_candidate(result, ref)
            if candidate is not None:
                out.append((result, ref, candidate))
        return out

    def probe_face_jpeg(self, search_id: str, face: int, *, actor: Who) -> bytes:
        """A JPEG crop of one face of the probe (decrypted for this call only)."""
        _, found = self.face(search_id, face, actor=actor)
        return self._crop(self.probe_image(search_id, actor=actor), found.box)

    def candidate_face_jpeg(
        self, search_id: str, face: int, subject_id: str, *, actor: Who
    ) -> bytes:
        """A JPEG crop of the face in the gallery image that matched: the enrolment the
        candidate's score came from. Only a candidate of a search the actor may read can be
        shown this way; there is no route to browse gallery images otherwise."""
        view = self.candidate(search_id, face, subject_id, actor=actor)
        enrolment_id = view.candidate.enrolment_id
        with self.db.read() as session:
            enrolment = Enrolments(session).get_many([enrolment_id]).get(enrolment_id)
            blob = Enrolments(session).image_blob(enrolment_id)
            key = self.vault.subject_key(session, subject_id) if enrolment and blob else None
        if enrolment is None or blob is None or key is None:
            raise CandidateNotFound(f"the enrolment {enrolment_id} is no longer stored")
        image = self.vault.get_image(key, subject_id, blob)
        return self._crop(image, enrolment.box)

    def _crop(self, image: bytes, box: FaceBox) -> bytes:
        return face_crop_jpeg(
            image, box, max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels
        )

    def for_case(
        self, case_reference: str, *, actor: Who, action: Action = Action.SEARCH_READ
    ) -> tuple[Case, list[SearchResult]]:
        """Every search of a case, oldest first."""
        case = self.cases.get(case_reference, actor=actor, action=action)
        with self.db.read() as session:
            stored = StoredSearches(session).for_case(case.id)
        return case, self.rebuild(case, stored)

    def rebuild(self, case: Case, stored: list[StoredSearch]) -> list[SearchResult]:
        """Join names and provenance into stored searches (three queries, and one for the
        jurisdiction rules when candidates were found)."""
        candidates = [c for s in stored for c in s.candidates]
        with self.db.read() as session:
            enrolments = Enrolments(session).get_many(c.enrolment_id for c in candidates)
            subjects = Subjects(session).get_many(c.subject_id for c in candidates)
            every = Galleries(session).all()
        galleries: dict[str, str] = {g.id: g.name for g in every}
        hidden = (
            self.jurisdictions.withheld(enrolments, {g.id: g for g in every})
            if self.jurisdictions is not None
            else set()
        )
        out = []
        for s in stored:
            faces = []
            for f in s.faces:
                index = int(f["index"])
                found = []
                for c in s.candidates:
                    enrolment = enrolments.get(c.enrolment_id)
                    subject = subjects.get(c.subject_id)
                    if c.face != index or enrolment is None or subject is None:
                        continue
                    if c.enrolment_id in hidden:  # collected where a rule now excludes
                        continue
                    found.append(
                        Candidate(
                            rank=c.rank,
                            subject_id=SubjectId(c.subject_id),
                            subject_reference=subject.reference,
                            gallery_id=GalleryId(c.gallery_id),
                            gallery_name=galleries.get(c.gallery_id, "?"),
                            enrolment_id=EnrolmentId(c.enrolment_id),
                            score=c.score,
                            distance=c.distance,
                            provenance=enrolment.provenance,
                            within_threshold=c.within_threshold,
                            fused=c.fused,
                            expected_strangers=c.expected_strangers,
                        )
                    )
                faces.append(
                    FaceResult(
                        index=index,
                        box=FaceBox.from_list(f["box"]),
                        quality=Quality.from_dict(f["quality"]),
                        outcome=FaceOutcome(f["outcome"]),
                        candidates=tuple(found),
                        refusal_reasons=tuple(f.get("refusal_reasons", ())),
                        expected_false_candidates=_expected_false(found),
                    )
                )
            t = s.threshold
            out.append(
                SearchResult(
                    id=SearchId(s.id),
                    case_id=CaseId(case.id),
                    case_reference=case.reference,
                    gallery_names=tuple(s.galleries),
                    probe_sha256=s.probe_sha256,
                    model_key=s.model_key,
                    threshold=stored_threshold(t),
                    top_k=s.top_k,
                    outcome=SearchOutcome(s.outcome),
                    faces=tuple(faces),
                    at=s.at,
                    actor=s.actor,
                )
            )
        return out


def stored_threshold(t: dict[str, Any]) -> Threshold:
    """A stored search's threshold. Searches saved before the 1:N operating point have no
    ``mode``: they marked (and kept only) rows within a 1:1 FMR threshold, so they read back
    as ``fmr`` mode, which is what they were; with the threshold off, as investigation."""
    legacy = ThresholdMode.FMR if t.get("max_distance") is not None else ThresholdMode.INVESTIGATION
    return Threshold(
        target_fmr=t.get("target_fmr"),
        max_distance=t.get("max_distance"),
        source=t["source"],
        by_model=tuple((str(k), d) for k, d in t.get("by_model", ())),
        mode=ThresholdMode(t.get("mode", legacy)),
        target_fpir=t.get("target_fpir"),
        gallery_subjects=t.get("gallery_subjects"),
        gallery_templates=t.get("gallery_templates"),
        unreachable=t.get("unreachable"),
        table_origin=t.get("table_origin", "shipped"),
    )


def _expected_false(candidates: list[Candidate]) -> float | None:
    """The list's expected rows by chance, recomputed from the stored rows (None for rows
    saved before the figure was kept)."""
    if any(c.expected_strangers is None for c in candidates):
        return None
    return round(sum(min(1.0, c.expected_strangers or 0.0) for c in candidates), 2)

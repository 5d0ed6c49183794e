"""Repositories for what a case accumulates: stored searches read back, probe images and
reviews, and the purge that takes them all away when an authorisation is rejected."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from probity.domain.review import CandidateRef, Review, ReviewDecision
from probity.storage.tables import (
    ProbeRow,
    ReviewRow,
    SearchCandidateRow,
    SearchRow,
)


@dataclass(frozen=True, slots=True)
class StoredCandidate:
    face: int
    rank: int
    subject_id: str
    gallery_id: str
    enrolment_id: str
    score: float
    distance: float
    within_threshold: bool | None = None
    fused: int = 1
    expected_strangers: float | None = None


@dataclass(frozen=True, slots=True)
class StoredSearch:
    """A search as saved: the faces as JSON dicts (index, box, quality, outcome, refusal
    reasons) and the candidates by id only; the service joins the names back in."""

    id: str
    case_id: str
    at: datetime
    actor: str
    user_id: str | None
    organisation_id: str | None
    probe_sha256: str
    galleries: list[str]
    model_key: str
    threshold: dict[str, Any]
    top_k: int
    outcome: str
    faces: list[dict[str, Any]]
    candidates: list[StoredCandidate]


def _stored(row: SearchRow, candidates: list[StoredCandidate]) -> StoredSearch:
    return StoredSearch(
        id=row.id,
        case_id=row.case_id,
        at=row.at,
        actor=row.actor,
        user_id=row.user_id,
        organisation_id=row.organisation_id,
        probe_sha256=row.probe_sha256,
        galleries=list(row.galleries),
        model_key=row.model_key,
        threshold=dict(row.threshold),
        top_k=row.top_k,
        outcome=row.outcome,
        faces=list(row.faces),
        candidates=candidates,
    )


def _candidate(row: SearchCandidateRow) -> StoredCandidate:
    return StoredCandidate(
        face=row.face_index,
        rank=row.rank,
        subject_id=row.subject_id,
        gallery_id=row.gallery_id,
        enrolment_id=row.enrolment_id,
        score=row.score,
        distance=row.distance,
        within_threshold=row.within_threshold,
        fused=row.fused,
        expected_strangers=row.expected_strangers,
    )


class StoredSearches:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, search_id: str) -> StoredSearch | None:
        row = self.s.get(SearchRow, search_id)
        if row is None:
            return None
        found = self.s.scalars(
            select(SearchCandidateRow)
            .where(SearchCandidateRow.search_id == search_id)
            .order_by(SearchCandidateRow.face_index, SearchCandidateRow.rank)
        )
        return _stored(row, [_candidate(c) for c in found])

    def for_case(self, case_id: str) -> list[StoredSearch]:
        """The case's searches, oldest first, with their candidates (two queries)."""
        rows = list(
            self.s.scalars(
                select(SearchRow)
                .where(SearchRow.case_id == case_id)
                .order_by(SearchRow.at, SearchRow.id)
            )
        )
        by_search: dict[str, list[StoredCandidate]] = {r.id: [] for r in rows}
        if rows:
            found = self.s.scalars(
                select(SearchCandidateRow)
                .where(SearchCandidateRow.search_id.in_(list(by_search)))
                .order_by(SearchCandidateRow.face_index, SearchCandidateRow.rank)
            )
            for c in found:
                by_search[c.search_id].append(_candidate(c))
        return [_stored(r, by_search[r.id]) for r in rows]

    def count_since(
        self, since: datetime, *, user_id: str | None = None, organisation_id: str | None = None
    ) -> int:
        """Searches run since ``since`` by one user or one organisation (rate limits)."""
        query = select(func.count()).select_from(SearchRow).where(SearchRow.at >= since)
        if user_id is not None:
            query = query.where(SearchRow.user_id == user_id)
        if organisation_id is not None:
            query = query.where(SearchRow.organisation_id == organisation_id)
        return int(self.s.scalar(query) or 0)

    def purge_case(self, case_id: str) -> tuple[int, list[str]]:
        """Delete the case's searches, candidates, reviews and probe rows. Returns the number
        of searches deleted and the probe blob ids, which the caller deletes from the blob
        store once the transaction has committed."""
        ids = list(self.s.scalars(select(SearchRow.id).where(SearchRow.case_id == case_id)))
        blobs = list(self.s.scalars(select(ProbeRow.blob_id).where(ProbeRow.case_id == case_id)))
        self.s.execute(delete(ProbeRow).where(ProbeRow.case_id == case_id))
        if ids:
            self.s.execute(delete(ReviewRow).where(ReviewRow.search_id.in_(ids)))
            self.s.execute(delete(SearchCandidateRow).where(SearchCandidateRow.search_id.in_(ids)))
            self.s.execute(delete(SearchRow).where(SearchRow.id.in_(ids)))
        self.s.flush()
        return len(ids), blobs


class Probes:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(
        self,
        *,
        probe_id: str,
        case_id: str,
        search_id: str,
        sha256: str,
        blob_id: str,
        at: datetime,
    ) -> None:
        self.s.add(
            ProbeRow(
                id=probe_id,
                case_id=case_id,
                search_id=search_id,
                sha256=sha256,
                blob_id=blob_id,
                created_at=at,
            )
        )
        self.s.flush()

    def blob_for_search(self, search_id: str) -> str | None:
        return self.s.scalars(
            select(ProbeRow.blob_id).where(ProbeRow.search_id == search_id)
        ).first()

    def count(self, case_id: str | None = None) -> int:
        query = select(func.count()).select_from(ProbeRow)
        if case_id is not None:
            query = query.where(ProbeRow.case_id == case_id)
        return int(self.s.scalar(query) or 0)


def _review(row: ReviewRow) -> Review:
    return Review(
        id=row.id,
        candidate=CandidateRef(row.search_id, row.face_index, row.subject_id),
        reviewer_id=row.reviewer_id,
        reviewer=row.reviewer,
        decision=ReviewDecision(row.decision),
        note=row.note,
        at=row.at,
    )


class Reviews:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, review: Review) -> None:
        c = review.candidate
        self.s.add(
            ReviewRow(
                id=review.id,
                search_id=c.search_id,
                face_index=c.face,
                subject_id=c.subject_id,
                reviewer_id=review.reviewer_id,
                reviewer=review.reviewer,
                decision=review.decision.value,
                note=review.note,
                at=review.at,
            )
        )
        self.s.flush()

    def for_candidate(self, candidate: CandidateRef) -> list[Review]:
        rows = self.s.scalars(
            select(ReviewRow)
            .where(
                ReviewRow.search_id == candidate.search_id,
                ReviewRow.face_index == candidate.face,
                ReviewRow.subject_id == candidate.subject_id,
            )
            .order_by(ReviewRow.at, ReviewRow.id)
        )
        return [_review(r) for r in rows]

    def for_searches(self, search_ids: Iterable[str]) -> list[Review]:
        ids = list(search_ids)
        if not ids:
            return []
        rows = self.s.scalars(
            select(ReviewRow)
            .where(ReviewRow.search_id.in_(ids))
            .order_by(ReviewRow.at, ReviewRow.id)
        )
        return [_review(r) for r in rows]

"""Reviews of candidates and the two-person rule.

A candidate (one subject on one face's list in one search) is only ever an investigative
lead. People review it: *possible match*, *not a match* or *inconclusive*, each with a note.
It becomes a **lead** when two different people have each recorded *possible match*, and
neither could see the other's decision before recording their own (AI Act Art 14(5): no
action on a result unless separately verified by at least two natural persons).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

CONFIRMATIONS_FOR_LEAD = 2
"""Distinct reviewers who must each record *possible match* before a candidate is a lead."""


class ReviewDecision(StrEnum):
    POSSIBLE_MATCH = "possible_match"
    NOT_A_MATCH = "not_a_match"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class CandidateRef:
    """Which candidate a review is about: a subject on one face's list of one search."""

    search_id: str
    face: int
    subject_id: str


@dataclass(frozen=True, slots=True)
class Review:
    id: str
    candidate: CandidateRef
    reviewer_id: str
    reviewer: str  # username, as shown to people
    decision: ReviewDecision
    note: str
    at: datetime


def is_lead(reviews: Iterable[Review]) -> bool:
    """True when at least two *different* reviewers recorded *possible match*. A reviewer's
    later *not a match* does not undo another reviewer's confirmation; one person can never
    make a lead alone, however many times they are asked."""
    confirming = {r.reviewer_id for r in reviews if r.decision is ReviewDecision.POSSIBLE_MATCH}
    return len(confirming) >= CONFIRMATIONS_FOR_LEAD

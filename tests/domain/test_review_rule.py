"""The two-person rule as a pure function."""

from __future__ import annotations

from datetime import UTC, datetime

from probity.domain.review import CandidateRef, Review, ReviewDecision, is_lead
from probity.policy.ratelimit import SearchLimits, login_allowed, search_rate_decision

REF = CandidateRef("s1", 1, "subject-1")
AT = datetime(2026, 11, 22, tzinfo=UTC)


def review(who: str, decision: ReviewDecision) -> Review:
    return Review(f"r-{who}-{decision}", REF, who, who, decision, "", AT)


P, N, UNSURE = (
    ReviewDecision.POSSIBLE_MATCH,
    ReviewDecision.NOT_A_MATCH,
    ReviewDecision.INCONCLUSIVE,
)


def test_one_person_never_makes_a_lead() -> None:
    assert not is_lead([])
    assert not is_lead([review("a", P)])
    assert not is_lead([review("a", P), review("a", P), review("a", P)])


def test_two_different_confirmations_make_a_lead() -> None:
    assert is_lead([review("a", P), review("b", P)])
    assert is_lead([review("a", P), review("c", N), review("b", P)])


def test_other_decisions_do_not_confirm() -> None:
    assert not is_lead([review("a", P), review("b", N)])
    assert not is_lead([review("a", P), review("b", UNSURE)])
    assert not is_lead([review("a", UNSURE), review("b", UNSURE)])


def test_search_rate_decisions() -> None:
    limits = SearchLimits(per_user=2, per_organisation=5)
    assert search_rate_decision(user_count=1, organisation_count=4, limits=limits).allowed
    user = search_rate_decision(user_count=2, organisation_count=0, limits=limits)
    assert not user.allowed and "per person" in user.reason
    org = search_rate_decision(user_count=0, organisation_count=5, limits=limits)
    assert not org.allowed and "per organisation" in org.reason


def test_login_allowance() -> None:
    assert login_allowed(4, max_failures=5).allowed
    assert not login_allowed(5, max_failures=5).allowed

"""Rate limits as pure decisions over counts the caller has taken.

Searches are limited per person and per organisation over a sliding 60 s window, counted from
the ``searches`` table, so the limit holds across several API processes sharing one database.
Two searches that start in the same instant may both pass the count before either is written;
a limit can therefore be exceeded by at most the number of requests in flight, which is
acceptable for a limit whose purpose is to stop bulk trawling, not to meter billing.
"""

from __future__ import annotations

from dataclasses import dataclass

from probity.policy.decision import Decision

SEARCH_WINDOW_S = 60


@dataclass(frozen=True, slots=True)
class SearchLimits:
    per_user: int  # searches per person per window
    per_organisation: int  # searches per organisation per window


def search_rate_decision(
    *, user_count: int, organisation_count: int, limits: SearchLimits
) -> Decision:
    """Allow a search unless the person or their organisation has used up the window."""
    if user_count >= limits.per_user:
        return Decision.deny(
            f"search rate limit: at most {limits.per_user} searches per person in "
            f"{SEARCH_WINDOW_S} s"
        )
    if organisation_count >= limits.per_organisation:
        return Decision.deny(
            f"search rate limit: at most {limits.per_organisation} searches per organisation "
            f"in {SEARCH_WINDOW_S} s"
        )
    return Decision.allow()


def login_allowed(recent_failures: int, *, max_failures: int) -> Decision:
    """Refuse further login attempts once ``max_failures`` failed in the current window."""
    if recent_failures >= max_failures:
        return Decision.deny("too many failed logins; wait before trying again")
    return Decision.allow()

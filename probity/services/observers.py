"""Observers of finished searches: how the server's metrics count every search in one place.

The web pages and the API both call ``SearchService.search``; the service tells its
observers about each search it ran (its outcome and wall time) or refused (the error's
code), so that a page search and an API search are counted alike and no route counts on
its own. An idempotent replay of a stored search runs nothing and is not counted again.
Observers must be quick and must not raise: they run on the request's thread.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from probity.domain.search import SearchResult
from probity.errors import ProbityError

SearchObserver = Callable[[str, float | None], None]
"""Called with (outcome or error code, seconds; None for a refused search)."""

P = ParamSpec("P")


class Observed(Protocol):
    observers: list[SearchObserver]


S = TypeVar("S", bound=Observed)


def observed(
    method: Callable[Concatenate[S, P], SearchResult],
) -> Callable[Concatenate[S, P], SearchResult]:
    """Wrap the method that runs a search so that ``self.observers`` hear how it ended."""

    @functools.wraps(method)
    def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> SearchResult:
        started = time.perf_counter()
        try:
            result = method(self, *args, **kwargs)
        except ProbityError as exc:
            for observer in self.observers:
                observer(exc.code, None)
            raise
        elapsed = time.perf_counter() - started
        for observer in self.observers:
            observer(result.outcome.value, elapsed)
        return result

    return run

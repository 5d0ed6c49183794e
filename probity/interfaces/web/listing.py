"""Paging and a text filter for the pages' lists (cases, searches, rights requests, erasure
receipts, the review queue), so a list of a thousand rows is a page of ``PER_PAGE`` with a
box to narrow it. The services return the whole list the person may see (their access rules
already applied); this only chooses what one page shows, as the audit log's pager does.

The filter is a case-insensitive substring match over the text a page names for each row
(its reference, offence, status...): what an examiner types is what they read in the row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlencode

T = TypeVar("T")

PER_PAGE = 25
MAX_QUERY = 200


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    rows: list[T]
    total: int  # rows matching the filter, all pages
    page: int  # 1-based
    pages: int
    q: str
    param: str = "page"  # the query parameter naming the page (two lists on one page)
    keep: tuple[tuple[str, str], ...] = ()  # the page's other choices (status, cause...)

    @property
    def first_index(self) -> int:
        return (self.page - 1) * PER_PAGE + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.rows) - 1 if self.rows else 0

    def link(self, page: int) -> str:
        """The query string for ``page`` of this list, keeping the filter."""
        query: dict[str, str | int] = {k: v for k, v in self.keep if v}
        query[self.param] = page
        if self.q:
            query["q"] = self.q
        return urlencode(query)


def matching(items: Sequence[T], q: str, text: Callable[[T], str]) -> list[T]:
    """The ``items`` whose ``text`` holds ``q`` (case-insensitive); all for an empty ``q``."""
    wanted = q.strip()[:MAX_QUERY].casefold()
    return [i for i in items if wanted in text(i).casefold()] if wanted else list(items)


def listing(
    items: Sequence[T],
    *,
    page: int,
    q: str,
    text: Callable[[T], str],
    param: str = "page",
    per_page: int = PER_PAGE,
    keep: Mapping[str, str] | None = None,
) -> Listing[T]:
    """Page ``page`` (clamped to the last) of ``items`` whose ``text`` holds ``q``;
    ``keep``: the page's other query parameters, kept in its page links and filter."""
    q = q.strip()[:MAX_QUERY]
    found = matching(items, q, text)
    pages = max(1, -(-len(found) // per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    kept = tuple(sorted((keep or {}).items()))
    return Listing(found[start : start + per_page], len(found), page, pages, q, param, kept)

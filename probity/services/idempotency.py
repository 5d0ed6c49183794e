"""Idempotency keys: a retried or doubled request makes its effect once.

A client (the API's ``Idempotency-Key`` header, the search page's hidden field generated per
page load) names a request with a key of its choosing. The first request with a key
*reserves* it (a row with no result yet), does the work, then records the id of what it made.
A repeat by the same person with the same request gets that same thing back (the stored
search is read again, not run again: one search, one audit event, one count against the
rate limit). A repeat with a *different* request is refused (422), since answering with the
first result would be a lie and running the second would make the key mean two things.

Keys are per person (another person's key never collides with yours) and per operation. A
repeat that arrives while the first attempt is still running gets 409 ``idempotency_in_progress``
(retry shortly), not a second run. A failed first attempt releases its key, so a retry after
an error runs again. Keys last ``KEY_LIFETIME`` (24 h, as common payment APIs keep them); a
reservation left by a crashed process is taken over after ``STALE_RESERVATION``.

The row holds ids and a SHA-256 digest of the request, never the request itself (no probe,
no image, no subject reference), so an erasure has nothing here to reach.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from probity.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidInput
from probity.services.access import Who
from probity.services.clock import Clock
from probity.storage.db import Database
from probity.storage.tables import IdempotencyKeyRow

T = TypeVar("T")

KEY_LIFETIME = timedelta(hours=24)
STALE_RESERVATION = timedelta(minutes=10)
"""A reservation older than this with no result is taken to be from a process that died
(a search takes seconds; the slowest real-model search measured well under a minute)."""
MAX_KEY_LENGTH = 200


def fingerprint(**parts: object) -> str:
    """SHA-256 of the request's parts (bytes are hashed first), in a canonical JSON form."""
    canonical = {
        k: hashlib.sha256(v).hexdigest() if isinstance(v, bytes) else v
        for k, v in sorted(parts.items())
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


def actor_key(actor: Who) -> str:
    """Who a key belongs to: the account id for people, the name for the local operator."""
    return f"local:{actor}" if isinstance(actor, str) else f"user:{actor.user_id}"


class IdempotencyService:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def once(
        self,
        *,
        actor: Who,
        operation: str,
        key: str,
        request: str,
        perform: Callable[[], T],
        made: Callable[[T], str],
        replay: Callable[[str], T],
    ) -> T:
        """``perform()`` once for (``actor``, ``operation``, ``key``); a repeat with the same
        ``request`` digest gets ``replay(id)`` of what the first one ``made``."""
        key = key.strip()
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidInput(f"an idempotency key is 1 to {MAX_KEY_LENGTH} printable characters")
        who = actor_key(actor)
        reserved_at = self.clock()
        existing = self._reserve(who, operation, key, request, reserved_at)
        if existing is not None:
            if existing.fingerprint != request:
                raise IdempotencyKeyReused(
                    "this idempotency key was already used for a different request; "
                    "use a new key for a new request"
                )
            if existing.resource_id is None:
                raise IdempotencyInProgress(
                    "the first request with this idempotency key is still running; "
                    "retry in a few seconds"
                )
            return replay(existing.resource_id)
        try:
            result = perform()
        except BaseException:
            self._release(who, operation, key)
            raise
        with self.db.transaction() as session:
            row = session.get(IdempotencyKeyRow, (who, operation, key))
            # Only our own reservation: one taken over as abandoned belongs to the retry.
            if row is not None and row.resource_id is None and row.created_at == reserved_at:
                row.resource_id = made(result)
        return result

    def _reserve(
        self, who: str, operation: str, key: str, request: str, now: datetime
    ) -> IdempotencyKeyRow | None:
        """None when this call reserved the key; else the row already there."""
        try:
            with self.db.transaction() as session:
                row = session.get(IdempotencyKeyRow, (who, operation, key))
                if row is not None:
                    expired = row.created_at < now - KEY_LIFETIME
                    abandoned = row.resource_id is None and row.created_at < now - (
                        STALE_RESERVATION
                    )
                    if not (expired or abandoned):
                        session.expunge(row)
                        return row
                    session.delete(row)
                    session.flush()
                session.add(
                    IdempotencyKeyRow(
                        actor=who,
                        operation=operation,
                        key=key,
                        fingerprint=request,
                        resource_id=None,
                        created_at=now,
                    )
                )
        except IntegrityError:
            # Another process reserved it between our read and our insert (PostgreSQL; on
            # SQLite the write lock serialises the two): theirs is the first request.
            with self.db.read() as session:
                row = session.get(IdempotencyKeyRow, (who, operation, key))
                if row is None:
                    raise
                session.expunge(row)
                return row
        return None

    def _release(self, who: str, operation: str, key: str) -> None:
        with self.db.transaction() as session:
            session.execute(
                delete(IdempotencyKeyRow).where(
                    IdempotencyKeyRow.actor == who,
                    IdempotencyKeyRow.operation == operation,
                    IdempotencyKeyRow.key == key,
                    IdempotencyKeyRow.resource_id.is_(None),
                )
            )

    def prune(self) -> int:
        """Forget keys older than ``KEY_LIFETIME``; returns how many."""
        with self.db.transaction() as session:
            old = list(
                session.scalars(
                    select(IdempotencyKeyRow).where(
                        IdempotencyKeyRow.created_at < self.clock() - KEY_LIFETIME
                    )
                )
            )
            for row in old:
                session.delete(row)
        return len(old)

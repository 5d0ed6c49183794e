"""Web logins: argon2 passwords, server-side sessions with a CSRF token, and a login rate
limit.

- A session token is 32 random bytes (URL-safe text) sent as an HttpOnly cookie; only its
  sha256 is stored, so someone who can read the database cannot ride a session.
- Each session has its own CSRF token: every unsafe request made with the cookie must echo it
  in the ``X-CSRF-Token`` header (the API checks this; API keys need no CSRF token because a
  browser never sends them by itself).
- An unknown username costs one argon2 verification, like a wrong password, so response time
  does not reveal which usernames exist.
- Failed logins are counted over a moving window (``server.login_window_s``) by the
  ``limits`` library, under two independent keys: the username *from this address* (at most
  ``server.login_attempts``) and the address alone (CLIENT_ALLOWANCE times as many, across
  every username). Past either, attempts from that address are refused with 429 before any
  password is checked. A success clears nothing: signing in to one's own account between
  guesses must not buy more guesses. A lock-out cannot be used to keep someone out for ever:
  it holds only for the address that failed, and it decays as failures leave the window, so
  the owner signs in from their own desk while an attacker elsewhere is refused.
- The counts live in ``server.login_limit_storage`` (a ``limits`` storage URI): in this
  process's memory by default, where several API processes each keep their own and so
  multiply the allowance by the process count; ``redis://`` or ``memcached://`` shares them.
- Deactivated accounts cannot sign in, and their open sessions stop working at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from probity.domain.accounts import Actor
from probity.domain.audit import AuditAction, AuditRecord
from probity.errors import RateLimited, Unauthenticated
from probity.policy.ratelimit import login_allowed
from probity.services.accounts import actor_for
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.storage.accounts import Organisations, Sessions, Users
from probity.storage.db import Database
from probity.storage.tables import SessionRow


@dataclass(frozen=True, slots=True)
class Login:
    token: str  # the session cookie's value; shown once, stored hashed
    csrf_token: str
    actor: Actor
    expires_in_s: int


class FailureLimiter:
    """Failed attempts per key over a moving window (``limits``' moving-window strategy)."""

    def __init__(self, window_s: int, storage_uri: str = "memory://") -> None:
        self.window_s = window_s
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def _item(self, limit: int) -> RateLimitItem:
        return RateLimitItemPerSecond(limit, self.window_s)

    def count(self, key: str, limit: int) -> int:
        """Failures of ``key`` in the window (up to ``limit``)."""
        stats = self._limiter.get_window_stats(self._item(limit), "login", key)
        return limit - stats.remaining

    def retry_after(self, key: str, limit: int) -> int:
        """Seconds until ``key`` has an attempt again (at least 1)."""
        stats = self._limiter.get_window_stats(self._item(limit), "login", key)
        return max(1, int(stats.reset_time - time.time()) + 1)

    def add(self, key: str, limit: int) -> None:
        self._limiter.hit(self._item(limit), "login", key)


CLIENT_ALLOWANCE = 4
"""A client address may fail this many times the per-username allowance: several people
behind one office address must not lock each other out, while one address trying many
usernames is still stopped."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        session_hours: float,
        max_failures: int,
        window_s: float,
        limit_storage: str = "memory://",
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.lifetime = timedelta(hours=session_hours)
        self.max_failures = max_failures
        self.failures = FailureLimiter(int(window_s), limit_storage)
        self.hasher = PasswordHasher()

    def login(self, *, username: str, password: str, client: str) -> Login:
        """Check a password and open a session. Raises Unauthenticated (one message for every
        failure) or RateLimited."""
        keys = (f"user:{username.lower()}|client:{client}", f"client:{client}")
        limits = (self.max_failures, self.max_failures * CLIENT_ALLOWANCE)
        for key, limit in zip(keys, limits, strict=True):
            if not login_allowed(self.failures.count(key, limit), max_failures=limit).allowed:
                raise RateLimited(
                    "too many failed logins; wait before trying again",
                    retry_after_s=self.failures.retry_after(key, limit),
                )
        failed = inactive = False
        with self.db.transaction() as session:
            user = Users(session).by_username(username)
            stored = user.password_hash if user is not None else None
            try:
                self.hasher.verify(stored or self._dummy_hash, password or "-")
                ok = stored is not None
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok or user is None:
                for key, limit in zip(keys, limits, strict=True):
                    self.failures.add(key, limit)
                org = Organisations(session).get(user.organisation_id) if user else None
                self.audit.record(
                    session,
                    AuditRecord(
                        actor=username[:100] or "-",
                        organisation=org.name if org else None,
                        action=AuditAction.LOGIN_FAILED,
                        details={"client": client},
                    ),
                )
                failed = True
            elif not user.active:
                # The right password, but the account is deactivated: no session.
                inactive = True
                org = Organisations(session).get(user.organisation_id)
                self.audit.record(
                    session,
                    AuditRecord(
                        actor=user.username,
                        organisation=org.name if org else None,
                        action=AuditAction.LOGIN_FAILED,
                        details={"client": client, "reason": "deactivated"},
                    ),
                )
            else:
                failed = False
                actor = actor_for(session, user)
                token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
                now = self.clock()
                Sessions(session).delete_expired(now)
                Sessions(session).add(
                    SessionRow(
                        token_hash=_digest(token),
                        user_id=user.id,
                        csrf_token=csrf,
                        created_at=now,
                        expires_at=now + self.lifetime,
                    )
                )
                self.audit.record(
                    session,
                    AuditRecord(
                        actor=actor.username,
                        organisation=actor.organisation_name,
                        action=AuditAction.LOGIN,
                        details={"client": client},
                    ),
                )
        if failed:
            # Raised after the transaction commits, so the failed attempt stays on record.
            raise Unauthenticated("wrong username or password")
        if inactive:
            raise Unauthenticated("this account is deactivated; ask an administrator")
        # Nothing is cleared on success (see the module docstring).
        return Login(token, csrf, actor, int(self.lifetime.total_seconds()))

    def resume(self, token: str) -> tuple[Actor, str]:
        """The actor and CSRF token behind a session cookie, or Unauthenticated."""
        with self.db.read() as session:
            row = Sessions(session).get(_digest(token))
            if row is None or row.expires_at <= self.clock():
                raise Unauthenticated("the session has expired or was closed; log in again")
            user = Users(session).get(row.user_id)
            assert user is not None
            if not user.active:
                raise Unauthenticated("this account is deactivated")
            return actor_for(session, user), row.csrf_token

    def logout(self, token: str) -> None:
        with self.db.transaction() as session:
            digest = _digest(token)
            row = Sessions(session).get(digest)
            if row is None:
                return
            user = Users(session).get(row.user_id)
            Sessions(session).delete(digest)
            if user is not None:
                actor = actor_for(session, user)
                self.audit.record(
                    session,
                    AuditRecord(
                        actor=actor.username,
                        organisation=actor.organisation_name,
                        action=AuditAction.LOGOUT,
                    ),
                )

    @cached_property
    def _dummy_hash(self) -> str:
        return self.hasher.hash(secrets.token_urlsafe(16))

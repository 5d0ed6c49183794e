"""Organisations, user accounts and API keys: the admin steps of a server deployment.

No self sign-up. The local operator (whoever runs the CLI on the server) or a deployment
operator (``Role.OPERATOR``) creates organisations; they and each organisation's admins create
users (an admin only in their own organisation); a user can act only once approved by a
supervisor of their own organisation. The first supervisor of an organisation has nobody to
approve them, so the local operator does, and the audit event says so. Admins change roles,
training expiry and whether an account is active, never their own, and never so that an
organisation is left without an active supervisor to approve its accounts. Deactivating an
account or changing its password ends its sessions and API keys. Passwords are set at
creation, changed by their owner (who gives the current one), or reset with a one-time code
an admin issues. API keys are shown once and stored as an argon2 hash; the key's public id
makes lookup a single row read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from probity.domain.accounts import Action, Actor, Organisation, OrganisationKind, Resource, Role
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.ids import new_id
from probity.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    NotPermitted,
    Unauthenticated,
)
from probity.services.access import AccessGuard, Who, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.storage.accounts import ApiKeys, Organisations, Sessions, Users
from probity.storage.db import Database
from probity.storage.tables import ApiKeyRow, UserRow

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
KEY_PREFIX = "pb"
KEY_CACHE_S = 60.0
"""How long a verified API key is trusted without another argon2 verification, seconds."""
MIN_PASSWORD_LENGTH = 12
RESET_LIFETIME = timedelta(hours=24)
"""How long an admin's password reset code works: a working day to hand it over in person
or by phone, short enough that a code left in a note goes stale."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str
    organisation: str
    roles: tuple[str, ...]
    approved: bool
    training_expires: datetime | None
    active: bool = True  # False: deactivated by an admin; the policy refuses every action


def _info(user: UserRow, organisation: str) -> UserInfo:
    return UserInfo(
        user.username,
        organisation,
        tuple(user.roles),
        user.approved_at is not None,
        user.training_expires,
        user.active,
    )


def _sees_everyone(actor: Who) -> bool:
    """Deployment operators manage accounts across the deployment; everyone else, admins
    included, within their organisation. (The policy still decides what they may do; this
    only decides what they are shown.)"""
    return isinstance(actor, str) or Role.OPERATOR in actor.roles


def actor_for(session: Session, user: UserRow) -> Actor:
    """The policy's view of a stored account."""
    org = Organisations(session).get(user.organisation_id)
    assert org is not None  # users.organisation_id is a foreign key
    return Actor(
        user_id=user.id,
        organisation_id=org.id,
        organisation_kind=org.kind,
        roles=frozenset(Role(r) for r in user.roles),
        approved=user.approved_at is not None,
        active=user.active,
        training_expires=user.training_expires,
        username=user.username,
        organisation_name=org.name,
    )


@dataclass(frozen=True, slots=True)
class PasswordReset:
    username: str
    code: str  # shown once to the admin, who hands it to the person; stored as a sha256
    expires_at: datetime


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    key_id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key_id: str
    secret: str  # shown once: "pb_<key id>_<secret>"


class AccountService:
    def __init__(
        self, *, db: Database, audit: AuditService, clock: Clock, guard: AccessGuard
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.guard = guard
        self.hasher = PasswordHasher()
        self._verified: dict[str, tuple[str, float]] = {}  # key id -> (sha256, expiry)

    def create_organisation(self, *, actor: Who, name: str, kind: OrganisationKind) -> Organisation:
        self.guard.check(actor, Action.ORG_CREATE)
        if not name.strip():
            raise InvalidInput("an organisation needs a name")
        org = Organisation(new_id(), name.strip(), kind)
        with self.db.transaction() as session:
            orgs = Organisations(session)
            if orgs.by_name(org.name) is not None:
                raise AlreadyExists(f"organisation '{org.name}' already exists")
            orgs.add(org, at=self.clock(), by=name_of(actor))
            self._record(
                session,
                actor,
                AuditAction.ORG_CREATE,
                {"organisation": org.name, "kind": kind.value},
            )
        return org

    def create_user(
        self,
        *,
        actor: Who,
        organisation: str,
        username: str,
        roles: list[Role],
        training_expires: datetime | None,
        password: str | None = None,
    ) -> UserInfo:
        """A new account, not yet approved: it can do nothing until a supervisor approves.
        ``password``, when given, is the account's first web password (at least
        MIN_PASSWORD_LENGTH characters); without one the person cannot sign in until an
        admin issues a reset code (``issue_reset``) or the local operator sets one."""
        if password is not None:
            _check_password(password)
        if not _USERNAME.match(username):
            raise InvalidInput(
                f"username {username!r}: 2-64 lower-case letters, digits, '.', '_' or '-'"
            )
        if not roles:
            raise InvalidInput("a user needs at least one role")
        with self.db.transaction() as session:
            org = Organisations(session).by_name(organisation)
            if org is None or not (_sees_everyone(actor) or self.guard.sees(actor, org.id)):
                raise NotFound(f"no organisation named '{organisation}'")
            self.guard.check(actor, Action.USER_CREATE, Resource(org.id, grants=frozenset(roles)))
            users = Users(session)
            if users.by_username(username) is not None:
                raise AlreadyExists(f"user '{username}' already exists")
            users.add(
                UserRow(
                    id=new_id(),
                    organisation_id=org.id,
                    username=username,
                    roles=sorted({r.value for r in roles}),
                    active=True,
                    training_expires=training_expires,
                    password_hash=self.hasher.hash(password) if password else None,
                    created_at=self.clock(),
                    created_by=name_of(actor),
                )
            )
            self._record(
                session,
                actor,
                AuditAction.USER_CREATE,
                {
                    "user": username,
                    "organisation": org.name,
                    "roles": sorted(r.value for r in roles),
                    "password_set": password is not None,
                },
            )
        return UserInfo(
            username,
            org.name,
            tuple(sorted(r.value for r in roles)),
            False,
            training_expires,
            True,
        )

    def approve_user(self, *, actor: Who, username: str, supervisor: str | None = None) -> UserInfo:
        """Record a supervisor's approval. ``supervisor`` must be an approved supervisor of the
        same organisation; it may be omitted only while the organisation has none (bootstrap:
        the local operator approves, and the event says so). A signed-in supervisor approves
        as themselves."""
        if not isinstance(actor, str):
            supervisor = actor.username
        with self.db.transaction() as session:
            users = Users(session)
            user = users.by_username(username)
            if user is None or not self.guard.sees(actor, user.organisation_id):
                raise NotFound(f"no user named '{username}'")
            self.guard.check(actor, Action.USER_APPROVE, Resource(user.organisation_id))
            if user.approved_at is not None:
                raise AlreadyExists(f"user '{username}' is already approved")
            supervisors = users.approved_with_role(user.organisation_id, Role.SUPERVISOR)
            if supervisor is None:
                if supervisors:
                    raise NotPermitted(
                        "this organisation has approved supervisors: name the one approving "
                        "(--supervisor)"
                    )
                approver = f"local operator {name_of(actor)} (bootstrap: no supervisor yet)"
            else:
                if supervisor == username:
                    raise NotPermitted("nobody may approve their own account")
                if supervisor not in {s.username for s in supervisors}:
                    raise NotPermitted(
                        f"'{supervisor}' is not an approved supervisor of this organisation"
                    )
                approver = supervisor
            user.approved_by = approver
            user.approved_at = self.clock()
            org = Organisations(session).get(user.organisation_id)
            self._record(
                session,
                actor,
                AuditAction.USER_APPROVE,
                {"user": username, "approved_by": approver},
            )
            return _info(user, org.name if org else "?")

    def update_user(
        self,
        *,
        actor: Who,
        username: str,
        roles: list[Role] | None = None,
        training_expires: datetime | None = None,
        active: bool | None = None,
    ) -> UserInfo:
        """Change an account's roles, training attestation expiry or active state (admins).
        ``None`` leaves a field as it is; the audit event records each changed field's value
        before and after. Approval is not touched: a changed account stays approved, because
        approval vouches for the person, and the roles are the admin's decision.

        Refused: changing your own account (roles, training or state: nobody grants
        themselves power or attests their own training), an empty role list, and leaving an
        organisation without an active approved supervisor (nobody could approve its
        accounts again; 409, approve another supervisor first)."""
        if roles is not None and not roles:
            raise InvalidInput("a user needs at least one role")
        if roles is None and training_expires is None and active is None:
            raise InvalidInput("nothing to change: give roles, a training expiry or a state")
        with self.db.transaction() as session:
            users = Users(session)
            user = users.by_username(username)
            if user is None or not (
                _sees_everyone(actor) or self.guard.sees(actor, user.organisation_id)
            ):
                raise NotFound(f"no user named '{username}'")
            self.guard.check(
                actor,
                Action.USER_UPDATE,
                # An operator's account is an operator's to change, like the role itself.
                Resource(
                    user.organisation_id,
                    grants=frozenset(roles or ())
                    | frozenset(Role(r) for r in user.roles if r == Role.OPERATOR.value),
                ),
            )
            if not isinstance(actor, str) and actor.user_id == user.id:
                raise NotPermitted("nobody may change their own roles, training or account state")
            before: dict[str, object] = {}
            after: dict[str, object] = {}
            new_roles = sorted({r.value for r in roles}) if roles is not None else None
            if new_roles is not None and new_roles != sorted(user.roles):
                before["roles"], after["roles"] = sorted(user.roles), new_roles
            if training_expires is not None and training_expires != user.training_expires:
                before["training_expires"] = _iso(user.training_expires)
                after["training_expires"] = _iso(training_expires)
            if active is not None and active != user.active:
                before["active"], after["active"] = user.active, active
            org = Organisations(session).get(user.organisation_id)
            org_name = org.name if org else "?"
            if not after:
                return _info(user, org_name)  # nothing differs: no change, no event
            supervising = (
                user.approved_at is not None and user.active and Role.SUPERVISOR.value in user.roles
            )
            stays_supervisor = active is not False and (
                new_roles is None or Role.SUPERVISOR.value in new_roles
            )
            if supervising and not stays_supervisor:
                others = [
                    s
                    for s in users.approved_with_role(user.organisation_id, Role.SUPERVISOR)
                    if s.id != user.id
                ]
                if not others:
                    raise Conflict(
                        f"'{username}' is the last active supervisor of '{org_name}': nobody "
                        "could approve its accounts; approve another supervisor first"
                    )
            if new_roles is not None:
                user.roles = new_roles
            if training_expires is not None:
                user.training_expires = training_expires
            if active is not None:
                user.active = active
            details: dict[str, object] = {
                "user": username,
                "organisation": org_name,
                "before": before,
                "after": after,
            }
            if active is False:
                details |= self._end_access(session, user)
            self._record(session, actor, AuditAction.USER_UPDATE, details)
            return _info(user, org_name)

    def create_api_key(self, *, actor: Who, username: str, label: str) -> NewApiKey:
        """A new key for ``username``; the secret is returned once and never stored. A
        signed-in person may create keys for their own account only."""
        self.guard.check(actor, Action.KEY_CREATE)
        if not isinstance(actor, str) and actor.username != username:
            raise NotPermitted("API keys can only be created for your own account")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self.db.transaction() as session:
            user = Users(session).by_username(username)
            if user is None:
                raise NotFound(f"no user named '{username}'")
            if user.approved_at is None:
                raise NotPermitted(f"user '{username}' is not approved yet")
            ApiKeys(session).add(
                ApiKeyRow(
                    id=key_id,
                    user_id=user.id,
                    secret_hash=self.hasher.hash(secret),
                    label=label,
                    created_at=self.clock(),
                )
            )
            self._record(
                session,
                actor,
                AuditAction.KEY_CREATE,
                {"user": username, "key_id": key_id, "label": label},
            )
        return NewApiKey(key_id, f"{KEY_PREFIX}_{key_id}_{secret}")

    def authenticate_key(self, presented: str) -> Actor:
        """The actor behind an API key, or Unauthenticated. Unknown ids cost one argon2
        verification too, so timing does not tell which key ids exist.

        argon2 is deliberately slow (tens of ms), too slow to pay on every request of a busy
        integration, so a key that verified is remembered for ``KEY_CACHE_S`` by the sha256
        of the presented key (never the key itself). The account is read afresh on every
        request, so a deactivated user or a changed role takes effect at once; revoking a
        key takes effect within ``KEY_CACHE_S``."""
        parts = presented.split("_", 2)
        well_formed = len(parts) == 3 and parts[0] == KEY_PREFIX
        key_id, secret = (parts[1], parts[2]) if well_formed else ("", "")
        digest = hashlib.sha256(presented.encode()).hexdigest()
        with self.db.read() as session:
            row = ApiKeys(session).get(key_id) if key_id else None
            usable = row is not None and row.revoked_at is None
            cached = self._verified.get(key_id)
            if not (usable and cached and cached[0] == digest and cached[1] > time.monotonic()):
                stored = row.secret_hash if row is not None and usable else self._dummy_hash
                try:
                    self.hasher.verify(stored, secret or "-")
                except (VerificationError, InvalidHashError):
                    raise Unauthenticated("invalid API key") from None
                if row is None or not usable:
                    raise Unauthenticated("invalid API key")
                self._verified[key_id] = (digest, time.monotonic() + KEY_CACHE_S)
            assert row is not None
            user = session.get(UserRow, row.user_id)
            assert user is not None
            if not user.active:
                raise Unauthenticated("the account is deactivated")
            return actor_for(session, user)

    def list_keys(self, *, actor: Who, username: str) -> list[ApiKeyInfo]:
        """``username``'s API keys (never their secrets). A signed-in person sees their own."""
        self.guard.check(actor, Action.KEY_CREATE)
        if not isinstance(actor, str) and actor.username != username:
            raise NotPermitted("you can only list your own API keys")
        with self.db.read() as session:
            user = Users(session).by_username(username)
            if user is None:
                raise NotFound(f"no user named '{username}'")
            return [
                ApiKeyInfo(k.id, k.label, k.created_at, k.revoked_at)
                for k in ApiKeys(session).for_user(user.id)
            ]

    def revoke_key(self, *, actor: Who, key_id: str) -> ApiKeyInfo:
        """Revoke a key at once in this process (other API processes: within KEY_CACHE_S).
        A signed-in person may revoke their own keys."""
        self.guard.check(actor, Action.KEY_CREATE)
        with self.db.transaction() as session:
            row = ApiKeys(session).get(key_id)
            owner = Users(session).get(row.user_id) if row else None
            mine = isinstance(actor, str) or (owner is not None and owner.id == actor.user_id)
            if row is None or owner is None or not mine:
                raise NotFound(f"no API key '{key_id}' of yours")
            if row.revoked_at is None:
                row.revoked_at = self.clock()
                self._record(
                    session,
                    actor,
                    AuditAction.KEY_REVOKE,
                    {"user": owner.username, "key_id": key_id},
                )
            self._verified.pop(key_id, None)
            return ApiKeyInfo(row.id, row.label, row.created_at, row.revoked_at)

    def list_users(self, *, actor: Who) -> list[UserInfo]:
        """Accounts the actor may see: their organisation's (an admin's: everyone's)."""
        self.guard.check(actor, Action.USER_READ)
        everyone = _sees_everyone(actor)
        with self.db.read() as session:
            orgs = {o.id: o.name for o in Organisations(session).all()}
            return [
                _info(u, orgs.get(u.organisation_id, "?"))
                for u in Users(session).all()
                if everyone or self.guard.sees(actor, u.organisation_id)
            ]

    def list_organisations(self, *, actor: Who) -> list[Organisation]:
        self.guard.check(actor, Action.ORG_READ)
        everyone = _sees_everyone(actor)
        with self.db.read() as session:
            return [
                o for o in Organisations(session).all() if everyone or self.guard.sees(actor, o.id)
            ]

    def set_password(
        self, *, actor: Who, username: str, password: str, current: str | None = None
    ) -> None:
        """Set a web login password (argon2). The local operator may set anyone's; a person
        changes their own and must give the ``current`` one (a session left open on a shared
        desk must not be enough to take the account over). Every session and API key of the
        account ends: whoever held the old password, or a key made with it, is out."""
        if not isinstance(actor, str) and actor.username != username:
            raise NotPermitted("you can only change your own password")
        _check_password(password)
        with self.db.transaction() as session:
            user = Users(session).by_username(username)
            if user is None:
                raise NotFound(f"no user named '{username}'")
            if not isinstance(actor, str) and not self._verifies(user.password_hash, current):
                raise Unauthenticated("the current password is wrong")
            user.password_hash = self.hasher.hash(password)
            user.password_reset_hash = None
            user.password_reset_expires = None
            ended = self._end_access(session, user)
            self._record(session, actor, AuditAction.PASSWORD_SET, {"user": username, **ended})

    def issue_reset(self, *, actor: Who, username: str) -> PasswordReset:
        """A one-time password reset code for ``username``, from an admin of their
        organisation (or a deployment operator, or the local operator). The code is shown
        once, stored as a sha256 (it is 128 random bits, so a fast hash is enough), valid for
        RESET_LIFETIME and for one use; a new code replaces an older one. Nobody issues one
        for their own account (that would sidestep knowing the current password)."""
        with self.db.transaction() as session:
            user = Users(session).by_username(username)
            if user is None or not (
                _sees_everyone(actor) or self.guard.sees(actor, user.organisation_id)
            ):
                raise NotFound(f"no user named '{username}'")
            self.guard.check(
                actor,
                Action.USER_UPDATE,
                Resource(
                    user.organisation_id,
                    grants=frozenset(Role(r) for r in user.roles if r == Role.OPERATOR.value),
                ),
            )
            if not isinstance(actor, str) and actor.user_id == user.id:
                raise NotPermitted("change your own password with your current one instead")
            code = secrets.token_urlsafe(16)
            expires = self.clock() + RESET_LIFETIME
            user.password_reset_hash = _sha256(code)
            user.password_reset_expires = expires
            self._record(
                session,
                actor,
                AuditAction.PASSWORD_RESET_ISSUE,
                {"user": username, "expires_at": expires.isoformat()},
            )
        return PasswordReset(username, code, expires)

    def redeem_reset(self, *, username: str, code: str, password: str) -> None:
        """Set a new password with a reset code (no sign-in needed: the code is the proof).
        The code works once and until it expires; every session and API key of the account
        ends. Wrong, used and expired codes get one answer."""
        _check_password(password)
        with self.db.transaction() as session:
            user = Users(session).by_username(username)
            stored = user.password_reset_hash if user is not None else None
            expires = user.password_reset_expires if user is not None else None
            valid = (
                user is not None
                and stored is not None
                and expires is not None
                and expires > self.clock()
                and hmac.compare_digest(stored, _sha256(code))
            )
            if not valid or user is None:
                raise Unauthenticated("the reset code is wrong, used or expired; ask for another")
            user.password_hash = self.hasher.hash(password)
            user.password_reset_hash = None
            user.password_reset_expires = None
            ended = self._end_access(session, user)
            self._record(session, username, AuditAction.PASSWORD_RESET, {"user": username, **ended})

    def _end_access(self, session: Session, user: UserRow) -> dict[str, object]:
        """Close every session and revoke every API key of ``user`` (in this process at
        once; the key cache of other API processes cannot outlive a revoked key because
        ``authenticate_key`` re-reads the key row on every request)."""
        closed = Sessions(session).delete_for_user(user.id)
        revoked = ApiKeys(session).revoke_all(user.id, self.clock())
        for key_id in revoked:
            self._verified.pop(key_id, None)
        return {"sessions_closed": closed, "keys_revoked": revoked}

    def _verifies(self, stored: str | None, password: str | None) -> bool:
        try:
            return self.hasher.verify(stored or self._dummy_hash, password or "-") and bool(stored)
        except (VerificationError, InvalidHashError):
            return False

    def _record(
        self, session: Session, actor: Who, action: AuditAction, details: dict[str, object]
    ) -> None:
        self.audit.record(
            session,
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=action,
                details=details,
            ),
        )

    @cached_property
    def _dummy_hash(self) -> str:
        """Verified against when the key id is unknown, so failures take the same time."""
        return self.hasher.hash(secrets.token_urlsafe(32))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()

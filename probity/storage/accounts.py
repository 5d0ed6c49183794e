"""Repositories for organisations, users and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from probity.domain.accounts import Organisation, OrganisationKind, Role
from probity.storage.tables import ApiKeyRow, OrganisationRow, SessionRow, UserRow


class Organisations:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, org: Organisation, *, at: datetime, by: str) -> None:
        self.s.add(
            OrganisationRow(
                id=org.id, name=org.name, kind=org.kind.value, created_at=at, created_by=by
            )
        )
        self.s.flush()

    def by_name(self, name: str) -> Organisation | None:
        row = self.s.scalars(select(OrganisationRow).where(OrganisationRow.name == name)).first()
        return None if row is None else Organisation(row.id, row.name, OrganisationKind(row.kind))

    def get(self, org_id: str) -> Organisation | None:
        row = self.s.get(OrganisationRow, org_id)
        return None if row is None else Organisation(row.id, row.name, OrganisationKind(row.kind))

    def all(self) -> list[Organisation]:
        rows = self.s.scalars(select(OrganisationRow).order_by(OrganisationRow.name))
        return [Organisation(r.id, r.name, OrganisationKind(r.kind)) for r in rows]


class Users:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, row: UserRow) -> None:
        self.s.add(row)
        self.s.flush()

    def all(self) -> list[UserRow]:
        return list(self.s.scalars(select(UserRow).order_by(UserRow.username)))

    def get(self, user_id: str) -> UserRow | None:
        return self.s.get(UserRow, user_id)

    def by_username(self, username: str) -> UserRow | None:
        return self.s.scalars(select(UserRow).where(UserRow.username == username)).first()

    def approved_with_role(self, organisation_id: str, role: Role) -> list[UserRow]:
        rows = self.s.scalars(
            select(UserRow).where(
                UserRow.organisation_id == organisation_id, UserRow.approved_at.is_not(None)
            )
        )
        return [r for r in rows if role.value in r.roles and r.active]


class ApiKeys:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, row: ApiKeyRow) -> None:
        self.s.add(row)
        self.s.flush()

    def get(self, key_id: str) -> ApiKeyRow | None:
        return self.s.get(ApiKeyRow, key_id)

    def for_user(self, user_id: str) -> list[ApiKeyRow]:
        return list(
            self.s.scalars(
                select(ApiKeyRow).where(ApiKeyRow.user_id == user_id).order_by(ApiKeyRow.created_at)
            )
        )

    def revoke_all(self, user_id: str, at: datetime) -> list[str]:
        """Revoke every live key of one account; returns the ids revoked."""
        live = [k for k in self.for_user(user_id) if k.revoked_at is None]
        for key in live:
            key.revoked_at = at
        self.s.flush()
        return [k.id for k in live]


class Sessions:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, row: SessionRow) -> None:
        self.s.add(row)
        self.s.flush()

    def get(self, token_hash: str) -> SessionRow | None:
        return self.s.get(SessionRow, token_hash)

    def delete(self, token_hash: str) -> None:
        self.s.execute(delete(SessionRow).where(SessionRow.token_hash == token_hash))

    def delete_for_user(self, user_id: str) -> int:
        """Close every session of one account (password change, deactivation)."""
        result = self.s.execute(delete(SessionRow).where(SessionRow.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)

    def delete_expired(self, now: datetime) -> int:
        result = self.s.execute(delete(SessionRow).where(SessionRow.expires_at <= now))
        return int(getattr(result, "rowcount", 0) or 0)

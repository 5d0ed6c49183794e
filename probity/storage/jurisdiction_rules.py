"""The jurisdiction rules table, in domain objects (``JurisdictionRule``)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from probity.domain.jurisdiction import JurisdictionRule
from probity.storage.tables import JurisdictionRuleRow

DEPLOYMENT_SCOPE = "*"
"""The ``scope`` stored for a deployment-wide rule (an organisation id otherwise)."""


def _scope(organisation_id: str | None) -> str:
    return DEPLOYMENT_SCOPE if organisation_id is None else organisation_id


def _rule(row: JurisdictionRuleRow) -> JurisdictionRule:
    return JurisdictionRule(
        code=row.code,
        reason=row.reason,
        created_at=row.created_at,
        created_by=row.created_by,
        organisation_id=None if row.scope == DEPLOYMENT_SCOPE else row.scope,
    )


class JurisdictionRules:
    def __init__(self, session: Session) -> None:
        self.s = session

    def all(self) -> list[JurisdictionRule]:
        """Every rule, deployment-wide first, then by organisation and code."""
        rows = self.s.scalars(
            select(JurisdictionRuleRow).order_by(
                JurisdictionRuleRow.scope, JurisdictionRuleRow.code
            )
        )
        return [_rule(r) for r in rows]

    def get(self, code: str, organisation_id: str | None) -> JurisdictionRule | None:
        row = self.s.get(JurisdictionRuleRow, (_scope(organisation_id), code))
        return None if row is None else _rule(row)

    def add(self, rule: JurisdictionRule) -> None:
        self.s.add(
            JurisdictionRuleRow(
                scope=_scope(rule.organisation_id),
                code=rule.code,
                reason=rule.reason,
                created_at=rule.created_at,
                created_by=rule.created_by,
            )
        )
        self.s.flush()

    def delete(self, code: str, organisation_id: str | None) -> bool:
        result = self.s.execute(
            delete(JurisdictionRuleRow).where(
                JurisdictionRuleRow.scope == _scope(organisation_id),
                JurisdictionRuleRow.code == code,
            )
        )
        return bool(getattr(result, "rowcount", 0))

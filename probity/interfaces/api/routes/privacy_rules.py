"""Jurisdiction rules and the retention sweep: rules that erase by themselves.

- ``POST /api/v1/jurisdiction-rules``: exclude a jurisdiction (curators and privacy officers
  for their organisation's galleries; ``"scope": "deployment"`` for admins);
- ``GET /api/v1/jurisdiction-rules``: the rules binding your organisation's galleries;
- ``DELETE /api/v1/jurisdiction-rules/{code}?reason=``: lift one (purged records stay purged);
- ``POST /api/v1/jurisdiction-rules/purge``: erase what is held against the rules;
- ``POST /api/v1/retention/sweep``: erase what is due now (the server also does it on its
  schedule).

Each erasure answers with receipts that hold no biometric data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from probity.domain.jurisdiction import JurisdictionRule
from probity.interfaces.api.deps import ActorDep, PagingDep, ServicesDep
from probity.interfaces.api.links import created
from probity.interfaces.api.schemas import ErasureReceiptOut, Page

router = APIRouter(prefix="/api/v1", tags=["privacy rules"])


class JurisdictionRuleIn(BaseModel):
    code: str = Field(
        min_length=2, max_length=20, description="ISO 3166 code: GB, or a subdivision GB-SCT"
    )
    reason: str = Field(
        min_length=3, max_length=2000, description="the order, decision or policy behind it"
    )
    scope: Literal["organisation", "deployment"] = Field(
        "organisation",
        description="your organisation's galleries, or every gallery (admins only)",
    )


class JurisdictionRuleOut(BaseModel):
    code: str
    scope: Literal["organisation", "deployment"]
    organisation_id: str | None
    reason: str
    created_at: datetime
    created_by: str


class PurgeOut(BaseModel):
    enrolments_erased: int
    receipts: list[ErasureReceiptOut]


class SweepOut(BaseModel):
    at: datetime
    as_of: date = Field(description="records kept until this day or earlier were due")
    enrolments_erased: int
    subjects_erased: int = Field(description="subjects left with nothing, erased whole")
    receipts: list[ErasureReceiptOut]
    rights_requests_forgotten: int = Field(
        0, description="closed rights requests whose contact details were blanked"
    )


def _rule(rule: JurisdictionRule) -> JurisdictionRuleOut:
    return JurisdictionRuleOut.model_validate(rule.as_dict())


@router.post("/jurisdiction-rules", response_model=JurisdictionRuleOut, status_code=201)
def exclude_jurisdiction(
    body: JurisdictionRuleIn, response: Response, actor: ActorDep, services: ServicesDep
) -> JurisdictionRuleOut:
    """Records collected in ``code`` (a country covers its subdivisions) are refused at
    enrolment and withheld from every search at once; the purge erases those held."""
    rule = services.jurisdictions.exclude(
        actor=actor,
        code=body.code,
        reason=body.reason,
        deployment_wide=body.scope == "deployment",
    )
    out = _rule(rule)
    created(response, "jurisdiction-rules", out.code)
    return out


@router.get("/jurisdiction-rules", response_model=Page[JurisdictionRuleOut])
def list_jurisdiction_rules(
    actor: ActorDep, services: ServicesDep, paging: PagingDep
) -> Page[JurisdictionRuleOut]:
    return paging.page([_rule(r) for r in services.jurisdictions.rules(actor=actor)])


@router.delete("/jurisdiction-rules/{code}", response_model=JurisdictionRuleOut)
def lift_jurisdiction_rule(
    code: str,
    actor: ActorDep,
    services: ServicesDep,
    reason: Annotated[str, Query(min_length=3, max_length=2000)],
    scope: Annotated[Literal["organisation", "deployment"], Query()] = "organisation",
) -> JurisdictionRuleOut:
    """Remove a rule. Records already purged stay purged; records hidden but not purged
    are returned by search again."""
    return _rule(
        services.jurisdictions.lift(
            actor=actor, code=code, reason=reason, deployment_wide=scope == "deployment"
        )
    )


@router.post("/jurisdiction-rules/purge", response_model=PurgeOut)
def purge_excluded(actor: ActorDep, services: ServicesDep) -> PurgeOut:
    """Erase every enrolment held against a rule in the galleries you may erase from: a
    subject left with nothing is erased whole; one receipt per subject."""
    receipts = services.jurisdictions.purge(actor=actor)
    return PurgeOut(
        enrolments_erased=sum(r.enrolments for r in receipts),
        receipts=[ErasureReceiptOut.model_validate(r.as_dict()) for r in receipts],
    )


@router.post("/retention/sweep", response_model=SweepOut)
def sweep_retention(actor: ActorDep, services: ServicesDep) -> SweepOut:
    """Erase every enrolment whose retention has run out, in the galleries you may erase
    from, exactly as an erasure does."""
    return SweepOut.model_validate(services.retention.sweep(actor=actor).as_dict())

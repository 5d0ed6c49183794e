"""Jurisdiction rules: "exclude records collected in GB", held as data.

A regulator's order to stop processing the people of a territory (the ICO, CNIL, Garante,
OAIC and HDPA orders against Clearview) becomes a rule here. The rule is about where a
record was *collected* (``Provenance.jurisdiction``): that is what every enrolment records.
Residence is not recorded (asking for it would be asking for more data), so a rule "about
residents of" a place is applied through the place of collection only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class JurisdictionRule:
    """Records collected in ``code`` (ISO 3166-1 alpha-2 such as "GB", or a subdivision such
    as "GB-SCT") are refused at enrolment, never returned by search, and erased by a purge.

    ``organisation_id``: the organisation whose galleries the rule binds; None for every
    gallery of the deployment. A shared gallery (one without an organisation) is bound by
    deployment-wide rules only, since other organisations may lawfully use it."""

    code: str
    reason: str
    created_at: datetime
    created_by: str
    organisation_id: str | None = None

    @property
    def deployment_wide(self) -> bool:
        return self.organisation_id is None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "scope": "deployment" if self.deployment_wide else "organisation",
            "organisation_id": self.organisation_id,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }

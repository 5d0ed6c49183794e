"""Validation of provenance: every required field present, well formed, and allowed by the
gallery's rules. Nothing is ever defaulted."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta

from probity.domain.gallery import Gallery, LawfulBasis, Provenance
from probity.errors import InvalidInput, MissingProvenance

REQUIRED_FIELDS = ("source", "lawful_basis", "collected_at", "jurisdiction")
_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


def parse_provenance(
    fields: Mapping[str, str | None], *, gallery: Gallery, today: date
) -> Provenance:
    """Build a Provenance from raw text fields (CLI options, CSV columns, form fields).

    Raises MissingProvenance naming the first missing field, or InvalidInput naming the field
    that is malformed. ``retention_until`` is the collection date plus the gallery's retention
    days; a record whose retention has already run out is refused.
    """
    for name in REQUIRED_FIELDS:
        value = fields.get(name)
        if value is None or not str(value).strip():
            raise MissingProvenance(name)
    basis_text = str(fields["lawful_basis"]).strip().lower().replace("-", "_")
    try:
        basis = LawfulBasis(basis_text)
    except ValueError:
        allowed = ", ".join(b.value for b in LawfulBasis)
        raise InvalidInput(
            f"lawful_basis '{fields['lawful_basis']}' is not one of: {allowed}"
        ) from None
    try:
        collected_at = date.fromisoformat(str(fields["collected_at"]).strip())
    except ValueError:
        raise InvalidInput(
            f"collected_at '{fields['collected_at']}' is not a date (YYYY-MM-DD)"
        ) from None
    if collected_at > today:
        raise InvalidInput(f"collected_at {collected_at} is in the future")
    jurisdiction = str(fields["jurisdiction"]).strip().upper()
    if not _JURISDICTION.match(jurisdiction):
        raise InvalidInput(
            f"jurisdiction '{fields['jurisdiction']}' is not an ISO 3166 code such as GB or GB-SCT"
        )
    if gallery.jurisdictions and not jurisdiction_allowed(jurisdiction, gallery.jurisdictions):
        raise InvalidInput(
            f"jurisdiction {jurisdiction} is outside gallery '{gallery.name}' "
            f"({', '.join(gallery.jurisdictions)})"
        )
    retention_until = collected_at + timedelta(days=gallery.retention_days)
    if retention_until <= today:
        raise InvalidInput(
            f"retention already expired: collected {collected_at} + {gallery.retention_days} days "
            f"of gallery '{gallery.name}' ended {retention_until}"
        )
    return Provenance(
        source=str(fields["source"]).strip(),
        lawful_basis=basis,
        lawful_basis_reference=_clean(fields.get("lawful_basis_reference")),
        collected_at=collected_at,
        collected_by=_clean(fields.get("collected_by")),
        jurisdiction=jurisdiction,
        retention_until=retention_until,
    )


def jurisdiction_allowed(code: str, allowed: tuple[str, ...]) -> bool:
    """``GB-SCT`` falls under a gallery tagged ``GB``; ``GB`` does not fall under ``GB-SCT``."""
    return code in allowed or code.split("-")[0] in allowed


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    return text or None

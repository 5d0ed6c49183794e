"""Which records a jurisdiction rule excludes: pure functions over the rules.

Codes are ISO 3166: a country ("GB", alpha-2) or one of its subdivisions ("GB-SCT",
ISO 3166-2: the country code, a hyphen, up to three letters or digits). A rule on a country
covers the country and every subdivision of it; a rule on a subdivision covers that
subdivision only:

- "GB" excludes "GB", "GB-SCT" and "GB-WLS";
- "GB-SCT" excludes "GB-SCT", but neither "GB" (a record from elsewhere in the country) nor
  "GB-WLS".

Matching compares the *country part* (the letters before the hyphen) as a whole, never a
string prefix: a subdivision lies inside its country, but no code lies inside another code
that merely starts with the same letters ("GB-S" is not a region of anything, and a rule on
"GB-SCT" must not swallow a future "GB-SCTX"). Comparison is case-insensitive: codes are
upper-cased first, as provenance is on enrolment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from probity.domain.jurisdiction import JurisdictionRule
from probity.errors import InvalidInput

_CODE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


def normalise(code: str) -> str:
    """``" gb-sct "`` -> ``"GB-SCT"``; InvalidInput for anything that is not ISO 3166."""
    text = code.strip().upper()
    if not _CODE.match(text):
        raise InvalidInput(f"'{code}' is not an ISO 3166 code such as GB or GB-SCT")
    return text


def country(code: str) -> str:
    """The country part: "GB" for "GB-SCT" and for "GB"."""
    return code.strip().upper().split("-", 1)[0]


def covers(rule_code: str, record_code: str) -> bool:
    """Whether a rule on ``rule_code`` covers a record collected in ``record_code``."""
    rule, record = rule_code.strip().upper(), record_code.strip().upper()
    if rule == record:
        return True
    return "-" not in rule and country(record) == rule


def excluded(code: str, rules: Iterable[JurisdictionRule]) -> JurisdictionRule | None:
    """The first of ``rules`` that excludes a record collected in ``code`` (None: allowed).
    A country rule is preferred over a subdivision rule, so the reason given is the widest."""
    matching = [r for r in rules if covers(r.code, code)]
    if not matching:
        return None
    return min(matching, key=lambda r: ("-" in r.code, r.organisation_id is not None, r.code))


def binding(
    rules: Iterable[JurisdictionRule], organisation_id: str | None
) -> list[JurisdictionRule]:
    """The rules that bind a gallery of ``organisation_id`` (None: a shared gallery):
    deployment-wide rules, and that organisation's own."""
    return [r for r in rules if r.organisation_id is None or r.organisation_id == organisation_id]


class Exclusions:
    """A snapshot of the rules in force, asked once per record: ``hides(code, org)``.

    Built once per search or purge (one query), so that every candidate of one search is
    judged against the same rules."""

    def __init__(self, rules: Iterable[JurisdictionRule]) -> None:
        self.rules = tuple(rules)

    def rule_for(self, code: str, organisation_id: str | None) -> JurisdictionRule | None:
        """The rule excluding a record collected in ``code`` held in a gallery of
        ``organisation_id``, or None."""
        return excluded(code, binding(self.rules, organisation_id))

    def hides(self, code: str, organisation_id: str | None) -> bool:
        return self.rule_for(code, organisation_id) is not None

    def __bool__(self) -> bool:
        return bool(self.rules)

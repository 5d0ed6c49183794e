"""Jurisdiction rules and retention as pure policy: which record a rule covers, which rules
bind which gallery, when a record's retention has run out."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from probity.domain.jurisdiction import JurisdictionRule
from probity.errors import InvalidInput
from probity.policy.jurisdiction import Exclusions, binding, covers, excluded, normalise
from probity.policy.retention import is_due

AT = datetime(2026, 11, 22, tzinfo=UTC)


def rule(code: str, organisation_id: str | None = None) -> JurisdictionRule:
    return JurisdictionRule(code, f"order about {code}", AT, "tests", organisation_id)


@pytest.mark.parametrize(
    ("rule_code", "record", "want"),
    [
        ("GB", "GB", True),
        ("GB", "GB-SCT", True),  # a country covers its subdivisions
        ("GB", "GB-WLS", True),
        ("GB-SCT", "GB-SCT", True),
        ("GB-SCT", "GB", False),  # a subdivision does not cover its country
        ("GB-SCT", "GB-WLS", False),
        ("GB", "GG", False),  # Guernsey is not Great Britain: no string prefix
        ("G", "GB", False),
        ("FR", "GB", False),
        ("gb", "gb-sct", True),  # case-insensitive
        ("GB", " gb ", True),
    ],
)
def test_a_country_rule_covers_its_subdivisions_only(
    rule_code: str, record: str, want: bool
) -> None:
    assert covers(rule_code, record) is want


def test_excluded_names_the_widest_rule_or_none() -> None:
    rules = [rule("GB-SCT"), rule("GB"), rule("FR")]
    found = excluded("GB-SCT", rules)
    assert found is not None and found.code == "GB"  # the country rule, not the subdivision
    assert excluded("gb-sct", [rule("GB-SCT")]) is not None
    assert excluded("DE", rules) is None
    assert excluded("GB", []) is None


def test_normalise_accepts_iso_codes_only() -> None:
    assert normalise(" gb-sct ") == "GB-SCT"
    assert normalise("fr") == "FR"
    for bad in ("", "G", "GBR", "GB-", "GB-ABCD", "12", "GB SCT"):
        with pytest.raises(InvalidInput, match="ISO 3166"):
            normalise(bad)


def test_a_rule_binds_its_organisations_galleries_and_deployment_rules_bind_all() -> None:
    everywhere, met, other = rule("GB"), rule("FR", "org-met"), rule("DE", "org-other")
    rules = [everywhere, met, other]
    assert binding(rules, "org-met") == [everywhere, met]
    assert binding(rules, None) == [everywhere]  # a shared gallery: deployment rules only
    exclusions = Exclusions(rules)
    assert exclusions.hides("FR", "org-met")
    assert not exclusions.hides("FR", "org-other")
    assert not exclusions.hides("FR", None)
    assert exclusions.hides("GB-NIR", "org-other")
    assert not Exclusions([])
    assert Exclusions(rules)


def test_retention_is_due_on_the_day_it_ends() -> None:
    until = date(2026, 11, 23)
    assert not is_due(until, date(2026, 11, 22))
    assert is_due(until, date(2026, 11, 23))  # enrolment refuses the same record that day
    assert is_due(until, date(2026, 11, 24))

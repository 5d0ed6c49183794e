"""Organisations, people and what they may do (the server issue builds on these).

No self sign-up: an admin creates organisations, a supervisor approves each user, and each
user carries a training attestation with an expiry (ACLU v. Clearview settlement; AI Act
Art 26(2), staff with the necessary competence and training).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class OrganisationKind(StrEnum):
    LAW_ENFORCEMENT = "law_enforcement"
    PUBLIC_BODY = "public_body"  # other public bodies (e.g. a border agency, a regulator)
    OTHER = "other"


class Role(StrEnum):
    OPERATOR = "operator"  # runs the deployment: organisations, accounts in any organisation
    ADMIN = "admin"  # accounts of their own organisation; no access to cases or biometrics
    SUPERVISOR = "supervisor"  # approves users, decides authorisations, reads case reports
    CURATOR = "curator"  # data controller for galleries: enrolment, removal, rebuilds
    INVESTIGATOR = "investigator"  # opens cases, searches, records first reviews
    EXAMINER = "examiner"  # independent review of candidates (two-person rule)
    AUDITOR = "auditor"  # reads and verifies the audit trail and reports
    PRIVACY_OFFICER = "privacy_officer"  # rights requests: access, objection, erasure


class Action(StrEnum):
    ORG_CREATE = "org.create"
    ORG_READ = "org.read"
    USER_CREATE = "user.create"
    USER_APPROVE = "user.approve"
    USER_READ = "user.read"
    USER_UPDATE = "user.update"  # roles, training attestation, deactivation
    KEY_CREATE = "key.create"
    GALLERY_CREATE = "gallery.create"
    GALLERY_READ = "gallery.read"
    ENROL = "enrolment.create"
    SUBJECT_REMOVE = "subject.remove"
    INDEX_REBUILD = "index.rebuild"
    CASE_OPEN = "case.open"
    CASE_READ = "case.read"
    CASE_AUTHORISE = "case.authorise"
    SEARCH_RUN = "search.run"
    SEARCH_READ = "search.read"
    REVIEW_RECORD = "review.record"
    LEAD_READ = "lead.read"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    REPORT_CASE = "report.case"
    REPORT_ANNUAL = "report.annual"
    RIGHTS_HANDLE = "rights.handle"
    JURISDICTION_RULE = "jurisdiction.rule"  # exclude / lift a jurisdiction, purge its records


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    name: str
    kind: OrganisationKind


@dataclass(frozen=True, slots=True)
class Actor:
    """The person acting, as the policy sees them."""

    user_id: str
    organisation_id: str
    organisation_kind: OrganisationKind
    roles: frozenset[Role]
    approved: bool
    active: bool = True
    training_expires: datetime | None = None  # None: no attestation on file
    username: str = ""  # recorded as the audit event's actor
    organisation_name: str = ""  # recorded as the audit event's organisation


@dataclass(frozen=True, slots=True)
class Resource:
    """What the action is about, as far as the policy needs to know.

    ``organisation_id``: the owning organisation (a case's, a gallery's), None for actions
    on the deployment itself (creating an organisation). ``reviewed_by``: users who already
    recorded a review of this candidate (two-person rule). ``grants``: the roles an account
    change would give (only an operator grants the operator role)."""

    organisation_id: str | None = None
    reviewed_by: frozenset[str] = field(default_factory=frozenset)
    grants: frozenset[Role] = field(default_factory=frozenset)

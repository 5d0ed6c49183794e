"""The case report: every search of a case (those with no face or no candidate included),
every candidate with its provenance, probe quality, model version, threshold and the reviews,
as one JSON-ready dict. The API returns it as JSON and renders the same dict as a PDF, so
the two never disagree. Producing a report is audited.

Reviews stay blind in reports too: for a reader who could still review a candidate and has
not, that candidate's reviews are withheld (only their count is given).
"""

from __future__ import annotations

from typing import Any

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.domain.accounts import Action
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import ModelVersion
from probity.domain.review import CandidateRef, Review, is_lead
from probity.domain.search import Candidate, SearchOutcome, SearchResult, threshold_wording
from probity.services.access import AccessGuard, Who, could_still_review, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock
from probity.services.results import ResultService
from probity.storage.accounts import Organisations
from probity.storage.casework import Reviews
from probity.storage.db import Database

REPORT_NOTICE = (
    f"{INVESTIGATIVE_LEAD_NOTICE}. Candidates are ranked by similarity of face descriptors; "
    "a candidate is a lead for further investigation only once two different people have "
    "confirmed it independently, and never on its own grounds for arrest or charge."
)


class ReportService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditService,
        clock: Clock,
        results: ResultService,
        guard: AccessGuard,
        model: ModelVersion,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.results = results
        self.guard = guard
        self.model = model

    def case_report(self, *, actor: Who, case_reference: str) -> dict[str, Any]:
        case, searches = self.results.for_case(
            case_reference, actor=actor, action=Action.REPORT_CASE
        )
        with self.db.transaction() as session:
            reviews = Reviews(session).for_searches(s.id for s in searches)
            org = Organisations(session).get(case.organisation_id) if case.organisation_id else None
            by_candidate: dict[CandidateRef, list[Review]] = {}
            for r in reviews:
                by_candidate.setdefault(r.candidate, []).append(r)
            leads = sum(1 for rs in by_candidate.values() if is_lead(rs))
            report = {
                "notice": REPORT_NOTICE,
                "generated_at": self.clock().isoformat(),
                "generated_by": name_of(actor),
                "case": {
                    "reference": case.reference,
                    "offence": case.offence,
                    "justification": case.justification,
                    "organisation": org.name if org else None,
                    "opened_at": case.opened_at.isoformat(),
                    "opened_by": case.opened_by,
                    "authorisation": {
                        "status": case.authorisation.status.value,
                        "reference": case.authorisation.reference,
                        "authority": case.authorisation.authority,
                        "requested_at": case.authorisation.requested_at.isoformat(),
                    },
                },
                "summary": {
                    "searches": len(searches),
                    "with_candidates": _count(searches, SearchOutcome.CANDIDATES),
                    "no_candidate": _count(searches, SearchOutcome.NO_CANDIDATE_ABOVE_THRESHOLD),
                    "no_face": _count(searches, SearchOutcome.NO_FACE_FOUND),
                    "reviews": len(reviews),
                    "leads": leads,
                },
                "searches": [
                    {
                        "id": s.id,
                        "at": s.at.isoformat() if s.at else None,
                        "actor": s.actor,
                        "probe_sha256": s.probe_sha256,
                        "model": s.model_key,
                        "galleries": list(s.gallery_names),
                        "threshold": {
                            "mode": s.threshold.mode.value,
                            "target_fpir": s.threshold.target_fpir,
                            "target_fmr": s.threshold.target_fmr,
                            "max_distance": s.threshold.max_distance,
                            "gallery_subjects": s.threshold.gallery_subjects,
                            "gallery_templates": s.threshold.gallery_templates,
                            "table": s.threshold.table_origin,
                            "source": s.threshold.source,
                            "wording": threshold_wording(s.threshold),
                        },
                        "top_k": s.top_k,
                        "outcome": s.outcome.value,
                        "faces": [
                            {
                                "face": f.index,
                                "box": {
                                    "left": f.box.left,
                                    "top": f.box.top,
                                    "right": f.box.left + f.box.width,
                                    "bottom": f.box.top + f.box.height,
                                },
                                "outcome": f.outcome.value,
                                "quality": f.quality.as_dict(),
                                "refusal_reasons": list(f.refusal_reasons),
                                "candidates": [
                                    self._candidate(
                                        actor,
                                        case.organisation_id,
                                        c,
                                        by_candidate.get(
                                            CandidateRef(s.id, f.index, c.subject_id), []
                                        ),
                                    )
                                    for c in f.candidates
                                ],
                            }
                            for f in s.faces
                        ],
                    }
                    for s in searches
                ],
            }
            self.audit.record(
                session,
                AuditRecord(
                    actor=name_of(actor),
                    organisation=organisation_of(actor),
                    action=AuditAction.REPORT_CASE,
                    case_reference=case.reference,
                    details={"searches": len(searches), "reviews": len(reviews)},
                ),
            )
        return report

    def _candidate(
        self, actor: Who, organisation_id: str | None, c: Candidate, reviews: list[Review]
    ) -> dict[str, Any]:
        hidden = bool(reviews) and could_still_review(self.guard, actor, organisation_id, reviews)
        return {
            "rank": c.rank,
            "subject_id": c.subject_id,
            "subject_reference": c.subject_reference,
            "gallery": c.gallery_name,
            "score": c.score,
            "distance": c.distance,
            "within_threshold": c.within_threshold,
            "fused": c.fused,
            "expected_strangers": c.expected_strangers,
            "provenance": c.provenance.as_dict(),
            "reviews_recorded": len(reviews),
            "reviews_hidden": hidden,
            "reviews": []
            if hidden
            else [
                {
                    "reviewer": r.reviewer,
                    "decision": r.decision.value,
                    "note": r.note,
                    "at": r.at.isoformat(),
                }
                for r in reviews
            ],
            "lead": is_lead(reviews),
        }


def _count(searches: list[SearchResult], outcome: SearchOutcome) -> int:
    return sum(1 for s in searches if s.outcome is outcome)

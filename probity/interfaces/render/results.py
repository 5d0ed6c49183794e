"""Turning service results into JSON-ready dicts: ``probity ... --json`` and the API return
exactly these shapes, so the two never drift."""

from __future__ import annotations

from typing import Any

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.domain.search import FaceResult, SearchResult
from probity.services.enrolment import BulkSummary, EnrolOutcome


def search_json(result: SearchResult) -> dict[str, Any]:
    t = result.threshold
    return {
        "search_id": result.id,
        "case": result.case_reference,
        "notice": INVESTIGATIVE_LEAD_NOTICE,
        "outcome": result.outcome.value,
        "galleries": list(result.gallery_names),
        "model": result.model_key,
        "threshold": {
            "target_fmr": t.target_fmr,
            "max_distance": t.max_distance,
            "source": t.source,
            "max_distance_by_model": dict(t.by_model),
        },
        "top_k": result.top_k,
        "probe_sha256": result.probe_sha256,
        "faces": [face_json(f) for f in result.faces],
    }


def face_json(face: FaceResult) -> dict[str, Any]:
    return {
        "face": face.index,
        "box": face.box.as_list(),
        "quality": face.quality.as_dict(),
        "outcome": face.outcome.value,
        "refusal_reasons": list(face.refusal_reasons),
        "candidates": [
            {
                "rank": c.rank,
                "subject": c.subject_reference,
                "subject_id": c.subject_id,
                "gallery": c.gallery_name,
                "score": c.score,
                "distance": c.distance,
                "enrolment_id": c.enrolment_id,
                "provenance": c.provenance.as_dict(),
            }
            for c in face.candidates
        ],
    }


def enrol_json(outcome: EnrolOutcome) -> dict[str, Any]:
    e = outcome.enrolment
    return {
        "status": outcome.status.value,
        "subject": outcome.subject_reference,
        "reason": outcome.reason,
        "enrolment_id": e.id if e else None,
        "box": e.box.as_list() if e else None,
        "quality": e.quality.as_dict() if e else None,
        "provenance": e.provenance.as_dict() if e else None,
        "refused_faces": [
            {"box": r.box.as_list(), "reasons": list(r.reasons)} for r in outcome.refused_faces
        ],
    }


def bulk_json(summary: BulkSummary) -> dict[str, Any]:
    from probity.services.enrolment import RowStatus

    return {
        "enrolled": summary.count(RowStatus.ENROLLED),
        "skipped": summary.count(RowStatus.SKIPPED),
        "refused": summary.count(RowStatus.REFUSED),
        "rows": [{"line": r.line, "path": r.path, **enrol_json(r.outcome)} for r in summary.rows],
    }

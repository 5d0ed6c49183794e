"""Turning service results into JSON-ready dicts: ``probity ... --json`` and the API return
exactly these shapes, so the two never drift."""

from __future__ import annotations

from typing import Any

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.domain.search import (
    FaceResult,
    SearchResult,
    Threshold,
    VerifyResult,
    threshold_wording,
)
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
        "threshold": threshold_json(t),
        "top_k": result.top_k,
        "probe_sha256": result.probe_sha256,
        "faces": [face_json(f) for f in result.faces],
    }


def threshold_json(t: Threshold) -> dict[str, Any]:
    """A search's operating point as every JSON answer shows it: the mode, the gallery size,
    the FPIR asked for, the per-comparison FMR used, the distance, and whose table it is."""
    return {
        "mode": t.mode.value,
        "target_fpir": t.target_fpir,
        "target_fmr": t.target_fmr,
        "max_distance": t.max_distance,
        "gallery_subjects": t.gallery_subjects,
        "gallery_templates": t.gallery_templates,
        "unreachable": t.unreachable,
        "table": t.table_origin,
        "source": t.source,
        "max_distance_by_model": dict(t.by_model),
        "wording": threshold_wording(t),
    }


def verify_json(result: VerifyResult) -> dict[str, Any]:
    """A 1:1 verify as ``probity verify --json`` and the API show it."""
    return {
        "verify_id": result.id,
        "case": result.case_reference,
        "notice": INVESTIGATIVE_LEAD_NOTICE,
        "gallery": result.gallery_name,
        "subject": result.subject_reference,
        "subject_id": result.subject_id,
        "model": result.model_key,
        "probe_sha256": result.probe_sha256,
        "face": result.face,
        "box": result.box.as_list(),
        "quality": result.quality.as_dict(),
        "enrolment_id": result.enrolment_id,
        "distance": result.distance,
        "score": result.score,
        "fused": result.fused,
        "within_threshold": result.within_threshold,
        "threshold": threshold_json(result.threshold),
        "at": result.at.isoformat(),
        "actor": result.actor,
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
                "within_threshold": c.within_threshold,
                "fused": c.fused,
                "expected_strangers": c.expected_strangers,
                "provenance": c.provenance.as_dict(),
            }
            for c in face.candidates
        ],
        "expected_false_candidates": face.expected_false_candidates,
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

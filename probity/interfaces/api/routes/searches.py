"""Searches within a case, their results, reviews and leads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Request, Response, UploadFile

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.domain.review import CandidateRef, Review
from probity.domain.search import SearchResult
from probity.errors import UnsupportedOperatingPoint
from probity.interfaces.api.deps import ActorDep, PagingDep, ServicesDep
from probity.interfaces.api.links import created
from probity.interfaces.api.schemas import (
    CandidateReviewsOut,
    LeadOut,
    Page,
    ReviewIn,
    ReviewOut,
    SearchOut,
    VerifyOut,
)
from probity.interfaces.api.uploads import read_upload
from probity.interfaces.render.results import search_json, verify_json
from probity.services.reviews import CandidateReviews

router = APIRouter(prefix="/api/v1", tags=["searches"])

IDEMPOTENCY = (
    "a key of your choosing (e.g. a UUID) naming this request: sending it again with the same "
    "request returns the first answer instead of a second search; the same key with a "
    "different request is refused (422)"
)


ONE_TO_ONE_REFUSED = (
    "target_fmr is a 1:1 rate and a search compares the probe with a whole gallery: use "
    "target_fpir (the chance that a search for someone absent marks any row) or, against one "
    "named subject, POST /api/v1/cases/{reference}/verifications"
)


def _search(result: SearchResult) -> dict[str, Any]:
    out = search_json(result)
    out["at"] = result.at.isoformat() if result.at else None
    out["actor"] = result.actor
    return out


@router.post("/cases/{reference}/searches", response_model=SearchOut, status_code=201)
def run_search(
    reference: str,
    request: Request,
    response: Response,
    actor: ActorDep,
    services: ServicesDep,
    probe: Annotated[UploadFile, File(description="the probe photo")],
    galleries: Annotated[list[str] | None, Form(description="gallery names; default all")] = None,
    top_k: Annotated[int | None, Form(ge=1, le=100)] = None,
    target_fpir: Annotated[
        float | None,
        Form(
            gt=0,
            lt=1,
            description=(
                "mark rows at this false positive identification rate, at the galleries' size; "
                "unset: investigation mode (nothing marked)"
            ),
        ),
    ] = None,
    target_fmr: Annotated[
        float | None,
        Form(gt=0, lt=1, description="refused: a 1:1 rate is for verify only"),
    ] = None,
    threshold_off: Annotated[
        bool, Form(description="investigation mode whatever the server's default")
    ] = False,
    face: Annotated[int | None, Form(ge=1, le=1000, description="search only this face")] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200, description=IDEMPOTENCY)] = None,
) -> dict[str, Any]:
    """Search every face of the probe (or one) within the case. The answer is a ranked
    candidate list: an investigative lead, never an identification. The body is the one
    ``GET /api/v1/searches/{id}`` (the ``Location``) gives."""
    if target_fmr is not None:
        raise UnsupportedOperatingPoint(ONE_TO_ONE_REFUSED)
    data = read_upload(probe, services.settings.limits.max_upload_bytes)
    result = services.search.search(
        actor=actor,
        case_reference=reference,
        probe=data,
        galleries=galleries or (),
        top_k=top_k,
        target_fpir=target_fpir,
        threshold_off=threshold_off,
        face=face,
        idempotency_key=idempotency_key,
    )
    created(response, "searches", result.id)
    return _search(result)


@router.post("/cases/{reference}/verifications", response_model=VerifyOut, status_code=200)
def run_verify(
    reference: str,
    actor: ActorDep,
    services: ServicesDep,
    probe: Annotated[UploadFile, File(description="the probe photo")],
    gallery: Annotated[str, Form(max_length=200, description="the subject's gallery")],
    subject: Annotated[str, Form(max_length=200, description="the subject's reference")],
    target_fmr: Annotated[
        float | None,
        Form(gt=0, lt=1, description="1:1 false-match rate, within the model's table"),
    ] = None,
    face: Annotated[int | None, Form(ge=1, le=1000, description="the probe face")] = None,
) -> dict[str, Any]:
    """1:1: compare the probe face with one named subject within the case (audited as
    ``search.verify``). ``within_threshold`` says whether the distance is within the 1:1
    threshold: a lead for an examiner, never an identification."""
    data = read_upload(probe, services.settings.limits.max_upload_bytes)
    result = services.search.verify(
        actor=actor,
        case_reference=reference,
        probe=data,
        gallery=gallery,
        subject_reference=subject,
        target_fmr=target_fmr,
        face=face,
    )
    return verify_json(result)


@router.get("/cases/{reference}/searches", response_model=Page[SearchOut])
def list_searches(
    reference: str, actor: ActorDep, services: ServicesDep, paging: PagingDep
) -> dict[str, Any]:
    _, results = services.results.for_case(reference, actor=actor)
    return {
        "data": [_search(r) for r in paging.window(results)],
        "count": len(results),
        "limit": paging.limit,
        "offset": paging.offset,
    }


@router.get("/searches/{search_id}", response_model=SearchOut)
def get_search(search_id: str, actor: ActorDep, services: ServicesDep) -> dict[str, Any]:
    return _search(services.results.get(search_id, actor=actor))


def _review(r: Review) -> ReviewOut:
    return ReviewOut(reviewer=r.reviewer, decision=r.decision, note=r.note, at=r.at)


def _reviews(v: CandidateReviews) -> CandidateReviewsOut:
    return CandidateReviewsOut(
        search_id=v.candidate.search_id,
        face=v.candidate.face,
        subject_id=v.candidate.subject_id,
        reviews_recorded=v.count,
        hidden=v.hidden,
        reviews=[_review(r) for r in v.reviews],
        own=_review(v.own) if v.own else None,
        lead=v.lead,
        notice=INVESTIGATIVE_LEAD_NOTICE,
    )


CANDIDATE = "/searches/{search_id}/faces/{face}/candidates/{subject_id}/reviews"


@router.post(CANDIDATE, response_model=CandidateReviewsOut, status_code=201)
def record_review(
    search_id: str,
    face: int,
    subject_id: str,
    body: ReviewIn,
    response: Response,
    actor: ActorDep,
    services: ServicesDep,
) -> CandidateReviewsOut:
    """Record your decision on a candidate: ``possible_match`` (possibly the same person),
    ``not_a_match`` (not the same person) or ``inconclusive``. Two *different* reviewers
    recording ``possible_match`` make it a lead, still not an identification."""
    ref = CandidateRef(search_id, face, subject_id)
    done = services.reviews.record(
        actor=actor, candidate=ref, decision=body.decision, note=body.note
    )
    created(response, "searches", search_id, "faces", face, "candidates", subject_id, "reviews")
    return _reviews(done)


@router.get(CANDIDATE, response_model=CandidateReviewsOut)
def view_reviews(
    search_id: str, face: int, subject_id: str, actor: ActorDep, services: ServicesDep
) -> CandidateReviewsOut:
    """The candidate's reviews. Blind: until you record your own, others' decisions and
    notes are withheld (``hidden: true``) and only their number is given."""
    ref = CandidateRef(search_id, face, subject_id)
    return _reviews(services.reviews.view(actor=actor, candidate=ref))


@router.get("/reviews/queue", response_model=Page[CandidateReviewsOut])
def review_queue(
    actor: ActorDep, services: ServicesDep, paging: PagingDep
) -> Page[CandidateReviewsOut]:
    """Candidates awaiting an independent second review, without the first decision."""
    found = [_reviews(v) for v in services.reviews.queue(actor=actor)]
    return paging.page(found)


@router.get("/cases/{reference}/leads", response_model=Page[LeadOut])
def case_leads(
    reference: str, actor: ActorDep, services: ServicesDep, paging: PagingDep
) -> Page[LeadOut]:
    """Candidates of the case confirmed by two different reviewers."""
    found = [
        LeadOut(
            search_id=lead.candidate.search_id,
            face=lead.candidate.face,
            subject_id=lead.candidate.subject_id,
            case=lead.case_reference,
            confirmed_by=list(lead.confirmed_by),
            notice=INVESTIGATIVE_LEAD_NOTICE,
        )
        for lead in services.reviews.leads(actor=actor, case_reference=reference)
    ]
    return paging.page(found)

"""Pages for working a search result: pick a face, its candidate grid, the side-by-side
compare view with the review buttons, the examiner's blind queue, and the case report PDF.

Every page or fragment that shows a candidate shows the investigative-lead banner with it
(the templates put it in the same block as the candidates, so an htmx fragment carries it
too). Face crops are decrypted per response and sent with ``Cache-Control: no-store``: a
browser cache is one more copy that erasure could not reach.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from probity.domain.accounts import Action, Actor
from probity.domain.review import CandidateRef, ReviewDecision
from probity.domain.search import SearchResult
from probity.errors import InvalidInput
from probity.interfaces.api.deps import ServicesDep
from probity.interfaces.render.case_report_pdf import render_case_report_pdf
from probity.interfaces.web.common import SessionCookie, render, signed_form, signed_in
from probity.interfaces.web.listing import listing
from probity.services.container import Services
from probity.services.reviews import CandidateReviews

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}
CANDIDATE = "/searches/{search_id}/faces/{face}/candidates/{subject_id}"

DECISION_LABELS = {
    # What a reviewer says, in words that claim no certainty (issue "no word of
    # certainty"); the stored and API values stay possible_match / not_a_match.
    ReviewDecision.POSSIBLE_MATCH: "Possibly the same person",
    ReviewDecision.NOT_A_MATCH: "Not the same person",
    ReviewDecision.INCONCLUSIVE: "Inconclusive",
}


def reviews_by_candidate(
    services: Services, actor: Actor, result: SearchResult
) -> dict[tuple[int, str], CandidateReviews]:
    """What the actor may see of each candidate's reviews, keyed by (face, subject id).
    People whose role does not read leads (none today who can read searches) see none."""
    if not services.access.allows(actor, Action.LEAD_READ):
        return {}
    found = services.reviews.for_search(actor=actor, search_id=result.id)
    return {(ref.face, ref.subject_id): v for ref, v in found.items()}


def face_panel_context(
    services: Services, actor: Actor, result: SearchResult, face: int | None
) -> dict[str, Any]:
    """The selected face and the reviews to show beside its candidates. With none asked
    for, the first searched face (left to right), else the first face: the examiner sees
    candidates without a click and picks another face only to change."""
    if face is None and result.faces:
        searched = [f for f in result.faces if f.outcome.value != "refused_quality"]
        face = (searched or list(result.faces))[0].index
    selected = next((f for f in result.faces if f.index == face), None)
    if face is not None and selected is None:
        raise InvalidInput(f"this search has no face {face} (it has {len(result.faces)})")
    return {
        "result": result,
        "selected": selected,
        "reviews": reviews_by_candidate(services, actor, result) if selected else {},
        "labels": DECISION_LABELS,
    }


@router.get("/searches/{search_id}/faces/{face}", response_class=HTMLResponse)
def face_panel(
    search_id: str,
    face: int,
    request: Request,
    services: ServicesDep,
    probity_session: SessionCookie = None,
) -> Response:
    """The candidate grid of one face (the fragment htmx swaps in when a face is picked;
    a full page when opened directly)."""
    actor, csrf = signed_in(request, services, probity_session)
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse(f"/searches/{search_id}?face={face}", status_code=303)
    result = services.results.get(search_id, actor=actor)
    context = face_panel_context(services, actor, result, face)
    return render(request, "_face_panel.html", actor=actor, csrf=csrf, **context)


@router.get("/searches/{search_id}/faces/{face}/probe.jpg")
def probe_face(
    search_id: str,
    face: int,
    request: Request,
    services: ServicesDep,
    probity_session: SessionCookie = None,
) -> Response:
    actor, _ = signed_in(request, services, probity_session)
    data = services.results.probe_face_jpeg(search_id, face, actor=actor)
    return Response(data, media_type="image/jpeg", headers=NO_STORE)


@router.get(CANDIDATE + "/face.jpg")
def candidate_face(
    search_id: str,
    face: int,
    subject_id: str,
    request: Request,
    services: ServicesDep,
    probity_session: SessionCookie = None,
) -> Response:
    """The face crop of the gallery image that matched (only for a candidate of a search
    the signed-in person may read)."""
    actor, _ = signed_in(request, services, probity_session)
    data = services.results.candidate_face_jpeg(search_id, face, subject_id, actor=actor)
    return Response(data, media_type="image/jpeg", headers=NO_STORE)


@router.get(CANDIDATE, response_class=HTMLResponse)
def compare_page(
    search_id: str,
    face: int,
    subject_id: str,
    request: Request,
    services: ServicesDep,
    probity_session: SessionCookie = None,
) -> Response:
    """Probe face and candidate side by side, provenance, scores, and the review panel."""
    actor, csrf = signed_in(request, services, probity_session)
    view = services.results.candidate(search_id, face, subject_id, actor=actor)
    reviews = services.reviews.view(
        actor=actor, candidate=CandidateRef(search_id, face, subject_id)
    )
    return render(
        request,
        "compare.html",
        actor=actor,
        csrf=csrf,
        view=view,
        reviews=reviews,
        can_review=reviews.may_review,
        labels=DECISION_LABELS,
    )


@router.post(CANDIDATE + "/reviews")
def record_review(
    search_id: str,
    face: int,
    subject_id: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    decision: Annotated[str, Form(max_length=40)],
    note: Annotated[str, Form(max_length=4000)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Record the signed-in person's decision, then show the compare view again (now
    with the others' decisions, since this person has recorded theirs)."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    try:
        chosen = ReviewDecision(decision)
    except ValueError:
        allowed = ", ".join(d.value for d in ReviewDecision)
        raise InvalidInput(f"decision must be one of: {allowed}") from None
    services.reviews.record(
        actor=actor,
        candidate=CandidateRef(search_id, face, subject_id),
        decision=chosen,
        note=note,
    )
    path = CANDIDATE.format(search_id=search_id, face=face, subject_id=quote(subject_id))
    return RedirectResponse(path, status_code=303)


@router.get("/reviews/queue", response_class=HTMLResponse)
def review_queue(
    request: Request,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    q: Annotated[str, Query(max_length=200)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Candidates someone else has reviewed and the signed-in person has not: the second,
    independent review. The first decision and its note are not shown. ``q`` narrows by
    case, candidate or gallery; ``PER_PAGE`` a page."""
    actor, csrf = signed_in(request, services, probity_session)
    waiting = services.reviews.queue(actor=actor)
    counts = {item.candidate: item.count for item in waiting}
    rows = [
        (result, ref, candidate, counts[ref])
        for result, ref, candidate in services.results.candidates_for(counts, actor=actor)
    ]
    rows.sort(key=lambda row: row[0].at.isoformat() if row[0].at else "", reverse=True)
    shown = listing(
        rows,
        page=page,
        q=q,
        text=lambda row: (
            f"{row[0].case_reference} {row[2].subject_reference} {row[2].gallery_name}"
        ),
    )
    return render(request, "queue.html", actor=actor, csrf=csrf, rows=shown.rows, listing=shown)


@router.get("/cases/{reference}/report.pdf")
def case_report_pdf(
    reference: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """The case report as PDF (the same document as the API's; producing it is audited)."""
    actor, _ = signed_in(request, services, probity_session)
    report = services.reports.case_report(actor=actor, case_reference=reference)
    filename = "case-report-" + "".join(ch if ch.isalnum() else "-" for ch in reference) + ".pdf"
    return Response(
        render_case_report_pdf(report),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **NO_STORE},
    )

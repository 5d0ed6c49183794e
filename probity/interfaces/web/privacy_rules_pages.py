"""The pages for rules that erase by themselves, and the proof they leave.

- ``/jurisdictions`` (curators, privacy officers, admins: ``jurisdiction.rule``): the rules in
  force for your organisation's galleries (deployment-wide ones and your organisation's), a
  form to exclude a jurisdiction with a reason, one to lift a rule with a reason, and how
  many records are held against the rules. "Purge now" (``subject.remove``: curators and
  privacy officers) goes to a confirmation page with the count; its POST erases them through
  the one erasure path and answers with the receipts.
- ``/retention`` (``subject.remove``): each gallery's retention rule and how many records are
  due now; "Sweep now" erases them, exactly as the server's schedule does, and answers with
  the receipts.
- ``/erasures`` (privacy officers, ``rights.handle``): every erasure receipt, newest first,
  and ``/erasures/{number}`` one receipt, with its JSON for download. Receipts hold no
  biometric data.

As everywhere: every form carries the session's CSRF token; the services check the policy
again (a 403 is the error page); a rule change redirects (303) back, and an erasure answers
with its result page sent ``no-store`` (it must not be re-posted by reloading a cached page,
and it names records).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from probity.domain.accounts import Action, Actor, Resource
from probity.interfaces.api.deps import ServicesDep
from probity.interfaces.web.common import SessionCookie, render, signed_form, signed_in
from probity.interfaces.web.listing import listing, matching
from probity.interfaces.web.rights_pages import confirmed
from probity.services.container import Services
from probity.services.erasure import ErasureCause, ErasureReceipt

router = APIRouter(include_in_schema=False)

SCOPES = ("organisation", "deployment")

NAV = (
    ("Jurisdiction rules", "/jurisdictions", Action.JURISDICTION_RULE),
    ("Retention", "/retention", Action.SUBJECT_REMOVE),
    ("Erasure receipts", "/erasures", Action.RIGHTS_HANDLE),
    ("Rights requests", "/rights", Action.RIGHTS_HANDLE),
)
"""The pages of this family, linked from each other (shown to those who may open them)."""


def _may(services: Services, actor: Actor, action: Action, organisation: str | None = "") -> bool:
    """Whether ``actor`` may take ``action`` in their own organisation (``organisation``
    left out) or on ``organisation``'s things (None: the deployment's)."""
    owner = actor.organisation_id if organisation == "" else organisation
    return services.access.allows(actor, action, Resource(owner))


def _nav(services: Services, actor: Actor) -> list[tuple[str, str]]:
    return [(label, href) for label, href, action in NAV if _may(services, actor, action)]


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(
    request: Request, services: Services, actor: Actor, csrf: str, template: str, **context: Any
) -> HTMLResponse:
    return render(
        request,
        template,
        actor=actor,
        csrf=csrf,
        nav=_nav(services, actor),
        causes=[c.value for c in ErasureCause],
        **context,
    )


def _totals(receipts: list[ErasureReceipt]) -> dict[str, int]:
    return {
        "receipts": len(receipts),
        "enrolments": sum(r.enrolments for r in receipts),
        "blobs": sum(r.blobs for r in receipts),
        "index_vectors": sum(r.index_vectors for r in receipts),
    }


# -- jurisdiction rules ----------------------------------------------------------------------


def _held(services: Services, actor: Actor) -> dict[str, Any]:
    """What a purge would erase now: records, people, and records by gallery and place."""
    held = services.jurisdictions.held(actor=actor)
    names: dict[str, str] = {g.id: g.name for g in services.galleries.all(actor)}
    by_place = Counter((names.get(e.gallery_id, "?"), e.jurisdiction) for e in held)
    return {
        "held": len(held),
        "held_subjects": len({e.subject_id for e in held}),
        "by_place": sorted(by_place.items()),
    }


@router.get("/jurisdictions", response_class=HTMLResponse)
def jurisdictions_page(
    request: Request,
    services: ServicesDep,
    excluded: str = "",
    lifted: str = "",
    probity_session: SessionCookie = None,
) -> Response:
    """The rules in force, the exclude and lift forms, and what is held against them."""
    actor, csrf = signed_in(request, services, probity_session)
    rules = services.jurisdictions.rules(actor=actor)
    may_purge = _may(services, actor, Action.SUBJECT_REMOVE)
    return _page(
        request,
        services,
        actor,
        csrf,
        "privacy_rules_jurisdictions.html",
        rules=sorted(rules, key=lambda r: (r.organisation_id is not None, r.code)),
        may_lift={
            f"{r.organisation_id}/{r.code}": _may(
                services, actor, Action.JURISDICTION_RULE, r.organisation_id
            )
            for r in rules
        },
        may_deployment=_may(services, actor, Action.JURISDICTION_RULE, None),
        may_purge=may_purge,
        **(_held(services, actor) if may_purge else {"held": 0, "by_place": []}),
        excluded=excluded[:20],
        lifted=lifted[:20],
    )


@router.post("/jurisdictions")
def exclude_jurisdiction(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    code: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    scope: Annotated[str, Form(max_length=20)] = "organisation",
    probity_session: SessionCookie = None,
) -> Response:
    """Exclude a jurisdiction: refused at enrolment and withheld from search at once."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    rule = services.jurisdictions.exclude(
        actor=actor, code=code, reason=reason, deployment_wide=scope == "deployment"
    )
    return RedirectResponse(
        f"/jurisdictions?{urlencode({'excluded': rule.code})}#held", status_code=303
    )


@router.post("/jurisdictions/{code}/lift")
def lift_jurisdiction(
    code: str,
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    reason: Annotated[str, Form(max_length=2000)] = "",
    scope: Annotated[str, Form(max_length=20)] = "organisation",
    probity_session: SessionCookie = None,
) -> Response:
    """Lift a rule (purged records stay purged)."""
    actor, _ = signed_form(request, services, probity_session, csrf_token)
    rule = services.jurisdictions.lift(
        actor=actor, code=code, reason=reason, deployment_wide=scope == "deployment"
    )
    return RedirectResponse(f"/jurisdictions?{urlencode({'lifted': rule.code})}", status_code=303)


@router.get("/jurisdictions/purge", response_class=HTMLResponse)
def purge_confirm(
    request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """The confirmation step: what the purge would erase, then the button that does it."""
    actor, csrf = signed_in(request, services, probity_session)
    return _page(
        request, services, actor, csrf, "privacy_rules_purge.html", **_held(services, actor)
    )


@router.post("/jurisdictions/purge", response_class=HTMLResponse)
def purge(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    probity_session: SessionCookie = None,
) -> Response:
    """Erase every record held against the rules; the answer lists the receipts."""
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    receipts = services.jurisdictions.purge(actor=actor)
    return _no_store(
        _page(
            request,
            services,
            actor,
            csrf,
            "privacy_rules_purged.html",
            receipts=receipts,
            totals=_totals(receipts),
        )
    )


# -- retention -------------------------------------------------------------------------------


@router.get("/retention", response_class=HTMLResponse)
def retention_page(
    request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """Each gallery's retention rule and how many of its records are due now."""
    actor, csrf = signed_in(request, services, probity_session)
    due = services.retention.due(actor=actor)
    rows = [
        (gallery, subjects, enrolments, due.get(gallery.id, 0))
        for gallery, subjects, enrolments in services.galleries.list(actor)
    ]
    return _page(
        request,
        services,
        actor,
        csrf,
        "privacy_rules_retention.html",
        rows=rows,
        due_total=sum(due.values()),
        today=services.clock().date(),
        interval_s=services.settings.retention.sweep_interval_s,
    )


@router.post("/retention/sweep", response_class=HTMLResponse)
def sweep(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()],
    confirm: Annotated[str, Form(max_length=10)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Erase what is due now (after the form's confirmation box); the answer lists the
    receipts."""
    actor, csrf = signed_form(request, services, probity_session, csrf_token)
    confirmed(confirm)
    result = services.retention.sweep(actor=actor)
    receipts = list(result.receipts)
    return _no_store(
        _page(
            request,
            services,
            actor,
            csrf,
            "privacy_rules_swept.html",
            result=result,
            receipts=receipts,
            totals=_totals(receipts),
        )
    )


# -- erasure receipts ------------------------------------------------------------------------


def _receipt_text(r: ErasureReceipt) -> str:
    return " ".join((r.number, r.gallery, r.subject_reference, r.actor, r.cause.value, r.reason))


def _receipt_url(number: str, tail: str = "") -> str:
    return f"/erasures/{quote(number, safe='')}{tail}"


@router.get("/erasures", response_class=HTMLResponse)
def erasures_page(
    request: Request,
    services: ServicesDep,
    cause: str = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    q: Annotated[str, Query(max_length=200)] = "",
    probity_session: SessionCookie = None,
) -> Response:
    """Every erasure receipt, newest first; ``cause=`` keeps one cause, ``q`` narrows by
    receipt number, gallery, record, actor or reason; the totals count every match, the
    table shows one page."""
    actor, csrf = signed_in(request, services, probity_session)
    receipts = services.erasure.receipts(actor=actor)
    if cause:
        receipts = [r for r in receipts if r.cause.value == cause]
    receipts = matching(receipts, q, _receipt_text)
    shown = listing(receipts, page=page, q=q, text=_receipt_text, keep={"cause": cause})
    return _no_store(
        _page(
            request,
            services,
            actor,
            csrf,
            "erasures.html",
            receipts=shown.rows,
            listing=shown,
            chosen=cause,
            totals=_totals(receipts),
        )
    )


@router.get("/erasures/{number}", response_class=HTMLResponse)
def erasure_receipt_page(
    number: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    actor, csrf = signed_in(request, services, probity_session)
    receipt = services.erasure.receipt(number, actor=actor)
    return _no_store(
        _page(
            request,
            services,
            actor,
            csrf,
            "erasures_receipt.html",
            r=receipt,
            json_url=_receipt_url(receipt.number, "/receipt.json"),
        )
    )


@router.get("/erasures/{number}/receipt.json")
def erasure_receipt_json(
    number: str, request: Request, services: ServicesDep, probity_session: SessionCookie = None
) -> Response:
    """The receipt as JSON, for download (the same fields as the API's)."""
    actor, _ = signed_in(request, services, probity_session)
    receipt = services.erasure.receipt(number, actor=actor)
    name = quote(f"erasure-receipt-{receipt.number}.json", safe="")
    return _no_store(
        Response(
            json.dumps(receipt.as_dict(), indent=2, sort_keys=True) + "\n",
            media_type="application/json",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
        )
    )

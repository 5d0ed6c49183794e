"""What an integrator needs from the API (issue 13, item 5): a search answers the same body
on POST and GET; unsupported operating points are refused, not moved; ``Idempotency-Key``
on searches and enrolments; a subject's enrolments listed and one removed (an erasure with a
receipt); ``Location`` on 201s; readable operationIds and per-operation errors."""

from __future__ import annotations

from typing import Any

import pytest

from probity.domain.audit import AuditAction
from tests.api.conftest import (
    PERSON_A,
    PROVENANCE,
    World,
    enrol_gallery,
    open_case,
    search,
)
from tests.fakes import make_image, near, unit

REASON = "curator's correction: wrong subject"


def _audited(w: World, action: AuditAction) -> int:
    return w.services.audit.events(actor="root", action=action.value).total


def test_post_and_get_of_a_search_answer_the_same_body(world: World) -> None:
    probes = enrol_gallery(world)
    open_case(world)
    r = search(world, probes["pair"])
    assert r.status_code == 201, r.text
    posted = r.json()
    assert posted["at"] is not None and posted["actor"] == "inv"
    assert r.headers["location"] == f"/api/v1/searches/{posted['search_id']}"
    got = world.call("GET", r.headers["location"], "inv")
    assert got.status_code == 200
    assert got.json() == posted


def test_a_one_to_one_rate_is_refused_for_a_search_and_fpir_marks(world: World) -> None:
    probes = enrol_gallery(world)
    open_case(world)
    r = search(world, probes["a"], target_fmr="0.01")
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "unsupported_operating_point"
    assert "target_fpir" in problem["detail"] and "verifications" in problem["detail"]
    assert world.call("GET", "/api/v1/cases/OP-1/searches", "inv").json()["count"] == 0
    ok = search(world, probes["a"], target_fpir="0.01")
    assert ok.status_code == 201, ok.text
    threshold = ok.json()["threshold"]
    assert threshold["mode"] == "fpir" and threshold["target_fpir"] == 0.01
    templates = threshold["gallery_templates"]
    assert templates >= 1 and threshold["target_fmr"] == pytest.approx(0.01 / templates)
    assert threshold["table"] == "shipped" and "LFW, all pairs" in threshold["source"]
    rows = [c for f in ok.json()["faces"] for c in f["candidates"]]
    assert rows and all(isinstance(c["within_threshold"], bool) for c in rows)
    default = search(world, probes["a"]).json()
    assert default["threshold"]["mode"] == "investigation"
    assert all(c["within_threshold"] is None for f in default["faces"] for c in f["candidates"])


def test_idempotency_key_makes_one_search(world: World) -> None:
    probes = enrol_gallery(world)
    open_case(world)
    before = _audited(world, AuditAction.SEARCH)
    key = {"Idempotency-Key": "8f7c3b2e-search-1"}
    first = world.call(
        "POST",
        "/api/v1/cases/OP-1/searches",
        "inv",
        headers=key,
        files={"probe": ("probe.png", probes["pair"], "image/png")},
    )
    again = world.call(
        "POST",
        "/api/v1/cases/OP-1/searches",
        "inv",
        headers=key,
        files={"probe": ("probe.png", probes["pair"], "image/png")},
    )
    assert first.status_code == 201 and again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert world.call("GET", "/api/v1/cases/OP-1/searches", "inv").json()["count"] == 1
    assert _audited(world, AuditAction.SEARCH) == before + 1

    # The same key with another request: refused, nothing run.
    other = world.call(
        "POST",
        "/api/v1/cases/OP-1/searches",
        "inv",
        headers=key,
        files={"probe": ("probe.png", probes["a"], "image/png")},
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    # Without a key, a repeat is a new search, as before. (Keys are per person:
    # tests/services/test_idempotency.py.)
    assert search(world, probes["pair"]).json()["search_id"] != first.json()["search_id"]
    assert _audited(world, AuditAction.SEARCH) == before + 2


def _enrol(w: World, image: bytes, subject: str, key: str | None = None) -> Any:
    return w.call(
        "POST",
        "/api/v1/galleries/custody/enrolments",
        "cur",
        headers={"Idempotency-Key": key} if key else {},
        data={"subject": subject, **PROVENANCE},
        files={"image": ("photo.png", image, "image/png")},
    )


def test_idempotency_key_on_enrolment_returns_the_first_answer(world: World) -> None:
    enrol_gallery(world)
    image = world.engine.register(make_image(40), unit(7))
    first = _enrol(world, image, "C-1", key="enrol-C-1")
    assert first.status_code == 201, first.text
    again = _enrol(world, image, "C-1", key="enrol-C-1")
    assert again.status_code == 201, again.text
    assert again.json()["enrolment_id"] == first.json()["enrolment_id"]
    assert again.headers["location"] == first.headers["location"]
    # Without the key the same upload is the usual conflict, and a different body under
    # the same key is refused.
    assert _enrol(world, image, "C-1").status_code == 409
    reused = _enrol(world, image, "C-2", key="enrol-C-1")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    listed = world.call("GET", "/api/v1/galleries/custody/subjects/C-1/enrolments", "cur")
    assert listed.json()["count"] == 1


def test_list_a_subjects_enrolments_and_remove_one_with_a_receipt(world: World) -> None:
    probes = enrol_gallery(world)
    second = world.engine.register(make_image(41), near(PERSON_A, 0.2, 5))
    added = _enrol(world, second, "A-1")
    assert added.status_code == 201, added.text
    location = added.headers["location"]
    assert location.startswith("/api/v1/galleries/custody/subjects/A-1/enrolments/")
    assert world.call("GET", location, "cur").status_code == 200

    url = "/api/v1/galleries/custody/subjects/A-1/enrolments"
    listed = world.call("GET", url, "cur").json()
    assert listed["count"] == 2
    ids = [e["enrolment_id"] for e in listed["data"]]
    assert listed["data"][0]["provenance"]["source"] == PROVENANCE["source"]
    # Investigators may not list records; another organisation cannot see the subject.
    assert world.call("GET", url, "inv").status_code == 403
    assert world.call("GET", url, "inv2").status_code == 404

    before = _audited(world, AuditAction.ENROLMENT_ERASE)
    gone = world.call("DELETE", f"{url}/{ids[1]}", "cur", params={"reason": REASON})
    assert gone.status_code == 200, gone.text
    body = gone.json()
    assert body["receipt"].startswith("ER-") and body["enrolments"] == 1
    assert _audited(world, AuditAction.ENROLMENT_ERASE) == before + 1
    assert [e["enrolment_id"] for e in world.call("GET", url, "cur").json()["data"]] == ids[:1]
    assert world.call("GET", f"{url}/{ids[1]}", "cur").status_code == 404
    receipts = world.services.erasure.receipts(actor="root")
    assert body["receipt"] in {r.number for r in receipts}
    # Removing it again, or an id of someone else, is a precise 404.
    again = world.call("DELETE", f"{url}/{ids[1]}", "cur", params={"reason": REASON})
    assert again.status_code == 404 and again.json()["code"] == "enrolment_not_found"
    # The subject is still found by its remaining enrolment.
    open_case(world)
    found = search(world, probes["a"]).json()
    assert found["faces"][0]["candidates"][0]["subject"] == "A-1"
    assert found["faces"][0]["candidates"][0]["enrolment_id"] == ids[0]


def test_location_on_201s(world: World) -> None:
    probes = enrol_gallery(world)
    r = world.call("POST", "/api/v1/cases", "inv", json={
        "reference": "OP 7", "offence": "robbery", "justification": "CCTV still, camera 4",
        "authorisation": "WARRANT-7", "authority": "Judge",
    })  # fmt: skip
    assert r.status_code == 201 and r.headers["location"] == "/api/v1/cases/OP%207"
    case = world.call("GET", "/api/v1/cases/OP-1", "inv")
    assert case.status_code == 404  # not made
    gallery = world.call(
        "POST",
        "/api/v1/galleries",
        "cur",
        json={"name": "second", "inclusion_policy": "people charged", "retention_days": 30},
    )
    assert gallery.headers["location"] == "/api/v1/galleries/second"
    assert world.call("GET", gallery.headers["location"], "cur").status_code == 200
    found = search(world, probes["a"], reference="OP 7").json()
    subject = found["faces"][0]["candidates"][0]["subject_id"]
    url = f"/api/v1/searches/{found['search_id']}/faces/1/candidates/{subject}/reviews"
    review = world.call("POST", url, "inv", json={"decision": "possible_match"})
    assert review.status_code == 201 and review.headers["location"] == url
    key = world.call("POST", "/api/v1/keys", "inv", json={"label": "second"})
    assert key.headers["location"] == f"/api/v1/keys/{key.json()['key_id']}"


def test_openapi_operation_ids_errors_and_location(sqlite_world: World) -> None:
    doc = sqlite_world.client.get("/openapi.json").json()
    ops = {
        (method, path): op
        for path, methods in doc["paths"].items()
        if path.startswith("/api/")
        for method, op in methods.items()
    }
    ids = [op["operationId"] for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert all("api_v1" not in i and "__" not in i for i in ids), ids
    assert ops[("post", "/api/v1/cases/{reference}/searches")]["operationId"] == (
        "searches-run_search"
    )
    for (method, path), op in ops.items():
        responses = op["responses"]
        assert {"401", "422", "500"} <= set(responses), (method, path)
        if method == "get":
            assert "409" not in responses and "413" not in responses, path
        if "201" in responses:
            assert "Location" in responses["201"]["headers"], path
    search_op = ops[("post", "/api/v1/cases/{reference}/searches")]
    assert {"404", "409", "413", "429"} <= set(search_op["responses"])
    headers = {p["name"] for p in search_op["parameters"] if p["in"] == "header"}
    assert "idempotency-key" in {h.lower() for h in headers}


def _verify(w: World, probe: bytes, reference: str = "OP-1", **form: Any) -> Any:
    return w.call(
        "POST",
        f"/api/v1/cases/{reference}/verifications",
        "inv",
        data=form,
        files={"probe": ("probe.png", probe, "image/png")},
    )


def test_verify_is_one_to_one_within_a_case_and_audited(world: World) -> None:
    probes = enrol_gallery(world)
    open_case(world)
    before = _audited(world, AuditAction.VERIFY)
    right = _verify(world, probes["a"], gallery="custody", subject="A-1")
    assert right.status_code == 200, right.text
    body = right.json()
    assert body["within_threshold"] is True and body["subject"] == "A-1"
    assert body["threshold"]["mode"] == "fmr" and body["threshold"]["target_fmr"] == 0.001
    assert "not an identification" in body["notice"].lower()
    wrong = _verify(world, probes["a"], gallery="custody", subject="B-1", target_fmr="0.01")
    assert wrong.status_code == 200, wrong.text
    assert wrong.json()["within_threshold"] is False
    assert wrong.json()["threshold"]["target_fmr"] == 0.01
    assert _audited(world, AuditAction.VERIFY) == before + 2
    # The pair photo holds two faces: the face must be named.
    two = _verify(world, probes["pair"], gallery="custody", subject="A-1")
    assert two.status_code == 400 and "choose one with face" in two.json()["detail"]
    assert _verify(world, probes["pair"], gallery="custody", subject="A-1", face="2").json()[
        "within_threshold"
    ]
    # Outside a case, an unknown subject, a rate outside the table: refused, not audited.
    assert (
        _verify(world, probes["a"], "NO-CASE", gallery="custody", subject="A-1").status_code == 404
    )
    unknown = _verify(world, probes["a"], gallery="custody", subject="Z-9")
    assert unknown.status_code == 404 and "Z-9" in unknown.json()["detail"]
    outside = _verify(world, probes["a"], gallery="custody", subject="A-1", target_fmr="1e-9")
    assert outside.status_code == 422 and outside.json()["code"] == "unsupported_operating_point"
    assert _audited(world, AuditAction.VERIFY) == before + 3

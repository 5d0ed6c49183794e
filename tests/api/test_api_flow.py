"""The server end to end on SQLite and PostgreSQL: enrol, open a case, search, review with
the two-person rule, leads, the case report and the audit trail."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from pypdf import PdfReader

from probity import INVESTIGATIVE_LEAD_NOTICE
from tests.api.conftest import World, enrol_gallery, open_case, search


def test_search_review_lead_report_and_audit(world: World) -> None:
    probes = enrol_gallery(world)
    open_case(world)

    r = search(world, probes["pair"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["notice"] == INVESTIGATIVE_LEAD_NOTICE
    assert [f["face"] for f in body["faces"]] == [1, 2]
    left, right = body["faces"]
    assert left["candidates"][0]["subject"] == "B-1"
    assert right["candidates"][0]["subject"] == "A-1"
    assert right["candidates"][0]["provenance"]["source"] == "custody-suite/118812"
    search_id = body["search_id"]

    # The stored search reads back with the same shape and content.
    again = world.call("GET", f"/api/v1/searches/{search_id}", "ex1").json()
    assert again["faces"][1]["candidates"][0]["subject"] == "A-1"
    assert again["actor"] == "inv"
    listed = world.call("GET", "/api/v1/cases/OP-1/searches", "sup").json()
    assert listed["count"] == 1 and listed["data"][0]["search_id"] == search_id

    subject = right["candidates"][0]["subject_id"]
    url = f"/api/v1/searches/{search_id}/faces/2/candidates/{subject}/reviews"

    # First review: the investigator says "possible match".
    r = world.call("POST", url, "inv", json={"decision": "possible_match", "note": "same scar"})
    assert r.status_code == 201, r.text
    assert r.json()["lead"] is False

    # The same person again: refused, still not a lead.
    r = world.call("POST", url, "inv", json={"decision": "possible_match"})
    assert r.status_code == 403 and r.json()["code"] == "not_permitted"
    assert world.call("GET", url, "sup").json()["lead"] is False

    # A second examiner cannot read the first decision before recording their own...
    blind = world.call("GET", url, "ex1").json()
    assert blind["hidden"] is True and blind["reviews"] == [] and blind["reviews_recorded"] == 1
    assert "same scar" not in json.dumps(blind) and "possible_match" not in json.dumps(blind)
    queue = world.call("GET", "/api/v1/reviews/queue", "ex1").json()
    assert queue["count"] == 1 and queue["data"][0]["subject_id"] == subject
    assert queue["data"][0]["reviews"] == []
    # ...nor through the case report.
    report = world.call("GET", "/api/v1/cases/OP-1/report", "inv").json()
    assert report["searches"][0]["faces"][1]["candidates"][0]["reviews"]  # inv reviewed: sees

    # The second, different examiner confirms: now a lead.
    r = world.call("POST", url, "ex1", json={"decision": "possible_match", "note": "agree"})
    assert r.status_code == 201
    assert r.json()["lead"] is True and r.json()["reviews_recorded"] == 2
    leads = world.call("GET", "/api/v1/cases/OP-1/leads", "sup").json()
    assert leads["count"] == 1
    assert leads["data"][0]["confirmed_by"] == ["ex1", "inv"]
    assert leads["data"][0]["notice"] == INVESTIGATIVE_LEAD_NOTICE
    # ex2, who has not reviewed, still sees nothing of the decisions.
    assert world.call("GET", url, "ex2").json()["hidden"] is True
    # The queue no longer offers it.
    assert world.call("GET", "/api/v1/reviews/queue", "ex2").json()["count"] == 0

    # A search with no face is part of the report too.
    world.clock.advance(timedelta(minutes=1))
    assert search(world, probes["none"]).json()["outcome"] == "no_face_found"
    report = world.call("GET", "/api/v1/cases/OP-1/report", "sup").json()
    assert report["summary"] == {
        "searches": 2,
        "with_candidates": 1,
        "no_candidate": 0,
        "no_face": 1,
        "reviews": 2,
        "leads": 1,
    }
    first = report["searches"][0]
    assert first["model"].startswith("dlib-resnet-v1")
    assert first["threshold"]["mode"] == "investigation"  # the default: nothing marked
    assert first["threshold"]["max_distance"] is None
    assert "Investigation mode" in first["threshold"]["wording"]
    assert first["faces"][0]["quality"]["inter_eye_px"] == 80.0
    candidate = first["faces"][1]["candidates"][0]
    assert candidate["lead"] is True
    assert {r["reviewer"] for r in candidate["reviews"]} == {"inv", "ex1"}

    pdf = world.call("GET", "/api/v1/cases/OP-1/report.pdf", "sup")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "OP-1" in text and "A-1" in text and "No face found" in text

    # The auditor sees every step, and the chain verifies.
    events = world.call("GET", "/api/v1/audit?limit=500", "aud").json()
    actions = [e["action"] for e in events["data"]]
    for expected in ("case.open", "search.run", "review.record", "lead.confirmed", "report.case"):
        assert expected in actions, expected
    lead_event = next(e for e in events["data"] if e["action"] == "lead.confirmed")
    assert lead_event["actor"] == "ex1" and lead_event["organisation"] == "Met"
    filtered = world.call("GET", "/api/v1/audit?action=review.record", "aud").json()
    assert filtered["count"] == 2 and {e["actor"] for e in filtered["data"]} == {"inv", "ex1"}
    verified = world.call("POST", "/api/v1/audit/verify", "aud").json()
    assert verified["ok"] is True and verified["events_checked"] > 20
    # Reading the log was itself audited.
    reads = world.call("GET", "/api/v1/audit?action=audit.read", "aud").json()
    assert reads["count"] >= 2

    # Wording: nothing anywhere says "identified" or match: true.
    everything = json.dumps(world.seen).lower()
    assert "identified" not in everything
    assert '"match": true' not in everything and '"is_match"' not in everything


def test_organisations_are_walled_off(world: World) -> None:
    probes = enrol_gallery(world)
    open_case(world)
    search_id = search(world, probes["a"]).json()["search_id"]
    # Elsewhere's investigator cannot see Met's case, search, gallery or audit events.
    assert world.call("GET", "/api/v1/cases/OP-1", "inv2").status_code == 404
    assert world.call("GET", f"/api/v1/searches/{search_id}", "inv2").status_code == 404
    assert world.call("GET", "/api/v1/galleries/custody", "inv2").status_code == 404
    assert world.call("GET", "/api/v1/cases", "inv2").json()["count"] == 0
    r = search(world, probes["a"], user="inv2")
    assert r.status_code == 404 and r.json()["code"] == "case_not_found"
    # Their own case searches only their own (empty) galleries.
    open_case(world, "ELSE-1", user="inv2")
    r = search(world, probes["a"], reference="ELSE-1", user="inv2")
    assert r.status_code == 400 and "no gallery" in r.json()["detail"]

"""``/api/v1/rights-requests`` for privacy officers, with the fake engine: file (multipart,
identifiers as NAME=VALUE), list, read, extend once, export (a zip listing the searches that
returned the subject), close; an erasure request's erasure with a receipt; an objection by
photo, the photo gone at closing; a photo lookup listing possible matches (no-store,
nothing stored); other roles 403, unknown receipts 404, the chain verified."""

from __future__ import annotations

import io
import json
import re
import zipfile

import httpx
import pytest

from tests.api.conftest import PERSON_A, World, enrol_gallery, open_case, search
from tests.fakes import make_image, near

BASE = "/api/v1/rights-requests"


def _file(w: World, kind: str, *identifiers: str, photo: bytes | None = None) -> httpx.Response:
    return w.call(
        "POST",
        BASE,
        "dpo",
        data={"kind": kind, "contact": "jo@example.org", "identifier": list(identifiers)},
        files={"photo": ("photo.png", photo, "image/png")} if photo else None,
    )


def test_access_request_extend_export_close(world: World) -> None:
    probes = enrol_gallery(world)
    open_case(world)
    assert search(world, probes["a"]).status_code == 201
    assert search(world, probes["pair"]).status_code == 201

    r = _file(world, "access", "reference=A-1", "gallery=custody")
    assert r.status_code == 201, r.text
    filed = r.json()
    receipt = filed["receipt"]
    assert re.match(r"^RR-\d{4}-[0-9A-F]{10}$", receipt)
    assert filed["status"] == "open" and filed["overdue"] is False
    assert filed["identifiers"] == {"reference": "A-1", "gallery": "custody"}
    assert 27 <= filed["days_left"] <= 31 and filed["filed_by"] == "dpo"

    listed = world.call("GET", BASE, "dpo").json()
    assert listed["count"] == 1 and listed["data"][0]["receipt"] == receipt
    assert world.call("GET", f"{BASE}/{receipt}", "dpo").json()["kind"] == "access"
    assert world.call("GET", BASE, "inv").status_code == 403
    assert world.call("GET", f"{BASE}/RR-2026-0000000000", "dpo").json()["code"] == (
        "rights_request_not_found"
    )

    r = world.call("POST", f"{BASE}/{receipt}/extension", "dpo", json={"reason": "complex"})
    assert r.status_code == 200 and r.json()["status"] == "extended"
    again = world.call("POST", f"{BASE}/{receipt}/extension", "dpo", json={"reason": "more"})
    assert again.status_code == 409

    r = world.call(
        "GET",
        f"{BASE}/{receipt}/export.zip",
        "dpo",
        params={"gallery": "custody", "reference": "A-1"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["cache-control"] == "no-store"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    document = json.loads(archive.read("subject.json"))
    assert [s["case_reference"] for s in document["searches"]] == ["OP-1", "OP-1"]
    assert {"subject.json", "report.pdf"} <= set(archive.namelist())
    assert len([n for n in archive.namelist() if n.startswith("images/")]) == 1

    r = world.call("POST", f"{BASE}/{receipt}/closure", "dpo", json={"outcome": "export sent"})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert r.json()["result"]["exports"][0]["searches"] == 2
    assert world.call("POST", "/api/v1/audit/verify", "aud").json()["ok"] is True


def test_erasure_and_objection_requests(world: World) -> None:
    enrol_gallery(world)
    r = _file(world, "erasure", "reference=B-1")
    assert r.status_code == 201, r.text
    receipt = r.json()["receipt"]
    r = world.call(
        "POST", f"{BASE}/{receipt}/erasures", "dpo", json={"gallery": "custody", "reference": "B-1"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["receipt"].startswith("ER-") and r.json()["cause"] == "request"
    r = world.call(
        "POST", f"{BASE}/{receipt}/closure", "dpo", json={"status": "refused", "outcome": "no"}
    )
    assert r.status_code == 422  # outcome shorter than 3 characters
    r = world.call(
        "POST", f"{BASE}/{receipt}/closure", "dpo", json={"status": "closed", "outcome": "erased"}
    )
    assert r.status_code == 200 and r.json()["result"]["erasures"][0]["subject_reference"] == "B-1"

    photo = world.engine.register(make_image(301), near(PERSON_A, 0.2, 31))
    r = _file(world, "objection", photo=photo)
    assert r.status_code == 201, r.text
    objection = r.json()
    assert objection["has_photo"] is True
    r = world.call("POST", f"{BASE}/{objection['receipt']}/objection", "dpo")
    assert r.status_code == 200, r.text
    assert r.json()["result"]["suppression_id"]
    assert [e["subject_reference"] for e in r.json()["result"]["erasures"]] == ["A-1"]
    r = world.call(
        "POST", f"{BASE}/{objection['receipt']}/closure", "dpo", json={"outcome": "on file"}
    )
    assert r.status_code == 200 and r.json()["has_photo"] is False

    bad = _file(world, "access", "CRN-1")
    assert bad.status_code == 400 and "NAME=VALUE" in bad.json()["detail"]
    needless = _file(world, "access", "reference=A-1", photo=make_image(5))
    assert needless.status_code == 400 and "not needed" in needless.json()["detail"]
    assert world.call("POST", "/api/v1/audit/verify", "aud").json()["ok"] is True


def test_photo_lookup_lists_possible_matches_for_checking(world: World) -> None:
    enrol_gallery(world)
    photo = world.engine.register(make_image(302), near(PERSON_A, 0.25, 32))
    r = _file(world, "erasure", photo=photo)  # no reference: the photo finds the record
    assert r.status_code == 201, r.text
    receipt = r.json()["receipt"]
    assert world.call("POST", f"{BASE}/{receipt}/photo-lookup", "inv").status_code == 403

    r = world.call("POST", f"{BASE}/{receipt}/photo-lookup", "dpo")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert "not an identification" in body["notice"]
    assert body["max_distance"] == 0.593 and body["target_fmr"] == 0.005
    (match,) = body["possible_matches"]
    assert (match["rank"], match["gallery"], match["subject_reference"]) == (1, "custody", "A-1")
    assert match["distance"] == pytest.approx(0.25, abs=1e-3)
    # Nothing was done: the request holds no result, A-1 is still enrolled.
    assert world.call("GET", f"{BASE}/{receipt}", "dpo").json()["result"] == {}
    r = world.call(
        "POST", f"{BASE}/{receipt}/erasures", "dpo",
        json={"gallery": match["gallery"], "reference": match["subject_reference"]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    again = world.call("POST", f"{BASE}/{receipt}/photo-lookup", "dpo").json()
    assert again["possible_matches"] == []

    by_reference = _file(world, "access", "reference=B-1").json()["receipt"]
    r = world.call("POST", f"{BASE}/{by_reference}/photo-lookup", "dpo")
    assert r.status_code == 409 and "holds no photo" in r.json()["detail"]
    no_face = _file(world, "access", photo=make_image(303)).json()["receipt"]
    r = world.call("POST", f"{BASE}/{no_face}/photo-lookup", "dpo")
    assert r.status_code == 422 and r.json()["code"] == "no_face_found"
    assert (
        "/api/v1/rights-requests/{receipt}/photo-lookup"
        in world.call("GET", "/openapi.json").json()["paths"]
    )
    assert world.call("POST", "/api/v1/audit/verify", "aud").json()["ok"] is True

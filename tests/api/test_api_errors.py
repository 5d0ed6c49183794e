"""Bad input gets a precise problem+json answer and changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from probity.storage.tables import AuditEventRow, EnrolmentRow, SearchRow
from tests.api.conftest import PROVENANCE, World, enrol_gallery, open_case, search
from tests.fakes import make_image, unit


def _count(w: World, table: type) -> int:
    with w.services.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _enrol(w: World, image: bytes, **fields: str) -> dict[str, object]:
    data = {"subject": "C-1", **PROVENANCE, **fields}
    data = {k: v for k, v in data.items() if v != "<omit>"}
    r = w.call(
        "POST",
        "/api/v1/galleries/custody/enrolments",
        "cur",
        data=data,
        files={"image": ("x.png", image, "image/png")},
    )
    assert r.headers["content-type"] == "application/problem+json", r.text
    body = r.json()
    assert body["status"] == r.status_code and body["type"].endswith(body["code"])
    return {"status": r.status_code, **body}


def test_enrolment_errors_are_precise_and_write_nothing(sqlite_world: World) -> None:
    w = sqlite_world
    enrol_gallery(w)
    before = (_count(w, EnrolmentRow), _count(w, AuditEventRow))
    face = w.engine.register(make_image(40), unit(7))

    missing = _enrol(w, face, lawful_basis="<omit>")
    assert (missing["status"], missing["code"]) == (422, "missing_provenance")
    assert "lawful_basis" in str(missing["detail"])
    wrong_basis = _enrol(w, face, lawful_basis="because")
    assert wrong_basis["status"] == 400 and "lawful_basis" in str(wrong_basis["detail"])
    corrupt = _enrol(w, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert (corrupt["status"], corrupt["code"]) == (400, "invalid_image")
    empty = _enrol(w, b"")
    assert empty["status"] in (400, 422)
    no_face = _enrol(w, make_image(41))
    assert (no_face["status"], no_face["code"]) == (422, "no_face_found")
    r = w.call(
        "POST",
        "/api/v1/galleries/nowhere/enrolments",
        "cur",
        data={"subject": "C-1", **PROVENANCE},
        files={"image": ("x.png", face, "image/png")},
    )
    assert r.status_code == 404 and r.json()["code"] == "gallery_not_found"
    assert (_count(w, EnrolmentRow), _count(w, AuditEventRow)) == before


def test_oversized_bodies_are_refused_before_parsing(sqlite_world: World) -> None:
    w = sqlite_world
    enrol_gallery(w)
    open_case(w)
    w.services.settings.limits.max_upload_bytes = 10_000  # the app's body limit is fixed...
    huge = b"\xff\xd8" + b"\x00" * (30 * 1024 * 1024)  # ...at 25 MiB + 1 MiB of multipart
    before = _count(w, SearchRow)
    r = search(w, huge)
    assert r.status_code == 413 and r.json()["code"] == "request_too_large"
    # Under the body limit but over the configured upload limit: the service refuses it.
    r = search(w, b"\xff\xd8" + b"\x00" * 20_000)
    assert r.status_code == 413 and r.json()["code"] == "image_too_large"
    assert _count(w, SearchRow) == before


def test_request_validation_and_unknown_things(sqlite_world: World) -> None:
    w = sqlite_world
    r = w.call("POST", "/api/v1/cases", "inv", json={"reference": "X"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert r.headers["content-type"] == "application/problem+json"
    assert {tuple(e["loc"]) for e in r.json()["errors"]} >= {("body", "offence")}
    r = w.call(
        "POST",
        "/api/v1/cases",
        "inv",
        json={
            "reference": "X",
            "offence": "jaywalking",
            "justification": "a long enough reason",
            "authorisation": "A-1",
        },
    )
    assert r.status_code == 400 and "jaywalking" in r.json()["detail"]
    r = w.call("GET", "/api/v1/cases/NOPE", "inv")
    assert r.status_code == 404 and r.json()["code"] == "case_not_found"
    r = w.call("GET", "/api/v1/searches/0123", "inv")
    assert r.status_code == 404 and r.json()["code"] == "search_not_found"
    r = w.call("GET", "/api/v1/no-such-thing", "inv")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = w.call("GET", "/api/v1/audit?limit=0", "aud")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "limit"]
    r = search(w, make_image(50), reference="NOPE")
    assert r.status_code == 404 and r.json()["code"] == "case_not_found"


def test_pagination_is_consistent(sqlite_world: World) -> None:
    w = sqlite_world
    for i in range(3):
        open_case(w, f"PAGE-{i}")
    first = w.call("GET", "/api/v1/cases?limit=2", "inv").json()
    second = w.call("GET", "/api/v1/cases?limit=2&offset=2", "inv").json()
    assert (first["count"], first["limit"], first["offset"]) == (3, 2, 0)
    assert [c["reference"] for c in first["data"] + second["data"]] == [
        "PAGE-0",
        "PAGE-1",
        "PAGE-2",
    ]
    events = w.call("GET", "/api/v1/audit?limit=2&offset=1", "aud").json()
    # Met's auditor sees Met's events: the three case openings (this read is recorded after).
    assert events["count"] == 3
    assert [e["action"] for e in events["data"]] == ["case.open", "case.open"]
    assert events["data"][0]["seq"] < events["data"][1]["seq"]

"""``POST /api/v1/objections`` with the fake engine: a privacy officer's objection erases the
matching record of their organisation, is withheld from search, refuses a new enrolment with
409 ``objection_on_file``; other roles get 403; another organisation's galleries are outside
the objection's scope."""

from __future__ import annotations

from tests.api.conftest import PERSON_A, PROVENANCE, World, enrol_gallery, open_case, search
from tests.fakes import make_image, near


def _object(w: World, image: bytes, user: str = "dpo", **form: str):  # type: ignore[no-untyped-def]
    return w.call(
        "POST",
        "/api/v1/objections",
        user,
        data={"reference": "LETTER-1", **form},
        files={"image": ("photo.png", image, "image/png")},
    )


def _enrol(w: World, gallery: str, ref: str, image: bytes, user: str = "cur"):  # type: ignore[no-untyped-def]
    return w.call(
        "POST",
        f"/api/v1/galleries/{gallery}/enrolments",
        user,
        data={"subject": ref, **PROVENANCE},
        files={"image": ("photo.png", image, "image/png")},
    )


def test_objection_erases_withholds_and_refuses(world: World) -> None:
    probes = enrol_gallery(world)
    open_case(world)
    photo = world.engine.register(make_image(300), near(PERSON_A, 0.35, 30))
    r = _object(world, photo, request_id="req-1")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["threshold"]["max_distance"] == 0.593
    assert [x["subject_reference"] for x in body["receipts"]] == ["A-1"]
    assert body["receipts"][0]["cause"] == "objection"
    assert body["receipts"][0]["request_id"] == "req-1"
    found = search(world, probes["a"], threshold_off="true", top_k="100")
    assert found.status_code == 201, found.text
    refs = [c["subject"] for f in found.json()["faces"] for c in f["candidates"]]
    assert refs == ["B-1"]
    again = _enrol(world, "custody", "A-2", world.engine.register(make_image(301), PERSON_A))
    assert again.status_code == 409
    problem = again.json()
    assert problem["code"] == "objection_on_file"
    assert problem["detail"].startswith("objection on file")


def test_only_privacy_officers_may_record_objections(world: World) -> None:
    photo = world.engine.register(make_image(300), PERSON_A)
    for user in ("inv", "cur", "sup", "aud"):
        assert _object(world, photo, user).status_code == 403
    assert world.client.post("/api/v1/objections").status_code == 401
    no_face = _object(world, make_image(302))
    assert no_face.status_code == 422 and no_face.json()["code"] == "no_face_found"


def test_another_organisations_gallery_is_outside_the_scope(world: World) -> None:
    r = world.call(
        "POST",
        "/api/v1/galleries",
        "inv2",
        json={"name": "elsewhere", "inclusion_policy": "people charged", "retention_days": 365},
    )
    assert r.status_code == 201, r.text
    image = world.engine.register(make_image(310), near(PERSON_A, 0.2, 31))
    assert _enrol(world, "elsewhere", "E-A", image, user="inv2").status_code == 201
    photo = world.engine.register(make_image(300), PERSON_A)
    body = _object(world, photo).json()
    assert "elsewhere" not in body["galleries"] and body["receipts"] == []
    later = world.engine.register(make_image(311), near(PERSON_A, 0.25, 32))
    assert _enrol(world, "elsewhere", "E-A2", later, user="inv2").status_code == 201

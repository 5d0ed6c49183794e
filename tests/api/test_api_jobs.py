"""Bulk enrolment over the API: ``POST /api/v1/galleries/{name}/jobs`` (multipart: the
manifest and its images) answers 202 with the job and its Location; ``GET`` on it polls.
The web pages call the same service (tests/web/test_gallery_pages.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from probity.domain.ids import new_id
from probity.domain.jobs import JobStatus
from probity.interfaces.api.app import BodyLimit, create_app
from probity.storage.jobs import Jobs
from tests.api.conftest import PASSWORD, PROVENANCE, World
from tests.fakes import make_image, unit
from tests.web.conftest import login_form

HEADER = "path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by"


def _manifest(*rows: tuple[str, str]) -> bytes:
    p = PROVENANCE
    lines = [HEADER] + [
        f"{path},{subject},{p['source']},{p['lawful_basis']},{p['collected_at']},"
        f"{p['jurisdiction']},{p['collected_by']}"
        for path, subject in rows
    ]
    return "\n".join(lines).encode()


def _post(w: World, user: str, manifest: bytes, images: dict[str, bytes]) -> httpx.Response:
    files: list[tuple[str, Any]] = [("manifest", ("intake.csv", manifest, "text/csv"))]
    files += [("images", (name, data, "image/png")) for name, data in images.items()]
    return w.call("POST", "/api/v1/galleries/custody/jobs", user, files=files)


def _gallery(w: World) -> None:
    r = w.call(
        "POST",
        "/api/v1/galleries",
        "cur",
        json={"name": "custody", "inclusion_policy": "charged", "retention_days": 365},
    )
    assert r.status_code == 201, r.text


def test_a_bulk_job_over_the_api(world: World) -> None:
    w = world
    _gallery(w)
    images = {
        "a.png": w.engine.register(make_image(51), unit(51)),
        "b.png": w.engine.register(make_image(52), unit(52)),
        "none.png": make_image(53),
    }
    manifest = _manifest(("in/a.png", "A-1"), ("in/b.png", "B-1"), ("in/none.png", "N-1"))
    r = _post(w, "cur", manifest, images)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and job["total"] == 3 and job["manifest"] == "intake.csv"
    assert r.headers["location"] == f"/api/v1/galleries/custody/jobs/{job['id']}"
    assert w.services.jobs.wait(job["id"])
    r = w.call("GET", r.headers["location"], "inv")
    body = r.json()
    assert r.status_code == 200
    assert (body["status"], body["percent"], body["enrolled"], body["refused_count"]) == (
        "done",
        100,
        2,
        1,
    )
    (refused,) = body["refused"]
    assert refused["line"] == 4 and refused["path"] == "in/none.png"
    assert "no face" in refused["reason"]
    assert w.call("GET", "/api/v1/galleries/custody", "cur").json()["name"] == "custody"
    # Another organisation cannot see it.
    assert w.call("GET", f"/api/v1/galleries/custody/jobs/{job['id']}", "inv2").status_code == 404
    assert w.call("GET", "/api/v1/galleries/custody/jobs/nope", "cur").json()["code"] == (
        "job_not_found"
    )


def test_bulk_uploads_are_refused_with_precise_problems(world: World) -> None:
    w = world
    _gallery(w)
    one = {"a.png": make_image(1)}
    r = _post(w, "inv", _manifest(("a.png", "A")), one)
    assert r.status_code == 403 and r.json()["code"] == "not_permitted"
    r = w.call(
        "POST",
        "/api/v1/galleries/custody/jobs",
        "cur",
        files=[("images", ("a.png", make_image(1), "image/png"))],
    )
    assert r.status_code == 400 and r.json()["code"] == "invalid_manifest"
    r = _post(w, "cur", b"path,subject\na.png,A", one)
    assert r.status_code == 400 and "lacks column(s)" in r.json()["detail"]
    w.services.jobs.max_files = 2
    three = {f"{n}.png": make_image(n) for n in range(3)}
    r = _post(w, "cur", _manifest(("0.png", "A")), three)
    assert r.status_code == 413 and r.json()["code"] == "too_many_files"
    many = {f"{n}.png": make_image(n) for n in range(6)}  # past what the parser reads at all
    r = _post(w, "cur", _manifest(("0.png", "A")), many)
    assert r.status_code == 413 and r.json()["code"] == "too_many_files"
    w.services.jobs.max_files = 2000
    w.services.jobs.max_upload_bytes = 5000
    r = _post(w, "cur", _manifest(("a.png", "A")), one)
    assert r.status_code == 413 and r.json()["code"] == "image_too_large"
    assert "a.png" in r.json()["detail"]
    r = w.call("GET", "/api/v1/galleries/nope/jobs/x", "cur")
    assert r.status_code == 404 and r.json()["code"] == "gallery_not_found"


def test_bulk_upload_paths_may_send_more_than_one_image_may_weigh() -> None:
    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(
        routes=[
            Route("/api/v1/galleries/{name}/jobs", echo, methods=["POST"]),
            Route("/galleries/{name}/jobs", echo, methods=["POST"]),
            Route("/galleries/{name}/enrolments", echo, methods=["POST"]),
        ]
    )
    client = TestClient(BodyLimit(app, max_bytes=100, bulk_max_bytes=1000))
    body = b"x" * 500
    assert client.post("/api/v1/galleries/g/jobs", content=body).text == "500"
    assert client.post("/galleries/g/jobs", content=body).text == "500"
    r = client.post("/galleries/g/enrolments", content=body)
    assert r.status_code == 413 and "100 bytes" in r.json()["detail"]
    r = client.post("/galleries/g/jobs", content=b"x" * 1001)
    assert r.status_code == 413 and "1000 bytes" in r.json()["detail"]


def test_a_job_whose_server_died_reads_as_interrupted_after_a_restart(world: World) -> None:
    """A server killed mid-job leaves its job running and a folder of sealed files whose
    owner lock nobody holds; the next server's start-up marks the job interrupted and removes
    the folder, and the same upload again resumes it."""
    w = world
    _gallery(w)
    images = {
        "a.png": w.engine.register(make_image(61), unit(61)),
        "b.png": w.engine.register(make_image(62), unit(62)),
    }
    first = _post(w, "cur", _manifest(("a.png", "A-1")), {"a.png": images["a.png"]}).json()
    assert w.services.jobs.wait(first["id"])
    with w.services.db.read() as session:
        done = Jobs(session).get(first["id"])
    assert done is not None
    now = w.clock()
    dead = replace(
        done, id=new_id(), status=JobStatus.RUNNING, total=2, done=1, enrolled=0, updated_at=now
    )
    with w.services.db.transaction() as session:
        Jobs(session).add(dead)
    staging = w.settings.staging_dir
    (staging / dead.id / "images").mkdir(parents=True)
    (staging / dead.id / "images" / "00001.img").write_bytes(b"\x01sealed, key long gone")
    (staging / f"{dead.id}.lock").write_bytes(b"")  # its holder died with the server

    location = f"/api/v1/galleries/custody/jobs/{dead.id}"
    assert w.call("GET", location, "cur").json()["status"] == "running"
    with TestClient(create_app(services=w.services)):  # a restart: the app's start-up
        pass
    body = w.call("GET", location, "cur").json()
    assert (body["status"], body["interrupted"], body["done"]) == ("interrupted", True, 1)
    assert "upload the same manifest and images again" in body["error"]
    assert list(staging.iterdir()) == []
    # The job's web page says so too, and what to do.
    page = TestClient(w.client.app, follow_redirects=False)
    form = {"username": "cur", "password": PASSWORD, **login_form(page)}
    assert page.post("/login", data=form).status_code == 303
    html = page.get(f"/galleries/custody/jobs/{dead.id}").text
    assert "Interrupted — upload again to resume" in html and "hx-trigger" not in html

    r = _post(w, "cur", _manifest(("a.png", "A-1"), ("b.png", "B-1")), images)
    assert w.services.jobs.wait(r.json()["id"])
    body = w.call("GET", r.headers["location"], "cur").json()
    assert (body["status"], body["enrolled"], body["skipped"]) == ("done", 1, 1)

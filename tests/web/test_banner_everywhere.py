"""No page shows a candidate without the investigative-lead banner.

Every GET route of every web page module is fetched, as several people (a supervisor who
sees every review, an investigator who reviewed, an examiner still blind), both as a full
page and as an htmx fragment. Wherever the HTML marks a candidate (``data-candidate``, which
every template puts on each candidate it shows), the banner must be in the same response. A
new page route with a path parameter this test cannot fill fails the test, so new pages are
checked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.interfaces.web.install import ROUTERS
from tests.api.conftest import PASSWORD, World, build_world, enrol_gallery, open_case, search
from tests.web.conftest import login_form

PARAM = re.compile(r"{(\w+)}")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from build_world(tmp_path / "home", None)


def _signed_in(w: World, user: str) -> TestClient:
    client = TestClient(w.client.app, follow_redirects=False)
    r = client.post("/login", data={"username": user, "password": PASSWORD, **login_form(client)})
    assert r.status_code == 303, r.text
    return client


def test_every_page_that_shows_a_candidate_shows_the_banner(world: World) -> None:
    w = world
    probes = enrol_gallery(w)
    open_case(w, "OP-B")
    body = search(w, probes["pair"], "OP-B").json()
    face = next(f for f in body["faces"] if f["candidates"])
    candidate = face["candidates"][0]
    url = (
        f"/api/v1/searches/{body['search_id']}/faces/{face['face']}"
        f"/candidates/{candidate['subject_id']}/reviews"
    )
    r = w.call("POST", url, "inv", json={"decision": "possible_match", "note": "first"})
    assert r.status_code == 201, r.text
    values: dict[str, Any] = {
        "reference": "OP-B",
        "search_id": body["search_id"],
        "face": face["face"],
        "subject_id": candidate["subject_id"],
        "name": "custody",
        "username": "inv",
        "receipt": w.services.rights.file(
            actor="public",
            kind="erasure",
            contact="jo@example.org",
            identifiers={"reference": "A-1"},
        ).receipt,
        # An erasure receipt's page (none issued here: it answers 404, and never shows a
        # candidate).
        "number": "ER-2026-0000000000",
    }
    routes = [
        route
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in route.methods
    ]
    unknown = {p for route in routes for p in PARAM.findall(route.path)} - set(values)
    # Routes whose parameter values come from an earlier step of their own flow.
    unknown -= {"job_id"}
    assert not unknown, f"add values for these page parameters to this test: {unknown}"

    shown: dict[str, int] = {}
    for user in ("sup", "inv", "ex1"):
        client = _signed_in(w, user)
        for route in routes:
            if set(PARAM.findall(route.path)) - set(values):
                continue
            base = route.path.format(**values)
            # The search page shows a face's candidates once one is picked (?face=).
            for path, headers in (
                (base, {}),
                (f"{base}?face={values['face']}", {}),
                (base, {"HX-Request": "true"}),
            ):
                r = client.get(path, headers=headers)
                if not r.headers.get("content-type", "").startswith("text/html"):
                    continue
                count = r.text.count("data-candidate")
                if count:
                    shown[route.path] = shown.get(route.path, 0) + count
                    assert INVESTIGATIVE_LEAD_NOTICE in r.text, (
                        f"{path} as {user} shows {count} candidate(s) without the banner"
                    )
    # The check must have seen candidates where they are shown, or it proves nothing.
    for expected in (
        "/searches/{search_id}",
        "/searches/{search_id}/faces/{face}",
        "/searches/{search_id}/faces/{face}/candidates/{subject_id}",
        "/reviews/queue",
    ):
        assert shown.get(expected), f"no candidate seen on {expected}: {shown}"

"""Every page at 390 px (a small phone) in a real Chromium: nothing scrolls sideways.

For each page the check is ``document.documentElement.scrollWidth <= 390``, once as drawn
and once with every ``<details>`` opened (folded text must fit too). The pages are visited as
the person who works there, on a server seeded with one of everything (a gallery, a case, a
two-face search, a review in the queue, a bulk job, a rights request, an erasure receipt, a
jurisdiction rule). ``test_the_pass_covers_every_page`` fails when a page route is added
that the pass does not visit, so "every page" stays true.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute

from probity.interfaces.web.install import ROUTERS
from tests.api.conftest import PASSWORD, PROVENANCE, World, enrol_gallery, open_case, search
from tests.fakes import make_image, unit
from tests.web.conftest import LiveServer

WIDTH = 390

NOT_PAGES = {
    "/",  # a redirect to the person's first page
    "/searches/{search_id}/faces/{face}",  # the htmx fragment (a redirect to the page)
}
"""GET routes that answer with no page of their own."""

NOT_HTML = re.compile(r"(\.(jpg|pdf|json|zip)|/probe|/photo)$")


def _page_routes() -> set[str]:
    found = set()
    for router in ROUTERS:
        for route in router.routes:
            if (
                isinstance(route, APIRoute)
                and "GET" in route.methods
                and route.path not in NOT_PAGES
                and not NOT_HTML.search(route.path)
            ):
                found.add(route.path)
    return found


def _seed(w: World) -> dict[str, str]:
    """One of everything a page can show; returns the ids the page URLs need."""
    probes = enrol_gallery(w)
    open_case(w, "OP-390-A-LONGER-CASE-REFERENCE-THAN-USUAL")
    case = "OP-390-A-LONGER-CASE-REFERENCE-THAN-USUAL"
    found = search(w, probes["pair"], reference=case).json()
    candidate = found["faces"][1]["candidates"][0]["subject_id"]
    review = f"/searches/{found['search_id']}/faces/2/candidates/{candidate}"
    r = w.call("POST", f"/api/v1{review}/reviews", "ex1", json={"decision": "possible_match"})
    assert r.status_code == 201, r.text
    # A bulk job, with one image enrolled.
    image = w.engine.register(make_image(60), unit(60))
    p = PROVENANCE
    manifest = (
        "path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by\n"
        f"j.png,J-1,{p['source']},{p['lawful_basis']},{p['collected_at']},"
        f"{p['jurisdiction']},{p['collected_by']}\n"
    ).encode()
    job = w.call(
        "POST",
        "/api/v1/galleries/custody/jobs",
        "cur",
        files=[
            ("manifest", ("intake.csv", manifest, "text/csv")),
            ("images", ("j.png", image, "image/png")),
        ],
    ).json()
    assert w.services.jobs.wait(job["id"])
    # An erasure receipt (a curator's removal) and a rights request.
    removed = w.call(
        "DELETE",
        "/api/v1/galleries/custody/subjects/J-1",
        "cur",
        params={"reason": "entered in the wrong gallery"},
    ).json()
    request = w.services.rights.file(
        actor="public",
        kind="erasure",
        contact="someone with a long address, 1 High Street, Somewhere-upon-Thames",
        identifiers={"reference": "A-1", "gallery": "custody"},
    )
    rule = w.call(
        "POST",
        "/api/v1/jurisdiction-rules",
        "dpo",
        json={"code": "FR", "reason": "CNIL order of 2022, for the records collected there"},
    )
    assert rule.status_code == 201, rule.text
    return {
        "case": case,
        "search": found["search_id"],
        "review": review,
        "job": job["id"],
        "receipt": removed["receipt"],
        "request": request.receipt,
    }


def _pages(ids: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Each page route with the concrete URL to visit."""
    case = ids["case"]
    return {
        "/cases/{reference}": (f"/cases/{case}",),
        "/searches/{search_id}": (
            f"/searches/{ids['search']}",
            f"/searches/{ids['search']}?face=2",
        ),
        "/searches/{search_id}/faces/{face}/candidates/{subject_id}": (ids["review"],),
        "/galleries/{name}": ("/galleries/custody",),
        "/galleries/{name}/jobs/{job_id}": (f"/galleries/custody/jobs/{ids['job']}",),
        "/galleries/{name}/refused": ("/galleries/custody/refused",),
        "/galleries/{name}/migration": ("/galleries/custody/migration",),
        "/admin/users/{username}": ("/admin/users/inv",),
        "/rights/{receipt}": (f"/rights/{ids['request']}",),
        "/erasures/{number}": (f"/erasures/{ids['receipt']}",),
    }


USERS = ("inv", "ex2", "cur", "aud", "dpo", "sup", "adm")
"""Who may see what: each page is visited as the first of these it answers 200 for."""


def _sign_in(browser: Any, live: LiveServer, user: str) -> Any:
    context = browser.new_context(viewport={"width": WIDTH, "height": 844})
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, f"{user} could not sign in"
    return page


def _width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def _check(page: Any, url: str, screenshots: Path, failures: list[str]) -> None:
    page.wait_for_load_state("load")
    drawn = _width(page)
    page.evaluate("for (const d of document.querySelectorAll('details')) d.open = true")
    opened = _width(page)
    if max(drawn, opened) > WIDTH:
        name = re.sub(r"[^a-z0-9]+", "-", url.lower()).strip("-")[:80] or "root"
        page.screenshot(path=str(screenshots / f"390-{name}.png"), full_page=True)
        wide = page.evaluate(
            """(limit) => [...document.querySelectorAll("body *")]
                .filter((e) => e.getBoundingClientRect().right > limit + 0.5)
                .slice(0, 3).map((e) => e.tagName + "." + e.className).join(", ")""",
            WIDTH,
        )
        failures.append(f"{url}: {drawn} px drawn, {opened} px opened ({wide})")


def test_every_page_fits_390_px(live: LiveServer, browser: Any, screenshots: Path) -> None:
    w = live.world
    assert w is not None
    ids = _seed(w)
    concrete = _pages(ids)
    urls = {path: concrete.get(path, (path,)) for path in _page_routes()}
    urls["error page"] = ("/cases/NO-SUCH-CASE",)
    failures: list[str] = []
    unseen = dict(urls)

    anonymous = browser.new_context(viewport={"width": WIDTH, "height": 844}).new_page()
    for route, targets in list(unseen.items()):
        response = anonymous.goto(f"{live.url}{targets[0]}")
        public = "/login" not in anonymous.url or route == "/login"
        if response is not None and response.status == 200 and public:
            for url in targets:
                anonymous.goto(f"{live.url}{url}")
                _check(anonymous, url, screenshots, failures)
            del unseen[route]
    _check_login(anonymous, live, screenshots, failures)
    anonymous.context.close()

    for user in USERS:
        if not unseen:
            break
        page = _sign_in(browser, live, user)
        for route, targets in list(unseen.items()):
            expect_error = route == "error page"
            response = page.goto(f"{live.url}{targets[0]}")
            status = response.status if response is not None else 0
            if status == 200 or (expect_error and status == 404):
                for url in targets:
                    page.goto(f"{live.url}{url}")
                    _check(page, url, screenshots, failures)
                del unseen[route]
        page.context.close()

    assert not unseen, f"pages no one could open: {sorted(unseen)}"
    assert not failures, "pages that scroll sideways at 390 px:\n" + "\n".join(failures)


def _check_login(page: Any, live: LiveServer, screenshots: Path, failures: list[str]) -> None:
    # The sign-in page with its error shown.
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").fill("someone-with-a-rather-long-user-name")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").wait_for()
    _check(page, "/login (refused)", screenshots, failures)


def test_the_pass_covers_every_page() -> None:
    covered = set(
        _pages({k: "x" for k in ("case", "search", "review", "job", "receipt", "request")})
    )
    parametrised = {p for p in _page_routes() if "{" in p}
    assert parametrised <= covered, (
        f"page routes the 390 px pass does not visit: {sorted(parametrised - covered)}; "
        "add a URL for each to _pages()"
    )
    # The static pages are visited as they are; the page list is not empty by mistake.
    assert {"/cases", "/audit", "/rights", "/login", "/privacy"} <= _page_routes()

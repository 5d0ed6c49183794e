"""Authorisations: pending for at most 48 h, rejection stops the case and deletes its probes
and results; search rate limits; who may search at all."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from probity.domain.accounts import OrganisationKind, Role
from probity.storage.tables import ProbeRow, ReviewRow, SearchCandidateRow, SearchRow
from tests.api.conftest import World, enrol_gallery, open_case, search, seed_people


def _rows(w: World, table: type) -> int:
    with w.services.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_a_pending_authorisation_older_than_48_hours_blocks_searches(world: World) -> None:
    probes = enrol_gallery(world)
    open_case(world, "PEND-1", pending=True)
    assert search(world, probes["a"], "PEND-1").status_code == 201
    world.clock.advance(timedelta(hours=47, minutes=59))
    assert search(world, probes["a"], "PEND-1").status_code == 201
    world.clock.advance(timedelta(minutes=2))
    r = search(world, probes["a"], "PEND-1")
    assert r.status_code == 403 and r.json()["code"] == "case_not_searchable"
    assert "48" in r.json()["detail"]
    case = world.call("GET", "/api/v1/cases/PEND-1", "inv").json()
    assert case["searchable"] is False
    # Granting it opens the case again.
    r = world.call(
        "POST",
        "/api/v1/cases/PEND-1/authorisation",
        "sup",
        json={"status": "granted", "authorisation": "WARRANT-9", "authority": "Judge"},
    )
    assert r.status_code == 200 and r.json()["searchable"] is True
    assert search(world, probes["a"], "PEND-1").status_code == 201


def test_rejection_deletes_probes_and_results_from_database_and_blob_store(world: World) -> None:
    probes = enrol_gallery(world)
    open_case(world, "REJ-1", pending=True)
    open_case(world, "KEEP-1")
    blob_dir = world.settings.blob_dir
    before = set(blob_dir.rglob("*"))
    first = search(world, probes["pair"], "REJ-1").json()
    search(world, probes["none"], "REJ-1")
    search(world, probes["a"], "KEEP-1")
    subject = first["faces"][1]["candidates"][0]["subject_id"]
    url = f"/api/v1/searches/{first['search_id']}/faces/2/candidates/{subject}/reviews"
    assert world.call("POST", url, "ex1", json={"decision": "inconclusive"}).status_code == 201
    probe_files = {p for p in set(blob_dir.rglob("*")) - before if p.is_file()}
    assert len(probe_files) == 3  # one encrypted probe per search, none in plain
    assert not any(probes["pair"] in p.read_bytes() for p in probe_files)
    assert (_rows(world, SearchRow), _rows(world, ProbeRow), _rows(world, ReviewRow)) == (3, 3, 1)

    # The investigator may not decide the authorisation; the supervisor rejects it.
    denied = world.call(
        "POST", "/api/v1/cases/REJ-1/authorisation", "inv", json={"status": "rejected"}
    )
    assert denied.status_code == 403
    r = world.call("POST", "/api/v1/cases/REJ-1/authorisation", "sup", json={"status": "rejected"})
    assert r.status_code == 200 and r.json()["authorisation"]["status"] == "rejected"

    # Gone: the case's searches, candidates, reviews, probe rows and probe files...
    assert (_rows(world, SearchRow), _rows(world, ProbeRow), _rows(world, ReviewRow)) == (1, 1, 0)
    with world.services.db.read() as session:
        left = session.scalars(select(SearchCandidateRow.search_id)).all()
    assert first["search_id"] not in left
    remaining = {p for p in set(blob_dir.rglob("*")) - before if p.is_file()}
    assert len(remaining) == 1 and remaining < probe_files
    assert world.call("GET", f"/api/v1/searches/{first['search_id']}", "sup").status_code == 404
    # ...and the case is stopped at once, for good.
    r = search(world, probes["a"], "REJ-1")
    assert r.status_code == 403 and r.json()["code"] == "case_not_searchable"
    r = world.call(
        "POST",
        "/api/v1/cases/REJ-1/authorisation",
        "sup",
        json={"status": "granted", "authorisation": "LATE-1"},
    )
    assert r.status_code == 409
    # The other case is untouched, and the audit trail records the purge and still verifies.
    assert world.call("GET", "/api/v1/cases/KEEP-1/searches", "sup").json()["count"] == 1
    purge = world.call("GET", "/api/v1/audit?action=case.purge", "aud").json()["data"][0]
    assert purge["details"]["searches_deleted"] == 2 and purge["details"]["probes_deleted"] == 2
    assert world.call("POST", "/api/v1/audit/verify", "aud").json()["ok"] is True


def test_search_rate_limits_per_person_and_per_organisation(sqlite_world: World) -> None:
    w = sqlite_world
    probes = enrol_gallery(w)
    open_case(w)
    search_service = w.services.search
    search_service.limits = type(search_service.limits)(per_user=2, per_organisation=3)
    assert search(w, probes["a"]).status_code == 201
    assert search(w, probes["a"]).status_code == 201
    r = search(w, probes["a"])
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert r.headers["retry-after"] == "60"
    assert "per person" in r.json()["detail"]
    # Another investigator of the same organisation has one search left in the org's window.
    w.services.accounts.create_user(
        actor="op",
        organisation="Met",
        username="inv3",
        roles=[Role.INVESTIGATOR],
        training_expires=w.clock() + timedelta(days=30),
    )
    w.services.accounts.approve_user(actor="op", username="inv3", supervisor="sup")
    w.keys["inv3"] = w.services.accounts.create_api_key(
        actor="op", username="inv3", label="t"
    ).secret
    assert search(w, probes["a"], user="inv3").status_code == 201
    r = search(w, probes["a"], user="inv3")
    assert r.status_code == 429 and "per organisation" in r.json()["detail"]
    # The window slides: a minute later searching works again; refusals are audited.
    w.clock.advance(timedelta(seconds=61))
    assert search(w, probes["a"]).status_code == 201
    denied = w.call("GET", "/api/v1/audit?action=search.denied", "aud").json()
    assert denied["count"] == 2


def test_lapsed_training_and_non_searching_organisations_cannot_search(sqlite_world: World) -> None:
    w = sqlite_world
    probes = enrol_gallery(w)
    open_case(w)
    w.clock.advance(timedelta(days=366))  # every attestation lapsed
    r = search(w, probes["a"])
    assert r.status_code == 403 and "training attestation lapsed" in r.json()["detail"]
    w.clock.advance(timedelta(days=-366))
    keys = seed_people(
        w.services,
        "Council",
        OrganisationKind.PUBLIC_BODY,
        {"csup": [Role.SUPERVISOR], "cinv": [Role.INVESTIGATOR]},
        w.clock,
    )
    w.keys |= keys
    open_case(w, "COUNCIL-1", user="cinv")
    r = search(w, probes["a"], "COUNCIL-1", user="cinv")
    assert r.status_code == 403 and "public_body may not search" in r.json()["detail"]

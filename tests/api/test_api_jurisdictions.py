"""Jurisdiction rules through the server (fake engine, real services, on SQLite and on
PostgreSQL): excluding a jurisdiction removes its records from every result, enrolment
refuses it, and the purge leaves none of its records behind while records from elsewhere
stay untouched."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from probity.index.vectors import normalise
from probity.services.indexes import IndexSlot
from probity.storage.vault import Vault
from tests.api.conftest import PROVENANCE, World, open_case, search
from tests.fakes import make_image, near, unit

PEOPLE: dict[str, tuple[str, ...]] = {
    # reference: the jurisdiction of each of its enrolments
    "GB-1": ("GB",),
    "SCT-1": ("GB-SCT",),  # a subdivision: a rule on GB covers it
    "FR-1": ("FR",),
    "MIX-1": ("GB", "FR"),  # the GB record goes, the FR one stays
}


@pytest.fixture
def w(world: World) -> World:
    return world


def enrol(w: World, gallery: str, ref: str, place: str, vector: np.ndarray, seed: int) -> Any:
    image = w.engine.register(make_image(seed), vector)
    return w.call(
        "POST",
        f"/api/v1/galleries/{gallery}/enrolments",
        "cur" if gallery == "custody" else "inv2",
        data={"subject": ref, **PROVENANCE, "jurisdiction": place},
        files={"image": ("photo.png", image, "image/png")},
    )


def make_gallery(w: World, name: str, user: str) -> None:
    body = {"name": name, "inclusion_policy": "people charged", "retention_days": 365}
    r = w.call("POST", "/api/v1/galleries", user, json=body)
    assert r.status_code == 201, r.text


def rows(w: World, sql: str, **params: Any) -> list[Any]:
    with w.services.db.read() as s:
        return list(s.execute(text(sql), params).all())


def stored_bytes(vector: np.ndarray) -> bytes:
    return normalise(vector[None, :], vector.shape[0]).tobytes()


def candidates(w: World, probe: bytes) -> list[dict[str, Any]]:
    r = search(w, probe, threshold_off="true", top_k="100")
    assert r.status_code == 201, r.text
    return [c for f in r.json()["faces"] for c in f["candidates"]]


def test_excluding_a_jurisdiction_removes_its_records_from_every_result_and_purge(
    w: World,
) -> None:
    make_gallery(w, "custody", "cur")
    vectors: dict[str, list[np.ndarray]] = {}
    seed = 100
    for i, (ref, places) in enumerate(PEOPLE.items()):
        base = unit(40 + i)
        vectors[ref] = []
        for j, place in enumerate(places):
            vector = base if j == 0 else near(base, 0.1, 90 + i)
            seed += 1
            r = enrol(w, "custody", ref, place, vector, seed)
            assert r.status_code == 201, r.text
            vectors[ref].append(vector)
    # Another organisation's gallery: a Met rule does not bind it.
    make_gallery(w, "elsewhere", "inv2")
    assert enrol(w, "elsewhere", "OTHER-GB", "GB", unit(60), 200).status_code == 201
    open_case(w)
    probes = {ref: w.engine.register(make_image(300 + i), near(v[0], 0.2, 70 + i))
              for i, (ref, v) in enumerate(vectors.items())}  # fmt: skip
    before = search(w, probes["GB-1"], threshold_off="true", top_k="100").json()
    assert {c["subject"] for c in before["faces"][0]["candidates"]} == set(PEOPLE)

    # Keep what the purge must erase, to look for it afterwards.
    gallery_id = w.services.galleries.get("custody").id
    gb = rows(
        w,
        "SELECT e.id, e.template_id, e.image_blob, e.subject_id FROM enrolments e "
        "WHERE e.gallery_id = :g AND e.jurisdiction IN ('GB', 'GB-SCT')",
        g=gallery_id,
    )
    assert len(gb) == 3
    mix_fr = rows(
        w,
        "SELECT e.id, e.template_id, e.image_blob, e.subject_id FROM enrolments e "
        "JOIN subjects s ON s.id = e.subject_id WHERE s.reference = 'MIX-1' "
        "AND e.jurisdiction = 'FR'",
    )[0]
    old_mix_sealed = w.services.jurisdictions.erasure.vault.blobs.get(mix_fr.image_blob)
    fr_before = rows(
        w, "SELECT id, image_blob, template_id FROM enrolments WHERE jurisdiction = 'FR'"
    )

    # Exclude GB for the Met's galleries (a curator; lower case is fine).
    r = w.call(
        "POST", "/api/v1/jurisdiction-rules", "cur",
        json={"code": "gb", "reason": "ICO enforcement notice, 2022"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["code"] == "GB" and r.json()["scope"] == "organisation"

    # Search with the threshold off and the full list: no GB record at any rank.
    for ref, probe in probes.items():
        found = candidates(w, probe)
        places = {c["provenance"]["jurisdiction"] for c in found}
        assert places <= {"FR"}, (ref, places)
        assert {c["subject"] for c in found} == {"FR-1", "MIX-1"}
    mix = next(c for c in candidates(w, probes["MIX-1"]) if c["subject"] == "MIX-1")
    assert mix["enrolment_id"] == mix_fr.id  # found through the record that may stay
    # ...nor in a search stored before the rule, read back (a stored candidate that came
    # from MIX-1's GB record is left out: the stored list is not searched again).
    again = w.call("GET", f"/api/v1/searches/{before['search_id']}", "inv").json()
    stored = again["faces"][0]["candidates"]
    assert {c["provenance"]["jurisdiction"] for c in stored} == {"FR"}
    assert "FR-1" in {c["subject"] for c in stored}

    # Enrolment from GB, or a part of it, is refused with the reason; FR still enrols.
    for place in ("GB", "gb-wls"):
        r = enrol(w, "custody", "GB-2", place, unit(61), 400 if place == "GB" else 401)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "jurisdiction_excluded"
        assert "ICO enforcement notice" in r.json()["detail"]
    assert enrol(w, "custody", "FR-2", "FR", unit(62), 402).status_code == 201

    # The purge: a privacy officer of the same organisation.
    r = w.call("POST", "/api/v1/jurisdiction-rules/purge", "dpo")
    assert r.status_code == 200, r.text
    purge = r.json()
    assert purge["enrolments_erased"] == 3
    receipts = {x["subject_reference"]: x for x in purge["receipts"]}
    assert set(receipts) == {"GB-1", "SCT-1", "MIX-1"}
    assert all(
        x["cause"] == "jurisdiction" and x["receipt"].startswith("ER-") for x in receipts.values()
    )
    assert receipts["MIX-1"]["enrolments"] == 1

    # None of its records are left: rows, templates, subjects, blobs, index vectors and bytes.
    assert not rows(w, "SELECT id FROM enrolments WHERE jurisdiction IN ('GB', 'GB-SCT') "
                       "AND gallery_id = :g", g=gallery_id)  # fmt: skip
    template_ids = [g.template_id for g in gb]
    for tid in template_ids:
        assert not rows(w, "SELECT id FROM templates WHERE id = :t", t=tid)
    blobs = w.services.jurisdictions.erasure.vault.blobs
    assert not any(blobs.exists(g.image_blob) for g in gb)
    slot = IndexSlot.of(next(g for g in w.services.galleries.all() if g.id == gallery_id))
    index = w.services.indexes.get(slot)
    assert not set(template_ids) & {int(i) for i in index.ids()}
    data = w.services.indexes.path(slot).read_bytes()
    for ref in ("GB-1", "SCT-1"):
        assert stored_bytes(vectors[ref][0]) not in data
    assert stored_bytes(vectors["MIX-1"][0]) not in data  # MIX-1's GB record
    refs = {r.reference for r in rows(w, "SELECT reference FROM subjects")}
    assert refs == {"FR-1", "MIX-1", "FR-2", "OTHER-GB"}

    # FR untouched: FR-1's row, blob and vector as they were; MIX-1 keeps its FR record,
    # sealed again under a new key, so a copy of its old blob no longer opens.
    fr_after = {r.id: r for r in rows(w, "SELECT id, image_blob, template_id FROM enrolments "
                                         "WHERE jurisdiction = 'FR'")}  # fmt: skip
    assert set(fr_after) >= {r.id for r in fr_before}
    fr1 = next(r for r in fr_before if r.id != mix_fr.id)
    assert fr_after[fr1.id].image_blob == fr1.image_blob and blobs.exists(fr1.image_blob)
    # Sealed: the kept vectors are not in the file in the clear either; the index holds them.
    assert stored_bytes(vectors["FR-1"][0]) not in data
    assert stored_bytes(vectors["MIX-1"][1]) not in data
    for ref, n in (("FR-1", 0), ("MIX-1", 1)):
        best = index.search(np.stack([vectors[ref][n]]), 1)[0]
        assert best and best[0].similarity > 0.999, ref
    new_blob = fr_after[mix_fr.id].image_blob
    assert new_blob != mix_fr.image_blob and not blobs.exists(mix_fr.image_blob)
    vault = w.services.jurisdictions.erasure.vault
    with w.services.db.read() as s:
        key = vault.subject_key(s, mix_fr.subject_id)
    assert vault.get_image(key, mix_fr.subject_id, new_blob)  # still readable today
    with pytest.raises(Exception):  # noqa: B017 - any decryption failure will do
        Vault.open_with(
            key, old_mix_sealed, f"probity/image/{mix_fr.subject_id}/{mix_fr.image_blob}".encode()
        )
    mix_now = [c for c in candidates(w, probes["MIX-1"]) if c["subject"] == "MIX-1"]
    assert mix_now and mix_now[0]["provenance"]["jurisdiction"] == "FR"

    # The other organisation's GB record is theirs: not bound, not purged, still found.
    other = rows(w, "SELECT reference FROM subjects WHERE reference = 'OTHER-GB'")
    assert other
    # A second purge has nothing to do (idempotent).
    again_purge = w.call("POST", "/api/v1/jurisdiction-rules/purge", "dpo").json()
    assert again_purge["receipts"] == []

    # Audited, and the chain verifies.
    actions = [e.action for e in w.services.audit.events(actor="root", limit=500).events]
    for action in ("jurisdiction.exclude", "jurisdiction.purge", "subject.remove",
                   "enrolment.erase"):  # fmt: skip
        assert action in actions, action
    assert w.services.audit.verify(actor="root").ok


def test_who_may_set_list_and_lift_rules(w: World) -> None:
    body = {"code": "FR", "reason": "CNIL order of 2022"}
    # Investigators and auditors may not; curators and privacy officers for their own.
    for user in ("inv", "aud", "sup"):
        assert w.call("POST", "/api/v1/jurisdiction-rules", user, json=body).status_code == 403
    deployment = {**body, "scope": "deployment"}
    r = w.call("POST", "/api/v1/jurisdiction-rules", "cur", json=deployment)
    assert r.status_code == 403 and "deployment-wide" in r.json()["detail"]
    assert w.call("POST", "/api/v1/jurisdiction-rules", "adm", json=deployment).status_code == 403
    assert w.call("POST", "/api/v1/jurisdiction-rules", "opr", json=deployment).status_code == 201
    assert w.call("POST", "/api/v1/jurisdiction-rules", "dpo", json=body).status_code == 201
    assert w.call("POST", "/api/v1/jurisdiction-rules", "cur", json=body).status_code == 409
    bad = w.call("POST", "/api/v1/jurisdiction-rules", "cur", json={**body, "code": "France"})
    assert bad.status_code == 400 and "ISO 3166" in bad.json()["detail"]

    listed = w.call("GET", "/api/v1/jurisdiction-rules", "cur").json()
    assert listed["count"] == 2
    assert {x["scope"] for x in listed["data"]} == {"deployment", "organisation"}
    # The other organisation sees the deployment's rule only.
    theirs = w.call("GET", "/api/v1/jurisdiction-rules", "inv2").json()
    assert [x["scope"] for x in theirs["data"]] == ["deployment"]
    # An operator may set rules but not erase: the purge is for those who may erase.
    assert w.call("POST", "/api/v1/jurisdiction-rules/purge", "opr").status_code == 403

    # Lifting: a reason is required; records already purged stay purged.
    r = w.call("DELETE", "/api/v1/jurisdiction-rules/FR", "cur")
    assert r.status_code == 422
    r = w.call("DELETE", "/api/v1/jurisdiction-rules/FR?reason=order%20quashed", "cur")
    assert r.status_code == 200 and r.json()["scope"] == "organisation"
    assert w.call("DELETE", "/api/v1/jurisdiction-rules/FR?reason=again", "cur").status_code == 404
    r = w.call("DELETE", "/api/v1/jurisdiction-rules/FR?reason=quashed&scope=deployment", "opr")
    assert r.status_code == 200
    assert w.call("GET", "/api/v1/jurisdiction-rules", "cur").json()["count"] == 0
    actions = [e.action for e in w.services.audit.events(actor="root", limit=500).events]
    assert actions.count("jurisdiction.exclude") == 2 and actions.count("jurisdiction.lift") == 2
    assert w.services.audit.verify(actor="root").ok


def test_a_lifted_rule_lets_hidden_records_back_but_not_purged_ones(w: World) -> None:
    make_gallery(w, "custody", "cur")
    assert enrol(w, "custody", "GB-1", "GB", unit(80), 500).status_code == 201
    open_case(w)
    probe = w.engine.register(make_image(501), near(unit(80), 0.2, 5))
    svc = w.services.jurisdictions
    svc.exclude(actor="root", code="GB", reason="ICO notice")  # the local operator: everywhere
    assert candidates(w, probe) == []
    svc.lift(actor="root", code="GB", reason="notice withdrawn")
    assert [c["subject"] for c in candidates(w, probe)] == ["GB-1"]  # hidden, not erased
    svc.exclude(actor="root", code="GB", reason="ICO notice again")
    assert [r.subject_reference for r in svc.purge(actor="root")] == ["GB-1"]
    svc.lift(actor="root", code="GB", reason="notice withdrawn again")
    assert candidates(w, probe) == []  # purged stays purged
    assert w.services.audit.verify(actor="root").ok

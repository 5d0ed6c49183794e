"""The server with the real dlib models on real photos (NASA portraits read in place from
../shared/faces): the two-face probe, the right-hand face, Hague at rank 1, and a lead."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from probity import INVESTIGATIVE_LEAD_NOTICE
from probity.config import Settings
from probity.domain.accounts import OrganisationKind, Role
from probity.interfaces.api.app import create_app
from probity.services.container import build_services
from tests.api.conftest import seed_people
from tests.cli.conftest import NasaHome, shared_faces


@pytest.fixture(scope="module")
def real(nasa_home: NasaHome) -> Iterator[tuple[TestClient, dict[str, str]]]:
    from probity.services.clock import system_clock

    services = build_services(Settings(home=nasa_home.home))  # every installed model, as served
    keys = seed_people(
        services,
        "NASA Security",
        OrganisationKind.LAW_ENFORCEMENT,
        {"rsup": [Role.SUPERVISOR], "rinv": [Role.INVESTIGATOR], "rex": [Role.EXAMINER]},
        system_clock,
    )
    with TestClient(create_app(services=services)) as client:
        yield client, keys
    services.close()


def test_two_face_probe_right_hand_face_finds_hague_and_becomes_a_lead(
    real: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = real
    inv = {"Authorization": f"Bearer {keys['rinv']}"}
    r = client.post(
        "/api/v1/cases",
        headers=inv,
        json={
            "reference": "API-REAL-1",
            "offence": "kidnapping",
            "justification": "photo of two people seen with the missing person",
            "authorisation": "AUTH-REAL-1",
        },
    )
    assert r.status_code == 201, r.text
    probe = (shared_faces() / "multi_morgan_hague.jpg").read_bytes()
    r = client.post(
        "/api/v1/cases/API-REAL-1/searches",
        headers=inv,
        files={"probe": ("multi_morgan_hague.jpg", probe, "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["notice"] == INVESTIGATIVE_LEAD_NOTICE
    assert len(body["faces"]) == 2
    left, right = sorted(body["faces"], key=lambda f: f["box"][0])
    assert left["candidates"][0]["subject"] == "MORGAN"
    assert right["candidates"][0]["subject"] == "HAGUE"
    assert right["candidates"][0]["distance"] < 1.128  # SFace, the FMR 1e-3 point

    # Only the right-hand face, as the web page's face picker will ask.
    r = client.post(
        "/api/v1/cases/API-REAL-1/searches",
        headers=inv,
        data={"face": str(right["face"])},
        files={"probe": ("multi_morgan_hague.jpg", probe, "image/jpeg")},
    )
    only = r.json()
    assert [f["face"] for f in only["faces"]] == [right["face"]]
    hague = only["faces"][0]["candidates"][0]
    assert hague["subject"] == "HAGUE" and hague["rank"] == 1

    url = (
        f"/api/v1/searches/{only['search_id']}/faces/{right['face']}"
        f"/candidates/{hague['subject_id']}/reviews"
    )
    r = client.post(url, headers=inv, json={"decision": "possible_match", "note": "ear shape"})
    assert r.status_code == 201 and r.json()["lead"] is False
    ex = {"Authorization": f"Bearer {keys['rex']}"}
    assert client.get(url, headers=ex).json()["hidden"] is True
    r = client.post(url, headers=ex, json={"decision": "possible_match", "note": "agree"})
    assert r.json()["lead"] is True

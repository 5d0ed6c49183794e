"""A typed Python client generated from the live OpenAPI document by a real tool
(``openapi-python-client``, a dev dependency) runs an integrator's whole flow against a real
server (uvicorn on a loopback port): a new API key, a case, a search (with an idempotency
key), a review by two examiners making a lead, and a refused request's problem details.

Nothing is hand-written between the document and the calls: if an operation, a schema or a
header drifts from what the server does, the generated code or this flow breaks.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.api.conftest import build_world, enrol_gallery
from tests.web.conftest import LiveServer

PACKAGE = "probity_client"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, bytes]]]:
    worlds = build_world(tmp_path / "home", None)
    world = next(worlds)
    probes = enrol_gallery(world)
    with LiveServer(world) as server:
        yield server, probes
    next(worlds, None)


def _generate(url: str, into: Path) -> None:
    document = httpx.get(f"{url}/openapi.json", timeout=30).json()
    spec = into / "openapi.json"
    spec.write_text(json.dumps(document))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(into / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (into / PACKAGE / "client.py").exists(), done.stdout


def _load(into: Path) -> dict[str, ModuleType]:
    sys.path.insert(0, str(into))
    try:
        names = {
            "client": f"{PACKAGE}",
            "models": f"{PACKAGE}.models",
            "types": f"{PACKAGE}.types",
            "create_key": f"{PACKAGE}.api.accounts.accounts_create_key",
            "me": f"{PACKAGE}.api.accounts.accounts_me",
            "open_case": f"{PACKAGE}.api.cases.cases_open_case",
            "run_search": f"{PACKAGE}.api.searches.searches_run_search",
            "get_search": f"{PACKAGE}.api.searches.searches_get_search",
            "record_review": f"{PACKAGE}.api.searches.searches_record_review",
            "leads": f"{PACKAGE}.api.searches.searches_case_leads",
        }
        return {k: importlib.import_module(v) for k, v in names.items()}
    finally:
        sys.path.remove(str(into))


def test_generated_client_runs_the_full_flow(
    served: tuple[LiveServer, dict[str, bytes]], tmp_path: Path
) -> None:
    server, probes = served
    world = server.world
    assert world is not None
    _generate(server.url, tmp_path)
    m = _load(tmp_path)
    models: Any = m["models"]
    client_mod: Any = m["client"]

    def as_(token: str) -> Any:
        return client_mod.AuthenticatedClient(base_url=server.url, token=token)

    # 1. Key: the investigator makes a key for this integration and uses it from now on.
    made = m["create_key"].sync_detailed(
        client=as_(world.keys["inv"]), body=models.ApiKeyIn(label="integration")
    )
    assert made.status_code == 201, made.content
    assert made.headers["location"] == f"/api/v1/keys/{made.parsed.key_id}"
    inv = as_(made.parsed.key)
    assert m["me"].sync(client=inv).username == "inv"

    # 2. Case.
    case = m["open_case"].sync_detailed(
        client=inv,
        body=models.CaseIn(
            reference="OP-CLIENT",
            offence="robbery",
            justification="CCTV still from the robbery at the corner shop",
            authorisation="WARRANT-9",
            authority="Judge",
        ),
    )
    assert case.status_code == 201, case.content
    assert case.parsed.reference == "OP-CLIENT"

    # 3. Search, with an idempotency key: the retry returns the same search.
    def run(key: str, **options: Any) -> Any:
        body = models.BodySearchesRunSearch(
            probe=m["types"].File(payload=_bytes(probes["pair"]), file_name="probe.png"),
            **options,
        )
        return m["run_search"].sync_detailed(
            client=inv, reference="OP-CLIENT", body=body, idempotency_key=key
        )

    first = run("client-search-1", top_k=5)
    assert first.status_code == 201, first.content
    result = first.parsed
    assert isinstance(result, models.SearchOut)
    assert result.actor == "inv" and result.at is not None
    assert [f.face for f in result.faces] == [1, 2]
    again = run("client-search-1", top_k=5)
    assert again.parsed.search_id == result.search_id
    fetched = m["get_search"].sync(client=inv, search_id=result.search_id)
    assert fetched.to_dict() == result.to_dict()

    # A refused option comes back as a typed problem, not a silent change.
    refused = run("client-search-2", target_fmr=0.01)
    assert refused.status_code == 422
    assert isinstance(refused.parsed, models.Problem)
    assert refused.parsed.code == "unsupported_operating_point"

    # 4. Review: two examiners confirm face 2's first candidate, which makes a lead.
    candidate = result.faces[1].candidates[0]
    for examiner in ("ex1", "ex2"):
        review = m["record_review"].sync_detailed(
            client=as_(world.keys[examiner]),
            search_id=result.search_id,
            face=2,
            subject_id=candidate.subject_id,
            body=models.ReviewIn(decision=models.ReviewDecision.POSSIBLE_MATCH),
        )
        assert review.status_code == 201, review.content
    assert review.parsed.lead is True
    leads = m["leads"].sync(client=inv, reference="OP-CLIENT")
    assert [lead.subject_id for lead in leads.data] == [candidate.subject_id]


def _bytes(data: bytes) -> Any:
    import io

    return io.BytesIO(data)

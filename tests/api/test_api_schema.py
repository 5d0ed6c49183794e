"""Schemathesis against the app's own ``/openapi.json``, in-process (ASGI, no network).

Acceptance criterion: "schemathesis run against /openapi.json by the test suite: no 5xx, no
response that breaks the schema". Every response must pass these schemathesis checks:

* ``not_a_server_error``: no 5xx;
* ``status_code_conformance``: the status code is one the operation documents;
* ``content_type_conformance``: the content type is one documented for that status;
* ``response_schema_conformance``: the body validates against the documented schema
  (problem+json error bodies against ``Problem``).

``test_fuzzed_requests_conform``: every operation of the document is fuzzed with requests
schemathesis generates from it, valid and invalid, as several signed-in people on a seeded
server (a gallery, a case, a search). Each operation with path parameters also runs with the
seeded objects' names (case ``OP-1``, gallery ``custody``, the search and its candidate...),
so the checks see real 200s and not only 404s. Generation is derandomised: CI is repeatable.

``test_seeded_requests_conform``: the successful writes random bytes cannot reach (an
enrolment and a search with images the fake engine knows, a case, two reviews making a lead,
a sign-in), checked the same way.

Why not ``schemathesis.pytest.from_fixture``: under pytest 9.2 its lazy loader fails
(``'Function' object has no attribute '_nodeid'``), and ``schema.parametrize()`` needs the app
at import time. So the operations are walked here, each with its own Hypothesis run, and every
failure is collected before the test fails: one report lists them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from probity.domain.accounts import Role
from tests.api.conftest import (
    OPERATOR,
    PASSWORD,
    PROVENANCE,
    World,
    build_world,
    enrol_gallery,
    open_case,
    search,
)
from tests.fakes import make_image, near, unit

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

IDENTITIES = ["inv", "sup", "cur", "adm"]
"""Investigator (cases, searches, reviews), supervisor (authorisations, approvals), curator
(galleries, enrolment, removal) and admin (organisations, users)."""

EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 8}
"""Hypothesis examples per operation, identity, path variant and generation mode."""

HYPOTHESIS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failing request
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Seeded:
    world: World
    schema: Any  # schemathesis' OpenAPI schema, loaded from the app's /openapi.json
    known: dict[str, str]  # path parameter -> an existing object's name


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One seeded server for the module. What one identity's requests change (a case rejected,
    a subject removed) may turn another's 200s into 404s or 409s, which the checks accept too."""
    worlds = build_world(tmp_path_factory.mktemp("schema") / "home", None)
    w = next(worlds)
    probes = enrol_gallery(w)
    open_case(w)
    r = search(w, probes["a"])
    assert r.status_code == 201, r.text
    found = r.json()
    known = {
        "reference": "OP-1",
        "subject": "A-1",
        "name": "custody",
        "search_id": found["search_id"],
        "face": "1",
        "subject_id": found["faces"][0]["candidates"][0]["subject_id"],
        "username": "spare",
    }
    # The account that user paths name: fuzzing PATCH /users/{username} changes its roles and
    # deactivates it, so it must be nobody the seeded requests rely on (ex1 reviews there).
    w.services.accounts.create_user(
        actor=OPERATOR,
        organisation="Met",
        username="spare",
        roles=[Role.AUDITOR],
        training_expires=None,
    )
    w.services.accounts.approve_user(actor=OPERATOR, username="spare", supervisor="sup")
    for user in IDENTITIES:  # a spare key each, so revoking a known key_id revokes no one
        r = w.call("POST", "/api/v1/keys", user, json={"label": "spare"})
        assert r.status_code == 201, r.text
        known[f"key_id:{user}"] = r.json()["key_id"]
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", w.client.app, config=config)
    yield Seeded(w, schema, known)
    next(worlds, None)  # closes the services


def _seeded_path(operation: Any, known: dict[str, str], user: str) -> dict[str, str]:
    """The operation's path parameters that can name a seeded object (others stay generated)."""
    found = {}
    for parameter in operation.path_parameters:
        name = parameter.name
        if name == "reference" and "/subjects/" in operation.path:
            name = "subject"
        elif name == "key_id":
            name = f"key_id:{user}"
        if name in known:
            found[parameter.name] = known[name]
    return found


def _authenticated(operation: Any) -> bool:
    return bool(operation.definition.raw.get("security"))


def _negatable(operation: Any) -> bool:
    """Whether negative generation has anything but path parameters to break: it leaves path
    values well-formed, so a path-only operation gives it nothing to send.

    Invalid data is refused (422) by request validation before any service runs, whoever
    asks and whatever the path names; so it is sent once, as the first identity, with
    generated path parameters."""
    return bool(len(operation.query) or operation.body)


@pytest.mark.parametrize("user", IDENTITIES)
def test_fuzzed_requests_conform(seeded: Seeded, user: str) -> None:
    headers = seeded.world.as_(user)
    failures: list[str] = []
    operations = [result.ok() for result in seeded.schema.get_all_operations()]
    assert len(operations) >= 28, [o.label for o in operations]
    for operation in operations:
        if user != IDENTITIES[0] and not _authenticated(operation):
            continue  # answers everyone alike: fuzzed once, as the first identity
        variants: list[dict[str, str] | None] = [None]
        if path := _seeded_path(operation, seeded.known, user):
            variants.append(path)
        for path_parameters in variants:
            for mode, examples in EXAMPLES.items():
                if mode is GenerationMode.NEGATIVE and (
                    user != IDENTITIES[0] or path_parameters or not _negatable(operation)
                ):
                    continue  # see _negatable
                strategy = operation.as_strategy(
                    mode, path_parameters=path_parameters, headers=headers
                )

                @settings(HYPOTHESIS, max_examples=examples)
                @given(case=strategy)
                def run(case: schemathesis.Case) -> None:
                    case.call_and_validate(checks=CHECKS)

                try:
                    run()
                except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
                    where = f"{operation.label} as {user}, {mode.value} data"
                    where += ", seeded path" if path_parameters else ""
                    failures.append(f"{where}:\n{type(exc).__name__}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_seeded_requests_conform(seeded: Seeded) -> None:
    """Successful writes fuzzing cannot reach (random bytes are never a face): enrol, search,
    open a case, search, two reviews (a lead), the leads, the report, the audit trail, sign
    in; each checked like the fuzzed requests."""
    w, schema = seeded.world, seeded.schema

    def call(method: str, path: str, user: str, expected: int, **kwargs: Any) -> Any:
        case = schema[path][method].Case(headers=w.as_(user), **kwargs)
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == expected, (method, path, response.text)
        return response.json()

    person = unit(3)  # someone the fuzzing cannot know of, so cannot have removed
    image = w.engine.register(make_image(40), person)
    probe = w.engine.register(make_image(41), near(person, 0.3, 4))
    call(
        "POST",
        "/api/v1/galleries/{name}/enrolments",
        "cur",
        201,
        path_parameters={"name": "custody"},
        body={"image": image, "subject": "C-1", **PROVENANCE},
        media_type="multipart/form-data",
    )
    case = {
        "reference": "SCHEMA-2",
        "offence": "robbery",
        "justification": "CCTV still from the robbery at the corner shop",
        "authorisation": "WARRANT-8",
        "authority": "Judge",
    }
    call("POST", "/api/v1/cases", "inv", 201, body=case)
    found = call(
        "POST",
        "/api/v1/cases/{reference}/searches",
        "inv",
        201,
        path_parameters={"reference": "SCHEMA-2"},
        body={"probe": probe, "top_k": 5},
        media_type="multipart/form-data",
    )
    [face] = found["faces"]
    assert face["candidates"][0]["subject"] == "C-1", found
    candidate = {
        "search_id": found["search_id"],
        "face": face["face"],
        "subject_id": face["candidates"][0]["subject_id"],
    }
    reviews = "/api/v1/searches/{search_id}/faces/{face}/candidates/{subject_id}/reviews"
    decision = {"decision": "possible_match", "note": "same scar"}
    call("POST", reviews, "ex1", 201, path_parameters=candidate, body=decision)
    call("GET", reviews, "ex2", 200, path_parameters=candidate)
    call("POST", reviews, "ex2", 201, path_parameters=candidate, body=decision)
    leads = call(
        "GET",
        "/api/v1/cases/{reference}/leads",
        "inv",
        200,
        path_parameters={"reference": "SCHEMA-2"},
    )
    assert leads["count"] == 1
    call(
        "GET",
        "/api/v1/cases/{reference}/report",
        "inv",
        200,
        path_parameters={"reference": "SCHEMA-2"},
    )
    call("GET", "/api/v1/audit", "aud", 200, query={"limit": 5})
    login = {"username": "aud", "password": PASSWORD}
    call("POST", "/api/v1/auth/login", "aud", 200, body=login)

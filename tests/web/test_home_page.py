"""``/`` sends each person to their own starting page, and never to one their roles refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import PASSWORD, World, build_world
from tests.web.conftest import login_form


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from build_world(tmp_path / "home", None)


@pytest.mark.parametrize(
    ("user", "start"),
    [
        ("inv", "/cases"),
        ("ex1", "/cases"),
        ("sup", "/cases"),
        ("aud", "/audit"),
        ("dpo", "/rights"),
        ("cur", "/galleries"),
        ("adm", "/admin"),
    ],
)
def test_each_role_starts_on_a_page_it_may_see(world: World, user: str, start: str) -> None:
    client = TestClient(world.client.app, follow_redirects=False)
    signed = client.post(
        "/login", data={"username": user, "password": PASSWORD, **login_form(client)}
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    home = client.get("/")
    assert home.status_code == 303 and home.headers["location"] == start
    assert client.get(start).status_code == 200

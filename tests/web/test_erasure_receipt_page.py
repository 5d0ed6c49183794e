"""The receipt page and its JSON download state what the index erasure guarantees (the
receipt's ``index_statement``, migration 0018); a receipt written before it says so rather
than inventing one. Rendered through the app itself (no browser needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import text

from tests.api.conftest import OPERATOR, PASSWORD, World, build_world, enrol_gallery
from tests.web.conftest import login_form


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from build_world(tmp_path / "home", None)


def _page_client(w: World, user: str) -> TestClient:
    client = TestClient(w.client.app, follow_redirects=False)
    r = client.post("/login", data={"username": user, "password": PASSWORD, **login_form(client)})
    assert r.status_code == 303
    return client


def test_the_receipt_page_shows_the_index_statement(world: World) -> None:
    w = world
    enrol_gallery(w)
    r = w.call("DELETE", "/api/v1/galleries/custody/subjects/A-1?reason=court+order", "dpo")
    number = r.json()["receipt"]
    receipt = w.services.erasure.receipt(number, actor=OPERATOR)
    statement = receipt.index_statement
    assert statement is not None and statement.startswith("Vector index (")
    dpo = _page_client(w, "dpo")

    page = dpo.get(f"/erasures/{number}")
    assert page.status_code == 200, page.text
    assert 'data-testid="index-statement"' in page.text
    assert str(escape(statement)) in page.text
    download = dpo.get(f"/erasures/{number}/receipt.json")
    assert download.json()["index_statement"] == statement

    # A receipt from before 0018 has none, and the page says so.
    with w.services.db.transaction() as session:
        session.execute(
            text("UPDATE erasure_receipts SET index_statement = NULL WHERE id = :n"), {"n": number}
        )
    page = dpo.get(f"/erasures/{number}")
    assert 'data-testid="index-statement"' not in page.text
    assert "predates the statement of what the index erasure guarantees" in page.text

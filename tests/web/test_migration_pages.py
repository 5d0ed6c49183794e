"""The curator's face-model section in a real Chromium: a gallery created on a chosen model
from the form, a migration started from the gallery page, its progress polled (htmx), the
face the new model refused listed with its reason and the swap held back, then swapped once
the curator ticks "erase the refused enrolments". An investigator sees no such form. Two
fake models (tests/api/test_api_migration.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import PASSWORD, World
from tests.api.test_api_migration import build_two_model_world, enrol_on_both
from tests.fakes import BAD_QUALITY, FAKE_MODEL
from tests.services.test_migration import NEW_MODEL, NewEngine
from tests.web.conftest import LiveServer


@pytest.fixture
def live_two(tmp_path: Path) -> Iterator[tuple[LiveServer, World, NewEngine]]:
    worlds = build_two_model_world(tmp_path / "home")
    world, new = next(worlds)
    with LiveServer(world) as server:
        yield server, world, new
    next(worlds, None)


def _login(page: Any, url: str, user: str) -> None:
    page.goto(f"{url}/galleries")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/galleries")


def test_a_curator_migrates_a_gallery_from_its_page(browser, live_two) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    server, world, new = live_two
    page = browser.new_page()
    _login(page, server.url, "cur")
    page.get_by_label("Gallery name").fill("custody")
    page.get_by_label("Inclusion policy (who may be in it)").fill("people charged")
    page.get_by_label("Retention (days)").fill("365")
    model = page.get_by_label("Face model")
    assert model.input_value() == NEW_MODEL.key  # the default comes first
    model.select_option(FAKE_MODEL.key)
    page.get_by_role("button", name="Create gallery").click()
    page.wait_for_url("**/galleries/custody")
    expect(page.get_by_test_id("gallery-facts")).to_contain_text(FAKE_MODEL.key)
    enrol_on_both(world, new, "A-1", 10)
    enrol_on_both(world, new, "B-1", 11, quality=BAD_QUALITY)
    page.reload()
    section = page.get_by_test_id("migration")
    page.get_by_label("Move to model").select_option(NEW_MODEL.key)
    page.get_by_role("button", name="Migrate gallery").click()
    page.wait_for_url("**/galleries/custody#migration")
    expect(page.get_by_test_id("migration-status")).to_have_text("awaiting decision")
    expect(page.get_by_test_id("migration-awaiting")).to_contain_text("refused 1 face")
    expect(page.get_by_test_id("migration-refused")).to_contain_text("B-1")
    expect(page.get_by_test_id("migration-refused")).to_contain_text("detector confidence")
    expect(page.get_by_test_id("gallery-facts")).to_contain_text(FAKE_MODEL.key)  # not swapped
    page.get_by_label("Move to model").select_option(NEW_MODEL.key)
    page.get_by_label("Erase the enrolments the new model refuses").check()
    page.get_by_role("button", name="Migrate gallery").click()
    page.wait_for_url("**/galleries/custody#migration")
    expect(page.get_by_test_id("migration-status")).to_have_text("swapped")
    page.reload()
    expect(page.get_by_test_id("gallery-facts")).to_contain_text(NEW_MODEL.key)
    expect(section).to_contain_text("1 enrolment(s) erased")
    expect(page.get_by_test_id("enrolments")).to_have_text("1")
    page.close()


def test_an_investigator_sees_no_migration_form(browser, live_two) -> None:  # type: ignore[no-untyped-def]
    server, world, _ = live_two
    r = world.call(
        "POST",
        "/api/v1/galleries",
        "cur",
        json={"name": "custody", "inclusion_policy": "people charged", "retention_days": 365},
    )
    assert r.status_code == 201
    page = browser.new_page()
    _login(page, server.url, "inv")
    page.goto(f"{server.url}/galleries/custody")
    assert page.get_by_test_id("gallery-facts").is_visible()
    assert page.get_by_test_id("migration").count() == 0
    page.close()

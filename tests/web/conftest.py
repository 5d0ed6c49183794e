"""Browser fixtures: the seeded server (tests/api/conftest.py) under a real uvicorn on a free
loopback port, and Debian's Chromium driven by the ``playwright`` package.

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run`` installs it) and is
launched through ``executable_path``: nothing is downloaded. Where it is missing the browser
tests skip, unless PROBITY_REQUIRE_BROWSER is set (CI), when they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.api.conftest import World, build_world

CHROMIUM = os.environ.get("PROBITY_CHROMIUM", "/usr/bin/chromium")


def login_form(client: Any) -> dict[str, str]:
    """The sign-in form's pre-session token (``login_token``), read from a fresh GET /login
    (its cookie stays in ``client``): what a browser posts back with the password."""
    page = client.get("/login")
    found = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert found, "the sign-in form has no login_token"
    return {"login_token": found.group(1)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``app`` (or the world's app) under uvicorn in a thread, on a free loopback port."""

    def __init__(self, world: World | None = None, app: Any = None) -> None:
        self.world = world
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        served = app if app is not None else world.client.app if world else None
        assert served is not None, "LiveServer needs a world or an app"
        config = uvicorn.Config(served, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    worlds = build_world(tmp_path / "home", None)
    world = next(worlds)
    with LiveServer(world) as server:
        yield server
    next(worlds, None)


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if os.environ.get("PROBITY_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium required but not found at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where page screenshots go: $PROBITY_SCREENSHOTS, or the test's tmp folder."""
    folder = Path(os.environ.get("PROBITY_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder

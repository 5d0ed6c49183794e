"""The README's first command ends in a running product: ``scripts/demo`` (``probity demo``
in the project's .venv; a later ``--home`` overrides its ./demo-home) enrols the sample
gallery, opens a case, searches, prints one demo account per role and serves on loopback.
A real Chromium then signs in as the demo investigator, finds the demo's case with its
searches, searches the two-person probe and sees the left-hand face's candidate; the
metrics token the demo printed scrapes that page search."""

from __future__ import annotations

import contextlib
import io
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from probity import INVESTIGATIVE_LEAD_NOTICE
from tests.cli.conftest import DATA, REPO
from tests.web.conftest import _free_port

ACCOUNT = re.compile(r"^\s+(demo-[a-z]+)\s+([a-z_]+)\s+(\S+)\s*$")
METRICS = re.compile(r"Bearer (\S+)' (http://\S+)/metrics")
START_S = 600  # enrolment and three searches with the real models on a 2-core CPU, then start


class Demo:
    def __init__(self, lines: list[str], url: str) -> None:
        self.lines = lines
        self.url = url
        self.passwords = {m[1]: m[3] for m in map(ACCOUNT.match, lines) if m}
        found = next(m for m in map(METRICS.search, lines) if m)
        self.metrics_token = found[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``probity demo`` in its own process on a free port, stopped at the end."""
    folder = tmp_path_factory.mktemp("demo")
    home = folder / "demo-home"
    log = (folder / "server.log").open("w")  # a file, so the request log never fills a pipe
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROBITY_", "PROMETHEUS_"))}
    env |= {"PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    process = subprocess.Popen(
        [str(REPO / "scripts" / "demo"), "--home", str(home), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + START_S
    try:
        # The demo prints the metrics line last, just before it serves.
        while not any(METRICS.search(line) for line in seen):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "the demo ended early:\n" + "\n".join(seen)
            seen.append(line)
        url = f"http://127.0.0.1:{port}"
        while True:  # bounded: the server answers within the deadline or the test fails
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            assert process.poll() is None, (folder / "server.log").read_text()
            assert time.monotonic() < deadline, "the demo server did not start"
            time.sleep(0.2)
        yield Demo(seen, url)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=30)
        if process.poll() is None:
            process.kill()
        log.close()


def _two_person_probe() -> bytes:
    """obama3.jpg | biden.jpg side by side, as the demo's second search."""
    left = Image.open(DATA / "obama3.jpg").convert("RGB")
    right = Image.open(DATA / "biden.jpg").convert("RGB")
    canvas = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def test_demo_prints_one_account_per_role_marked_as_demo(demo: Demo) -> None:
    text = "\n".join(demo.lines)
    assert "DEMO ACCOUNTS" in text and "shown only now" in text
    roles = {m[2] for m in map(ACCOUNT.match, demo.lines) if m}
    assert roles == {
        "investigator", "examiner", "supervisor", "curator", "auditor", "privacy_officer",
        "admin",
    }  # fmt: skip
    assert all(len(p) >= 12 for p in demo.passwords.values())
    assert len(set(demo.passwords.values())) == len(demo.passwords)
    assert f"Sign in at {demo.url}/login" in text
    assert "chain intact" in text


def test_sign_in_as_the_demo_investigator_and_search(demo: Demo, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{demo.url}/login")
    page.get_by_label("Username").fill("demo-investigator")
    page.get_by_label("Password").fill(demo.passwords["demo-investigator"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    # The demo's case is the investigator's organisation's, with the demo's three searches.
    page.goto(f"{demo.url}/cases")
    page.get_by_role("link", name="DEMO-2026-001").first.click()
    page.wait_for_url(f"{demo.url}/cases/DEMO-2026-001")
    assert page.locator("a[href^='/searches/']").count() >= 3
    page.get_by_label("Probe photo").set_input_files(
        files=[{"name": "two-people.jpg", "mimeType": "image/jpeg", "buffer": _two_person_probe()}]
    )
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"{demo.url}/searches/*", timeout=120_000)
    assert page.get_by_test_id("face-box-1").is_visible()
    assert page.get_by_test_id("face-box-2").is_visible()
    page.get_by_test_id("pick-face-1").click()
    page.wait_for_url("**face=1")
    top = page.get_by_test_id("candidate-1-1")
    assert top.get_by_test_id("subject").inner_text() == "SUBJ-0001"
    assert page.get_by_test_id("banner").inner_text() == INVESTIGATIVE_LEAD_NOTICE
    context.close()

    # The page search is counted (the demo's own searches ran before the server started).
    scraped = httpx.get(
        f"{demo.url}/metrics", headers={"Authorization": f"Bearer {demo.metrics_token}"}
    )
    assert scraped.status_code == 200
    assert re.search(r'probity_searches_total\{outcome="candidates"\} [1-9]', scraped.text)

"""``probity rights ...`` end to end on the real models with the committed photos: file an
access request, list, show, extend, export the zip (images, provenance, the search that
returned the subject, the PDF), close; an erasure request erased with a receipt; mistakes
are one error line with the error's exit status; the audit chain verifies."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import date, timedelta
from pathlib import Path

from tests.cli.conftest import DATA


def test_rights_commands(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = ["--home", str(tmp_path / "home")]
    collected = (date.today() - timedelta(days=30)).isoformat()
    assert probity("init", *home).code == 0
    assert probity(
        "gallery", "create", "custody", "--policy", "charged persons", "--retention-days",
        "365", *home,
    ).code == 0  # fmt: skip
    for subject, photo in (("OB-1", "obama.jpg"), ("BI-1", "biden.jpg")):
        run = probity(
            "enrol", "custody", str(DATA / photo), "--subject", subject, "--source",
            f"custody/{subject}", "--lawful-basis", "law_enforcement", "--collected-at",
            collected, "--jurisdiction", "GB", *home,
        )  # fmt: skip
        assert run.code == 0, run.err
    assert probity(
        "case", "open", "C-1", "--offence", "robbery", "--justification", "still from camera 4",
        "--authorisation", "W-1", *home,
    ).code == 0  # fmt: skip
    run = probity("search", str(DATA / "obama2.jpg"), "--case", "C-1", "--json", *home)
    assert run.code == 0, run.err

    run = probity(
        "rights", "file", "access", "--contact", "jo@example.org", "--identifier",
        "reference=OB-1", "--identifier", "gallery=custody", "--json", *home,
    )  # fmt: skip
    assert run.code == 0, run.err
    filed = json.loads(run.out)
    receipt = filed["receipt"]
    assert re.match(r"^RR-\d{4}-[0-9A-F]{10}$", receipt) and filed["status"] == "open"

    listed = probity("rights", "list", *home)
    assert listed.code == 0 and receipt in listed.out and "day(s) left" in listed.out
    shown = probity("rights", "show", receipt, *home)
    assert "contact: jo@example.org" in shown.out
    run = probity("rights", "extend", receipt, "--reason", "two galleries to check", *home)
    assert run.code == 0 and "extended" in run.out

    zipped = tmp_path / "export.zip"
    run = probity(
        "rights", "export", "OB-1", "--gallery", "custody", "-o", str(zipped),
        "--request", receipt, "--json", *home,
    )  # fmt: skip
    assert run.code == 0, run.err
    assert json.loads(run.out)["searches"] == 1
    archive = zipfile.ZipFile(io.BytesIO(zipped.read_bytes()))
    document = json.loads(archive.read("subject.json"))
    assert [s["case_reference"] for s in document["searches"]] == ["C-1"]
    assert document["searches"][0]["returned_as"][0]["rank"] == 1
    (entry,) = document["enrolments"]
    assert archive.read(entry["file"]) == (DATA / "obama.jpg").read_bytes()
    assert archive.read("report.pdf").startswith(b"%PDF")
    assert zipped.stat().st_mode & 0o777 == 0o600

    run = probity("rights", "close", receipt, "--outcome", "export sent by post", *home)
    assert run.code == 0 and "closed" in run.out

    run = probity(
        "rights", "file", "erasure", "--contact", "al@example.org", "--identifier",
        "reference=BI-1", "--json", *home,
    )  # fmt: skip
    erasure = json.loads(run.out)["receipt"]
    run = probity("rights", "erase", erasure, "BI-1", "--gallery", "custody", *home)
    assert run.code == 0, run.err
    assert re.search(r"receipt ER-\d{4}-[0-9A-F]{10}", run.out)
    assert probity("rights", "close", erasure, "--outcome", "erased", *home).code == 0

    bad = probity("rights", "file", "access", "--contact", "x@y.z", "--identifier", "OB-1", *home)
    assert bad.code == 2 and bad.err.startswith("error[invalid_input]") and "NAME=VALUE" in bad.err
    missing = probity("rights", "show", "RR-2026-0000000000", *home)
    assert missing.code == 3 and missing.err.startswith("error[rights_request_not_found]")
    twice = probity("rights", "close", receipt, "--outcome", "again", *home)
    assert twice.code == 4 and "closed" in twice.err

    log = json.loads(probity("audit", "log", "--action", "rights.close", "--json", *home).out)
    assert [e["details"]["receipt"] for e in log] == [receipt, erasure]
    assert probity("audit", "verify", *home).code == 0

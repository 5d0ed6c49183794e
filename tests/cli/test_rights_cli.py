"""``probity rights ...`` end to end on the real models with the committed photos: file an
access request, list, show, extend, export the zip (images, provenance, the search that
returned the subject, the PDF), close; an erasure request erased with a receipt; mistakes
are one error line with the error's exit status; ``rights lookup`` finds the person of a
request by its photo (obama2.jpg → OB-1 at rank 1, biden.jpg's record not within the
suppression distance); the audit chain verifies."""

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


def test_rights_lookup_finds_the_person_by_the_requests_photo(  # type: ignore[no-untyped-def]
    probity, tmp_path: Path
) -> None:
    """Real models: obama.jpg and biden.jpg enrolled; an erasure request with obama2.jpg and
    no reference finds OB-1 at rank 1, and BI-1 is not within the suppression distance."""
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
    run = probity(
        "rights", "file", "erasure", "--contact", "jo@example.org", "--photo",
        str(DATA / "obama2.jpg"), "--json", *home,
    )  # fmt: skip
    assert run.code == 0, run.err
    receipt = json.loads(run.out)["receipt"]

    run = probity("rights", "lookup", receipt, "--json", *home)
    assert run.code == 0, run.err
    found = json.loads(run.out)
    assert found["max_distance"] == 1.1699 and "not an identification" in found["notice"]
    first = found["possible_matches"][0]
    assert (first["rank"], first["subject_reference"], first["gallery"]) == (1, "OB-1", "custody")
    assert first["distance"] < 1.1699
    assert "BI-1" not in [m["subject_reference"] for m in found["possible_matches"]]

    text = probity("rights", "lookup", receipt, *home)
    assert text.code == 0 and "not an identification" in text.out and "OB-1" in text.out
    assert f"probity rights erase {receipt} RECORD --gallery GALLERY" in text.out

    (event, _) = json.loads(
        probity("audit", "log", "--action", "rights.photo_lookup", "--json", *home).out
    )
    assert event["details"]["faces"] == 1 and event["details"]["templates_compared"] == 2
    run = probity("rights", "erase", receipt, "OB-1", "--gallery", "custody", *home)
    assert run.code == 0, run.err
    run = probity("rights", "close", receipt, "--outcome", "record OB-1 erased", *home)
    assert run.code == 0, run.err
    gone = probity("rights", "lookup", receipt, *home)
    assert gone.code == 4 and "closed" in gone.err  # the photo went with the closing
    assert probity("audit", "verify", *home).code == 0

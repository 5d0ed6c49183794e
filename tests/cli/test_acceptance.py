"""The acceptance checks of the core issue, run through the ``probity`` CLI on the real dlib
models and the NASA photos in ../shared/faces."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.cli.conftest import NasaHome, shared_faces


def search_json(probity, home: Path, image: Path, *extra: str) -> dict:  # type: ignore[no-untyped-def]
    run = probity("search", str(image), "--case", "CASE-1", "--home", str(home), "--json", *extra)
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_bulk_enrolment_refuses_the_mission_patch_face(nasa_home: NasaHome) -> None:
    summary = json.loads(nasa_home.bulk_out)
    assert nasa_home.bulk_code == 0
    assert summary["enrolled"] == 11 and summary["refused"] == 0
    collins = next(r for r in summary["rows"] if r["subject"] == "COLLINS")
    assert len(collins["refused_faces"]) == 1
    reasons = " ".join(collins["refused_faces"][0]["reasons"])
    assert "detector confidence" in reasons
    left, top, _, _ = collins["refused_faces"][0]["box"]
    assert left > 100 and top > 300  # the patch, low on the photo — not the face


def test_rerunning_the_manifest_skips_what_is_enrolled(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    manifest = nasa_home.home.parent / "crew.csv"
    run = probity(
        "enrol", "crew", "--manifest", str(manifest), "--home", str(nasa_home.home), "--json"
    )
    assert run.code == 0
    summary = json.loads(run.out)
    assert (summary["enrolled"], summary["skipped"]) == (0, 11)


def test_second_photo_of_morgan_ranks_him_first(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    result = search_json(probity, nasa_home.home, shared_faces() / "andrew_morgan_2.jpg")
    assert result["notice"] == "Investigative lead — not an identification"
    assert len(result["faces"]) == 1
    top = result["faces"][0]["candidates"][0]
    assert top["rank"] == 1 and top["subject"] == "MORGAN"
    assert set(top) >= {
        "rank",
        "subject",
        "gallery",
        "score",
        "distance",
        "enrolment_id",
        "provenance",
    }
    assert top["provenance"]["lawful_basis"] == "public_task"
    assert len(result["faces"][0]["box"]) == 4


def test_two_person_photo_gives_morgan_and_hague(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    result = search_json(probity, nasa_home.home, shared_faces() / "multi_morgan_hague.jpg")
    faces = result["faces"]
    assert len(faces) == 2
    assert [f["candidates"][0]["subject"] for f in faces] == ["MORGAN", "HAGUE"]
    assert faces[0]["box"][0] < faces[1]["box"][0]


def test_profile_missed_by_hog_is_found_by_the_cnn(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    result = search_json(probity, nasa_home.home, shared_faces() / "alexander_gerst_2_profile.jpg")
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    assert face["quality"]["detector"] == "cnn"
    assert face["candidates"][0]["subject"] == "GERST"


def test_no_face_photos_say_so(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    for name in ("noface_coffee.png", "noface_rocket.jpg", "noface_cat_chelsea.png"):
        run = probity(
            "search", str(shared_faces() / name), "--case", "CASE-1", "--home", str(nasa_home.home)
        )
        assert run.code == 0, run.err
        assert "No face found" in run.out
        assert "Traceback" not in run.out + run.err


def test_no_output_says_identified_or_match(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    result = search_json(
        probity, nasa_home.home, shared_faces() / "andrew_morgan_2.jpg", "--no-threshold"
    )
    text = json.dumps(result).lower()
    assert "identified" not in text
    assert '"match"' not in text
    assert len(result["faces"][0]["candidates"]) == 10


def test_audit_verify_passes_then_names_the_altered_event(
    probity, nasa_home: NasaHome, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import shutil

    home = tmp_path / "copy"
    shutil.copytree(nasa_home.home, home)
    assert probity("audit", "verify", "--home", str(home)).code == 0
    with sqlite3.connect(home / "probity.db") as db:
        db.execute(
            "UPDATE audit_events SET details = replace(details, 'kidnapping', 'fraud') "
            "WHERE action = 'case.open'"
        )
        seq = db.execute("SELECT seq FROM audit_events WHERE action = 'case.open'").fetchone()[0]
    run = probity("audit", "verify", "--home", str(home))
    assert run.code == 9
    assert f"event #{seq}" in run.err

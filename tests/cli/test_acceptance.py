"""The acceptance checks of the core issue, run through the ``probity`` CLI on a fresh home
with the default engine (YuNet + SFace since issue 10) and the NASA photos in ../shared/faces.

Hard probes (issue 10, item 7), as measured on the default engine: morgan_2 and both faces of
the two-person photo at rank 1; the Gerst profile found by YuNet itself (dlib needed its CNN,
20 s in the browser) and Gerst at rank 1; the no-face photos "No face found" in milliseconds;
the mission patch on eileen_collins_2.png, which dlib's HOG boxes as a face, is not detected
by YuNet at all (and with ``--detector hog`` its box gets no five points, so it is not
searched)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import NasaHome, shared_faces


def search_json(probity, home: Path, image: Path, *extra: str) -> dict:  # type: ignore[no-untyped-def]
    run = probity("search", str(image), "--case", "CASE-1", "--home", str(home), "--json", *extra)
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_bulk_enrolment_does_not_see_the_mission_patch_as_a_face(nasa_home: NasaHome) -> None:
    """dlib's HOG boxed the mission patch low on eileen_collins_2.png (and the quality gate
    refused it: confidence 0.12); YuNet does not detect it at all, so Collins is enrolled
    from her one face with nothing to refuse."""
    summary = json.loads(nasa_home.bulk_out)
    assert nasa_home.bulk_code == 0
    assert summary["enrolled"] == 11 and summary["refused"] == 0
    collins = next(r for r in summary["rows"] if r["subject"] == "COLLINS")
    assert collins["refused_faces"] == []


def test_the_mission_patch_photo_searches_as_one_face(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    result = search_json(probity, nasa_home.home, shared_faces() / "eileen_collins_2.png")
    (face,) = result["faces"]
    assert face["box"][1] < 150  # her face, at the top; the patch is below y = 300
    assert face["candidates"][0]["subject"] == "COLLINS"


def test_with_hog_the_patch_box_is_not_searched(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    """Asked for dlib's HOG, the default engine gets the patch box too, but YuNet finds no
    face in its neighbourhood to place the five points, so only Collins's face is searched."""
    result = search_json(
        probity, nasa_home.home, shared_faces() / "eileen_collins_2.png", "--detector", "hog"
    )
    (face,) = result["faces"]
    assert face["quality"]["detector"] == "hog"
    assert face["box"][1] < 150
    assert face["candidates"][0]["subject"] == "COLLINS"


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
    assert [f["candidates"][0]["rank"] for f in faces] == [1, 1]
    assert faces[0]["box"][0] < faces[1]["box"][0]


def test_profile_is_found_by_yunet_and_gives_gerst(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    """HOG missed this profile and dlib's CNN found it in seconds; YuNet finds it at once."""
    result = search_json(probity, nasa_home.home, shared_faces() / "alexander_gerst_2_profile.jpg")
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    assert face["quality"]["detector"] == "yunet"
    assert face["candidates"][0]["rank"] == 1
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


def test_default_search_marks_nothing_and_fpir_marks_morgan(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    """Investigation mode by default; at FPIR 1 % over the 11-person gallery (FMR 1e-2 / 11
    per comparison, read off SFace's table) Morgan's second photo is marked and a stranger's
    row is not. The text output says the gallery size, FPIR, FMR and the table's source."""
    plain = search_json(probity, nasa_home.home, shared_faces() / "andrew_morgan_2.jpg")
    assert plain["threshold"]["mode"] == "investigation"
    assert plain["threshold"]["gallery_subjects"] == 11
    assert all(c["within_threshold"] is None for c in plain["faces"][0]["candidates"])
    marked = search_json(
        probity, nasa_home.home, shared_faces() / "andrew_morgan_2.jpg", "--fpir", "0.01"
    )
    t = marked["threshold"]
    assert t["mode"] == "fpir" and t["target_fmr"] == pytest.approx(0.01 / t["gallery_templates"])
    rows = marked["faces"][0]["candidates"]
    assert rows[0]["subject"] == "MORGAN" and rows[0]["within_threshold"] is True
    assert rows[1]["within_threshold"] is False
    text = probity(
        "search", str(shared_faces() / "andrew_morgan_2.jpg"), "--case", "CASE-1",
        "--home", str(nasa_home.home), "--fpir", "0.01",
    )  # fmt: skip
    assert text.code == 0, text.err
    flat = " ".join(text.out.split())
    assert "Gallery of 11 people" in flat and "target FPIR 0.01" in flat
    assert "LFW, all pairs, measured 2026-12" in flat


def test_verify_the_right_and_a_wrong_person(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    def verify(subject: str) -> dict:  # type: ignore[type-arg]
        run = probity(
            "verify", str(shared_faces() / "andrew_morgan_2.jpg"), "--case", "CASE-1",
            "--gallery", "crew", "--subject", subject, "--home", str(nasa_home.home), "--json",
        )  # fmt: skip
        assert run.code == 0, run.err
        return json.loads(run.out)  # type: ignore[no-any-return]

    right, wrong = verify("MORGAN"), verify("HAGUE")
    assert right["within_threshold"] is True and wrong["within_threshold"] is False
    assert right["threshold"]["max_distance"] == 1.128  # SFace's FMR 1e-3 point
    outside = probity(
        "verify", str(shared_faces() / "andrew_morgan_2.jpg"), "--case", "NO-SUCH-CASE",
        "--gallery", "crew", "--subject", "MORGAN", "--home", str(nasa_home.home),
    )  # fmt: skip
    assert outside.code != 0 and "NO-SUCH-CASE" in outside.err + outside.out
    log = probity("audit", "log", "--home", str(nasa_home.home), "--action", "search.verify")
    assert log.code == 0 and log.out.count("search.verify") == 2


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
    assert run.code == 0  # incremental: the edit is inside the prefix verified above
    run = probity("audit", "verify", "--full", "--home", str(home))
    assert run.code == 9
    assert f"event #{seq}" in run.err


def test_the_fresh_home_runs_on_the_default_engine(probity, nasa_home: NasaHome) -> None:  # type: ignore[no-untyped-def]
    run = probity("gallery", "list", "--home", str(nasa_home.home), "--json")
    assert run.code == 0, run.err
    assert "sface-int8@opencv_zoo-2021dec-int8bq" in run.out
    assert "dlib-resnet" not in run.out

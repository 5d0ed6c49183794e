"""Issue 10's second acceptance line, end to end through the real ``probity`` commands, the
real dlib and SFace models and real photos (tests/data; the NASA photos of ../shared/faces
where present): a home as it was before the ONNX engine (a dlib gallery, an objection with
only a dlib template, a case) upgrades with ``probity init``, searches as before on dlib,
migrates to SFace, and after the migration the search runs on SFace and finds the right
person at rank 1, the objector's photo is refused at enrolment and the record the
objection withheld is still withheld.

And the crash test: a migration killed half-way (``PROBITY_TEST_CRASH_AFTER``, a SIGKILL of
the CLI process after N enrolments) completes when run again, with one template per
enrolment, one index vector per template and no duplicates.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from probity.config import Settings
from probity.index.factory import index_file
from probity.interfaces.cli.main import main
from probity.services.container import build_services
from tests.cli.conftest import COLLECTED_AT, DATA, SHARED_FACES

DLIB = "dlib-resnet-v1@face_recognition_models-0.3.0"
SFACE = "sface-int8"
NASA = {
    "andrew_morgan_1.jpg": "MORGAN",
    "nick_hague_1.jpg": "HAGUE",
    "alexander_gerst_1.jpg": "GERST",
}
NEW_TABLES = (
    "suppression_holds",
    "model_migration_items",
    "model_migrations",
    "suppression_version",
    "template_changes",
    "template_log_head",
    "erasure_work",
    "audit_verified",  # 0015
    "kek_buckets",  # 0016
    "kek_stale_buckets",  # 0016
    "gallery_counts",  # 0017
    "template_counts",  # 0017
)


def _keys_back_to_format_2(home: Path) -> None:
    """Re-wrap every stored data key under the root KEK alone (format 2), as a home made
    before the KEK tree (migration 0016) holds them, so that dropping ``kek_buckets`` loses
    nothing; ``probity init`` then moves them back into the tree."""
    from probity.storage.keyring import Keyring, load_master_key
    from probity.storage.vault import _WRAPPED_KEYS, unwrap_in_sqlite_file

    ring = Keyring(load_master_key(env_value=None, key_file=home / "master.key"), home / "keys")
    path = home / "probity.db"
    with sqlite3.connect(path) as db:
        (epoch,) = db.execute("SELECT epoch FROM keyring_state").fetchone()
        for table, column, aad_of in _WRAPPED_KEYS:
            name, pk = table.__tablename__, next(iter(table.__table__.primary_key)).name
            for owner, wrapped in db.execute(
                f"SELECT {pk}, {column} FROM {name} WHERE {column} IS NOT NULL"
            ).fetchall():
                aad = aad_of(table(**{"subject_id" if pk == "subject_id" else "id": owner}))
                key = unwrap_in_sqlite_file(ring, path, aad, bytes(wrapped))
                db.execute(
                    f"UPDATE {name} SET {column} = ? WHERE {pk} = ?",
                    (ring.wrap_at(epoch, aad, key), owner),
                )


def _quiet(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _ok(*args: str) -> str:
    code, out, err = _quiet(*args)
    assert code == 0, (args, out, err)
    return out


def _enrol_args(home: Path, photo: Path, subject: str) -> list[str]:
    return [
        "enrol", "custody", str(photo), "--home", str(home), "--subject", subject,
        "--source", f"custody-suite/{photo.name}", "--lawful-basis", "law_enforcement",
        "--collected-at", COLLECTED_AT, "--jurisdiction", "GB",
    ]  # fmt: skip


def _create_dlib_gallery(home: Path, *extra: str) -> None:
    _ok("init", "--home", str(home))
    _ok(
        "gallery", "create", "custody", "--home", str(home), "--policy",
        "custody images of charged persons", "--retention-days", "365", "--model",
        "dlib-resnet-v1", *extra,
    )  # fmt: skip


def _search(home: Path, photo: Path, *extra: str) -> dict[str, Any]:
    out = _ok("search", str(photo), "--case", "MIG-1", "--home", str(home), "--json", *extra)
    result: dict[str, Any] = json.loads(out)
    return result


def _subjects(result: dict[str, Any]) -> list[str]:
    return [c["subject"] for f in result["faces"] for c in f["candidates"]]


def _nasa() -> bool:
    return (SHARED_FACES / "andrew_morgan_1.jpg").exists()


@dataclass
class Migrated:
    home: Path
    before_obama3: dict[str, Any]
    before_morgan: dict[str, Any] | None
    migration: dict[str, Any]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    home = tmp_path_factory.mktemp("migrate") / "home"
    _create_dlib_gallery(home)
    _ok(*_enrol_args(home, DATA / "astronaut.png", "COLLINS"))
    _ok(*_enrol_args(home, DATA / "biden.jpg", "BIDEN"))
    if _nasa():
        for name, subject in NASA.items():
            _ok(*_enrol_args(home, SHARED_FACES / name, subject))
    _ok(
        "case", "open", "MIG-1", "--home", str(home), "--offence", "robbery",
        "--justification", "suspect seen on the still from camera 4",
        "--authorisation", "WARRANT-1",
    )  # fmt: skip
    run = _ok(
        "optout", str(DATA / "obama2.jpg"), "--reference", "LETTER-2026-11", "--home",
        str(home), "--json",
    )  # fmt: skip
    objection = json.loads(run)
    with sqlite3.connect(home / "probity.db") as db:
        models = {m for (m,) in db.execute("SELECT model_key FROM suppression_templates")}
        assert DLIB in models  # the dlib gallery needs a dlib template of the objection
        # An objection filed before the ONNX engine has a dlib template only, and its photo
        # is gone (never stored): delete the others to make this one such a legacy objection.
        db.execute("DELETE FROM suppression_templates WHERE model_key != ?", (DLIB,))
    # The record the objection withholds: Obama enrolled from obama.jpg (0.35 from the
    # objection photo on dlib) *past* the enrolment check, as an enrolment racing the
    # objection would (the service test of search withholding does the same). With the
    # check on, it is refused, as the test below shows for obama3.jpg.
    services = build_services(Settings(home=home))
    try:
        services.enrolment.suppression = None
        services.enrolment.enrol(
            actor="test-suite", gallery="custody", subject="OBAMA",
            image=(DATA / "obama.jpg").read_bytes(),
            provenance={
                "source": "custody-suite/obama.jpg", "lawful_basis": "law_enforcement",
                "collected_at": COLLECTED_AT, "jurisdiction": "GB",
            },
        )  # fmt: skip
    finally:
        services.close()
    assert objection["suppression_id"]
    # The home as it was before this change: schema 0009, without the migration tables (0010),
    # the candidate marking columns (0011), the search path indexes (0012) and the
    # suppression list's version row (0013), the template log and erasure journal (0014),
    # the audit verified point (0015), the trigger-kept counts (0017), the receipts' index
    # statement (0018), the covering index on subject keys (0019).
    _keys_back_to_format_2(home)  # and without the KEK tree (0016)
    with sqlite3.connect(home / "probity.db") as db:
        # and without the template change log and its triggers (0014)
        for trigger in ("template_log_insert", "template_log_delete"):
            db.execute(f"DROP TRIGGER {trigger}")
        # and without the count triggers (0017)
        for table in ("subjects", "enrolments"):
            for event in ("insert", "delete", "move"):
                db.execute(f"DROP TRIGGER gallery_count_{table}_{event}")
        for trigger in ("template_count_insert", "template_count_delete"):
            db.execute(f"DROP TRIGGER {trigger}")
        for table in NEW_TABLES:
            db.execute(f"DROP TABLE {table}")
        for column in ("within_threshold", "fused", "expected_strangers"):
            db.execute(f"ALTER TABLE search_candidates DROP COLUMN {column}")
        # and without the receipts' index statement (0018)
        db.execute("ALTER TABLE erasure_receipts DROP COLUMN index_statement")
        for index in (
            "ix_enrolments_template_id",
            "ix_searches_user_at",
            "ix_searches_organisation_at",
            # the KEK tree's bucket indexes (0016)
            "ix_subject_keys_kek_bucket",
            "ix_cases_kek_bucket",
            "ix_rights_requests_kek_bucket",
            "ix_suppression_templates_kek_bucket",
            "ix_subject_keys_covering",  # (0019)
        ):
            db.execute(f"DROP INDEX {index}")
        db.execute("UPDATE alembic_version SET version_num = '0009'")
    code, _, err = _quiet("gallery", "list", "--home", str(home))
    # an old home must be upgraded first (probity init or probity migrate both apply it)
    assert code != 0 and "out of date" in err and "probity migrate" in err
    _ok("init", "--home", str(home))  # the upgrade
    before_obama3 = _search(home, DATA / "obama3.jpg", "--no-threshold", "--top", "100")
    before_morgan = _search(home, SHARED_FACES / "andrew_morgan_2.jpg") if _nasa() else None
    migration = json.loads(
        _ok("gallery", "migrate", "custody", "--model", SFACE, "--home", str(home), "--json")
    )
    return Migrated(home, before_obama3, before_morgan, migration)


def test_before_the_migration_the_upgraded_home_searches_as_before(migrated: Migrated) -> None:
    assert migrated.before_obama3["model"] == DLIB
    found = _subjects(migrated.before_obama3)
    assert "OBAMA" not in found and "COLLINS" in found  # withheld on dlib, at any rank
    if migrated.before_morgan is None:
        pytest.skip(f"{SHARED_FACES} not present: the NASA rank-1 check needs its photos")
    top = migrated.before_morgan["faces"][0]["candidates"][0]
    assert migrated.before_morgan["model"] == DLIB
    assert (top["rank"], top["subject"]) == (1, "MORGAN")


def test_the_migration_swaps_the_gallery_to_sface(migrated: Migrated) -> None:
    m = migrated.migration
    assert m["status"] == "swapped" and m["from_model"] == DLIB
    assert m["to_model"].startswith("sface-int8@")
    assert m["refused"] == [] and m["erased_receipts"] == []
    assert m["embedded"] == m["enrolments"] == m["index_vectors"]
    assert m["holds"] == 1  # Obama, held for the legacy objection
    with sqlite3.connect(migrated.home / "probity.db") as db:
        (gallery_model,) = db.execute("SELECT model_name FROM galleries").fetchone()
        models = {k for (k,) in db.execute("SELECT model_key FROM templates")}
        (templates,) = db.execute("SELECT count(*) FROM templates").fetchone()
        (enrolments,) = db.execute("SELECT count(*) FROM enrolments").fetchone()
        linked = db.execute(
            "SELECT count(*) FROM enrolments e JOIN templates t ON t.id = e.template_id"
        ).fetchone()[0]
    assert gallery_model == "sface-int8" and models == {m["to_model"]}
    assert templates == enrolments == linked == m["embedded"]
    settings = Settings(home=migrated.home)
    with sqlite3.connect(migrated.home / "probity.db") as db:
        (gallery_id,) = db.execute("SELECT id FROM galleries").fetchone()
    old_file = index_file(settings.index_backend, settings.index_dir / gallery_id)
    new_files = list(settings.index_dir.glob(f"{gallery_id}.sface-int8.*"))
    indexes = [p for p in new_files if not p.name.endswith((".lock", ".seg"))]  # segments apart
    assert not old_file.exists() and len(indexes) == 1
    status = json.loads(_ok("index", "status", "--home", str(migrated.home), "--json"))
    assert [(s["templates"], s["vectors"]) for s in status] == [(templates, templates)]
    log = json.loads(
        _ok("audit", "log", "--action", "gallery.migrate_swap", "--home", str(migrated.home),
            "--json")
    )  # fmt: skip
    assert log[0]["details"]["to_model"] == m["to_model"]


def test_after_the_migration_the_search_runs_on_sface(migrated: Migrated) -> None:
    if not _nasa():
        pytest.skip(f"{SHARED_FACES} not present: the NASA rank-1 check needs its photos")
    result = _search(migrated.home, SHARED_FACES / "andrew_morgan_2.jpg")
    assert result["model"].startswith("sface-int8@")
    top = result["faces"][0]["candidates"][0]
    assert (top["rank"], top["subject"]) == (1, "MORGAN")


def test_after_the_migration_the_objector_is_refused_at_enrolment(migrated: Migrated) -> None:
    code, _, err = _quiet(*_enrol_args(migrated.home, DATA / "obama3.jpg", "OBAMA-NEW"))
    assert code == 4 and "error[objection_on_file]: objection on file" in err
    log = json.loads(
        _ok("audit", "log", "--action", "enrolment.refused_objection", "--home",
            str(migrated.home), "--json")
    )  # fmt: skip
    assert log[0]["details"]["model"] == DLIB  # checked on the model the objection has
    with sqlite3.connect(migrated.home / "probity.db") as db:
        refs = {r for (r,) in db.execute("SELECT reference FROM subjects")}
    assert "OBAMA-NEW" not in refs and "OBAMA" in refs


def test_after_the_migration_the_withheld_record_is_still_withheld(migrated: Migrated) -> None:
    result = _search(migrated.home, DATA / "obama3.jpg", "--no-threshold", "--top", "100")
    assert result["model"].startswith("sface-int8@")
    found = _subjects(result)
    assert "COLLINS" in found and "OBAMA" not in found


def test_erasing_a_held_subject_removes_its_hold(migrated: Migrated) -> None:
    home = str(migrated.home)
    _ok("subject", "remove", "OBAMA", "--gallery", "custody", "--reason", "officer decided",
        "--home", home)  # fmt: skip
    with sqlite3.connect(migrated.home / "probity.db") as db:
        (holds,) = db.execute("SELECT count(*) FROM suppression_holds").fetchone()
        (items,) = db.execute(
            "SELECT count(*) FROM model_migration_items i "
            "LEFT JOIN enrolments e ON e.id = i.enrolment_id WHERE e.id IS NULL"
        ).fetchone()
    assert holds == 0 and items == 0


# -- faces the new model refuses ---------------------------------------------------------------


def test_faces_the_new_model_refuses_hold_the_swap_until_dropped(tmp_path: Path) -> None:
    """A gallery floor on YuNet's score of 0.94 (dlib's faces never have one): SFace's
    faces of astronaut.png (0.93) and biden.jpg (0.93) fall under it, obama.jpg's (0.95)
    does not. The swap waits, listing both with the reason, until --drop-refused erases
    them: rows, templates, image blobs and index vectors, with a receipt each."""
    home = tmp_path / "home"
    _create_dlib_gallery(home, "--floor", "min_yunet_confidence=0.94")
    for name, subject in {"astronaut.png": "COLLINS", "biden.jpg": "BIDEN"}.items():
        _ok(*_enrol_args(home, DATA / name, subject))
    _ok(*_enrol_args(home, DATA / "obama.jpg", "OBAMA"))
    code, out, _ = _quiet("gallery", "migrate", "custody", "--model", SFACE, "--home", str(home))
    assert code == 8
    assert "is still on dlib-resnet-v1" in out and "Refused faces" in out
    assert "COLLINS" in out and "BIDEN" in out and "--drop-refused" in out
    code, out, _ = _quiet(
        "gallery", "migrate", "custody", "--model", SFACE, "--home", str(home), "--json"
    )
    report = json.loads(out)
    assert code == 8 and report["status"] == "awaiting_decision"
    assert [r["subject"] for r in report["refused"]] == ["BIDEN", "COLLINS"]
    assert all("confidence" in " ".join(r["reasons"]) for r in report["refused"])
    blobs_before = len([p for p in (home / "blobs").rglob("*") if p.is_file()])
    report = json.loads(
        _ok("gallery", "migrate", "custody", "--model", SFACE, "--drop-refused", "--home",
            str(home), "--json")
    )  # fmt: skip
    assert report["status"] == "swapped" and report["embedded"] == 1
    assert len(report["erased_receipts"]) == 2
    assert [r["subject"] for r in report["refused"]] == ["BIDEN", "COLLINS"]  # still listed
    with sqlite3.connect(home / "probity.db") as db:
        subjects = {r for (r,) in db.execute("SELECT reference FROM subjects")}
        (templates,) = db.execute("SELECT count(*) FROM templates").fetchone()
        causes = [c for (c,) in db.execute("SELECT cause FROM erasure_receipts")]
    assert subjects == {"OBAMA"} and templates == 1 and causes == ["removal", "removal"]
    assert len([p for p in (home / "blobs").rglob("*") if p.is_file()]) == blobs_before - 2
    status = json.loads(_ok("index", "status", "--home", str(home), "--json"))
    assert [(s["templates"], s["vectors"]) for s in status] == [(1, 1)]


# -- the crash test ------------------------------------------------------------------------------


def test_a_migration_killed_half_way_completes_when_run_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _create_dlib_gallery(home)
    photos = {"astronaut.png": "COLLINS", "biden.jpg": "BIDEN", "obama.jpg": "OBAMA"}
    for name, subject in photos.items():
        _ok(*_enrol_args(home, DATA / name, subject))
    command = [
        sys.executable, "-c", "import sys; from probity.interfaces.cli.main import main; "
        "sys.exit(main(sys.argv[1:]))", "gallery", "migrate", "custody", "--model", SFACE,
        "--home", str(home), "--json",
    ]  # fmt: skip
    env = {**os.environ, "PROBITY_TEST_CRASH_AFTER": "2"}
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr  # SIGKILL: no clean-up ran
    with sqlite3.connect(home / "probity.db") as db:
        (status,) = db.execute("SELECT status FROM model_migrations").fetchone()
        (items,) = db.execute("SELECT count(*) FROM model_migration_items").fetchone()
        (gallery_model,) = db.execute("SELECT model_name FROM galleries").fetchone()
    assert (status, items, gallery_model) == ("running", 2, "dlib-resnet-v1")
    # Searches still run on dlib meanwhile.
    _ok(
        "case", "open", "MIG-2", "--home", str(home), "--offence", "robbery",
        "--justification", "suspect seen on the still from camera 4",
        "--authorisation", "WARRANT-2",
    )  # fmt: skip
    out = _ok("search", str(DATA / "obama2.jpg"), "--case", "MIG-2", "--home", str(home),
              "--json")  # fmt: skip
    assert json.loads(out)["model"] == DLIB
    env.pop("PROBITY_TEST_CRASH_AFTER")
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["status"] == "swapped" and report["embedded"] == 3
    with sqlite3.connect(home / "probity.db") as db:
        (templates,) = db.execute("SELECT count(*) FROM templates").fetchone()
        (enrolments,) = db.execute("SELECT count(*) FROM enrolments").fetchone()
        per_enrolment = db.execute(
            "SELECT max(n) FROM (SELECT count(*) n FROM model_migration_items "
            "GROUP BY enrolment_id)"
        ).fetchone()[0]
        models = {k for (k,) in db.execute("SELECT model_key FROM templates")}
        (migrations,) = db.execute("SELECT count(*) FROM model_migrations").fetchone()
    assert templates == enrolments == 3 and per_enrolment == 1 and migrations == 1
    assert models == {report["to_model"]}
    status = json.loads(_ok("index", "status", "--home", str(home), "--json"))
    assert [(s["templates"], s["vectors"]) for s in status] == [(3, 3)]
    log = json.loads(
        _ok("audit", "log", "--action", "gallery.migrate_start", "--home", str(home), "--json")
    )
    assert len(log) == 1  # the rerun continued the migration; it did not start another
    search = json.loads(
        _ok("search", str(DATA / "obama2.jpg"), "--case", "MIG-2", "--home", str(home), "--json")
    )
    assert search["model"] == report["to_model"]
    assert search["faces"][0]["candidates"][0]["subject"] == "OBAMA"

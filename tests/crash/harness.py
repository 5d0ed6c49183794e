"""The crash harness: run a real ``probity`` command as a subprocess under a named crash point
(``PROBITY_CRASH_AT``, probity/faults.py), check it died by SIGKILL, restart, and check the
home: what must hold after any crash (``assert_home_consistent``).

The invariants, each read from what is on disk, never from what the dead process said:

- the enrolments are exactly the manifest rows expected, with no duplicate (same subject,
  same image sha256) and no subject without an enrolment;
- every enrolment has its template, of the gallery's model; a template no enrolment uses
  belongs to a migration that has not swapped yet;
- every gallery's index holds as many vectors as the gallery has templates, with no change
  of the template log left to apply (``probity index status --json``);
- no erasure work is left in the journal (``erasure_work``), no orphan blob (every file under
  ``blobs/`` is named by a row), no stale staging file, no key file ``keys/kek-<epoch>.key``
  of an epoch below the database's ``keyring_state.epoch``;
- ``probity audit verify`` (chain and witness) and ``probity doctor --check`` exit 0;
- for each erased subject: none of its template bytes, sealed (as in ``templates``) or plain
  (float32 as the engine gave it, and unit-normalised as the index stores it), is in any
  file of the home, and index files copied before the erasure do not open with the current
  keys (while they did open with the keys of their time: the check can fail).

The raw checks run first, before anything in this process builds the services (which would
finish pending erasure work itself and hide whether the restart did).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from probity.config import Settings
from probity.errors import IntegrityError
from probity.faults import CRASH_ENV
from probity.index.factory import BACKENDS, open_index
from probity.index.vectors import normalise
from probity.interfaces.cli.main import main
from probity.services.container import build_services
from probity.storage.vault import Vault
from tests.cli.conftest import COLLECTED_AT, DATA

GALLERY = "custody"
ERASED = "OBAMA"  # three enrolments: a crash between two blob deletions has blobs on both sides
PHOTOS: tuple[tuple[str, str], ...] = (
    ("obama.jpg", "OBAMA"),
    ("biden.jpg", "BIDEN"),
    ("obama2.jpg", "OBAMA"),
    ("astronaut.png", "COLLINS"),
    ("obama3.jpg", "OBAMA"),
)
"""The manifest, in order (committed photos of tests/data, so CI has them)."""

Row = tuple[str, str]  # (subject reference, image sha256)


def rows(photos: Sequence[tuple[str, str]] = PHOTOS) -> set[Row]:
    return {(subject, hashlib.sha256((DATA / p).read_bytes()).hexdigest()) for p, subject in photos}


def rows_but(reference: str) -> set[Row]:
    return {r for r in rows() if r[0] != reference}


def write_manifest(path: Path, photos: Sequence[tuple[str, str]] = PHOTOS) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["path", "subject", "source", "lawful_basis", "collected_at", "jurisdiction",
             "collected_by"]
        )  # fmt: skip
        for name, subject in photos:
            writer.writerow(
                [str(DATA / name), subject, f"custody-suite/{name}", "law_enforcement",
                 COLLECTED_AT, "GB", "crash-suite"]
            )  # fmt: skip
    return path


# -- running commands --------------------------------------------------------------------------


def environment(home: Path, crash: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env["PROBITY_HOME"] = str(home)
    env["PROBITY_ENGINE__WORKERS"] = "1"  # analysis in the process that is killed
    if crash is not None:
        env[CRASH_ENV] = crash
    return env


PROBITY = [sys.executable, "-m", "probity.interfaces.cli.main"]


def probity(
    home: Path, *args: str, crash: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``probity ARGS`` as a process of its own on ``home``."""
    return subprocess.run(
        [*PROBITY, *args],
        env=environment(home, crash),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_crashing(home: Path, args: Sequence[str], point: str) -> subprocess.CompletedProcess[str]:
    """Run ``probity ARGS`` with ``PROBITY_CRASH_AT=point``; it must die by SIGKILL there."""
    result = probity(home, *args, crash=point)
    assert result.returncode == -signal.SIGKILL, (
        f"probity {' '.join(args)} under {point} exited {result.returncode} instead of dying "
        f"by SIGKILL (the point was not reached)\nstdout: {result.stdout}\nstderr: "
        f"{result.stderr}"
    )
    return result


def restart(home: Path, how: str) -> subprocess.CompletedProcess[str]:
    """Start again after the crash. ``start``: an ordinary command that only reads (every
    start finishes what an erasure left); ``doctor``: ``probity doctor``, which repairs."""
    args = ["index", "status", "--json"] if how == "start" else ["doctor"]
    result = probity(home, *args)
    assert result.returncode == 0, (
        f"restart (probity {' '.join(args)}) exited {result.returncode}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return result


def cli(home: Path, *args: str) -> tuple[int, str, str]:
    """``probity ARGS --home HOME`` in this process (a fresh set of services each call)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([*args, "--home", str(home)])
    return code, out.getvalue(), err.getvalue()


def ok(home: Path, *args: str) -> str:
    code, out, err = cli(home, *args)
    assert code == 0, (args, code, out, err)
    return out


def copy_home(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


# -- what an erased subject leaves ----------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    """What one subject had on disk before its erasure, to look for afterwards."""

    reference: str
    subject_id: str
    sealed: tuple[bytes, ...]  # templates.sealed_vector, as stored
    plain: tuple[bytes, ...]  # float32 as the engine gave it, and unit-normalised
    blobs: tuple[str, ...]
    index_copy: Path  # index/ as it was before the erasure


def capture(home: Path, reference: str, folder: Path) -> Erased:
    """Before the erasure: the subject's sealed and plain template bytes and image blobs,
    and a copy of ``index/`` (checked to open with the keys of this moment)."""
    with sqlite3.connect(home / "probity.db") as db:
        (subject_id,) = db.execute(
            "SELECT id FROM subjects WHERE reference = ?", (reference,)
        ).fetchone()
        sealed = [
            bytes(s)
            for (s,) in db.execute(
                "SELECT sealed_vector FROM templates WHERE subject_id = ?", (subject_id,)
            )
        ]
        blobs = [
            b
            for (b,) in db.execute(
                "SELECT image_blob FROM enrolments WHERE subject_id = ?", (subject_id,)
            )
        ]
    assert sealed and blobs, f"{reference} has nothing to erase"
    s = build_services(Settings(home=home))
    try:
        with s.db.read() as session:
            key = s.enrolment.vault.subject_key(session, subject_id)
        plain: list[bytes] = []
        for blob in sealed:
            vector = np.asarray(Vault.open_vector(key, subject_id, blob), dtype=np.float32)
            plain.append(vector.astype("<f4").tobytes())
            plain.append(normalise(vector[None, :], vector.shape[0]).astype("<f4").tobytes())
        files = index_files(s.settings.index_dir, s.settings.index_backend)
        assert files, "no index file to copy"
        for stem in files:  # the copy opens with the keys of its time: the later check can fail
            index = open_index(s.settings.index_backend, stem, None, s.indexes.seal)
            assert len(index) > 0
    finally:
        s.close()
    # The scan can find what it looks for: the sealed templates are on disk now.
    everything = [p.read_bytes() for p in home.rglob("*") if p.is_file()]
    for blob in sealed:
        assert any(blob in data for data in everything), "sealed template not found before"
    copy = folder / f"index-before-{reference}"
    shutil.copytree(home / "index", copy)
    return Erased(reference, subject_id, tuple(sealed), tuple(plain), tuple(blobs), copy)


def index_files(directory: Path, backend: str) -> list[Path]:
    """Path stems (without the backend's suffix) of the index files in ``directory``."""
    suffix = BACKENDS[backend]
    return sorted(p.with_name(p.name[: -len(suffix)]) for p in directory.glob(f"*{suffix}"))


# -- the invariants ----------------------------------------------------------------------------


def _columns(db: sqlite3.Connection) -> dict[str, list[str]]:
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: [c[1] for c in db.execute(f"PRAGMA table_info('{t}')")] for t in tables}


def _referenced_blobs(db: sqlite3.Connection) -> set[str]:
    """Every blob id a row names: each text column with 'blob' in its name (the journal's
    list of blobs still to delete and the receipts' counts aside)."""
    names: set[str] = set()
    for table, columns in _columns(db).items():
        if table in {"erasure_work", "erasure_receipts"}:
            continue
        for column in columns:
            if "blob" in column:
                names |= {
                    str(v)
                    for (v,) in db.execute(f"SELECT {column} FROM {table}")
                    if isinstance(v, str) and v
                }
    return names


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def assert_home_consistent(
    home: Path, *, expected: set[Row], erased: Sequence[Erased] = ()
) -> None:
    """Every invariant of the module docstring; a failure names the invariant."""
    problems: list[str] = []
    with sqlite3.connect(home / "probity.db") as db:
        columns = _columns(db)
        if "erasure_work" in columns:
            (pending,) = db.execute("SELECT count(*) FROM erasure_work").fetchone()
            if pending:
                problems.append(f"erasure work left in the journal: {pending} row(s)")
        found = db.execute(
            "SELECT s.reference, e.image_sha256 FROM enrolments e "
            "JOIN subjects s ON s.id = e.subject_id"
        ).fetchall()
        if set(found) != expected:
            problems.append(
                f"enrolments differ from the manifest rows expected: missing "
                f"{sorted(expected - set(found))}, unexpected {sorted(set(found) - expected)}"
            )
        if len(found) != len(set(found)):
            problems.append(f"duplicate enrolments: {sorted(found)}")
        dupes = db.execute(
            "SELECT gallery_id, reference, count(*) FROM subjects GROUP BY 1, 2 HAVING count(*) > 1"
        ).fetchall()
        if dupes:
            problems.append(f"duplicate subjects: {dupes}")
        empty = db.execute(
            "SELECT reference FROM subjects s WHERE NOT EXISTS "
            "(SELECT 1 FROM enrolments e WHERE e.subject_id = s.id)"
        ).fetchall()
        if empty:
            problems.append(f"subjects without an enrolment: {empty}")
        keyless = db.execute(
            "SELECT reference FROM subjects s WHERE NOT EXISTS "
            "(SELECT 1 FROM subject_keys k WHERE k.subject_id = s.id)"
        ).fetchall()
        if keyless:
            problems.append(f"subjects without a data key: {keyless}")
        stray_keys = db.execute(
            "SELECT count(*) FROM subject_keys k WHERE NOT EXISTS "
            "(SELECT 1 FROM subjects s WHERE s.id = k.subject_id)"
        ).fetchone()[0]
        if stray_keys:
            problems.append(f"{stray_keys} data key(s) of no subject")
        wrong = db.execute(
            "SELECT e.id, t.model_key, g.model_name FROM enrolments e "
            "JOIN galleries g ON g.id = e.gallery_id "
            "LEFT JOIN templates t ON t.id = e.template_id "
            "WHERE t.id IS NULL OR t.model_key != g.model_name || '@' || g.model_version"
        ).fetchall()
        if wrong:
            problems.append(f"enrolments without a template of the gallery's model: {wrong}")
        unused = db.execute(
            "SELECT t.id, t.model_key FROM templates t WHERE NOT EXISTS "
            "(SELECT 1 FROM enrolments e WHERE e.template_id = t.id) AND NOT EXISTS "
            "(SELECT 1 FROM model_migration_items i JOIN model_migrations m "
            " ON m.id = i.migration_id WHERE i.template_id = t.id AND m.status != 'swapped')"
        ).fetchall()
        if unused:
            problems.append(f"templates no enrolment uses (and no migration under way): {unused}")
        blobs = _referenced_blobs(db)
        (epoch,) = db.execute("SELECT epoch FROM keyring_state WHERE id = 1").fetchone()
    orphans = [str(p.relative_to(home)) for p in _files(home / "blobs") if p.name not in blobs]
    if orphans:
        problems.append(f"orphan blob file(s): {orphans}")
    staged = [str(p.relative_to(home)) for p in _files(home / "staging") if p.suffix != ".lock"]
    if staged:
        problems.append(f"staging file(s) left: {staged}")
    key_epochs = {
        int(m.group(1)): p.name
        for p in _files(home / "keys")
        if (m := re.fullmatch(r"kek-(\d+)\.key", p.name))
    }
    retired = sorted(name for e, name in key_epochs.items() if e < epoch)
    if retired:
        problems.append(f"retired key file(s) below epoch {epoch}: {retired}")
    if epoch not in key_epochs:
        problems.append(f"no key file of the current epoch {epoch}: {sorted(key_epochs)}")
    for subject in erased:
        problems += _scan(home, subject)
    assert not problems, "home inconsistent after the crash:\n- " + "\n- ".join(problems)

    # Through the services (these finish pending work themselves, hence last).
    for subject in erased:
        problems += _old_index_opens(home, subject)
    status = json.loads(ok(home, "index", "status", "--json"))
    for g in status:
        if not (g["templates"] == g["vectors"] and g["in_step"] and g["changes_behind"] == 0):
            problems.append(f"index not in step with the templates: {g}")
    code, out, err = cli(home, "audit", "verify", "--json")
    if code != 0:
        problems.append(f"audit verify exited {code}: {out} {err}")
    code, out, err = cli(home, "doctor", "--check")
    if code != 0:
        problems.append(f"doctor --check exited {code}: {out} {err}")
    assert not problems, "home inconsistent after the crash:\n- " + "\n- ".join(problems)


def _scan(home: Path, subject: Erased) -> list[str]:
    """Every file of the home (database, its WAL, index, blobs, keys, staging, witness...)
    against the subject's template bytes, sealed and plain."""
    problems = []
    for path in _files(home):
        data = path.read_bytes()
        for kind, needles in (("sealed", subject.sealed), ("plain", subject.plain)):
            hits = sum(1 for needle in needles if needle in data)
            if hits:
                problems.append(
                    f"{path.relative_to(home)} holds {hits} {kind} template byte string(s) of "
                    f"erased subject {subject.reference}"
                )
    for blob in subject.blobs:
        if any(p.name == blob for p in _files(home / "blobs")):
            problems.append(f"the image blob {blob} of erased {subject.reference} is still there")
    return problems


def _old_index_opens(home: Path, subject: Erased) -> list[str]:
    """A copy of index/ from before the erasure must not open with the current keys."""
    problems = []
    s = build_services(Settings(home=home))
    try:
        for stem in index_files(subject.index_copy, s.settings.index_backend):
            try:
                index = open_index(s.settings.index_backend, stem, None, s.indexes.seal)
            except IntegrityError:
                continue  # IndexFileUnreadable is one
            problems.append(
                f"the pre-erasure copy {stem.name} opens with the current keys "
                f"({len(index)} vectors)"
            )
    finally:
        s.close()
    return problems


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerLog:
    """The server's stdout and stderr, copied line by line to the log file by a thread, so a
    test can wait for a line (an event) instead of polling with sleeps."""

    def __init__(self, process: subprocess.Popen[bytes], path: Path) -> None:
        self._lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._copy, args=(process, path), daemon=True)
        self._thread.start()

    def _copy(self, process: subprocess.Popen[bytes], path: Path) -> None:
        assert process.stdout is not None
        with path.open("ab") as handle:
            for raw in process.stdout:
                handle.write(raw)
                handle.flush()
                with self._changed:
                    self._lines.append(raw.decode(errors="replace"))
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, needle: str, timeout: float) -> bool:
        """True once a line containing ``needle`` was written; False if the process closed
        its output first or ``timeout`` seconds passed (a bound for a hung server, not a
        pause: the wait ends as soon as the line arrives)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._ended or any(needle in line for line in self._lines), timeout
            ) and any(needle in line for line in self._lines)

    def close(self) -> None:
        self._thread.join(timeout=30)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    output: ServerLog


@contextlib.contextmanager
def serving(home: Path, log: Path, crash: str | None = None) -> Iterator[Server]:
    """``probity serve`` on a free loopback port, once uvicorn says it started (its log line,
    read from the pipe: no polling) and /health answers; stopped on exit."""
    port = free_port()
    process = subprocess.Popen(
        [*PROBITY, "serve", "--port", str(port)],
        env=environment(home, crash),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process, log, ServerLog(process, log))
    try:
        if not server.output.wait_for("Application startup complete", timeout=90):
            pytest.fail(f"the server did not start:\n{log.read_text(errors='replace')}")
        if httpx.get(f"{server.url}/health", timeout=10).status_code != 200:
            pytest.fail(f"the server is not healthy:\n{log.read_text(errors='replace')}")
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        server.output.close()

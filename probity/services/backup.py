"""``probity backup`` and ``probity restore``: a home's data and its keys, kept apart.

A **data backup** holds a consistent copy of the SQLite database (SQLite's online backup
API, so a running server need not stop) and the encrypted image blobs. It leaves out the
vector index, which is derived data (sealed under a key of the current key-encryption key,
so an old copy would not open anyway) and is rebuilt from the template log at restore, and
the staging folder. A **key backup** holds the master key file
(unless the key comes from ``PROBITY_MASTER_KEY``) and the key-encryption keys (``keys/``).
Each folder has a ``MANIFEST.json`` naming what it is, and the data's file digests. Both
are audited: ``system.backup`` in the home (before the copy, so the backup holds it) and
``system.restore`` in the restored home. The data backup also holds a copy of the audit
witness (``audit-witness.jsonl``, taken *before* the database snapshot so that it is never
ahead of it: a witness behind the database is expected, one ahead would read as truncation);
restore puts it back, or starts an empty one for a backup made before the witness existed.
A restore onto the same deployment after events were lost leaves the off-host witnesses
ahead of the restored database: that is a real loss, and verify against those copies says
so (docs/audit.md).

Why apart: every erasure rotates the key-encryption key and destroys the old one (see
storage/keyring.py). A data backup taken before an erasure is wrapped under a key that only
older key backups hold; keeping only the latest key backup makes every older data backup
unreadable, erased subjects included. ``restore`` therefore refuses data whose keys are not
in the key backup it is given, and says why, instead of restoring data it cannot open (or,
worse, an index that would still return the erased). Restoring a data backup together with
the key backup of its day brings back everything, as a full copy would: keep such pairs no
longer than policy allows.

PostgreSQL deployments back up their database with ``pg_dump``; these commands refuse a
non-SQLite database rather than copy half a home.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probity import __version__
from probity.config import Settings
from probity.domain.audit import AuditAction, AuditRecord
from probity.errors import AlreadyExists, IntegrityError, InvalidInput, NotInitialised
from probity.services.access import Who, name_of, organisation_of
from probity.services.audit import AuditService
from probity.services.clock import Clock, system_clock
from probity.storage.db import Database
from probity.storage.keyring import CheckpointSigner, Keyring, load_master_key
from probity.storage.vault import unwrap_in_sqlite_file
from probity.storage.witness import Witness, WitnessFile

DATA_KIND = "probity-data-backup"
KEYS_KIND = "probity-key-backup"
FORMAT = 1
MANIFEST = "MANIFEST.json"
DATABASE = "probity.db"
WITNESS = "audit-witness.jsonl"
ATTEMPTS = 3
"""Tries at a backup whose data and keys agree: an erasure running between the database
snapshot and the key copy retires the snapshot's key, and the pair is taken again."""


@dataclass(frozen=True, slots=True)
class BackupReport:
    data: Path
    keys: Path
    key_epoch: int
    schema_revision: str
    files: int
    bytes: int
    master_key_included: bool


@dataclass(frozen=True, slots=True)
class RestoreCheck:
    """What a restore found: the data's key epoch and schema, and the master key to use."""

    key_epoch: int
    schema_revision: str
    master_key: bytes


def _sqlite_path(settings: Settings) -> Path:
    url = settings.resolved_database_url
    if not url.startswith("sqlite:///"):
        raise InvalidInput(
            "probity backup and restore copy SQLite homes; with PostgreSQL, back up the "
            "database with pg_dump and copy blobs/ and the keys (master key, keys/) apart"
        )
    return Path(url.removeprefix("sqlite:///"))


def _empty_folder(path: Path, what: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise AlreadyExists(f"the {what} folder {path} is not empty: give a new folder")


def _separate(a: Path, b: Path, what: str) -> None:
    a, b = a.resolve(), b.resolve()
    if a == b or a in b.parents or b in a.parents:
        raise InvalidInput(
            f"{what}: keep data and keys in separate folders, neither inside the other"
        )


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _copy_private(source: Path, target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _snapshot_facts(database: Path) -> tuple[int, str]:
    """(key epoch, Alembic revision) recorded in a database file."""
    with closing(sqlite3.connect(database)) as db:
        try:
            (epoch,) = db.execute("SELECT epoch FROM keyring_state WHERE id = 1").fetchone()
            (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        except (sqlite3.DatabaseError, TypeError) as exc:
            raise IntegrityError(f"{database} is not a Probity database") from exc
    return int(epoch), str(revision)


def _write_manifest(folder: Path, body: dict[str, Any]) -> None:
    path = folder / MANIFEST
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    os.chmod(path, 0o600)


def _read_manifest(folder: Path, kind: str, what: str) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        body: dict[str, Any] | Any = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"{folder} is not a Probity {what} backup (no {MANIFEST})") from None
    except json.JSONDecodeError as exc:
        raise IntegrityError(f"{path} is not valid JSON") from exc
    found = body.get("kind") if isinstance(body, dict) else None
    if found != kind or not isinstance(body, dict):
        named = {DATA_KIND: "a data backup", KEYS_KIND: "a key backup"}.get(str(found), "unknown")
        raise InvalidInput(f"{folder} is {named}, not a {what} backup")
    if body.get("format") != FORMAT:
        raise InvalidInput(f"{folder}: backup format {body.get('format')} is not supported")
    return body


def _kek_files(key_dir: Path) -> list[Path]:
    return sorted(key_dir.glob("kek-*.key")) if key_dir.is_dir() else []


def _record(
    settings: Settings,
    master: bytes,
    *,
    actor: Who,
    action: AuditAction,
    details: dict[str, Any],
    clock: Clock,
) -> None:
    """Append a backup or restore event to the home's audit chain (works on a schema that
    is not yet migrated: the audit tables are among the first)."""
    db = Database(settings.resolved_database_url)
    try:
        AuditService(
            db=db,
            clock=clock,
            organisation=settings.organisation,
            signer=CheckpointSigner(master),
            witness=Witness.from_settings(
                settings.witness_path,
                settings.audit.witness_sinks,
                timeout_s=settings.audit.witness_timeout_s,
            ),
        ).record_alone(
            AuditRecord(
                actor=name_of(actor),
                organisation=organisation_of(actor),
                action=action,
                details=details,
            )
        )
    finally:
        db.dispose()


def backup(
    settings: Settings,
    *,
    data: Path,
    keys: Path,
    actor: Who,
    clock: Clock = system_clock,
) -> BackupReport:
    """Copy the home's data to ``data`` and its keys to ``keys`` (two new or empty folders,
    apart). Safe while the server runs: the database copy is one consistent snapshot. An
    out-of-date schema is backed up as it is (back up before ``probity migrate``); restore
    migrates it."""
    database = _sqlite_path(settings)
    if not database.exists():
        raise NotInitialised(f"no database at {database} (run 'probity init')")
    _separate(data, keys, "backup")
    _separate(data, settings.home, "backup data")
    _separate(keys, settings.home, "backup keys")
    _empty_folder(data, "data backup")
    _empty_folder(keys, "key backup")
    # Recorded before the copy, so that the backup holds the event of its own making.
    master = load_master_key(env_value=settings.master_key, key_file=settings.master_key_path)
    details = {"data": str(data.resolve()), "keys": str(keys.resolve())}
    _record(settings, master, actor=actor, action=AuditAction.BACKUP, details=details, clock=clock)
    for _ in range(ATTEMPTS):
        for folder in (data, keys):
            if folder.exists():
                shutil.rmtree(folder)
            _private_dir(folder)
        if settings.witness_path.is_file():  # first: the copy must not be ahead of the database
            _copy_private(settings.witness_path, data / WITNESS)
        epoch, revision = _copy_data(database, settings.blob_dir, data)
        epochs, included = _copy_keys(settings, keys)
        if epoch in epochs:
            break
    else:
        raise IntegrityError(
            "erasures kept retiring the database's key while it was copied; run the backup again"
        )
    files = {str(p.relative_to(data)): _digest(p) for p in sorted(data.rglob("*")) if p.is_file()}
    size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    _write_manifest(
        data,
        {
            "kind": DATA_KIND,
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "probity_version": __version__,
            "schema_revision": revision,
            "key_epoch": epoch,
            "files": files,
        },
    )
    _write_manifest(
        keys,
        {
            "kind": KEYS_KIND,
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "probity_version": __version__,
            "epochs": epochs,
            "master_key_included": included,
        },
    )
    return BackupReport(data, keys, epoch, revision, len(files), size, included)


def _copy_data(database: Path, blob_dir: Path, data: Path) -> tuple[int, str]:
    target = data / DATABASE
    with (
        closing(sqlite3.connect(database)) as source,
        closing(sqlite3.connect(target)) as copy,
    ):
        source.backup(copy)
    os.chmod(target, 0o600)
    epoch, revision = _snapshot_facts(target)
    if blob_dir.is_dir():
        for path in sorted(blob_dir.rglob("*")):
            if path.is_file() and not path.name.endswith(".tmp"):
                _copy_private(path, data / "blobs" / path.relative_to(blob_dir))
    return epoch, revision


def _copy_keys(settings: Settings, keys: Path) -> tuple[list[int], bool]:
    master = settings.master_key_path
    included = not settings.master_key and master.exists()
    if included:
        _copy_private(master, keys / master.name)
    epochs = []
    for path in _kek_files(settings.key_dir):
        _copy_private(path, keys / "keys" / path.name)
        epochs.append(int(path.stem.split("-", 1)[1]))
    return sorted(epochs), included


def check_restorable(settings: Settings, *, data: Path, keys: Path) -> RestoreCheck:
    """Everything ``restore`` checks before it writes anything: both manifests, the data's
    digests, and that the keys open the data (its key epoch's KEK unseals under the master
    key, and so does a stored data key)."""
    data_manifest = _read_manifest(data, DATA_KIND, "data")
    keys_manifest = _read_manifest(keys, KEYS_KIND, "key")
    files: dict[str, str] = data_manifest.get("files", {})
    for name, digest in files.items():
        path = data / name
        if not path.is_file() or _digest(path) != digest:
            raise IntegrityError(f"the data backup's {name} is missing or altered")
    epoch = int(data_manifest["key_epoch"])
    held = [int(e) for e in keys_manifest.get("epochs", [])]
    if keys_manifest.get("master_key_included"):
        master = load_master_key(env_value=None, key_file=keys / "master.key")
    elif settings.master_key:
        master = load_master_key(env_value=settings.master_key, key_file=keys / "master.key")
    else:
        raise InvalidInput(
            "the key backup holds no master key (it came from PROBITY_MASTER_KEY): set "
            "PROBITY_MASTER_KEY to restore"
        )
    if epoch not in held:
        newer = held and min(held) > epoch
        raise IntegrityError(
            f"the data backup is wrapped under key epoch {epoch}, and this key backup holds "
            f"epoch{'s' if len(held) != 1 else ''} {', '.join(map(str, held)) or 'none'}: "
            + (
                "an erasure since the data backup destroyed its keys, so it cannot be "
                "opened (as erasure intends). Restore a data backup taken after the "
                "latest erasure."
                if newer
                else "the key backup is older than the data. Use the key backup taken with "
                "or after it."
            )
        )
    ring = Keyring(master, keys / "keys")
    try:
        ring.kek(epoch)
    except IntegrityError as exc:
        raise IntegrityError(
            "the master key does not open this key backup's keys (a different deployment?)"
        ) from exc
    with closing(sqlite3.connect(data / DATABASE)) as db:
        row = db.execute("SELECT subject_id, wrapped_key FROM subject_keys LIMIT 1").fetchone()
    if row is not None:
        try:
            unwrap_in_sqlite_file(
                ring, data / DATABASE, Keyring.subject_aad(str(row[0])), bytes(row[1])
            )
        except IntegrityError as exc:
            raise IntegrityError(
                "the keys do not open the data backup's stored keys (from another home?)"
            ) from exc
    return RestoreCheck(epoch, str(data_manifest["schema_revision"]), master)


def restore(
    settings: Settings,
    *,
    data: Path,
    keys: Path,
    actor: Who,
    clock: Clock = system_clock,
) -> RestoreCheck:
    """Recreate a home at ``settings.home`` (a new or empty folder) from a data backup and
    a key backup, then bring its schema up to date. The caller rebuilds the indexes (the
    backup holds none) and may verify the audit chain."""
    database = _sqlite_path(settings)
    _empty_folder(settings.home, "home")
    check = check_restorable(settings, data=data, keys=keys)
    _private_dir(settings.home)
    _copy_private(data / DATABASE, database)
    if (data / WITNESS).is_file():
        _copy_private(data / WITNESS, settings.witness_path)
    else:  # a backup from before the witness: start one
        WitnessFile(settings.witness_path).create()
    blobs = data / "blobs"
    for path in sorted(blobs.rglob("*")) if blobs.is_dir() else []:
        if path.is_file():
            _copy_private(path, settings.blob_dir / path.relative_to(blobs))
    if (keys / "master.key").exists() and not settings.master_key:
        _copy_private(keys / "master.key", settings.master_key_path)
    _private_dir(settings.key_dir)
    for path in _kek_files(keys / "keys"):
        _copy_private(path, settings.key_dir / path.name)
    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
    finally:
        db.dispose()
    _record(
        settings,
        check.master_key,
        actor=actor,
        action=AuditAction.RESTORE,
        details={
            "data": str(data.resolve()),
            "keys": str(keys.resolve()),
            "key_epoch": check.key_epoch,
            "schema_revision": check.schema_revision,
        },
        clock=clock,
    )
    return check

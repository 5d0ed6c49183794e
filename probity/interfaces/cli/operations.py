"""``probity migrate``, ``probity backup`` and ``probity restore``: looking after a home."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from probity.errors import NotInitialised
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    out,
    print_json,
    services,
    settings_for,
)
from probity.services import backup as backups
from probity.services.container import build_witness
from probity.storage.db import Database

DataOpt = Annotated[Path, typer.Option("--data", help="Folder for the data (database, blobs).")]
KeysOpt = Annotated[
    Path, typer.Option("--keys", help="Folder for the keys (master key, keys/), apart from --data.")
]


@app.command("migrate")
def migrate(
    home: HomeOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only list pending migrations (exit 1 if any).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Apply the database migrations this version of Probity needs (Alembic). Run it after
    every upgrade, with the server stopped; /health/ready names what is pending. A home made
    before the audit witness gets an empty one here (as ``probity init`` does), and says so:
    the witness covers checkpoints from now on (docs/audit.md)."""
    settings = settings_for(home)
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise NotInitialised(f"no database at {url} (run 'probity init' to create one)")
    db = Database(url)
    try:
        pending = db.pending_migrations()
        if not check and pending:
            db.migrate()
        revision = db.current_revision()
    finally:
        db.dispose()
    started = not check and build_witness(settings).home.create()
    if json_out:
        print_json(
            {
                "revision": revision,
                "pending" if check else "applied": [
                    {"revision": r, "description": d} for r, d in pending
                ],
                "witness_started": started,
            }
        )
    elif not pending:
        out.print(f"The schema is current (revision {revision}).")
    else:
        verb = "Pending" if check else "Applied"
        for rev, what in pending:
            out.print(f"{verb}: {rev} {what}", markup=False)
        out.print(f"The schema is at revision {revision}.")
    if started and not json_out:
        out.print(f"Started the audit witness {settings.witness_path} (there was none).")
    if check and pending:
        raise typer.Exit(1)


@app.command("backup")
def backup(
    data: DataOpt,
    keys: KeysOpt,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Back up the home's data and its keys to two separate new folders. The data holds the
    database and the encrypted images, not the index (rebuilt at restore); the keys hold the
    master key and the key-encryption keys. Keep them on different media and keep only the
    latest key backup: older data backups then die with each erasure."""
    report = backups.backup(settings_for(home), data=data, keys=keys, actor=actor_name(actor))
    if json_out:
        print_json(
            {
                "data": str(report.data),
                "keys": str(report.keys),
                "key_epoch": report.key_epoch,
                "schema_revision": report.schema_revision,
                "files": report.files,
                "bytes": report.bytes,
                "master_key_included": report.master_key_included,
            }
        )
        return
    out.print(
        f"Data: {report.files} files, {report.bytes:,} bytes in {report.data} "
        f"(schema {report.schema_revision}, key epoch {report.key_epoch})."
    )
    out.print(
        f"Keys: {report.keys}"
        + (
            ""
            if report.master_key_included
            else " (no master key: it comes from PROBITY_MASTER_KEY; keep it yourself)"
        )
        + ". Store them apart from the data, and only the latest copy."
    )


@app.command("restore")
def restore(
    data: DataOpt,
    keys: KeysOpt,
    home: Annotated[
        Path, typer.Option("--home", help="The new home folder to create (must be new or empty).")
    ],
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Recreate a home from a data backup and a key backup: checks the backup's digests and
    that the keys open it (a data backup from before an erasure no longer does, and is
    refused), migrates the schema, rebuilds the indexes from the sealed templates and
    verifies the audit chain."""
    who = actor_name(actor)
    settings = settings_for(home)
    check = backups.restore(settings, data=data, keys=keys, actor=who)
    with services(settings.home) as s:
        statuses = s.maintenance.rebuild(actor=who)
        verification = s.audit.verify(actor=who, full=True)
    vectors = sum(st.templates for st in statuses)
    if json_out:
        print_json(
            {
                "home": str(settings.home),
                "key_epoch": check.key_epoch,
                "schema_revision": check.schema_revision,
                "galleries": len(statuses),
                "vectors": vectors,
                "audit_ok": verification.ok,
                "events_checked": verification.events_checked,
            }
        )
    else:
        out.print(
            f"Restored {settings.home}: {len(statuses)} galleries, {vectors} templates "
            f"indexed; audit chain {'intact' if verification.ok else 'BROKEN'} "
            f"({verification.events_checked} events)."
        )
    if not verification.ok:
        raise typer.Exit(9)

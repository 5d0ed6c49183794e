"""Options and helpers every command shares: ``--home``, ``--actor``, ``--json``, and how
services are built and errors shown."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from probity.config import Settings
from probity.engine.images import read_image_bytes
from probity.services.container import Services, build_services

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="PROBITY_HOME",
        help="Probity's home folder (database, key file, blobs, index). Default ~/.probity.",
        show_default=False,
    ),
]
ActorOpt = Annotated[
    str | None,
    typer.Option("--actor", help="Who is acting, for the audit log (default: the OS user name)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def settings_for(home: Path | None) -> Settings:
    return Settings(home=home.expanduser().resolve()) if home else Settings()


def read_input_file(path: Path, home: Path | None) -> bytes:
    """An image file's bytes, refused before reading when over the configured upload limit."""
    return read_image_bytes(path, max_bytes=settings_for(home).limits.max_upload_bytes)


def actor_name(actor: str | None) -> str:
    if actor and actor.strip():
        return actor.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown-local-operator"


@contextmanager
def services(home: Path | None) -> Iterator[Services]:
    built = build_services(settings_for(home))
    try:
        yield built
        # Only after a command that succeeded: a retraining it started would die with the
        # process (IndexSet.finish_retraining says why that matters).
        built.indexes.finish_retraining(on_wait=_tell_retraining)
    finally:
        built.close()


def _tell_retraining(name: str, vectors: int) -> None:
    err.print(
        f"Finishing the retraining of index {name} ({vectors:,} faces) that this command "
        "started: about a minute per million faces. Ctrl-C stops it and loses nothing "
        "(the current layout stays, and the next command retrains again).",
        highlight=False,
    )


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def progress_bar(label: str, *, hidden: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr for long work (hidden with ``--json``), as an
    ``on_progress(done, total)`` callback for the services."""
    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=hidden,
    )
    with progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update

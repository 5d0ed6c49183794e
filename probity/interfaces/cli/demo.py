"""``probity demo``: a first run on the sample photos committed in tests/data.

It initialises a home folder, creates a gallery, enrols three people from a manifest with
provenance, opens a case and runs three searches: a different photo of an enrolled person,
a two-person probe made by pasting two photos side by side, and a photo with no face.
"""

from __future__ import annotations

import contextlib
import io
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from PIL import Image

import probity
from probity.errors import AlreadyExists, InvalidInput
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import ActorOpt, actor_name, out, services, settings_for
from probity.interfaces.cli.enrol import print_summary
from probity.interfaces.cli.search import print_result
from probity.services.container import initialise

GALLERY = "demo-custody"
CASE = "DEMO-2026-001"
# (file, subject reference): public-domain photos from the face_recognition and
# scikit-image packages; see tests/data/README.md.
ENROL = (("obama.jpg", "SUBJ-0001"), ("biden.jpg", "SUBJ-0002"), ("astronaut.png", "SUBJ-0003"))


def _default_photos() -> Path:
    return Path(probity.__file__).resolve().parents[1] / "tests" / "data"


@app.command()
def demo(
    home: Annotated[
        Path, typer.Option("--home", help="Home folder for the demo (created).")
    ] = Path("demo-home"),
    photos: Annotated[
        Path | None, typer.Option("--photos", help="Folder with the sample photos.")
    ] = None,
    actor: ActorOpt = None,
) -> None:
    """Initialise a home, enrol the sample photos with provenance, open a case and search."""
    folder = photos or _default_photos()
    missing = [name for name, _ in ENROL if not (folder / name).exists()]
    if missing:
        raise InvalidInput(f"sample photos not found in {folder}: pass --photos DIR")
    who = actor_name(actor)
    settings = settings_for(home)
    initialise(settings, actor=who)
    out.print(f"Home: {settings.home}")
    manifest = settings.home / "demo-manifest.csv"
    collected = (date.today() - timedelta(days=30)).isoformat()
    lines = ["path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by"]
    lines += [
        f"{(folder / name).resolve()},{ref},demo-custody-suite/{ref},law_enforcement,"
        f"{collected},GB,demo"
        for name, ref in ENROL
    ]
    manifest.write_text("\n".join(lines) + "\n")
    with services(settings.home) as s:
        with contextlib.suppress(AlreadyExists):
            s.galleries.create(
                actor=who,
                name=GALLERY,
                inclusion_policy="Demo: custody images of charged persons",
                retention_days=365 * 6,
                jurisdictions=["GB"],
            )
        out.print(f"\n[bold]1. Enrol[/bold] {len(ENROL)} photos into '{GALLERY}' from a manifest")
        print_summary(s.enrolment.enrol_manifest(actor=who, gallery=GALLERY, manifest=manifest))
        out.print(f"\n[bold]2. Open case[/bold] {CASE}")
        with contextlib.suppress(AlreadyExists):
            s.cases.open(
                actor=who,
                reference=CASE,
                offence="robbery",
                justification="Demo: identify a suspect seen on a still from the scene",
                authorisation="AUTH-DEMO-1",
                authority="Demo magistrate",
            )
        probes = [
            ("obama2.jpg: another photo of SUBJ-0001", (folder / "obama2.jpg").read_bytes()),
            ("obama3.jpg | biden.jpg (the enrolled photo) side by side", _side_by_side(folder)),
            ("coffee.png: no face", (folder / "coffee.png").read_bytes()),
        ]
        for n, (label, data) in enumerate(probes, start=3):
            out.print(f"\n[bold]{n}. Search[/bold] {label}")
            print_result(s.search.search(actor=who, case_reference=CASE, probe=data))
        verification = s.audit.verify(actor=who)
    out.print(
        f"\n[bold]6. Audit[/bold] chain {'intact' if verification.ok else 'BROKEN'}: "
        f"{verification.events_checked} events verified."
    )


def _side_by_side(folder: Path) -> bytes:
    left = Image.open(folder / "obama3.jpg").convert("RGB")
    right = Image.open(folder / "biden.jpg").convert("RGB")
    height = max(left.height, right.height)
    canvas = Image.new("RGB", (left.width + right.width, height), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()

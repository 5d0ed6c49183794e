"""``probity demo``: a first run on the sample photos committed in tests/data.

It initialises a home folder, creates a gallery, enrols three people from a manifest with
provenance, opens a case and runs three searches: a different photo of an enrolled person,
a two-person probe made by pasting two photos side by side, and a photo with no face. Then,
unless ``--no-serve``, it creates a demo organisation with one account per role (passwords
generated for this run and printed once), and serves the web pages and the API on
127.0.0.1 until interrupted. The case and its searches then belong to the demo
organisation: its investigator opened it and ran them, so they see it on signing in.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from PIL import Image
from pydantic import SecretStr

import probity
from probity.domain.accounts import Actor, OrganisationKind, Role
from probity.errors import AlreadyExists, InvalidInput
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import ActorOpt, actor_name, out, services, settings_for
from probity.interfaces.cli.enrol import print_summary
from probity.interfaces.cli.search import print_result
from probity.interfaces.cli.serve import run_server
from probity.services.container import Services, initialise

GALLERY = "demo-custody"
CASE = "DEMO-2026-001"
# (file, subject reference): public-domain photos from the face_recognition and
# scikit-image packages; see tests/data/README.md.
ENROL = (("obama.jpg", "SUBJ-0001"), ("biden.jpg", "SUBJ-0002"), ("astronaut.png", "SUBJ-0003"))
ORGANISATION = "Demo Police"
ACCOUNTS = (
    ("demo-investigator", Role.INVESTIGATOR),
    ("demo-examiner", Role.EXAMINER),
    ("demo-supervisor", Role.SUPERVISOR),
    ("demo-curator", Role.CURATOR),
    ("demo-auditor", Role.AUDITOR),
    ("demo-privacy", Role.PRIVACY_OFFICER),
    ("demo-admin", Role.ADMIN),
)
"""One demo account per role, in the demo organisation (law enforcement, so it may search)."""


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
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Then serve the web pages and API with demo accounts (default), or stop.",
        ),
    ] = True,
    host: Annotated[str, typer.Option("--host", help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Initialise a home, enrol the sample photos with provenance, open a case and search;
    then serve it with one demo account per role (unless --no-serve)."""
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
    passwords: dict[str, str] = {}
    with services(settings.home) as s:
        if serve:
            passwords = _demo_accounts(s, who)
        # The investigator opens the case and searches when there are accounts, so that the
        # case is their organisation's; without, the local operator does.
        searcher: str | Actor = _signed_in(s, who, "demo-investigator") if serve else who
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
                actor=searcher,
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
            print_result(s.search.search(actor=searcher, case_reference=CASE, probe=data))
        verification = s.audit.verify(actor=who, full=True)
    out.print(
        f"\n[bold]6. Audit[/bold] chain {'intact' if verification.ok else 'BROKEN'}: "
        f"{verification.events_checked} events verified."
    )
    if not serve:
        return
    url = f"http://{host}:{port}"
    out.print(
        f"\n[bold]7. Sign in[/bold] at {url}/login (organisation '{ORGANISATION}').\n"
        "DEMO ACCOUNTS: passwords generated for this run and shown only now; they change "
        "every time the demo starts. For trying Probity on the sample photos, never for "
        "real data."
    )
    for username, role in ACCOUNTS:
        out.print(f"  {username:<18} {role.value:<16} {passwords[username]}", markup=False)
    if settings.server.metrics_token is None:
        settings.server.metrics_token = SecretStr(secrets.token_urlsafe(24))
    out.print(
        f"Metrics (Prometheus): curl -H 'Authorization: Bearer "
        f"{settings.server.metrics_token.get_secret_value()}' {url}/metrics",
        markup=False,
    )
    out.print(
        f"Start with demo-investigator: open case {CASE} and its searches, or search the "
        "two-person probe again. Press Ctrl+C to stop the server.\n"
    )
    sys.stdout.flush()  # the accounts are on screen (or in the log) before serving
    run_server(settings, host=host, port=port)


def _demo_accounts(s: Services, who: str) -> dict[str, str]:
    """The demo organisation and its accounts (created once, approved by the demo
    supervisor), each with a new random password; returns username -> password."""
    with contextlib.suppress(AlreadyExists):
        s.accounts.create_organisation(
            actor=who, name=ORGANISATION, kind=OrganisationKind.LAW_ENFORCEMENT
        )
    trained_until = datetime.now(UTC) + timedelta(days=365)
    existing = {u.username: u for u in s.accounts.list_users(actor=who)}
    for username, role in ACCOUNTS:
        if username not in existing:
            s.accounts.create_user(
                actor=who,
                organisation=ORGANISATION,
                username=username,
                roles=[role],
                training_expires=trained_until,
            )
    existing = {u.username: u for u in s.accounts.list_users(actor=who)}
    if not existing["demo-supervisor"].approved:
        s.accounts.approve_user(actor=who, username="demo-supervisor")
    for username, _ in ACCOUNTS:
        if username != "demo-supervisor" and not existing[username].approved:
            s.accounts.approve_user(actor=who, username=username, supervisor="demo-supervisor")
    passwords = {username: secrets.token_urlsafe(12) for username, _ in ACCOUNTS}  # 16 chars
    for username, password in passwords.items():
        s.accounts.set_password(actor=who, username=username, password=password)
    return passwords


def _signed_in(s: Services, who: str, username: str) -> Actor:
    """``username`` as the services see a signed-in person: through a fresh API key (the
    demo's searches are then audited as theirs), revoked at once."""
    key = s.accounts.create_api_key(actor=who, username=username, label="demo searches")
    person = s.accounts.authenticate_key(key.secret)
    s.accounts.revoke_key(actor=who, key_id=key.key_id)
    return person


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

"""``probity init`` and ``probity gallery ...``."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

import typer
from rich.table import Table

from probity.domain.faces import QualityFloor
from probity.errors import InvalidInput
from probity.interfaces.cli.app import app, gallery_app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    out,
    print_json,
    progress_bar,
    services,
    settings_for,
)
from probity.services.container import initialise
from probity.services.migration import MigrationReport, MigrationStatus

CRASH_AFTER_ENV = "PROBITY_TEST_CRASH_AFTER"
"""Fault hook for the crash test: ``gallery migrate`` kills its own process (SIGKILL, no
clean-up) after this many enrolments have been committed. Never set it in production."""


@app.command()
def init(home: HomeOpt = None, actor: ActorOpt = None) -> None:
    """Create the home folder, its master key (0600) and the database."""
    settings = settings_for(home)
    created = initialise(settings, actor=actor_name(actor))
    state = "initialised" if created else "already initialised"
    out.print(f"Probity home {settings.home} {state}.")


@gallery_app.command("create")
def gallery_create(
    name: Annotated[str, typer.Argument(help="Gallery name.")],
    policy: Annotated[
        str, typer.Option("--policy", help="Inclusion policy: who may be in this gallery.")
    ],
    retention_days: Annotated[
        int, typer.Option("--retention-days", help="Days a record is kept after collection.")
    ],
    jurisdiction: Annotated[
        list[str] | None,
        typer.Option("--jurisdiction", help="ISO 3166 code the gallery covers (repeatable)."),
    ] = None,
    floor: Annotated[
        list[str] | None,
        typer.Option(
            "--floor",
            help="Quality floor override KEY=VALUE (repeatable), e.g. min_inter_eye_px=40. "
            f"Keys: {', '.join(QualityFloor.__dataclass_fields__)}.",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Face model (name or full key, see 'probity models'); default: the "
            "deployment's default (SFace).",
        ),
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a gallery bound to a face model (the default model unless --model)."""
    quality_floor = parse_floor(floor or [])
    with services(home) as s:
        g = s.galleries.create(
            actor=actor_name(actor),
            name=name,
            inclusion_policy=policy,
            retention_days=retention_days,
            jurisdictions=jurisdiction or [],
            quality_floor=quality_floor,
            model=model,
        )
    if json_out:
        print_json(
            {
                "id": g.id,
                "name": g.name,
                "model": g.model.key,
                "quality_floor": g.quality_floor.as_dict(),
            }
        )
    else:
        out.print(f"Gallery '{g.name}' created (model {g.model.key}).")


def parse_floor(items: list[str]) -> QualityFloor:
    """``["min_inter_eye_px=40", ...]`` on top of the default floor."""
    values: dict[str, float] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in QualityFloor.__dataclass_fields__:
            keys = ", ".join(QualityFloor.__dataclass_fields__)
            raise InvalidInput(f"--floor {item!r}: use KEY=VALUE with KEY one of {keys}")
        try:
            values[key] = float(raw)
        except ValueError:
            raise InvalidInput(f"--floor {item!r}: {raw!r} is not a number") from None
    return replace(QualityFloor(), **values)


@gallery_app.command("list")
def gallery_list(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """List galleries with their subject and enrolment counts."""
    with services(home) as s:
        rows = s.galleries.list()
    if json_out:
        print_json(
            [
                {
                    "name": g.name,
                    "inclusion_policy": g.inclusion_policy,
                    "retention_days": g.retention_days,
                    "jurisdictions": list(g.jurisdictions),
                    "model": g.model.key,
                    "subjects": n_sub,
                    "enrolments": n_enr,
                }
                for g, n_sub, n_enr in rows
            ]
        )
        return
    table = Table("name", "policy", "retention", "jurisdictions", "subjects", "enrolments")
    for g, n_sub, n_enr in rows:
        table.add_row(
            g.name,
            g.inclusion_policy,
            f"{g.retention_days} d",
            ",".join(g.jurisdictions) or "-",
            str(n_sub),
            str(n_enr),
        )
    out.print(table)


@gallery_app.command("migrate")
def gallery_migrate(
    name: Annotated[str, typer.Argument(help="Gallery name.")],
    model: Annotated[str, typer.Option("--model", help="The new face model: a name or full key.")],
    drop_refused: Annotated[
        bool,
        typer.Option(
            "--drop-refused",
            help="Erase (with receipts) the enrolments the new model refuses, then swap. "
            "Without it the swap waits while any face is refused.",
        ),
    ] = False,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Move a gallery to another face model: re-embed every enrolment from its sealed image,
    build the new index beside the old one, then swap in one transaction. Searches use the
    old model until the swap. Interrupted? Run the same command again: it continues."""
    with services(home) as s, progress_bar("re-embedding", hidden=json_out) as update:
        report = s.migrations.migrate(
            actor=actor_name(actor),
            gallery=name,
            model=model,
            drop_refused=drop_refused,
            on_progress=update,
            on_item=_crash_hook(),
        )
    if json_out:
        print_json(report.as_dict())
    else:
        print_migration(report)
    if report.status is not MigrationStatus.SWAPPED:
        raise typer.Exit(code=8)


def _crash_hook() -> Callable[[int], None] | None:
    raw = os.environ.get(CRASH_AFTER_ENV)
    if not raw:
        return None
    after = int(raw)

    def hook(items: int) -> None:
        if items >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def print_migration(report: MigrationReport) -> None:
    if report.status is MigrationStatus.SWAPPED:
        out.print(
            f"Gallery '{report.gallery}' now uses {report.to_model} (was {report.from_model}): "
            f"{report.embedded} enrolment(s) re-embedded, {report.index_vectors} vector(s) in "
            f"the new index, {len(report.erased)} enrolment(s) erased, {report.holds} "
            "suppression hold(s) kept."
        )
    else:
        out.print(
            f"Gallery '{report.gallery}' is still on {report.from_model}: {report.embedded} of "
            f"{report.enrolments} enrolment(s) re-embedded for {report.to_model}, "
            f"{len(report.refused)} refused by the new model. Nothing was swapped; run again "
            "with --drop-refused to erase the refused enrolments and swap, or re-enrol better "
            "photos of them first."
        )
    if report.refused:
        table = Table("enrolment", "subject", "why the new model refused it", title="Refused faces")
        for r in report.refused:
            table.add_row(r.enrolment_id, r.subject_reference, "; ".join(r.reasons))
        out.print(table)
    for number in report.erased:
        out.print(f"  erasure receipt {number}")

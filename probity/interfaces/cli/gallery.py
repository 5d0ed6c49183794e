"""``probity init`` and ``probity gallery ...``."""

from __future__ import annotations

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
    services,
    settings_for,
)
from probity.services.container import initialise


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
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a gallery bound to the current model version."""
    quality_floor = parse_floor(floor or [])
    with services(home) as s:
        g = s.galleries.create(
            actor=actor_name(actor),
            name=name,
            inclusion_policy=policy,
            retention_days=retention_days,
            jurisdictions=jurisdiction or [],
            quality_floor=quality_floor,
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

"""``probity doctor [--check]``: find and repair what a crash or an interrupted erasure left
in the home (see ``probity.services.doctor`` for the checks). Exit status: 0 when nothing is
wrong any more, 1 when something needs repair (``--check``) or could not be repaired."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    out,
    print_json,
    settings_for,
)
from probity.services.container import build_services
from probity.services.doctor import DEFAULT_GRACE


@app.command("doctor")
def doctor(
    check: Annotated[
        bool, typer.Option("--check", help="Only report; change nothing (exit 1 if needed).")
    ] = False,
    grace_minutes: Annotated[
        float,
        typer.Option(
            "--grace-minutes",
            min=0,
            help="Leave blob files younger than this alone (an enrolment may be in flight).",
        ),
    ] = DEFAULT_GRACE.total_seconds() / 60,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check the home and repair it: unfinished erasures, index gaps, retired and leftover
    key files, orphan blobs, stale staging. Prints one line per finding and a summary."""
    # Built without finishing pending erasure work at start, so a check sees it as it is.
    s = build_services(settings_for(home), finish_erasures=False)
    try:
        report = s.doctor.run(
            actor=actor_name(actor),
            repair=not check,
            grace=timedelta(minutes=grace_minutes),
        )
    finally:
        s.close()
    if json_out:
        print_json(report.as_dict())
    else:
        for finding in report.findings:
            out.print(finding.line(), markup=False, highlight=False)
        out.print(report.summary(), markup=False, highlight=False)
    if report.needs_repair:
        raise typer.Exit(1)

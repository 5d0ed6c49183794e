"""``probity sweep``: erase every enrolment whose retention has run out, now.

The server runs the same sweep on a schedule (``PROBITY_RETENTION__SWEEP_INTERVAL_S``);
this is for deployments without a server, for cron, or to run it at once. Each subject
touched gets an erasure receipt; see ``probity.services.retention``.
"""

from __future__ import annotations

from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    out,
    print_json,
    services,
)
from probity.interfaces.cli.jurisdiction import print_receipts


@app.command("sweep")
def sweep(home: HomeOpt = None, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Erase what retention makes due today (UTC), exactly as an erasure does: rows,
    templates, image blobs, index vectors; a subject left with nothing is erased whole."""
    with services(home) as s:
        result = s.retention.sweep(actor=actor_name(actor))
    if json_out:
        print_json(result.as_dict())
        return
    print_receipts(
        list(result.receipts), f"Nothing is due: no record's retention ended by {result.as_of}."
    )
    if result.receipts:
        out.print(
            f"Retention sweep as of {result.as_of}: {result.subjects_erased} subject(s) "
            "erased whole.",
            highlight=False,
        )
    if result.requests_forgotten:
        out.print(
            f"{result.requests_forgotten} closed rights request(s) past their keeping time: "
            "contact details blanked.",
            highlight=False,
        )

"""An audited write made while ``probity audit verify`` runs: how long it waits.

Issue "Scale" measured, at 100k events, verify holding a write transaction for its whole walk:
an audited write made meanwhile waited 30.9 s and failed with "database is locked". Verify now
walks in a read transaction and takes the head's lock only to check the tail and record
itself. This builds a SQLite home with ``--events`` events, starts verify in a thread, and once
the walk has begun makes ``--writes`` audited writes from the main thread, timing each; then
the same with the walk forced back into a write transaction (the second run emulates the old
code by making ``Database.read`` open a write transaction).

    .venv/bin/python bench/audit_verify_concurrency.py [--events 50000] [--writes 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probity.config import Settings
from probity.domain.audit import AuditAction, AuditEvent, AuditRecord
from probity.services.clock import ManualClock
from probity.services.container import build_services, initialise
from probity.storage.repositories import AuditLog

RESULTS = Path(__file__).parent / "results"


def run(events: int, writes: int, before: bool) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp()) / "home"
    settings = Settings(home=home)
    clock = ManualClock(datetime(2026, 12, 2, tzinfo=UTC))
    initialise(settings, actor="bench", clock=clock)
    services = build_services(settings, clock=clock)
    try:
        done = 1
        while done < events:
            with services.db.transaction() as session:
                for _ in range(min(500, events - done)):
                    services.audit.record(
                        session, AuditRecord(actor="bench", action=AuditAction.AUDIT_READ)
                    )
                    done += 1
        walking = threading.Event()
        original = AuditLog.events_between

        def signalled(
            self: AuditLog, after: int = 0, upto: int | None = None
        ) -> Iterator[AuditEvent]:
            for n, event in enumerate(original(self, after, upto)):
                if n == 100:
                    walking.set()
                yield event

        AuditLog.events_between = signalled  # type: ignore[method-assign]
        if before:
            services.db.read = services.db.transaction  # type: ignore[method-assign]
        outcome: dict[str, Any] = {}

        def verify() -> None:
            start = time.perf_counter()
            outcome["ok"] = services.audit.verify(actor="bench").ok
            outcome["verify_s"] = round(time.perf_counter() - start, 2)

        thread = threading.Thread(target=verify)
        thread.start()
        walking.wait(timeout=600)
        waits, errors = [], []
        for _ in range(writes):
            start = time.perf_counter()
            try:
                services.audit.record_alone(
                    AuditRecord(actor="writer", action=AuditAction.AUDIT_READ)
                )
                waits.append(round(time.perf_counter() - start, 4))
            except Exception as exc:  # the old behaviour: "database is locked"
                errors.append(f"{type(exc).__name__}: {str(exc)[:80]}")
        thread.join()
        AuditLog.events_between = original  # type: ignore[method-assign]
        return {
            "mode": "walk in a write transaction (before)"
            if before
            else "walk in a read transaction",
            "events": events,
            **outcome,
            "write_waits_s": waits,
            "write_errors": errors,
        }
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--writes", type=int, default=5)
    args = parser.parse_args()
    rows = [run(args.events, args.writes, before) for before in (False, True)]
    text = json.dumps(rows, indent=2)
    print(text)
    (RESULTS / "audit_verify_concurrency.json").write_text(text + "\n")


if __name__ == "__main__":
    main()

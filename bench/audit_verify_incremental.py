"""Incremental ``audit verify`` and the /audit page on a large audit log.

Issue "Scale": ``audit verify`` over 100k events took 42-45 s and the /audit page started that
verification on every visit (39.7 s at 100k events). Now verify starts from the stored
verified point (where the last successful verification ended) and the page shows the stored
result. This builds a SQLite home whose audit log holds ``--events`` events, then times:

1. a full verification (``--full-upto``: only when the log is no bigger, it is linear);
   it stores the verified point. Above that the point is stored directly at the head, as a
   passed full verification would have left it (the fill is checked by a full verification
   of a small log, ``--events 20000``, see bench/README.md);
2. 1,000 new events recorded through the product (``AuditService.record``), then one
   incremental verification (``--new``);
3. one /audit page (the signed-in auditor's GET through FastAPI's TestClient) and one
   /audit/verification status GET, median of ``--pages`` each.

The fill is fast but exact: every event is built, hashed and chained with the product's own
``canonical_bytes`` and ``chain_hash``, a checkpoint every CHECKPOINT_EVERY events is signed
with the home's signer and written to the database and to the home's witness file as
``entry_json`` writes it; only the inserts are batched (``--batch`` events a transaction).

    .venv/bin/python bench/audit_verify_incremental.py [--events 1000000] [--new 1000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from probity.domain.audit import (
    CHECKPOINT_EVERY,
    INCREMENTAL,
    AuditAction,
    AuditRecord,
    LastVerification,
    VerifiedPoint,
    canonical_bytes,
    chain_hash,
    checkpoint_message,
)
from probity.interfaces.api.app import create_app
from probity.services.container import Services, build_services
from probity.storage.repositories import AuditLog
from probity.storage.tables import AuditCheckpointRow, AuditHeadRow
from probity.storage.witness import entry_json
from tests.api.conftest import PASSWORD, build_world
from tests.fakes import FakeEngine
from tests.web.conftest import login_form

RESULTS = Path(__file__).parent / "results"
INSERT_EVENTS = (
    "INSERT INTO audit_events (seq, at, actor, organisation, action, case_reference, "
    "galleries, subject_ids, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _json(value: Any) -> str:
    """As the JSONText column stores it (storage/types.py)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fill(services: Services, events: int, batch: int) -> float:
    """Append ``events`` events (organisation Met, as the auditor's page filters) exactly as
    ``record`` chains them; seconds taken."""
    from probity.domain.audit import Checkpoint

    start = time.perf_counter()
    signer = services.audit.signer
    witness = services.audit.witness
    with services.db.read() as s:
        seq, prev = AuditLog(s).head()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    target = seq + events
    while seq < target:
        rows: list[tuple[Any, ...]] = []
        checkpoints: list[dict[str, Any]] = []
        lines: list[str] = []
        for _ in range(min(batch, target - seq)):
            seq += 1
            at = base + timedelta(microseconds=seq)
            details = {"filter_action": None, "returned": seq % 50}
            body = canonical_bytes(
                seq=seq,
                at=at,
                actor="aud",
                organisation="Met",
                action=AuditAction.AUDIT_READ.value,
                case_reference=None,
                galleries=(),
                subject_ids=(),
                details=details,
            )
            digest = chain_hash(prev, body)
            rows.append(
                (
                    seq,
                    at.isoformat(),
                    "aud",
                    "Met",
                    AuditAction.AUDIT_READ.value,
                    None,
                    "[]",
                    "[]",
                    _json(details),
                    prev,
                    digest,
                )
            )
            if seq % CHECKPOINT_EVERY == 0:
                stamp = at.isoformat()
                cp = Checkpoint(
                    seq,
                    digest,
                    stamp,
                    signer.public_hex,
                    signer.sign(checkpoint_message(seq, digest, stamp)),
                )
                checkpoints.append(
                    {
                        "seq": seq,
                        "hash": digest,
                        "at": stamp,
                        "public_key": cp.public_key,
                        "signature": cp.signature,
                    }
                )
                lines.append(entry_json(cp) + "\n")
            prev = digest
        with services.db.transaction() as s:
            # The DB-API's executemany: the ORM's per-row work would double the fill time.
            s.connection().exec_driver_sql(INSERT_EVENTS, rows)
            if checkpoints:
                s.execute(insert(AuditCheckpointRow), checkpoints)
            s.execute(update(AuditHeadRow).where(AuditHeadRow.id == 1).values(seq=seq, hash=prev))
        if witness is not None and lines:
            with witness.home.path.open("a", encoding="utf-8") as handle:
                handle.write("".join(lines))
    return time.perf_counter() - start


def mark_verified(services: Services) -> None:
    """Store the verified point at the head, as a passed full verification leaves it (the
    witness read to its end)."""
    path = services.settings.witness_path
    with services.db.transaction() as s:
        log = AuditLog(s)
        seq, digest = log.head()
        now = services.clock()
        lines = path.read_bytes().count(b"\n")
        log.save_verification(
            LastVerification(now, "bench", True, "full", 0, seq, None, None),
            VerifiedPoint(seq, digest, now, "bench", seq // CHECKPOINT_EVERY * CHECKPOINT_EVERY,
                          {str(path): (path.stat().st_size, lines)}),
        )  # fmt: skip


def timed_get(client: Any, url: str, times: int) -> tuple[float, int]:
    """Median seconds of ``times`` GETs, after one untimed GET (template compilation and
    the first query plans are a process's start-up, not a page's cost)."""
    client.get(url)
    spent = []
    status = 0
    for _ in range(times):
        start = time.perf_counter()
        response = client.get(url)
        spent.append(time.perf_counter() - start)
        status = response.status_code
    return statistics.median(spent), status


def run(
    events: int, new: int, full_upto: int, pages: int, batch: int, keep: bool
) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp()) / "home"
    world = build_world(home, None)
    w = next(world)
    try:
        services = w.services
        out: dict[str, Any] = {"events": events, "home": str(home) if keep else None}
        out["fill_s"] = round(fill(services, events, batch), 1)
        db_file = home / "probity.db"
        out["db_bytes"] = db_file.stat().st_size if db_file.exists() else None
        if events <= full_upto:
            start = time.perf_counter()
            full = services.audit.verify(actor="bench", full=True)
            out["full_verify_s"] = round(time.perf_counter() - start, 2)
            out["full_ok"] = full.ok
            out["full_events_checked"] = full.events_checked
            assert full.ok, full.problems
        else:
            mark_verified(services)
        start = time.perf_counter()
        for done in range(0, new, 100):
            with services.db.transaction() as s:
                for _ in range(min(100, new - done)):
                    services.audit.record(
                        s, AuditRecord(actor="inv", action=AuditAction.AUDIT_READ)
                    )
        out["record_new_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        result = services.audit.verify(actor="bench")
        out["incremental_verify_s"] = round(time.perf_counter() - start, 3)
        assert result.ok and result.mode == INCREMENTAL, result.problems
        out["incremental_events_checked"] = result.events_checked
        out["incremental_checkpoints_checked"] = result.checkpoints_checked
        out["incremental_witness_entries"] = result.witness_entries
        form = {"username": "aud", "password": PASSWORD, **login_form(w.client)}
        assert w.client.post("/login", data=form, follow_redirects=False).status_code in (
            302,
            303,
        )
        page_s, status = timed_get(w.client, "/audit", pages)
        out["audit_page_s"] = round(page_s, 4)
        out["audit_page_status"] = status
        status_s, status = timed_get(w.client, "/audit/verification", pages)
        out["verification_status_page_s"] = round(status_s, 4)
        # The same pages from a second server process's view (new engine, cold caches of
        # this process's connections), as after a restart.
        fresh = build_services(services.settings, engine=FakeEngine(), clock=w.clock)
        try:
            with TestClient(create_app(services=fresh)) as client:
                form = {"username": "aud", "password": PASSWORD, **login_form(client)}
                client.post("/login", data=form)
                page_s, status = timed_get(client, "/audit", pages)
                out["audit_page_fresh_server_s"] = round(page_s, 4)
        finally:
            fresh.close()
        return out
    finally:
        world.close()
        if not keep:  # a 10M-event home is about 3 GB
            shutil.rmtree(home.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--full-upto", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the home (printed)")
    args = parser.parse_args()
    row = run(args.events, args.new, args.full_upto, args.pages, args.batch, args.keep)
    text = json.dumps(row, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"audit_verify_incremental_{args.events}.json").write_text(text + "\n")


if __name__ == "__main__":
    main()

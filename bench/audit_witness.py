"""What the audit witness costs `probity audit verify` (and the /audit verification panel).

Builds a SQLite home with N events (a checkpoint every 50, so N/50 witness entries), then
times verify with the witness (the product) and without it (``AuditService.witness = None``,
the database-only check as before), median of a few runs each. Also times reading and
checking a witness file alone at larger sizes (one entry a checkpoint: 20,000 entries is a
log of about a million events), since that is the only part that grows with the witness:
checking every entry's signature, and as verify does it, with the signatures the database's
checkpoints share already checked (an entry the database lacks is still checked).

    .venv/bin/python bench/audit_witness.py                  # 10k events: about a minute
    .venv/bin/python bench/audit_witness.py --events 2000    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from probity.config import Settings
from probity.domain.audit import AuditAction, AuditRecord, Checkpoint, checkpoint_message
from probity.services.clock import ManualClock
from probity.services.container import build_services, initialise
from probity.services.witness import SignatureCache, read_witness
from probity.storage.keyring import CheckpointSigner, new_data_key
from probity.storage.witness import Witness, WitnessFile

RESULTS = Path(__file__).parent / "results"


def grow(services, events: int, batch: int = 500) -> None:  # type: ignore[no-untyped-def]
    """Record ``events`` events, ``batch`` to a transaction (the chain is the same)."""
    done = 1  # system.init
    while done < events:
        with services.db.transaction() as session:
            for _ in range(min(batch, events - done)):
                services.audit.record(
                    session,
                    AuditRecord(actor="bench", action=AuditAction.USER_UPDATE, details={"n": done}),
                )
                done += 1


def timed(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_verify(events: int, runs: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
        settings = Settings(home=Path(tmp) / "home")
        initialise(settings, actor="bench", clock=clock)
        services = build_services(settings, clock=clock)
        try:
            grow(services, events)
            witness = services.audit.witness
            services.audit.verify(actor="bench")  # warm the page cache
            with_times, without_times = [], []
            for _ in range(runs):  # alternated, so that load changes hit both alike
                services.audit.witness = witness
                with_times.append(timed(lambda: services.audit.verify(actor="bench"), 1))
                services.audit.witness = None
                without_times.append(timed(lambda: services.audit.verify(actor="bench"), 1))
            services.audit.witness = witness
            with_witness = statistics.median(with_times)
            without = statistics.median(without_times)
            entries = sum(1 for _ in settings.witness_path.open())
        finally:
            services.close()
    return {
        "events": events,
        "witness_entries": entries,
        "verify_with_witness_s": round(with_witness, 4),
        "verify_without_witness_s": round(without, 4),
    }


def bench_read(entries: int, runs: int) -> dict[str, float | int]:
    """Read and check a witness file of ``entries`` checkpoints (signatures included)."""
    signer = CheckpointSigner(new_data_key())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit-witness.jsonl"
        lines = []
        for i in range(1, entries + 1):
            seq, digest, at = i * 50, f"{i:064x}", f"2026-12-01T00:00:{i % 60:02d}+00:00"
            sig = signer.sign(checkpoint_message(seq, digest, at))
            lines.append(Checkpoint(seq, digest, at, signer.public_hex, sig))
        home = WitnessFile(path)
        for cp in lines:
            home.append(cp)
        size = path.stat().st_size
        seconds = timed(lambda: read_witness(Witness(home), signer), runs)
        # As in verify: the database's checkpoints carry the same signatures, checked once.
        cache = SignatureCache(signer)
        read_witness(Witness(home), cache)
        shared = timed(lambda: read_witness(Witness(home), cache), runs)
    return {
        "entries": entries,
        "file_bytes": size,
        "read_and_check_s": round(seconds, 4),
        "read_signatures_shared_s": round(shared, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--read-sizes", type=int, nargs="*", default=[200, 2_000, 20_000])
    args = parser.parse_args()
    load_before = os.getloadavg()
    verify = bench_verify(args.events, args.runs)
    reads = [bench_read(n, args.runs) for n in args.read_sizes]
    print("| events | witness entries | verify, witness checked | verify, database only |")
    print("|---|---|---|---|")
    print(
        f"| {verify['events']:,} | {verify['witness_entries']} | "
        f"{verify['verify_with_witness_s'] * 1000:.0f} ms | "
        f"{verify['verify_without_witness_s'] * 1000:.0f} ms |"
    )
    print()
    print("| witness entries | file | read + check every signature | read, signatures shared |")
    print("|---|---|---|---|")
    for r in reads:
        print(
            f"| {r['entries']:,} | {int(r['file_bytes']) / 1024:.0f} KiB | "
            f"{r['read_and_check_s'] * 1000:.1f} ms | "
            f"{r['read_signatures_shared_s'] * 1000:.1f} ms |"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "audit_witness.json"
    out.write_text(
        json.dumps(
            {
                "cpus": os.cpu_count(),
                "load_before": load_before,
                "load_after": os.getloadavg(),
                "verify": verify,
                "witness_read": reads,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()

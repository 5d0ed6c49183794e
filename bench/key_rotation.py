"""How long one erasure's key rotation takes, by number of stored data keys.

With the KEK tree (probity/storage/vault.py ``Vault.rotate``) an erasure re-wraps only the
data keys of the erased subject's bucket (about N / 4,096) and re-seals the 4,096 bucket
KEKs under a new root KEK. This script fills a fresh SQLite database (or PostgreSQL with
--database-url) with N subjects' wrapped keys and times the rotation of one erasure (the
erased subject's row deleted, its bucket rotated), then checks that the bucket's keys still
open. Rows outside the erased bucket carry the right bucket prefix but random bytes (they
are never opened: that is the point), so a 10M fill takes minutes, not an hour.

    .venv/bin/python bench/key_rotation.py                       # 100k, 1M
    .venv/bin/python bench/key_rotation.py --sizes 10000000      # about 5 minutes

Prints a markdown table and writes bench/results/key_rotation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, insert

from probity.storage.blobs import FileBlobStore
from probity.storage.db import Database
from probity.storage.keyring import Keyring, new_data_key
from probity.storage.tables import GalleryRow, SubjectKeyRow
from probity.storage.vault import Vault

RESULTS = Path(__file__).parent / "results" / "key_rotation.json"
CHUNK = 50_000


def run(size: int, url: str | None) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        db = Database(url or f"sqlite:///{home / 'p.db'}")
        db.migrate()
        vault = Vault(Keyring(new_data_key(), home / "keys"), FileBlobStore(home / "blobs"))
        ring = vault.keyring
        now = datetime.now(UTC)
        erased = "s0000000"
        target = ring.bucket_of(Keyring.subject_aad(erased))
        plain: dict[str, bytes] = {}
        started = time.perf_counter()
        with db.transaction() as s:
            vault.start_first_epoch(s)
            s.add(GalleryRow(id="g", name="g", inclusion_policy="p", retention_days=1,
                             jurisdictions=[], quality_floor={}, model_name="m",
                             model_version="1", model_dimension=128, created_at=now,
                             created_by="bench"))  # fmt: skip
        with db.transaction() as s:
            kek = vault._bucket(s, target)
            assert kek is not None
            # subject_keys has a foreign key to subjects, enforced on PostgreSQL only; the
            # rotation reads subject_keys alone, so SQLite runs skip the subjects rows.
            for lo in range(0, size, CHUNK):
                keys = []
                for i in range(lo, min(size, lo + CHUNK)):
                    sid = f"s{i:07d}"
                    aad = Keyring.subject_aad(sid)
                    bucket = ring.bucket_of(aad)
                    if bucket == target:
                        plain[sid] = new_data_key()
                        wrapped = Keyring.wrap_in_bucket(bucket, kek[0], kek[1], aad, plain[sid])
                    else:
                        wrapped = Keyring.bucket_prefix(bucket) + b"\0\0\0\1" + os.urandom(61)
                    keys.append({"subject_id": sid, "created_at": now, "wrapped_key": wrapped})
                s.execute(insert(SubjectKeyRow), keys)
        filled = time.perf_counter() - started
        started = time.perf_counter()
        with db.transaction() as s:
            s.execute(delete(SubjectKeyRow).where(SubjectKeyRow.subject_id == erased))
            vault.rotate(s, buckets=vault.subject_buckets([erased]), destroy_on_commit=True)
        elapsed = time.perf_counter() - started
        rewrapped = vault.rewrapped
        with db.read() as s:
            for sid, key in plain.items():
                if sid != erased:
                    assert vault.subject_key(s, sid) == key
        row: dict[str, float | int] = {
            "keys": size,
            "fill_s": round(filled, 1),
            "erasure_rotation_s": round(elapsed, 3),
            "rewrapped": rewrapped,
        }
        db.dispose()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = [run(n, args.database_url) for n in args.sizes]
    print("| stored keys | erasure's rotation s | keys re-wrapped | fill s |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['keys']:,} | {r['erasure_rotation_s']} | {r['rewrapped']:,} | {r['fill_s']} |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "database": args.database_url or "sqlite",
                "cpus": os.cpu_count(),
                "load_before": load_before,
                "load_after": os.getloadavg(),
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()

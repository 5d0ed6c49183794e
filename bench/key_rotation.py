"""How long one erasure's key rotation takes, by number of stored data keys.

Every erasure re-wraps every stored data key under a new key-encryption key
(probity/storage/vault.py ``Vault.rotate``): one AES-GCM unwrap and wrap of 32 bytes and one
row update per key, inside the erasure's transaction. This script fills a fresh SQLite
database (or PostgreSQL with --database-url) with N subjects' keys and times one rotation.

    .venv/bin/python bench/key_rotation.py                 # 1k, 10k, 100k: about a minute
    .venv/bin/python bench/key_rotation.py --sizes 1000    # smoke run

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

from sqlalchemy import insert

from probity.storage.blobs import FileBlobStore
from probity.storage.db import Database
from probity.storage.keyring import Keyring, new_data_key
from probity.storage.tables import GalleryRow, SubjectKeyRow, SubjectRow
from probity.storage.vault import Vault

RESULTS = Path(__file__).parent / "results" / "key_rotation.json"


def run(size: int, url: str | None) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        db = Database(url or f"sqlite:///{home / 'p.db'}")
        db.migrate()
        vault = Vault(Keyring(new_data_key(), home / "keys"), FileBlobStore(home / "blobs"))
        now = datetime.now(UTC)
        with db.transaction() as s:
            vault.start_first_epoch(s)
            s.add(GalleryRow(id="g", name="g", inclusion_policy="p", retention_days=1,
                             jurisdictions=[], quality_floor={}, model_name="m",
                             model_version="1", model_dimension=128, created_at=now,
                             created_by="bench"))  # fmt: skip
            s.flush()
            epoch = vault.current_epoch(s)
            subjects, keys = [], []
            for i in range(size):
                sid = f"s{i:07d}"
                subjects.append({"id": sid, "gallery_id": "g", "reference": sid, "created_at": now})
                wrapped = vault.keyring.wrap(sid, new_data_key(), epoch)
                keys.append({"subject_id": sid, "created_at": now, "wrapped_key": wrapped})
            s.execute(insert(SubjectRow), subjects)
            s.execute(insert(SubjectKeyRow), keys)
        started = time.perf_counter()
        with db.transaction() as s:
            vault.rotate(s)
        elapsed = time.perf_counter() - started
        db.dispose()
    return {"keys": size, "rotation_s": round(elapsed, 3), "keys_per_s": round(size / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = [run(n, args.database_url) for n in args.sizes]
    print("| stored keys | rotation s | keys/s |\n|---:|---:|---:|")
    for r in rows:
        print(f"| {r['keys']:,} | {r['rotation_s']} | {r['keys_per_s']:,} |")
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

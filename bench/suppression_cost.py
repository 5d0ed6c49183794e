"""What the suppression list (objection by face) costs.

- **Per search / enrolment**: ``SuppressionService._load`` with M suppression templates.
  *Cold*: the list is read and decrypted (one key unwrap and one AES-GCM open each): the
  first call of a process, and the first after any objection. *Warm*: the copy kept in
  memory is reused after one read of the list's version row (services/suppression.py).
- **Per objection**: every gallery template in scope is decrypted and compared. Timed:
  ``SuppressionService.find_matches`` over a gallery of N templates.

Runs on the real services (SQLite, a temporary home) with a fake face engine, so no photos
are needed: suppression rows and templates are written directly, sealed as the services
seal them.

    .venv/bin/python bench/suppression_cost.py    # M = 100, 1000, 10000; N = 1000, 10000, 10000
    .venv/bin/python bench/suppression_cost.py --objectors 100 --templates 1000   # smoke

Prints a markdown table and writes bench/results/suppression_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probity.config import Settings
from probity.domain.ids import new_id
from probity.services.container import build_services, initialise
from probity.services.suppression import bump_list_version
from probity.storage.tables import (
    SubjectKeyRow,
    SubjectRow,
    SuppressionRow,
    TemplateRow,
)
from probity.storage.vault import SUPPRESSION, Vault
from tests.fakes import FakeEngine, unit

RESULTS = Path(__file__).parent / "results" / "suppression_cost.json"


def _seed(svc, gallery_id: str, objectors: int, templates: int) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    model = svc.engine.model.key
    with svc.db.transaction() as s:
        epoch = svc.search.vault.current_epoch(s)
        ring = svc.search.vault.keyring
        rows, subjects, keys, sealed = [], [], [], []
        for i in range(objectors):
            sid = new_id()
            key, wrapped = svc.search.vault.new_purpose_key(s, SUPPRESSION, sid)
            data = unit(10_000 + i).astype("<f4").tobytes()
            aad = b"probity/suppression-template/" + sid.encode()
            rows.append(
                {
                    "id": sid,
                    "reference": f"L-{i}",
                    "request_id": None,
                    "organisation_id": None,
                    "model_key": model,
                    "sealed": Vault.seal_with(key, data, aad),
                    "wrapped_key": wrapped,
                    "created_at": now,
                    "created_by": "bench",
                }
            )
        for i in range(templates):
            sid = new_id()
            key = os.urandom(32)
            subjects.append({"id": sid, "gallery_id": gallery_id, "reference": f"S-{i}",
                             "created_at": now})  # fmt: skip
            keys.append({"subject_id": sid, "created_at": now,
                         "wrapped_key": ring.wrap(sid, key, epoch)})  # fmt: skip
            sealed.append({"subject_id": sid, "gallery_id": gallery_id, "model_key": model,
                           "sealed_vector": Vault.seal_vector(key, sid, unit(i)),
                           "created_at": now})  # fmt: skip
        if rows:
            s.execute(insert(SuppressionRow), rows)
            bump_list_version(s, now)
        if subjects:
            s.execute(insert(SubjectRow), subjects)
            s.execute(insert(SubjectKeyRow), keys)
            s.execute(insert(TemplateRow), sealed)


def run(objectors: int, templates: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home")
        initialise(settings, actor="bench")
        svc = build_services(settings, engine=FakeEngine())
        gallery = svc.galleries.create(
            actor="bench", name="g", inclusion_policy="bench", retention_days=30,
            jurisdictions=["GB"],
        )  # fmt: skip
        _seed(svc, gallery.id, objectors, templates)
        model = svc.engine.model.key
        cold_rounds, warm_rounds = (5 if objectors >= 10_000 else 20), 200
        started = time.perf_counter()
        for _ in range(cold_rounds):
            svc.suppression._lists.clear()  # as after an objection: read and decrypt
            listed = svc.suppression._load(model)
        cold = (time.perf_counter() - started) / cold_rounds
        assert len(listed.ids) == objectors
        started = time.perf_counter()
        for _ in range(warm_rounds):
            assert svc.suppression._load(model) is listed  # one version read
        warm = (time.perf_counter() - started) / warm_rounds
        probe = np.asarray(unit(999_999), dtype=np.float32)
        started = time.perf_counter()
        svc.suppression.find_matches(actor="bench", descriptors={model: probe})
        scan = time.perf_counter() - started
        svc.close()
    return {
        "objectors": objectors,
        "list_cold_ms": round(cold * 1000, 2),
        "list_warm_ms": round(warm * 1000, 3),
        "list_memory_mb": round(listed.vectors.nbytes / 1e6, 2),
        "gallery_templates": templates,
        "objection_scan_s": round(scan, 3),
        "us_per_template": round(scan / max(templates, 1) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectors", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--templates", type=int, nargs="+", default=[1000, 10_000, 10_000])
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = [run(m, n) for m, n in zip(args.objectors, args.templates, strict=True)]
    print(
        "| objectors | list cold ms | list warm ms | kept in memory MB "
        "| gallery templates | objection scan s |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['objectors']:,} | {r['list_cold_ms']} | {r['list_warm_ms']} "
            f"| {r['list_memory_mb']} | {r['gallery_templates']:,} "
            f"| {r['objection_scan_s']} ({r['us_per_template']} µs each) |"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
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

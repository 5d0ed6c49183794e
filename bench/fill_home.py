"""Fill a Probity home with N synthetic subjects, sealed exactly as the product seals them.

Why: scale figures (index memory, catch-up, search latency at 1M-10M people) must be
measured through the product, on a home the product made and can check, not on arrays
beside it. Face analysis is what makes real enrolment slow (tens of ms a photo); this
loader skips only that step and writes every row an enrolment writes
(``services/enrolment.py: EnrolmentService._persist``):

- ``subjects`` and ``subject_keys``: one data key per subject from ``Vault.new_wrapped_keys``
  (the batch form of ``new_wrapped_key``: one epoch read a transaction; so the loader follows
  whatever wrapping scheme the Vault uses, KEK tree included);
- ``templates``: each vector sealed by ``Vault.seal_vector`` under its subject's key; the
  database triggers of migration 0014 write ``template_changes`` as for any insert, so the
  index catches up from the log exactly as after a real enrolment;
- ``enrolments``: provenance and lawful basis built by the product's ``parse_provenance``
  against the gallery (retention_until from the gallery's rule), a unique image sha256, a
  plausible face box and quality (YuNet), created_by the loader's actor.

What it does not write, and why:

- **images**: by default no image blob (an enrolment row names a blob id with no file, so
  opening that enrolment's photo fails; searches, erasure, doctor and the index do not read
  it). ``--images`` writes a tiny sealed blob per enrolment with ``Vault.put_image`` (one
  file each: 10M files is more than most file systems like, hence off by default).
- **audit events**: one ``enrolment.bulk`` event for the whole load (details: counts, seed,
  the loader's name), not one ``enrolment.create`` per row; an audited real enrolment
  writes one per row.

Synthetic identities: subject ``i`` (reference ``synthetic-<i:09d>``) has a centre drawn
uniformly on the 128-d sphere from ``numpy.random.default_rng([seed, 0, i // BLOCK])``,
independent of the batch size, and template ``j`` is centre + N(0, ``--noise``) per
dimension (0.045: same-subject cosine about 0.8, as bench/index_search.py). ``centres``
and ``probe`` below regenerate them, so a bench can build a query for subject ``i`` and
know the true answer. ``<home>/bench-fill.json`` records the parameters.

Speed: rows go in with SQLAlchemy Core ``executemany`` in transactions of ``--batch``
subjects (see ``POSTGRES_BATCH`` for why it is small on PostgreSQL), through the product's
engine (its SQLite pragmas: WAL, foreign keys, BEGIN IMMEDIATE; plus, for the loader's
connection only, a 512 MiB page cache, ``--cache-mib``). Figures in
bench/README.md, section "Loader".

Usage::

    .venv/bin/python bench/fill_home.py --home /tmp/h --subjects 100000 \\
        [--templates-per-subject 1] [--database-url URL] [--seed 7] [--images]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, insert, select, text

from probity.config import Settings
from probity.domain.audit import AuditAction, AuditRecord
from probity.domain.faces import DetectorKind
from probity.domain.ids import new_id
from probity.policy.provenance import parse_provenance
from probity.services.container import build_services, initialise
from probity.services.indexes import IndexSlot
from probity.storage.tables import EnrolmentRow, SubjectKeyRow, SubjectRow, TemplateRow

DIMENSION = 128
BLOCK = 10_000
"""Centres are drawn in blocks of this many subjects, each block from its own seeded
generator, so subject i's centre does not depend on the loader's batch size."""
SQLITE_BATCH = 20_000
POSTGRES_BATCH = 500
"""Subjects per transaction. Small on PostgreSQL: migration 0014's trigger updates the one
row of ``template_log_head`` for every template inserted, and PostgreSQL keeps each version
of that row until the transaction ends, so a transaction of n templates costs O(n^2)
(measured with 2 templates a subject: 239 subjects/s at 20,000 a transaction, 933 at 2,000,
1,209 at 500). SQLite updates the row in place."""
ACTOR = "bench-loader"
GALLERY = "synthetic"
FILL_FILE = "bench-fill.json"
TINY_IMAGE = b"synthetic enrolment image placeholder (bench/fill_home.py)"


def centres(seed: int, start: int, count: int) -> NDArray[np.float32]:
    """Unit centres of subjects start .. start+count-1 (float32, shape (count, 128))."""
    out = np.empty((count, DIMENSION), np.float32)
    done = 0
    while done < count:
        i = start + done
        block, offset = divmod(i, BLOCK)
        take = min(BLOCK - offset, count - done)
        rng = np.random.default_rng([seed, 0, block])
        drawn = rng.standard_normal((BLOCK, DIMENSION), dtype=np.float32)[offset : offset + take]
        out[done : done + take] = drawn / np.linalg.norm(drawn, axis=1, keepdims=True)
        done += take
    return out


def probe(seed: int, subject: int, *, noise: float = 0.045, draw: int = 0) -> NDArray[np.float32]:
    """A fresh noisy sample of subject ``subject`` (not one of its enrolled templates):
    what a bench searches for when it needs to know the true answer."""
    rng = np.random.default_rng([seed, 2, subject, draw])
    noisy = centres(seed, subject, 1)[0] + rng.normal(0.0, noise, DIMENSION).astype(np.float32)
    return noisy.astype(np.float32)


def templates(
    seed: int, subjects: int, *, per_subject: int = 1, noise: float = 0.045, batch: int
) -> NDArray[np.float32]:
    """Every template the loader wrote, in the order it wrote them (template ``t`` of the
    home is row ``t``: ids are given in this order), replayed from the same generators and
    batch size (``bench-fill.json`` records both). For benches that compare the index with
    exact search over the whole gallery: 10M x 128 float32 is 5.1 GB."""
    rng_noise = np.random.default_rng([seed, 1])
    out = np.empty((subjects * per_subject, DIMENSION), np.float32)
    done = 0
    while done < subjects:
        count = min(batch, subjects - done)
        rows = slice(done * per_subject, (done + count) * per_subject)
        out[rows] = np.repeat(centres(seed, done, count), per_subject, axis=0)
        out[rows] += rng_noise.normal(0.0, noise, (count * per_subject, DIMENSION)).astype(
            np.float32
        )
        done += count
    return out


def reference(subject: int) -> str:
    return f"synthetic-{subject:09d}"


def _template_ids(conn: Any, count: int, postgres: bool) -> list[int]:
    """``count`` template ids, reserved inside the open write transaction: on PostgreSQL
    from the column's own sequence (concurrent enrolments cannot collide with them), on
    SQLite after the current maximum (BEGIN IMMEDIATE holds the write lock)."""
    if postgres:
        rows = conn.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('templates', 'id')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        )
        return [int(r[0]) for r in rows]
    top = conn.execute(select(func.max(TemplateRow.id))).scalar()
    first = int(top or 0) + 1
    return list(range(first, first + count))


def fill(
    settings: Settings,
    *,
    subjects: int,
    per_subject: int = 1,
    seed: int = 7,
    noise: float = 0.045,
    batch: int | None = None,
    images: bool = False,
    progress: bool = True,
    cache_mib: int = 512,
) -> dict[str, Any]:
    """Initialise the home (as ``probity init``), create the gallery and load ``subjects``
    subjects of ``per_subject`` templates each. Returns the figures (also written to
    ``<home>/bench-fill.json``)."""
    initialise(settings, actor=ACTOR)
    services = build_services(settings)
    try:
        return _fill(
            services, settings, subjects, per_subject, seed, noise, batch, images, progress,
            cache_mib,
        )  # fmt: skip
    finally:
        services.close()


def _fill(
    services: Any,
    settings: Settings,
    subjects: int,
    per_subject: int,
    seed: int,
    noise: float,
    batch: int | None,
    images: bool,
    progress: bool,
    cache_mib: int,
) -> dict[str, Any]:
    gallery = services.galleries.create(
        actor=ACTOR,
        name=GALLERY,
        inclusion_policy="synthetic subjects for scale benchmarks (bench/fill_home.py)",
        retention_days=3650,
        jurisdictions=["GB"],
    )
    vault = services.enrolment.vault
    db = services.db
    postgres = db.engine.dialect.name == "postgresql"
    if batch is None:
        batch = POSTGRES_BATCH if postgres else SQLITE_BATCH
    now = datetime.now(UTC)
    collected = date.today() - timedelta(days=30)
    provenance = parse_provenance(
        {
            "source": "bench/fill_home.py",
            "lawful_basis": "law_enforcement",
            "lawful_basis_reference": "synthetic data, no real person",
            "collected_at": collected.isoformat(),
            "collected_by": ACTOR,
            "jurisdiction": "GB",
        },
        gallery=gallery,
        today=now.date(),
    )
    quality = {
        "inter_eye_px": 62.0,
        "face_width_px": 160.0,
        "sharpness": 120.0,
        "yaw_ratio": 1.0,
        "detector": DetectorKind.YUNET.value,
        "detector_confidence": 0.95,
        "landmark_consistency": 1.0,
    }
    box = [40, 40, 160, 160]
    fixed = {
        "gallery_id": gallery.id,
        "box": box,
        "quality": quality,
        "lawful_basis": provenance.lawful_basis.value,
        "lawful_basis_reference": provenance.lawful_basis_reference,
        "collected_at": provenance.collected_at,
        "collected_by": provenance.collected_by,
        "jurisdiction": provenance.jurisdiction,
        "retention_until": provenance.retention_until,
        "created_at": now,
        "created_by": ACTOR,
    }
    model_key = gallery.model.key
    rng_noise = np.random.default_rng([seed, 1])
    started = time.perf_counter()
    marks: dict[int, float] = {}
    done = 0
    while done < subjects:
        count = min(batch, subjects - done)
        base = centres(seed, done, count)
        vectors = np.repeat(base, per_subject, axis=0) + rng_noise.normal(
            0.0, noise, (count * per_subject, DIMENSION)
        ).astype(np.float32)
        subject_rows, key_rows, template_rows, enrolment_rows = [], [], [], []
        blobs: list[tuple[bytes, str, str]] = []
        with db.transaction() as session:
            conn = session.connection()
            if not postgres and cache_mib:
                # The loader's connection only: a bigger page cache for the random B-tree
                # inserts (UUID keys), no change to durability. 300k subjects: 85 s with
                # 512 MiB against 96 s with SQLite's default 2 MiB.
                conn.exec_driver_sql(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
            ids = _template_ids(conn, count * per_subject, postgres)
            subject_ids = [new_id() for _ in range(count)]
            keys = vault.new_wrapped_keys(session, subject_ids)  # one epoch read a batch
            for n in range(count):
                i = done + n
                subject_id = subject_ids[n]
                key, wrapped = keys[n]
                subject_rows.append(
                    {
                        "id": subject_id,
                        "gallery_id": gallery.id,
                        "reference": reference(i),
                        "created_at": now,
                    }
                )
                key_rows.append(
                    {"subject_id": subject_id, "wrapped_key": wrapped, "created_at": now}
                )
                for j in range(per_subject):
                    t = n * per_subject + j
                    template_rows.append(
                        {
                            "id": ids[t],
                            "subject_id": subject_id,
                            "gallery_id": gallery.id,
                            "model_key": model_key,
                            "sealed_vector": vault.seal_vector(key, subject_id, vectors[t]),
                            "created_at": now,
                        }
                    )
                    blob_id = new_id()
                    enrolment_rows.append(
                        {
                            **fixed,
                            "id": new_id(),
                            "subject_id": subject_id,
                            "template_id": ids[t],
                            "image_sha256": hashlib.sha256(f"{seed}/{i}/{j}".encode()).hexdigest(),
                            "image_blob": blob_id,
                            "source": f"bench/fill_home.py/{seed}/{i}/{j}",
                        }
                    )
                    if images:
                        blobs.append((key, subject_id, blob_id))
            conn.execute(insert(SubjectRow), subject_rows)
            conn.execute(insert(SubjectKeyRow), key_rows)
            conn.execute(insert(TemplateRow), template_rows)
            conn.execute(insert(EnrolmentRow), enrolment_rows)
            for key, subject_id, blob_id in blobs:  # last, as an enrolment writes its blob
                vault.put_image(key, subject_id, blob_id, TINY_IMAGE)
        done += count
        elapsed = time.perf_counter() - started
        for mark in (100_000, 1_000_000, 10_000_000):
            if done >= mark and mark not in marks:
                marks[mark] = elapsed
        if progress and (done % 20_000 < count or done == subjects):  # every 20k or so
            print(
                f"{done:>10,} subjects  {elapsed:8.1f} s  {done / elapsed:8.0f} subjects/s",
                file=sys.stderr,
                flush=True,
            )
    load_s = time.perf_counter() - started
    services.audit.record_alone(
        AuditRecord(
            actor=ACTOR,
            organisation=None,
            action=AuditAction.ENROL_BULK,
            galleries=(gallery.name,),
            details={
                "loader": "bench/fill_home.py",
                "synthetic": True,
                "subjects": subjects,
                "templates": subjects * per_subject,
                "seed": seed,
            },
        )
    )
    figures = {
        "home": str(settings.home),
        "database": db.engine.dialect.name,
        "gallery": gallery.name,
        "gallery_id": gallery.id,
        "model": model_key,
        "subjects": subjects,
        "templates_per_subject": per_subject,
        "seed": seed,
        "noise": noise,
        "batch": batch,
        "images": images,
        "sqlite_cache_mib": None if postgres else cache_mib,
        "load_s": round(load_s, 2),
        "subjects_per_s": round(subjects / load_s, 1) if load_s else None,
        "elapsed_s_at": {str(k): round(v, 2) for k, v in marks.items()},
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
    }
    (settings.home / FILL_FILE).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def check(settings: Settings, *, seed: int, subjects: int, queries: int = 5) -> dict[str, Any]:
    """Build the gallery's index through the product (catch-up from the template log, every
    template decrypted) and search a few probes: the true subject should rank first."""
    services = build_services(settings)
    try:
        gallery = services.galleries.all()[0]
        slot = IndexSlot.of(gallery)
        started = time.perf_counter()
        size = services.indexes.size(slot)  # opens the index: a catch-up from the log
        build_s = time.perf_counter() - started
        rng = np.random.default_rng(seed + 99)
        wanted = [int(x) for x in rng.integers(0, subjects, queries)]
        found = 0
        for i in wanted:
            hits = services.indexes.search(slot, probe(seed, i)[None, :], 1)[0]
            with services.db.read() as session:
                row = session.execute(
                    select(SubjectRow.reference)
                    .join(TemplateRow, TemplateRow.subject_id == SubjectRow.id)
                    .where(TemplateRow.id == hits[0].id)
                ).scalar()
            found += row == reference(i)
        return {
            "index_vectors": size,
            "index_build_s": round(build_s, 2),
            "queries": queries,
            "true_subject_first": found,
        }
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--subjects", type=int, required=True)
    parser.add_argument("--templates-per-subject", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise", type=float, default=0.045)
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help=f"subjects a transaction (default {SQLITE_BATCH}; {POSTGRES_BATCH} on PostgreSQL)",
    )
    parser.add_argument("--images", action="store_true", help="a tiny sealed blob each")
    parser.add_argument(
        "--cache-mib", type=int, default=512, help="SQLite page cache of the loader (0: default)"
    )
    parser.add_argument(
        "--check", action="store_true", help="then build the index and search 5 probes"
    )
    args = parser.parse_args()
    settings = Settings(home=args.home, database_url=args.database_url)
    if (args.home / FILL_FILE).exists():
        parser.error(f"{args.home} was already filled ({FILL_FILE}); use a fresh home")
    figures = fill(
        settings,
        subjects=args.subjects,
        per_subject=args.templates_per_subject,
        seed=args.seed,
        noise=args.noise,
        batch=args.batch,
        images=args.images,
        cache_mib=args.cache_mib,
    )
    if args.check:
        figures["check"] = check(settings, seed=args.seed, subjects=args.subjects)
        (settings.home / FILL_FILE).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Reading bulk-enrolment manifests (CSV).

Columns: ``path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by`` (any
order, header required; ``collected_by`` and ``lawful_basis_reference`` optional). Paths are
relative to the manifest's folder. A row with a problem is kept with its error so the summary
can list it; only an unreadable file or a missing column refuses the whole manifest.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from probity.errors import ManifestError

REQUIRED_COLUMNS = ("path", "subject", "source", "lawful_basis", "collected_at", "jurisdiction")
OPTIONAL_COLUMNS = ("collected_by", "lawful_basis_reference")


@dataclass(frozen=True, slots=True)
class ManifestRow:
    line: int  # 1-based line in the file, header is line 1
    path: Path
    subject: str
    provenance: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None


def read_manifest(manifest: Path) -> list[ManifestRow]:
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {manifest}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {manifest}: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ManifestError(f"manifest {manifest.name} lacks column(s): {', '.join(missing)}")
    base = manifest.parent
    rows: list[ManifestRow] = []
    for number, raw in enumerate(reader, start=2):
        record = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}
        rel = record.get("path", "")
        error = None if rel else "the path column is empty"
        rows.append(
            ManifestRow(
                line=number,
                path=(base / rel) if rel else base,
                subject=record.get("subject", ""),
                provenance={
                    k: (record.get(k) or None) for k in (*REQUIRED_COLUMNS[2:], *OPTIONAL_COLUMNS)
                },
                error=error,
            )
        )
    return rows

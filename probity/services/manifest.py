"""Reading bulk-enrolment manifests (CSV).

Columns: ``path,subject,source,lawful_basis,collected_at,jurisdiction,collected_by`` (any
order, header required; ``collected_by`` and ``lawful_basis_reference`` optional). Paths are
relative to the manifest's folder. A row with a problem is kept with its error so the summary
can list it; an unreadable or unparseable file (a NUL byte, an unclosed quote, an over-long
field) or a missing column refuses the whole manifest, naming the line.
"""

from __future__ import annotations

import csv
import io
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


MAX_FIELD_CHARS = 4096
"""The longest value a manifest cell may hold. Paths, references and provenance notes are
short; a longer cell is a broken file (an unclosed quote swallowing the rest of it), so it is
refused, naming its line, rather than read as one enormous value."""


def read_manifest(manifest: Path, *, data: bytes | None = None) -> list[ManifestRow]:
    """The rows of ``manifest``, parsed by the :mod:`csv` module over the whole text, so a
    quoted field keeps its newlines and any U+2028 / U+2029 inside it (``str.splitlines``
    would cut a row there). A NUL byte, an over-long field or any other parse failure refuses
    the whole manifest with one :class:`ManifestError` naming the line; nothing is enrolled.
    ``data``: the manifest's bytes, already read (a sealed staged manifest, opened by its
    job); paths are still relative to ``manifest``'s folder."""
    try:
        text = (
            manifest.read_text(encoding="utf-8-sig") if data is None else data.decode("utf-8-sig")
        )
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {manifest}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {manifest}: {exc}") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ManifestError(f"manifest {manifest.name}, line {line}: contains a NUL byte")
    records = _parse(text, manifest.name)
    if not records:
        raise ManifestError(f"manifest {manifest.name} is empty: a header line is required")
    _, raw_header = records[0]
    header = [h.strip() for h in raw_header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ManifestError(f"manifest {manifest.name} lacks column(s): {', '.join(missing)}")
    base = manifest.parent
    rows: list[ManifestRow] = []
    for number, cells in records[1:]:
        if not any(c.strip() for c in cells):
            continue  # a blank line
        # A short row leaves the missing columns empty; a long one is reported below.
        pairs = zip(header, cells, strict=False)
        record = {name: value.strip() for name, value in pairs if name}
        rel = record.get("path", "")
        error = None if rel else "the path column is empty"
        if len(cells) > len(header):
            error = f"the row has {len(cells)} fields; the header names {len(header)}"
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


def _parse(text: str, name: str) -> list[tuple[int, list[str]]]:
    """Each record with the line it starts on (1-based, the header is line 1)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return records
        except csv.Error as exc:
            raise ManifestError(
                f"manifest {name}, line {start}: cannot be parsed ({exc})"
            ) from None
        for cell in cells:
            if len(cell) > MAX_FIELD_CHARS:
                raise ManifestError(
                    f"manifest {name}, line {start}: a field of {len(cell):,} characters; "
                    f"at most {MAX_FIELD_CHARS:,} are accepted"
                )
        records.append((start, cells))
        start = reader.line_num + 1

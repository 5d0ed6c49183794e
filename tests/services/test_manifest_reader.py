"""The bulk-enrolment manifest reader: the csv module over the whole text, one clear error
naming the line for anything it cannot parse (issue 12, "no leftovers")."""

from __future__ import annotations

from pathlib import Path

import pytest

from probity.errors import ManifestError
from probity.services.manifest import MAX_FIELD_CHARS, read_manifest

HEADER = "path,subject,source,lawful_basis,collected_at,jurisdiction\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "manifest.csv"
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_a_quoted_newline_and_a_u2028_stay_inside_their_field(tmp_path: Path) -> None:
    text = (
        HEADER
        + 'a.jpg,S-1,"custody\nsuite 4",consent,2025-01-01,GB\n'
        + "b.jpg,S-2,line\u2028separator,consent,2025-01-01,GB\n"
        + "c.jpg,S-3,desk,consent,2025-01-01,GB\n"
    )
    rows = read_manifest(_write(tmp_path, text))
    assert [r.subject for r in rows] == ["S-1", "S-2", "S-3"]
    assert rows[0].provenance["source"] == "custody\nsuite 4"
    assert rows[1].provenance["source"] == "line\u2028separator"
    # Line numbers are where each record starts: the quoted newline pushes S-3 to line 5.
    assert [r.line for r in rows] == [2, 4, 5]
    assert all(r.error is None for r in rows)


def test_a_nul_byte_is_refused_naming_its_line(tmp_path: Path) -> None:
    text = HEADER + "a.jpg,S-1,desk,consent,2025-01-01,GB\nb.jpg,S\x00-2,desk,consent,2025,GB\n"
    with pytest.raises(ManifestError, match="line 3: contains a NUL byte"):
        read_manifest(_write(tmp_path, text))


@pytest.mark.parametrize("size", [MAX_FIELD_CHARS + 1, 131_072])
def test_an_over_long_field_is_refused_naming_its_line(tmp_path: Path, size: int) -> None:
    text = HEADER + f"a.jpg,S-1,{'x' * size},consent,2025-01-01,GB\n"
    with pytest.raises(ManifestError, match="line 2:"):
        read_manifest(_write(tmp_path, text))


def test_an_unclosed_quote_is_one_error_naming_the_line_it_starts_on(tmp_path: Path) -> None:
    text = HEADER + "a.jpg,S-1,desk,consent,2025-01-01,GB\n" + 'b.jpg,"S-2,desk,consent\n'
    with pytest.raises(ManifestError, match="line 3: cannot be parsed"):
        read_manifest(_write(tmp_path, text))


def test_a_row_with_more_fields_than_the_header_is_kept_with_its_error(tmp_path: Path) -> None:
    text = HEADER + "a.jpg,S-1,desk,consent,2025-01-01,GB,extra\n\n"
    (row,) = read_manifest(_write(tmp_path, text))  # the blank line is no row
    assert row.error == "the row has 7 fields; the header names 6"


def test_a_missing_column_and_an_empty_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="lacks column"):
        read_manifest(_write(tmp_path, "path,subject\na.jpg,S-1\n"))
    with pytest.raises(ManifestError, match="empty"):
        read_manifest(_write(tmp_path, ""))

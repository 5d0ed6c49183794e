"""``probity report annual YEAR``: the local operator's report of every organisation, as a
table, as JSON and as a PDF file; refused years are a one-line error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path


def test_report_annual(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = ["--home", str(tmp_path / "home")]
    year = datetime.now(UTC).year
    assert probity("init", *home).code == 0
    assert probity(
        "case", "open", "CLI-1", "--offence", "fraud", "--justification", "ledger photos",
        "--authorisation", "W-1", *home,
    ).code == 0  # fmt: skip
    run = probity("report", "annual", str(year), "--json", *home)
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["organisation"] is None  # the local operator: every organisation
    assert report["totals"]["cases_opened"] == 1
    assert report["breakdowns"]["cases_by_offence"] == {"fraud": 1}
    pdf = tmp_path / "annual.pdf"
    run = probity("report", "annual", str(year), "--pdf", str(pdf), *home)
    assert run.code == 0, run.err
    assert "Cases opened" in run.out and f"PDF written to {pdf}" in run.out
    assert pdf.read_bytes().startswith(b"%PDF")
    refused = probity("report", "annual", "1800", *home)
    assert refused.code == 2 and refused.err.startswith("error[invalid_input]")
    log = json.loads(probity("audit", "log", "--action", "report.annual", "--json", *home).out)
    assert [e["details"]["year"] for e in log] == [year, year]

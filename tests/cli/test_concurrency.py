"""Two ``probity enrol --manifest`` processes on one home at the same time: the audit chain
must not fork (SQLite BEGIN IMMEDIATE, the locked audit head) and neither may lose the
other's vectors (the index file's flock and re-read)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from probity.interfaces.cli.main import main
from tests.cli.conftest import DATA

PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png", "32bit.png"]


def test_concurrent_bulk_enrolments_keep_chain_and_index_whole(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert main(["init", "--home", str(home)]) == 0
    assert (
        main(
            [
                "gallery",
                "create",
                "g",
                "--home",
                str(home),
                "--policy",
                "p",
                "--retention-days",
                "365",
            ]
        )
        == 0
    )
    collected = (date.today() - timedelta(days=5)).isoformat()
    manifests = []
    for run in ("a", "b"):
        lines = ["path,subject,source,lawful_basis,collected_at,jurisdiction"]
        lines += [
            f"{DATA / p},{run}-{i},src/{i},public_task,{collected},GB" for i, p in enumerate(PHOTOS)
        ]
        path = tmp_path / f"{run}.csv"
        path.write_text("\n".join(lines) + "\n")
        manifests.append(path)
    env = {**os.environ, "PROBITY_HOME": str(home), "PROBITY_ENGINE__WORKERS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "probity.interfaces.cli.main",
                "enrol",
                "g",
                "--manifest",
                str(m),
                "--json",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in manifests
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, errors) in zip(procs, results, strict=True):
        assert p.returncode == 0, errors
        assert json.loads(out)["enrolled"] == len(PHOTOS)
    status = subprocess.run(
        [sys.executable, "-m", "probity.interfaces.cli.main", "index", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    [gallery] = json.loads(status.stdout)
    assert gallery["templates"] == gallery["vectors"] == 2 * len(PHOTOS)
    verify = subprocess.run(
        [sys.executable, "-m", "probity.interfaces.cli.main", "audit", "verify", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"]

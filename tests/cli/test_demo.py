"""The README's first command runs ``probity demo``: run it as a user would, in a fresh
process, and check what it shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_enrols_searches_and_verifies(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "probity.interfaces.cli.main",
            "demo",
            "--home",
            str(home),
            "--no-serve",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "3 enrolled" in out
    # YuNet does not fire on the mission patch dlib's HOG took for a face (astronaut.png):
    # nothing to refuse there any more.
    assert "0 refused" in out
    assert out.count("Investigative lead — not an identification") == 3
    assert "SUBJ-0001" in out and "SUBJ-0002" in out
    assert "No face found in the probe." in out
    assert "chain intact" in out
    assert "DEMO ACCOUNTS" not in out and "Sign in" not in out  # --no-serve: no accounts
    assert (home / "master.key").exists() and (home / "probity.db").exists()
    # Running it again is safe: nothing is enrolled twice.
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "probity.interfaces.cli.main",
            "demo",
            "--home",
            str(home),
            "--no-serve",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200"},
    )
    assert again.returncode == 0, again.stderr
    assert "3 already enrolled" in again.stdout

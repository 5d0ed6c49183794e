"""The admin steps from the CLI: org create, user create, user approve, key create."""

from __future__ import annotations

import json
from pathlib import Path


def test_admin_steps(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = ["--home", str(tmp_path / "home")]
    assert probity("init", *home).code == 0
    assert probity("org", "create", "Met Police", "--kind", "law_enforcement", *home).code == 0
    bad = probity("org", "create", "X", "--kind", "bounty_hunters", *home)
    assert bad.code == 2
    run = probity(
        "user",
        "create",
        "ann",
        "--org",
        "Met Police",
        "--role",
        "investigator",
        "--role",
        "examiner",
        "--training-expires",
        "2099-01-01",
        "--json",
        *home,
    )
    assert run.code == 0, run.err
    assert json.loads(run.out)["approved"] is False
    refused = probity("key", "create", "ann", *home)
    assert refused.code == 5 and "not approved" in refused.err
    assert probity("user", "approve", "ann", *home).code == 0
    run = probity("key", "create", "ann", "--label", "tests", "--json", *home)
    assert run.code == 0, run.err
    key = json.loads(run.out)["key"]
    assert key.startswith("pb_")
    log = probity("audit", "log", "--json", *home)
    actions = [e["action"] for e in json.loads(log.out)]
    for action in ("organisation.create", "user.create", "user.approve", "apikey.create"):
        assert action in actions
    assert key.split("_", 2)[2] not in log.out  # the secret is never logged
    assert probity("audit", "verify", *home).code == 0

"""The admin steps from the CLI: org create, user create, user approve, user update, key
create."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


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


def test_user_update(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = ["--home", str(tmp_path / "home")]
    assert probity("init", *home).code == 0
    assert probity("org", "create", "Met", "--kind", "law_enforcement", *home).code == 0
    for name, role in (("sam", "supervisor"), ("ann", "investigator")):
        assert probity("user", "create", name, "--org", "Met", "--role", role, *home).code == 0
    assert probity("user", "approve", "sam", *home).code == 0
    assert probity("user", "approve", "ann", "--supervisor", "sam", *home).code == 0
    run = probity(
        "user",
        "update",
        "ann",
        "--role",
        "investigator",
        "--role",
        "examiner",
        "--training-expires",
        "2099-01-31",
        "--json",
        *home,
    )
    assert run.code == 0, run.err
    body = json.loads(run.out)
    assert body["roles"] == ["examiner", "investigator"] and body["active"] is True
    assert body["training_expires"].startswith("2099-01-31T23:59:59")
    run = probity("user", "update", "ann", "--deactivate", "--json", *home)
    assert run.code == 0 and json.loads(run.out)["active"] is False
    run = probity("user", "update", "ann", "--activate", *home)
    assert run.code == 0 and "examiner, investigator; active." in run.out
    refused = probity("user", "update", "sam", "--deactivate", *home)
    assert refused.code == 4 and "last active supervisor" in refused.err
    assert probity("user", "update", "ann", *home).code == 2  # nothing to change
    log = json.loads(probity("audit", "log", "--action", "user.update", "--json", *home).out)
    assert [e["details"]["after"] for e in log][1:] == [{"active": False}, {"active": True}]


def test_a_reset_code_from_the_cli_sets_a_password_once(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The local operator issues a one-time code; the person redeems it (here through the
    service, as the /password-reset page does); a second use is refused."""
    from probity.config import Settings
    from probity.errors import Unauthenticated
    from probity.services.container import build_services

    home = ["--home", str(tmp_path / "home")]
    assert probity("init", *home).code == 0
    assert probity("org", "create", "Met Police", "--kind", "law_enforcement", *home).code == 0
    run = probity("user", "create", "ann", "--org", "Met Police", "--role", "auditor", *home)
    assert run.code == 0, run.err
    run = probity("user", "reset-code", "ann", "--json", *home)
    assert run.code == 0, run.err
    code = json.loads(run.out)["code"]
    assert probity("user", "reset-code", "ghost", *home).code != 0
    services = build_services(Settings(home=tmp_path / "home"))
    try:
        services.accounts.redeem_reset(username="ann", code=code, password="a long password 1")
        with pytest.raises(Unauthenticated, match="used or expired"):
            services.accounts.redeem_reset(username="ann", code=code, password="another one 22")
    finally:
        services.close()

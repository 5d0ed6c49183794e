"""POST /api/v1/audit/verify: incremental from the last successful verification by default
(``mode``, ``from_seq`` in the answer), the whole chain with ``?full=true``."""

from __future__ import annotations

from sqlalchemy import text

from tests.api.conftest import World


def test_verify_is_incremental_and_full_on_request(world: World) -> None:
    first = world.call("POST", "/api/v1/audit/verify", "aud").json()
    assert first["ok"] is True and first["mode"] == "full" and first["from_seq"] == 0
    again = world.call("POST", "/api/v1/audit/verify", "aud").json()
    assert again["ok"] is True and again["mode"] == "incremental"
    assert again["from_seq"] == first["events_checked"]
    assert again["events_checked"] == 1  # the first verification's own event
    with world.services.db.transaction() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    assert world.call("POST", "/api/v1/audit/verify", "aud").json()["ok"] is True
    full = world.call("POST", "/api/v1/audit/verify?full=true", "aud").json()
    assert full["ok"] is False and full["mode"] == "full" and full["first_broken_seq"] == 2

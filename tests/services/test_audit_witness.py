"""The audit witness: checkpoints written outside the database, and what verify finds when
someone with write access to the database alone cuts or rewrites the log.

Every tampering is done with raw SQL on a real home (SQLite, and PostgreSQL where a server
answers), the way an attacker who has the code but not the master key would: hashes
recomputed with the domain's ``canonical_bytes`` and ``chain_hash``, checkpoints deleted
because they cannot be forged.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from probity.config import AuditSettings, Settings
from probity.domain.audit import (
    CHECKPOINT_EVERY,
    GENESIS_HASH,
    AuditAction,
    AuditRecord,
    canonical_bytes,
    chain_hash,
)
from probity.interfaces.cli.main import main
from probity.services.clock import ManualClock
from probity.services.container import Services, build_services, initialise
from probity.storage.repositories import AuditLog
from tests.fakes import FakeEngine
from tests.services.conftest import ACTOR

Factory = Callable[..., Services]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def make(
    tmp_path: Path, clock: ManualClock, fake_engine: FakeEngine, database_url: str | None
) -> Iterator[Factory]:
    built: list[Services] = []

    def factory(sinks: list[str] | None = None) -> Services:
        settings = Settings(
            home=tmp_path / "home",
            database_url=database_url,
            audit=AuditSettings(witness_sinks=sinks or [], witness_timeout_s=2),
        )
        initialise(settings, actor=ACTOR, clock=clock)
        services = build_services(settings, engine=fake_engine, clock=clock)
        built.append(services)
        return services

    yield factory
    for s in built:
        s.close()


def grow(svc: Services, upto: int) -> None:
    """Record events until the log holds ``upto`` (a checkpoint every CHECKPOINT_EVERY)."""
    with svc.db.read() as s:
        have = AuditLog(s).last_seq()
    for i in range(have, upto):
        svc.audit.record_alone(
            AuditRecord(actor=ACTOR, action=AuditAction.USER_UPDATE, details={"n": i})
        )


def witnessed(svc: Services) -> list[int]:
    path = svc.settings.witness_path
    return [json.loads(line)["seq"] for line in path.read_text().splitlines() if line]


# --- what an attacker with write access to the database can do --------------------------


def cut_tail(s: Session, keep: int, *, delete_checkpoints: bool) -> None:
    s.execute(text("DELETE FROM audit_events WHERE seq > :k"), {"k": keep})
    if delete_checkpoints:
        s.execute(text("DELETE FROM audit_checkpoints WHERE seq > :k"), {"k": keep})
    last = s.execute(text("SELECT hash FROM audit_events WHERE seq = :k"), {"k": keep}).scalar()
    s.execute(text("UPDATE audit_head SET seq = :k, hash = :h"), {"k": keep, "h": last})


def recompute_from(s: Session, start: int) -> None:
    """Re-hash every event from ``start`` on, as stored now (seqs included), fix the head."""
    events = list(AuditLog(s).events())
    prev = GENESIS_HASH
    for e in events:
        if e.seq >= start:
            body = canonical_bytes(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                organisation=e.organisation,
                action=e.action,
                case_reference=e.case_reference,
                galleries=e.galleries,
                subject_ids=e.subject_ids,
                details=e.details,
            )
            new = chain_hash(prev, body)
            s.execute(
                text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE seq = :q"),
                {"p": prev, "h": new, "q": e.seq},
            )
            prev = new
        else:
            prev = e.hash
    s.execute(text("UPDATE audit_head SET seq = :q, hash = :h"), {"q": events[-1].seq, "h": prev})


def tamper_cut_head_updated(s: Session) -> None:
    cut_tail(s, 120, delete_checkpoints=False)


def tamper_cut_checkpoints_deleted(s: Session) -> None:
    cut_tail(s, 120, delete_checkpoints=True)


def tamper_edit_and_recompute(s: Session) -> None:
    s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 90"))
    s.execute(text("DELETE FROM audit_checkpoints WHERE seq >= 90"))
    recompute_from(s, 90)


def tamper_full_recompute(s: Session) -> None:
    s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    s.execute(text("DELETE FROM audit_checkpoints"))
    recompute_from(s, 1)


def tamper_delete_and_renumber(s: Session) -> None:
    s.execute(text("DELETE FROM audit_events WHERE seq = 60"))
    last = s.execute(text("SELECT max(seq) FROM audit_events")).scalar_one()
    for seq in range(61, last + 1):  # one row at a time: seq is the primary key
        s.execute(text("UPDATE audit_events SET seq = :n WHERE seq = :o"), {"n": seq - 1, "o": seq})
    s.execute(text("DELETE FROM audit_checkpoints WHERE seq >= 60"))
    recompute_from(s, 60)


TAMPERINGS = {
    "cut-head-updated": (tamper_cut_head_updated, ["log truncated", "#121"]),
    "cut-checkpoints-deleted": (
        tamper_cut_checkpoints_deleted,
        ["log truncated", "ends at event #120", "missing from the database"],
    ),
    "edit-recompute": (
        tamper_edit_and_recompute,
        ["rewritten or renumbered: event #100", "missing from the database"],
    ),
    "full-recompute": (
        tamper_full_recompute,
        [
            "rewritten or renumbered: event #50",
            "missing from the database (deleted or replaced): at events #50,",
        ],
    ),
    "delete-renumber": (
        tamper_delete_and_renumber,
        ["rewritten or renumbered: event #100", "missing from the database"],
    ),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_every_tampering_of_the_database_alone_is_found(make: Factory, name: str) -> None:
    svc = make()
    grow(svc, 160)
    assert svc.audit.verify(actor=ACTOR).ok  # witnessed: 50, 100, 150 and the head, 160
    assert witnessed(svc) == [50, 100, 150, 160]
    tamper, expected = TAMPERINGS[name]
    with svc.db.transaction() as s:
        tamper(s)
    result = svc.audit.verify(actor=ACTOR, full=True)  # incremental: test_audit_incremental
    assert not result.ok
    said = "\n".join(result.problems)
    for words in expected:
        assert words in said, said
    assert result.reason == result.problems[0]
    assert witnessed(svc) == [50, 100, 150, 160]  # a failed verification signs nothing


def test_the_cli_exits_9_and_says_what_is_missing(
    make: Factory, database_url: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    if database_url:  # the CLI reads the database URL from the environment, not from here
        pytest.skip("the CLI test runs on the SQLite home")
    svc = make()
    grow(svc, 160)
    assert svc.audit.verify(actor=ACTOR).ok
    with svc.db.transaction() as s:
        tamper_cut_checkpoints_deleted(s)
    home = str(svc.settings.home)
    capsys.readouterr()
    assert main(["audit", "verify", "--home", home]) == 9
    err = capsys.readouterr().err
    assert "log truncated" in err and "missing from the database" in err
    assert main(["audit", "verify", "--home", home, "--json"]) == 9
    body = json.loads(capsys.readouterr().out)
    assert body["ok"] is False and body["witness_newest_event"] == 160
    assert any("missing from the database" in p for p in body["problems"])


def test_a_witness_behind_by_one_checkpoint_verifies_and_says_so(make: Factory) -> None:
    svc = make()
    grow(svc, 149)
    assert witnessed(svc) == [50, 100]
    # A crash between the commit of event #150 (and its checkpoint) and the witness write:
    # the same as the checkpoint never reaching the witness.
    witness, svc.audit.witness = svc.audit.witness, None
    grow(svc, 150)
    svc.audit.witness = witness
    assert witnessed(svc) == [50, 100]
    result = svc.audit.verify(actor=ACTOR)
    assert result.ok, result.problems
    assert result.witness_seq == 100
    assert any("witness is behind by 50 event(s)" in n for n in result.notes), result.notes
    assert witnessed(svc) == [50, 100, 150]  # this verification caught it up
    again = svc.audit.verify(actor=ACTOR)
    assert again.ok and not again.notes and again.witness_seq == 150
    assert witnessed(svc) == [50, 100, 150, 151]


def test_a_rolled_back_checkpoint_never_reaches_the_witness(make: Factory) -> None:
    svc = make()
    grow(svc, CHECKPOINT_EVERY - 1)
    with pytest.raises(RuntimeError), svc.db.transaction() as s:
        svc.audit.record(s, AuditRecord(actor=ACTOR, action=AuditAction.USER_UPDATE))
        raise RuntimeError("the audited action failed")
    assert witnessed(svc) == []
    grow(svc, CHECKPOINT_EVERY)
    assert witnessed(svc) == [CHECKPOINT_EVERY]
    assert svc.audit.verify(actor=ACTOR).ok


def test_a_missing_or_forged_witness_is_reported(make: Factory) -> None:
    svc = make()
    grow(svc, 60)
    path = svc.settings.witness_path
    lines = path.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["hash"] = "f" * 64  # a forged entry: the signature no longer fits
    path.write_text(json.dumps(entry) + "\nnot json\n")
    result = svc.audit.verify(actor=ACTOR)
    assert not result.ok
    said = "\n".join(result.problems)
    assert "line 1 (event #50) has an invalid signature" in said
    assert "line 2 is not a checkpoint entry" in said
    path.unlink()
    result = svc.audit.verify(actor=ACTOR)
    assert not result.ok and "is missing, but the database holds 1 signed checkpoint" in (
        result.reason or ""
    )


def test_a_file_sink_on_another_volume_is_written_and_checked(
    make: Factory, tmp_path: Path
) -> None:
    other = tmp_path / "other-volume" / "witness.jsonl"
    other.parent.mkdir()
    svc = make(sinks=[f"file:{other}"])
    grow(svc, 120)
    assert other.read_text() == svc.settings.witness_path.read_text()
    # Someone with the whole home rewrites the home's witness; the other volume still knows.
    with svc.db.transaction() as s:
        tamper_cut_checkpoints_deleted(s)
        cut_tail(s, 90, delete_checkpoints=True)
    svc.settings.witness_path.write_text(other.read_text().splitlines()[0] + "\n")
    result = svc.audit.verify(actor=ACTOR)
    assert not result.ok and "ends at event #90" in (result.reason or "")


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_http_sink_receives_each_checkpoint(make: Factory) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Collector.received = []
        svc = make(sinks=[f"http://127.0.0.1:{server.server_address[1]}/witness"])
        grow(svc, CHECKPOINT_EVERY)
        assert [e["seq"] for e in _Collector.received] == [CHECKPOINT_EVERY]
        assert (
            _Collector.received[0]["signature"]
            == json.loads(svc.settings.witness_path.read_text())["signature"]
        )
    finally:
        server.shutdown()
        server.server_close()


def test_a_refusing_http_sink_does_not_fail_the_audited_action(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    svc = make(sinks=[f"http://127.0.0.1:{port}/witness"])
    with caplog.at_level(logging.WARNING, logger="probity.storage.witness"):
        grow(svc, CHECKPOINT_EVERY)
    with svc.db.read() as s:
        assert AuditLog(s).last_seq() == CHECKPOINT_EVERY  # the action and its event stand
    assert witnessed(svc) == [CHECKPOINT_EVERY]  # the home file still got it
    assert any("could not write the checkpoint at event #50" in r.message for r in caplog.records)
    assert svc.audit.witness is not None
    assert svc.audit.witness.failures[f"http://127.0.0.1:{port}/witness"].count == 1
    result = svc.audit.verify(actor=ACTOR)
    assert result.ok
    assert any("failed 1 time(s)" in n for n in result.notes), result.notes

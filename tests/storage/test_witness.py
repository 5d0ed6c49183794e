"""The witness sinks on their own: parsing the settings, the file, syslog over a socket."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from probity.domain.audit import Checkpoint, checkpoint_message
from probity.storage.keyring import CheckpointSigner, new_data_key
from probity.storage.witness import (
    HttpSink,
    SyslogSink,
    Witness,
    WitnessFile,
    parse_entry,
    parse_sink,
)


def checkpoint(seq: int = 50) -> Checkpoint:
    signer = CheckpointSigner(new_data_key())
    at = "2026-12-01T09:00:00+00:00"
    digest = "a" * 64
    return Checkpoint(
        seq, digest, at, signer.public_hex, signer.sign(checkpoint_message(seq, digest, at))
    )


def test_sinks_are_parsed_from_their_settings(tmp_path: Path) -> None:
    assert isinstance(parse_sink(f"file:{tmp_path}/w.jsonl", timeout_s=1), WitnessFile)
    local = parse_sink("syslog", timeout_s=1)
    assert isinstance(local, SyslogSink) and local.address == "/dev/log"
    remote = parse_sink("syslog://loghost:5514", timeout_s=1)
    assert isinstance(remote, SyslogSink) and remote.address == ("loghost", 5514)
    assert isinstance(parse_sink("syslog:/run/log.sock", timeout_s=1), SyslogSink)
    assert isinstance(parse_sink("https://witness.example/p", timeout_s=1), HttpSink)
    for bad in ("ftp://x", "file:", "syslog://:514"):
        with pytest.raises(ValueError):
            parse_sink(bad, timeout_s=1)


def test_the_file_appends_lines_and_reads_them_back(tmp_path: Path) -> None:
    wf = WitnessFile(tmp_path / "w.jsonl")
    assert wf.create() and not wf.create()
    assert oct(wf.path.stat().st_mode & 0o777) == "0o600"
    cp = checkpoint()
    wf.append(cp)
    wf.append(checkpoint(100))
    with wf.path.open("a") as torn:  # a torn last line (a crash mid-write)
        torn.write('{"seq": 15')
    lines = list(wf.lines())
    assert [line.checkpoint.seq for line in lines[:2] if line.checkpoint] == [50, 100]
    assert lines[0].checkpoint == cp
    assert lines[2].checkpoint is None and lines[2].number == 3
    assert parse_entry(wf.path.read_text().splitlines()[0]) == cp


def test_syslog_gets_one_message_per_checkpoint(tmp_path: Path) -> None:
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        witness = Witness(
            WitnessFile(tmp_path / "w.jsonl"), [parse_sink(f"syslog:{path}", timeout_s=1)]
        )
        cp = checkpoint()
        witness.publish(cp)
        message = server.recv(4096).decode()
    assert not witness.failures
    assert message.startswith("<86>probity-audit-witness: ")  # authpriv.info
    body = json.loads(message.split(": ", 1)[1].rstrip("\x00"))
    assert body["seq"] == 50 and body["signature"] == cp.signature.hex()


def test_a_missing_syslog_socket_is_counted_not_raised(tmp_path: Path) -> None:
    witness = Witness(
        WitnessFile(tmp_path / "w.jsonl"), [parse_sink(f"syslog:{tmp_path}/none.sock", timeout_s=1)]
    )
    witness.publish(checkpoint())
    assert witness.failures[f"syslog:{tmp_path}/none.sock"].count == 1
    assert len((tmp_path / "w.jsonl").read_text().splitlines()) == 1

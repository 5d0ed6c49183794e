"""Witnesses of the signed audit checkpoints, outside the database.

The audit database holds the events, the chain head and the signed checkpoints. Someone who
can write to that database alone can cut the log's tail and delete the checkpoints that named
it, and the database by itself would still look consistent. A witness is a second copy of
every signed checkpoint kept somewhere that database access does not reach:

- ``WitnessFile``: an append-only JSON-lines file, one checkpoint a line. The home's
  ``audit-witness.jsonl`` is always one; ``file:PATH`` sinks are more (another volume).
  Lines are appended with ``O_APPEND`` in a single ``write`` and ``fsync``'d; the file is
  never rewritten. ``probity audit verify`` reads every line back.
- ``SyslogSink``: the entry as one syslog message (``logging.handlers.SysLogHandler``), so
  journald or a remote syslog server holds it. Write-only: verify cannot read it back, an
  investigator compares it by hand (the entry's signature proves it came from this home).
- ``HttpSink``: the entry POSTed as JSON to the operator's endpoint (``urllib.request``).

An entry is ``{"v": 1, "seq", "hash", "at", "public_key", "signature"}`` with the signature
in hex: exactly what the database's ``audit_checkpoints`` row holds, so anyone with the
public key can check it (``checkpoint_message`` in domain/audit.py is the signed text).

When entries are written is decided by services/witness.py (after the commit).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import socket
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from probity.domain.audit import Checkpoint

log = logging.getLogger(__name__)

ENTRY_VERSION = 1


def entry_json(checkpoint: Checkpoint) -> str:
    """One witness entry, compact JSON without a newline."""
    return json.dumps(
        {
            "v": ENTRY_VERSION,
            "seq": checkpoint.seq,
            "hash": checkpoint.hash,
            "at": checkpoint.at,
            "public_key": checkpoint.public_key,
            "signature": checkpoint.signature.hex(),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def parse_entry(line: str) -> Checkpoint:
    """The checkpoint a witness line holds; ValueError (or KeyError/TypeError, both turned
    into ValueError) when the line is not one."""
    try:
        body = json.loads(line)
        seq = body["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ValueError("seq is not a positive integer")
        return Checkpoint(
            seq=seq,
            hash=str(body["hash"]),
            at=str(body["at"]),
            public_key=str(body["public_key"]),
            signature=bytes.fromhex(str(body["signature"])),
        )
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a witness entry ({exc})") from exc


class Sink(Protocol):
    """Somewhere a witness entry goes. ``name`` is what warnings and counters call it."""

    name: str

    def append(self, checkpoint: Checkpoint) -> None: ...


@dataclass(frozen=True, slots=True)
class WitnessLine:
    """One line of a witness file: its number (from 1) and the checkpoint, or why it is not
    one."""

    number: int
    checkpoint: Checkpoint | None
    error: str | None = None


class WitnessFile:
    """An append-only JSON-lines file of checkpoints (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path}"

    def create(self) -> bool:
        """Create the file empty (0600) if it does not exist; True if it was created."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except FileExistsError:
            return False
        os.fsync(fd)
        os.close(fd)
        return True

    def append(self, checkpoint: Checkpoint) -> None:
        """Append one line. O_APPEND makes every process's single write land at the end (no
        interleaving with the API's other workers), fsync makes it durable before we return.
        The file is created (0600) if missing: a sink on a volume mounted later starts then."""
        data = (entry_json(checkpoint) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            written = os.write(fd, data)
            if written != len(data):  # a full disk; a torn line shows up as invalid in verify
                raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)

    def exists(self) -> bool:
        return self.path.is_file()

    def lines(self) -> Iterator[WitnessLine]:
        """Every non-empty line, parsed, oldest first: one pass over the file (a few hundred
        bytes a checkpoint, one checkpoint per 50 events and per verification)."""
        yield from self.lines_from(WitnessPosition())

    def size(self) -> int:
        return self.path.stat().st_size

    def lines_from(
        self, start: WitnessPosition, end: list[WitnessPosition] | None = None
    ) -> Iterator[WitnessLine]:
        """The non-empty lines after ``start`` (bytes and lines already read), parsed, oldest
        first. When ``end`` is given, the position after the last *complete* line read is
        appended to it: a last line without its newline (a write in progress, or torn by a
        full disk) is still parsed and reported, but the next read starts before it again."""
        number, at = start.lines, start.bytes
        with self.path.open("rb") as handle:
            handle.seek(at)
            for raw in handle:
                complete = raw.endswith(b"\n")
                if complete:
                    number += 1
                    at += len(raw)
                text = raw.decode("utf-8", errors="replace").strip()
                if not text:
                    continue
                shown = number if complete else number + 1
                try:
                    yield WitnessLine(shown, parse_entry(text))
                except ValueError as exc:
                    yield WitnessLine(shown, None, str(exc))
        if end is not None:
            end.append(WitnessPosition(at, number))


@dataclass(frozen=True, slots=True)
class WitnessPosition:
    """How far a witness file was read: ``bytes`` (always at the end of a line) and the
    number of ``lines`` before that point."""

    bytes: int = 0
    lines: int = 0


class _RaisingSysLogHandler(logging.handlers.SysLogHandler):
    """SysLogHandler swallows send errors (``handleError`` prints them); here they must
    reach the caller, to be counted as a failing sink."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # re-raises the exception emit() is handling


class SyslogSink:
    """One syslog message per entry, facility AUTHPRIV (security and audit messages), tagged
    ``probity-audit-witness:``. ``address`` is a Unix socket path or (host, UDP port)."""

    def __init__(self, address: str | tuple[str, int], *, timeout_s: float) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.name = "syslog" if address == "/dev/log" else f"syslog:{address}"

    def append(self, checkpoint: Checkpoint) -> None:
        handler = _RaisingSysLogHandler(
            address=self.address,
            facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV,
            socktype=socket.SOCK_DGRAM,
        )
        try:
            sock = getattr(handler, "socket", None)  # set by SysLogHandler, untyped
            if isinstance(sock, socket.socket):
                sock.settimeout(self.timeout_s)
            handler.ident = "probity-audit-witness: "
            record = logging.LogRecord(
                "probity.audit.witness",
                logging.INFO,
                __file__,
                0,
                entry_json(checkpoint),
                None,
                None,
            )
            handler.emit(record)
        finally:
            handler.close()


class HttpSink:
    """POST the entry as JSON (``Content-Type: application/json``); any answer but 2xx, or
    no answer within the timeout, is a failure."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.name = url

    def append(self, checkpoint: Checkpoint) -> None:
        request = urllib.request.Request(
            self.url,
            data=entry_json(checkpoint).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "probity-audit-witness"},
            method="POST",
        )
        with urllib.request.urlopen(
            request, timeout=self.timeout_s
        ) as answer:  # the operator's http(s) URL
            if not 200 <= answer.status < 300:
                raise OSError(f"{self.url} answered {answer.status}")


def parse_sink(spec: str, *, timeout_s: float) -> Sink:
    """A sink from its setting: ``file:PATH``, ``syslog``, ``syslog:/socket``,
    ``syslog://host:port``, ``http://...`` or ``https://...``."""
    if spec.startswith("file:"):
        path = spec.removeprefix("file:")
        if not path:
            raise ValueError("a file: witness sink needs a path (file:/mnt/other/witness.jsonl)")
        return WitnessFile(Path(path).expanduser())
    if spec == "syslog":
        return SyslogSink("/dev/log", timeout_s=timeout_s)
    if spec.startswith("syslog://"):
        parts = urlsplit(spec)
        if not parts.hostname:
            raise ValueError(f"witness sink {spec!r}: no host (syslog://host:514)")
        return SyslogSink((parts.hostname, parts.port or 514), timeout_s=timeout_s)
    if spec.startswith("syslog:"):
        return SyslogSink(spec.removeprefix("syslog:"), timeout_s=timeout_s)
    if spec.startswith(("http://", "https://")):
        return HttpSink(spec, timeout_s=timeout_s)
    raise ValueError(
        f"unknown witness sink {spec!r}: use file:PATH, syslog, syslog:/socket, "
        "syslog://host:port, or an http(s):// URL"
    )


@dataclass
class SinkFailures:
    """Failures of one sink since this process started."""

    count: int = 0
    last_error: str = ""


@dataclass
class Witness:
    """The home's witness file plus the configured sinks. ``publish`` never raises: the
    audited action has committed by the time it runs, so a failure is logged (the home file
    at ERROR: verify will find the witness behind) and counted in ``failures``."""

    home: WitnessFile
    sinks: Sequence[Sink] = ()
    failures: dict[str, SinkFailures] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, home_file: Path, specs: Sequence[str], *, timeout_s: float) -> Witness:
        return cls(WitnessFile(home_file), [parse_sink(s, timeout_s=timeout_s) for s in specs])

    def files(self) -> list[WitnessFile]:
        """The witnesses verify can read back: the home file first, then file: sinks."""
        return [self.home, *(s for s in self.sinks if isinstance(s, WitnessFile))]

    def publish(self, checkpoint: Checkpoint) -> None:
        for sink in (self.home, *self.sinks):
            try:
                sink.append(checkpoint)
            except Exception as exc:  # any sink error: record it, the action stands
                failed = self.failures.setdefault(sink.name, SinkFailures())
                failed.count += 1
                failed.last_error = f"{type(exc).__name__}: {exc}"
                level = logging.ERROR if sink is self.home else logging.WARNING
                log.log(
                    level,
                    "audit witness %s: could not write the checkpoint at event #%d: %s",
                    sink.name,
                    checkpoint.seq,
                    failed.last_error,
                )

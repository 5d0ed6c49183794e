"""One copy of the vector indexes per machine: an index process that the API workers call.

Why: an ``IndexSet`` holds every gallery's index in memory (a flat FAISS index of 1M
128-d templates is about 0.5 GiB, 10M about 5 GiB). ``probity serve --workers N`` runs N
API processes, and each used to load its own copy, so memory grew with N. With several
workers, ``probity serve`` now starts one **index process** per home, which owns the only
``IndexSet``; each worker gets an ``IndexClient``, which has ``IndexSet``'s public methods
and forwards them. One worker, the CLI and the tests keep the in-process ``IndexSet``:
no socket, no extra process.

Trade-offs: every index call of a worker becomes a round trip over a Unix socket (tens of
microseconds, plus the copy of the query and the hits: a few KB a search), and the index
process is one more thing that can die. Searches in the index process run in one thread
per connection; FAISS releases the GIL while it searches, so workers' searches still run
in parallel. The catch-up from the template log happens in the index process, once for
all workers, instead of once in each.

**Protocol.** A Unix stream socket ``<home>/run/index.sock`` (the folder 0700, the socket
0600). A connection starts with a mutual challenge (HMAC-SHA256 under a key derived from
the master key, so only a process that can read the master key may ask, and a worker
knows it talks to the real index process); the server also checks the peer's uid
(``SO_PEERCRED``). Then each request and each answer is one frame: an 8-byte little-endian
length, a 4-byte length of a JSON header, the header, and the raw bytes of the arrays it
lists (dtype and shape in the header). No pickle: nothing received is ever executed.

**Errors.** A ``ProbityError`` raised in the index process (``IndexBehind``,
``InvalidInput``, ...) is raised in the worker as the same class with the same message;
a built-in exception (``ValueError``) as itself; anything else as an ``IntegrityError``
that names it. If the index process cannot be reached, a call fails with
``IndexProcessDown`` (an ``IndexBehind``: the search is refused, 503), saying so; every
``IndexSet`` operation is idempotent (catching up twice changes nothing), so a call is
retried once on a fresh connection first. ``IndexProcess`` (used by ``probity serve``)
restarts a process that died.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import hmac
import importlib
import json
import logging
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from numpy.typing import NDArray

from probity.config import MilvusSettings, Settings
from probity.domain.faces import ModelVersion
from probity.errors import IntegrityError, ProbityError
from probity.index.base import Hit, VectorIndex
from probity.services.indexes import (
    IndexBehind,
    IndexKeys,
    IndexSet,
    IndexSlot,
    SlotState,
    TemplateLog,
)
from probity.storage.blobs import FileBlobStore
from probity.storage.db import Database
from probity.storage.keyring import Keyring, load_master_key
from probity.storage.vault import Vault

log = logging.getLogger("probity.index_server")

INDEX_SOCKET_ENV = "PROBITY_INDEX_SOCKET"
"""Set by ``probity serve`` for its workers: the index process's socket. When set,
``build_services`` gives the services an ``IndexClient`` instead of an ``IndexSet``."""

MAX_FRAME = 1 << 33
"""Largest frame accepted (8 GiB): a catch-up of a whole gallery passes its vectors once."""
_NONCE = 32
_MAC = 32
_HANDSHAKE_TIMEOUT_S = 10.0
_SOCKET_PATH_MAX = 107  # sun_path on Linux, less the final NUL


class IndexProcessDown(IndexBehind):
    """The index process of this home cannot be reached (it died, or is restarting). The
    search is refused rather than answered without the index; ``probity serve`` restarts
    the process, so a retry a moment later normally succeeds."""

    code = "index_process_down"
    status = 503


def socket_path(home: Path) -> Path:
    """``<home>/run/index.sock``."""
    return home / "run" / "index.sock"


def index_authkey(master_key: bytes) -> bytes:
    """The key of the socket's challenge: derived from the master key (HKDF-SHA256, its own
    label), so every process of the home agrees on it and nothing new is stored."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"probity/index-server/v1"
    ).derive(master_key)


def index_set(settings: Settings, db: Database, vault: Vault, master_key: bytes) -> IndexSet:
    """What ``build_services`` hands the services: an ``IndexClient`` when the environment
    names an index process's socket (``INDEX_SOCKET_ENV``, set by ``probity serve`` for its
    workers), else the in-process ``IndexSet``."""
    named = os.environ.get(INDEX_SOCKET_ENV)
    if named:
        return IndexClient(
            Path(named),
            authkey=index_authkey(master_key),
            directory=settings.index_dir,
            backend=settings.index_backend,
            seal=IndexKeys(db, vault.keyring),
            milvus=settings.milvus,
        )
    return IndexSet(
        directory=settings.index_dir,
        backend=settings.index_backend,
        seal=IndexKeys(db, vault.keyring),
        log=TemplateLog(db, vault),
        milvus=settings.milvus,
    )


# -- frames -----------------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, size: int) -> memoryview:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise EOFError("the connection was closed")
        got += n
    return view


def _send_frame(sock: socket.socket, header: dict[str, Any], arrays: Sequence[Any] = ()) -> None:
    chunks = [np.ascontiguousarray(a) for a in arrays]
    header = {**header, "arrays": [[c.dtype.str, list(c.shape)] for c in chunks]}
    head = json.dumps(header, separators=(",", ":")).encode()
    body = [struct.pack("<I", len(head)), head, *(c.tobytes() for c in chunks)]
    total = sum(len(b) for b in body)
    sock.sendall(b"".join([struct.pack("<Q", total), *body]))


def _recv_frame(sock: socket.socket) -> tuple[dict[str, Any], list[NDArray[Any]]]:
    (total,) = struct.unpack("<Q", _recv_exact(sock, 8))
    if total > MAX_FRAME:
        raise IntegrityError(f"an index frame of {total} bytes is over the limit")
    data = _recv_exact(sock, total)
    (head_len,) = struct.unpack("<I", data[:4])
    header = json.loads(bytes(data[4 : 4 + head_len]))
    arrays: list[NDArray[Any]] = []
    at = 4 + head_len
    for dtype_text, shape in header.get("arrays", []):
        dtype = np.dtype(dtype_text)
        if dtype.hasobject:
            raise IntegrityError("an index frame holds an object array")
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if at + size > total:
            raise IntegrityError("an index frame is shorter than its header says")
        arrays.append(np.frombuffer(data[at : at + size], dtype=dtype).reshape(shape))
        at += size
    return header, arrays


def _mac(key: bytes, role: bytes, nonce: bytes) -> bytes:
    return hmac.new(key, role + nonce, hashlib.sha256).digest()


# -- values -----------------------------------------------------------------------------------


def _slot_out(slot: IndexSlot) -> dict[str, Any]:
    m = slot.model
    return {"gallery_id": slot.gallery_id, "model": [m.name, m.version, m.dimension]}


def _slot_in(data: Mapping[str, Any]) -> IndexSlot:
    name, version, dimension = data["model"]
    return IndexSlot(str(data["gallery_id"]), ModelVersion(str(name), str(version), int(dimension)))


def _state_out(state: SlotState) -> dict[str, Any]:
    return {
        "slot": _slot_out(state.slot),
        "vectors": state.vectors,
        "applied_seq": state.applied_seq,
        "head_seq": state.head_seq,
        "behind": state.behind,
    }


def _state_in(data: Mapping[str, Any]) -> SlotState:
    return SlotState(
        _slot_in(data["slot"]),
        int(data["vectors"]),
        int(data["applied_seq"]),
        int(data["head_seq"]),
        int(data["behind"]),
    )


class RemoteIndex:
    """What ``get``, ``catch_up`` and ``rebuild`` return through an ``IndexClient``: the
    index's size, dimension and applied seq as it stood when the call returned (what their
    callers read). The vectors stay in the index process, so the other ``VectorIndex``
    methods refuse; use the ``IndexClient``'s own methods."""

    def __init__(self, dimension: int, vectors: int, applied_seq: int) -> None:
        self._dimension = dimension
        self._vectors = vectors
        self._applied_seq = applied_seq

    @property
    def dimension(self) -> int:
        return self._dimension

    def __len__(self) -> int:
        return self._vectors

    @property
    def applied_seq(self) -> int:
        return self._applied_seq

    def _elsewhere(self) -> IntegrityError:
        return IntegrityError(
            "this index lives in the index process; call the IndexClient, not its summary"
        )

    def add(self, ids: Sequence[int] | NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        raise self._elsewhere()

    def remove(self, ids: Sequence[int] | NDArray[np.int64]) -> int:
        raise self._elsewhere()

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        raise self._elsewhere()

    def ids(self) -> NDArray[np.int64]:
        raise self._elsewhere()

    def clear(self) -> None:
        raise self._elsewhere()

    def mark_applied(self, seq: int) -> None:
        raise self._elsewhere()

    def save(self) -> None:
        raise self._elsewhere()


def _index_out(index: VectorIndex) -> dict[str, Any]:
    return {"dimension": index.dimension, "vectors": len(index), "applied_seq": index.applied_seq}


def _index_in(data: Mapping[str, Any]) -> RemoteIndex:
    return RemoteIndex(int(data["dimension"]), int(data["vectors"]), int(data["applied_seq"]))


def _error_out(error: BaseException) -> dict[str, Any]:
    message = error.message if isinstance(error, ProbityError) else str(error)
    kind = type(error)
    return {"ok": False, "module": kind.__module__, "name": kind.__qualname__, "message": message}


def _error_in(header: Mapping[str, Any]) -> Exception:
    """The server's exception as the same class with the same message (see the module)."""
    module, name, message = str(header["module"]), str(header["name"]), str(header["message"])
    kind: object = None
    if module == "builtins" or module == "probity" or module.startswith("probity."):
        try:
            kind = importlib.import_module(module)
            for part in name.split("."):
                kind = getattr(kind, part)
        except (ImportError, AttributeError):
            kind = None
    if isinstance(kind, type) and issubclass(kind, ProbityError):
        error = kind.__new__(kind)
        ProbityError.__init__(error, message)
        return error
    if isinstance(kind, type) and issubclass(kind, Exception) and module == "builtins":
        try:
            return kind(message)
        except Exception:  # an odd constructor: fall through to the generic error
            pass
    return IntegrityError(f"the index process failed: {module}.{name}: {message}")


# -- the server -------------------------------------------------------------------------------


class IndexServer:
    """Serves one ``IndexSet`` over a Unix socket: one thread per connection."""

    def __init__(self, indexes: IndexSet, path: Path, *, authkey: bytes) -> None:
        self.indexes = indexes
        self.path = path
        self.authkey = authkey
        self._listener: socket.socket | None = None
        self._lock_file: Any = None

    def bind(self) -> None:
        """Take the home's index lock (one index process per home), create ``run/`` (0700)
        and listen on the socket (0600). Raises ``IntegrityError`` if another index process
        holds the lock or the path is too long for a Unix socket."""
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        if len(os.fsencode(self.path)) > _SOCKET_PATH_MAX:
            raise IntegrityError(
                f"the index socket path {self.path} is longer than a Unix socket allows "
                f"({_SOCKET_PATH_MAX} bytes): use a shorter home path"
            )
        lock = open(folder / "index.lock", "a")  # noqa: SIM115 (held for the process's life)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise IntegrityError(f"another index process serves this home ({self.path})") from None
        self._lock_file = lock
        self.path.unlink(missing_ok=True)  # a socket a killed process left
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        listener.listen(64)
        self._listener = listener

    def serve_forever(self) -> None:
        """Accept connections until the listener is closed (``close``) or a signal handler
        raises in this thread."""
        assert self._listener is not None, "bind() first"
        listener = self._listener
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                if self._listener is None:
                    return
                raise
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with _suppress_os():
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
            self.path.unlink(missing_ok=True)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _authenticate(self, conn: socket.socket) -> bool:
        if hasattr(socket, "SO_PEERCRED"):
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
            if uid != os.getuid():
                return False
        conn.settimeout(_HANDSHAKE_TIMEOUT_S)
        nonce = secrets.token_bytes(_NONCE)
        conn.sendall(nonce)
        answer = bytes(_recv_exact(conn, _MAC + _NONCE))
        if not hmac.compare_digest(answer[:_MAC], _mac(self.authkey, b"client", nonce)):
            return False
        conn.sendall(_mac(self.authkey, b"server", answer[_MAC:]))
        conn.settimeout(None)
        return True

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            try:
                if not self._authenticate(conn):
                    log.warning("index socket: a connection failed the challenge")
                    return
                while True:
                    header, arrays = _recv_frame(conn)
                    try:
                        value, out = self.dispatch(str(header["op"]), header, arrays)
                        reply: dict[str, Any] = {"ok": True, "value": value}
                    except Exception as error:  # goes back to the caller, as its own class
                        reply, out = _error_out(error), []
                    _send_frame(conn, reply, out)
            except (EOFError, OSError):
                return  # the worker went away
            except (ProbityError, ValueError, KeyError, TypeError) as error:  # a malformed frame
                log.warning("index socket: closing a connection: %s", error)
                return

    def dispatch(
        self, op: str, header: Mapping[str, Any], arrays: list[NDArray[Any]]
    ) -> tuple[Any, list[NDArray[Any]]]:
        """Run one ``IndexSet`` call; returns (JSON value, arrays)."""
        ix = self.indexes
        if op == "search":
            hits = ix.search(_slot_in(header["slot"]), arrays[0], int(header["k"]))
            counts = np.asarray([len(h) for h in hits], np.int64)
            ids = np.asarray([x.id for h in hits for x in h], np.int64)
            sims = np.asarray([x.similarity for h in hits for x in h], np.float64)
            return None, [counts, ids, sims]
        if op == "size":
            return ix.size(_slot_in(header["slot"])), []
        if op == "add":
            ix.add(_slot_in(header["slot"]), [int(i) for i in arrays[0]], arrays[1])
            return None, []
        if op == "catch_up":
            known = None
            if arrays:
                known = {int(i): arrays[1][n] for n, i in enumerate(arrays[0])}
            index = ix.catch_up(
                _slot_in(header["slot"]), known, force_save=bool(header["force_save"])
            )
            return _index_out(index), []
        if op == "get":
            return _index_out(ix.get(_slot_in(header["slot"]))), []
        if op == "rebuild":
            return _index_out(ix.rebuild(_slot_in(header["slot"]))), []
        if op == "refresh_all":
            return [_state_out(s) for s in ix.refresh_all()], []
        if op == "states":
            slots = header["slots"]
            chosen = None if slots is None else [_slot_in(s) for s in slots]
            return [_state_out(s) for s in ix.states(chosen)], []
        if op == "gaps":
            return [[name, behind] for name, behind in ix.gaps()], []
        if op == "drop":
            ix.drop(_slot_in(header["slot"]))
            return None, []
        if op == "drop_others":
            return ix.drop_others(_slot_in(header["slot"])), []
        if op == "warm":
            return ix.warm(), []
        if op == "ping":
            return os.getpid(), []
        raise IntegrityError(f"the index process has no operation '{op}'")


class _suppress_os:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, tb: object) -> bool:
        return isinstance(value, OSError)


# -- the client -------------------------------------------------------------------------------


class IndexClient(IndexSet):
    """``IndexSet``'s public methods, forwarded to the index process. One connection per
    thread (the API runs requests in a thread pool), opened on first use. ``path`` is
    answered here (a file name, no I/O); everything that reads or changes an index goes to
    the index process."""

    def __init__(
        self,
        socket_file: Path,
        *,
        authkey: bytes,
        directory: Path,
        backend: str,
        seal: IndexKeys,
        milvus: MilvusSettings | None = None,
    ) -> None:
        super().__init__(directory=directory, backend=backend, seal=seal, log=None, milvus=milvus)
        self.socket_file = socket_file
        self.authkey = authkey
        self._local = threading.local()

    # -- the wire ---------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(_HANDSHAKE_TIMEOUT_S)
            conn.connect(str(self.socket_file))
            nonce = bytes(_recv_exact(conn, _NONCE))
            mine = secrets.token_bytes(_NONCE)
            conn.sendall(_mac(self.authkey, b"client", nonce) + mine)
            try:
                proof = bytes(_recv_exact(conn, _MAC))
            except EOFError:
                raise IntegrityError(
                    f"the index process at {self.socket_file} refused this connection: it "
                    "holds another master key (another home?) or runs as another user"
                ) from None
            if not hmac.compare_digest(proof, _mac(self.authkey, b"server", mine)):
                raise IntegrityError(
                    f"the index socket {self.socket_file} did not prove it knows this home's key"
                )
            conn.settimeout(None)
            return conn
        except BaseException:
            conn.close()
            raise

    def _call(
        self, op: str, fields: Mapping[str, Any] | None = None, arrays: Sequence[Any] = ()
    ) -> tuple[Any, list[NDArray[Any]]]:
        header = {"op": op, **(fields or {})}
        last: BaseException | None = None
        for _attempt in range(2):  # every operation is idempotent: one retry, fresh socket
            conn: socket.socket | None = getattr(self._local, "conn", None)
            try:
                if conn is None:
                    conn = self._connect()
                    self._local.conn = conn
                _send_frame(conn, header, arrays)
                reply, out = _recv_frame(conn)
            except (OSError, EOFError) as error:
                last = error
                if conn is not None:
                    conn.close()
                self._local.conn = None
                continue
            except BaseException:
                # Interrupted half-way (a bad frame, KeyboardInterrupt): the stream may be
                # out of step, so this connection is not used again.
                if conn is not None:
                    conn.close()
                self._local.conn = None
                raise
            if not reply.get("ok"):
                raise _error_in(reply)
            return reply.get("value"), out
        raise IndexProcessDown(
            f"the index process is down (socket {self.socket_file}: {last}); the search "
            "was refused rather than answered without the index. 'probity serve' restarts "
            "it: retry in a moment, or see the server's log"
        )

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def ping(self) -> int:
        """The index process's pid (a cheap check that it answers)."""
        value, _ = self._call("ping")
        return int(value)

    # -- IndexSet's public methods ------------------------------------------------------------

    def search(self, slot: IndexSlot, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        _, (counts, ids, sims) = self._call("search", {"slot": _slot_out(slot), "k": k}, [q])
        out: list[list[Hit]] = []
        at = 0
        for count in counts.tolist():
            out.append([Hit(int(ids[n]), float(sims[n])) for n in range(at, at + int(count))])
            at += int(count)
        return out

    def size(self, slot: IndexSlot) -> int:
        value, _ = self._call("size", {"slot": _slot_out(slot)})
        return int(value)

    def add(self, slot: IndexSlot, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
        if not len(ids):
            return
        self._call(
            "add",
            {"slot": _slot_out(slot)},
            [np.asarray(ids, np.int64), np.asarray(vectors, np.float32)],
        )

    def catch_up(
        self,
        slot: IndexSlot,
        known: Mapping[int, NDArray[np.float32]] | None = None,
        *,
        force_save: bool = False,
    ) -> VectorIndex:
        arrays: list[Any] = []
        if known:
            arrays = [
                np.asarray(list(known), np.int64),
                np.stack([np.asarray(v, np.float32) for v in known.values()]),
            ]
        value, _ = self._call(
            "catch_up", {"slot": _slot_out(slot), "force_save": force_save}, arrays
        )
        return _index_in(value)

    def get(self, slot: IndexSlot) -> VectorIndex:
        value, _ = self._call("get", {"slot": _slot_out(slot)})
        return _index_in(value)

    def rebuild(self, slot: IndexSlot) -> VectorIndex:
        value, _ = self._call("rebuild", {"slot": _slot_out(slot)})
        return _index_in(value)

    def refresh_all(self) -> list[SlotState]:
        value, _ = self._call("refresh_all")
        return [_state_in(s) for s in value]

    def states(self, slots: Sequence[IndexSlot] | None = None) -> list[SlotState]:
        chosen = None if slots is None else [_slot_out(s) for s in slots]
        value, _ = self._call("states", {"slots": chosen})
        return [_state_in(s) for s in value]

    def gaps(self) -> list[tuple[str, int]]:
        value, _ = self._call("gaps")
        return [(str(name), int(behind)) for name, behind in value]

    def warm(self) -> int:
        """Ask the index process to open and catch up every index (it also does so by
        itself when it starts, so a worker's call finds them open and costs a head read
        a slot)."""
        value, _ = self._call("warm")
        return int(value)

    def finish_retraining(self, on_wait: Callable[[str, int], None] | None = None) -> list[str]:
        """Nothing to wait for: the indexes, and any retraining, live in the index process,
        which outlives this client (a CLI command beside a running server)."""
        return []

    def drop(self, slot: IndexSlot) -> None:
        self._call("drop", {"slot": _slot_out(slot)})

    def drop_others(self, keep: IndexSlot) -> list[str]:
        value, _ = self._call("drop_others", {"slot": _slot_out(keep)})
        return [str(name) for name in value]


# -- the process ------------------------------------------------------------------------------


class IndexProcess:
    """Starts the home's index process, waits until its socket accepts connections (it
    says so on a pipe: no polling), restarts it if it dies, and stops it. ``probity serve``
    uses one around uvicorn when it runs several workers.

    The child also holds the read end of a "lifeline" pipe whose write end only this
    process holds: when this process ends, however it ends, the child reads EOF and exits,
    so no index process outlives its server. A child that keeps dying is restarted after
    a growing pause (1 s doubling to 30 s) rather than in a tight loop. A child that exits
    with status 0 was asked to stop (a signal or the lifeline), so it is not restarted; a
    crash (a signal it did not handle, the kernel's OOM killer, an exception) is."""

    START_TIMEOUT_S = 600.0

    def __init__(self, settings: Settings, *, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.path = socket_path(settings.home)
        base = dict(os.environ if env is None else env)
        base.pop(INDEX_SOCKET_ENV, None)  # the index process serves; it is no client
        # What the child needs of ``settings`` (it reads its own from the environment, as
        # uvicorn's workers do), so that settings given in code reach it too.
        base["PROBITY_HOME"] = str(settings.home)
        base["PROBITY_INDEX_BACKEND"] = settings.index_backend
        if settings.database_url:
            base["PROBITY_DATABASE_URL"] = settings.database_url
        if settings.master_key:
            base["PROBITY_MASTER_KEY"] = settings.master_key
        self.env = base
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lifeline: int | None = None
        self._watcher: threading.Thread | None = None
        self._on_restart: Callable[[int], None] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self, *, supervise: bool = True) -> None:
        """Start the process and return once its socket accepts connections. With
        ``supervise``, a thread restarts it whenever it dies until ``stop``."""
        self._spawn()
        if supervise:
            self._watcher = threading.Thread(target=self._supervise, daemon=True)
            self._watcher.start()

    def _spawn(self) -> None:
        ready_r, ready_w = os.pipe()
        life_r, life_w = os.pipe()
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "probity.services.index_server",
                    *("--ready-fd", str(ready_w), "--lifeline-fd", str(life_r)),
                ],
                env=self.env,
                pass_fds=(ready_w, life_r),
                stdin=subprocess.DEVNULL,
                # Its own session: a signal to the server's process group (Ctrl-C, a
                # supervisor's killpg) reaches uvicorn, which returns, and stop() ends the
                # index process last; if this process dies instead, the lifeline does.
                start_new_session=True,
            )
        except BaseException:
            for fd in (ready_r, ready_w, life_r, life_w):
                os.close(fd)
            raise
        os.close(ready_w)
        os.close(life_r)
        os.set_inheritable(life_w, False)
        with os.fdopen(ready_r, "rb") as ready:
            line = ready.readline()  # blocks until the child is listening, or exits
        if line.strip() != b"ready":
            os.close(life_w)
            code = process.wait()
            raise IntegrityError(
                f"the index process exited ({code}) before it was ready; see its log above"
            )
        if self._lifeline is not None:
            with _suppress_os():
                os.close(self._lifeline)
        self._lifeline = life_w
        self.process = process

    def _supervise(self) -> None:
        pause = 1.0
        while not self._stopping.is_set():
            process = self.process
            assert process is not None
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set() or code == 0:
                return  # stopped, or asked to stop (SIGTERM, SIGINT, the lifeline): exit 0
            log.error("the index process %d exited (%s); restarting it", process.pid, code)
            if time.monotonic() - started > 60:
                pause = 1.0
            while not self._stopping.is_set():
                try:
                    self._spawn()
                    break
                except Exception:
                    log.exception("the index process did not start; retrying in %.0f s", pause)
                    self._stopping.wait(pause)
                    pause = min(pause * 2, 30.0)
            else:
                return
            self.restarts += 1
            if self._on_restart is not None:
                self._on_restart(self.restarts)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout_s``) and its supervisor."""
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._lifeline is not None:
            with _suppress_os():
                os.close(self._lifeline)
            self._lifeline = None
        if self._watcher is not None:
            self._watcher.join(timeout=timeout_s)


def _local_indexes(settings: Settings) -> tuple[IndexSet, bytes, Database]:
    """The home's in-process ``IndexSet``, built as ``build_services`` builds it."""
    master = load_master_key(env_value=settings.master_key, key_file=settings.master_key_path)
    db = Database(settings.resolved_database_url)
    vault = Vault(Keyring(master, settings.key_dir), FileBlobStore(settings.blob_dir))
    os.environ.pop(INDEX_SOCKET_ENV, None)
    return index_set(settings, db, vault, master), master, db


def _warm(indexes: IndexSet) -> None:
    try:
        indexes.warm()
    except Exception:  # a search reports the problem in full; serving goes on
        log.exception("could not open the indexes at start")


class _Stop(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m probity.services.index_server``: serve the home named by the
    ``PROBITY_`` environment. ``--ready-fd``: write "ready" there once listening.
    ``--lifeline-fd``: exit when it reads EOF (the parent ended)."""
    parser = argparse.ArgumentParser(description="Probity's index process (one per home).")
    parser.add_argument("--ready-fd", type=int, default=None)
    parser.add_argument("--lifeline-fd", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s index %(levelname)s %(message)s")
    settings = Settings()
    indexes, master, db = _local_indexes(settings)
    server = IndexServer(indexes, socket_path(settings.home), authkey=index_authkey(master))

    def stop(_signum: int, _frame: object) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.lifeline_fd is not None:
        fd = args.lifeline_fd

        def watch() -> None:
            with _suppress_os():
                while os.read(fd, 1):
                    pass
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True).start()
    try:
        server.bind()
        log.info("index process %d serving %s", os.getpid(), server.path)
        if args.ready_fd is not None:
            os.write(args.ready_fd, b"ready\n")
            os.close(args.ready_fd)
        # Open every index now, in the background (as a served API process did before):
        # calls that arrive meanwhile wait for their index like any other reader.
        threading.Thread(target=_warm, args=(indexes,), name="index-warm", daemon=True).start()
        server.serve_forever()
    except _Stop:
        pass
    finally:
        server.close()
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

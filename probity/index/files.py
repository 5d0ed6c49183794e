"""Index files on disk: crash-safe replacement and the sealed (encrypted) file format.

**Atomic writes.** A reader (or a restart after a power cut) sees either the old file or the
new one, never a half-written file: the bytes go to a temporary file in the same directory,
are flushed to disk, and then replace the target with one atomic rename, after which the
directory itself is flushed so the rename survives a crash.

**Sealed files.** An index file holds every template of a gallery, so it is encrypted at rest
(AES-256-GCM) under the index key of the KEK epoch current when it was saved
(``IndexSeal.current``). Keys rotate with every erasure, so a copy of ``index/`` taken before
an erasure cannot be opened once that epoch's KEK is destroyed. Layout::

    b"PROBITY-INDEX\\x01\\n"                  magic (15 bytes)
    header length (4 bytes, big-endian)      then the header: canonical JSON, in the clear
        {"applied_seq", "backend", "chunk_bytes", "count", "dimension", "epoch",
         "name", "payload_bytes", "version": 1}
    chunk 0 .. chunk m-1                     each: 12-byte random nonce, ciphertext, 16-byte tag

The payload (the backend's own serialisation: ``.npz`` bytes, ``faiss.serialize_index``) is
cut into chunks of ``chunk_bytes`` (16 MiB by default; always at least one chunk, so an empty
index still authenticates its header). Each chunk is its own GCM message whose associated
data is ``magic + header length + header + file name + chunk number (8 bytes) + final flag``:
the header (applied_seq included) is authenticated by every chunk, chunks cannot be
reordered, dropped or cut off at a chunk boundary, and a file renamed into another gallery's
slot fails authentication. Chunking keeps the memory of sealing bounded (one chunk of
ciphertext beyond the payload; decryption goes straight into the payload buffer) and stays
far below GCM's per-message limits (64 GiB; ``cryptography`` accepts at most 2 GiB a call).

What stays in the clear: the header (gallery size, dimension, backend, applied seq, epoch),
which is metadata the database holds anyway. Cost: AES-GCM with AES-NI runs at GB/s, so
sealing adds little to a save that fsyncs ~0.5 GB at 1M x 128-d (``bench/index_sealing.py``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from numpy.typing import NDArray

from probity.errors import IntegrityError
from probity.index.sealing import IndexFileUnreadable, IndexSeal

__all__ = [
    "CHUNK_BYTES",
    "FILE_MODE",
    "MAGIC",
    "SealedHeader",
    "atomic_write_bytes",
    "atomic_writer",
    "fsync_directory",
    "read_sealed",
    "write_sealed",
]

FILE_MODE = 0o600
"""Index files hold biometric templates: readable and writable by the owner only."""

MAGIC = b"PROBITY-INDEX\x01\n"
"""First bytes of a sealed index file (a plain FAISS or numpy file never starts so)."""

FORMAT_VERSION = 1
CHUNK_BYTES = 16 * 1024 * 1024
"""Plaintext bytes per GCM message: bounds the extra memory of a save to about this much."""

_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_BYTES = 32
_LENGTH_BYTES = 4
_MAX_HEADER_BYTES = 64 * 1024
_HEADER_FIELDS = frozenset(
    {
        "applied_seq",
        "backend",
        "chunk_bytes",
        "count",
        "dimension",
        "epoch",
        "name",
        "payload_bytes",
        "version",
    }
)


@dataclass(frozen=True, slots=True)
class SealedHeader:
    """What a sealed index file says of itself (authenticated once ``read_sealed`` returns)."""

    backend: str
    dimension: int
    count: int  # vectors in the payload
    applied_seq: int  # the last template_changes seq the saved vectors hold
    epoch: int  # the KEK epoch whose index key sealed the file


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[IO[bytes]]:
    """A binary file handle whose contents replace ``path`` atomically when the block ends.

    The file is created with mode 0600 as ``.<name>.<random>.tmp`` next to the target (the
    parent directory must exist), fsynced, renamed over ``path``, and the directory fsynced.
    If the block raises, the temporary file is removed and ``path`` is untouched.
    """
    directory = path.parent
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp already creates 0600; say so explicitly in case a platform differs.
            os.fchmod(handle.fileno(), FILE_MODE)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    fsync_directory(directory)


def atomic_write_bytes(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Replace ``path`` with ``data`` atomically; the file is created with mode 0600.

    The parent directory must exist. The temporary file (``.<name>.<random>.tmp`` next to the
    target) is removed if anything fails, so no partial files are left behind. Cost: two
    ``fsync`` calls, which dominate for small files (milliseconds on SSD) and are what makes
    the write survive a power cut. ``data`` may be a ``memoryview`` (e.g. of a numpy array) so
    that large indexes are not copied once more just to be written.
    """
    with atomic_writer(path) as handle:
        handle.write(data)


def fsync_directory(directory: Path) -> None:
    """Flush a directory entry change (a rename) to disk. A no-op where unsupported (Windows)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename itself already happened
    finally:
        os.close(fd)


# -- sealed index files -------------------------------------------------------------------


def write_sealed(
    path: Path,
    payload: bytes | bytearray | memoryview,
    *,
    seal: IndexSeal,
    applied_seq: int,
    backend: str,
    dimension: int,
    count: int,
    chunk_bytes: int = CHUNK_BYTES,
) -> None:
    """Seal ``payload`` (a backend's serialised index of ``count`` vectors) into ``path``,
    atomically (``atomic_writer``), under the key ``seal.current()`` gives.

    ``applied_seq``, ``backend``, ``dimension`` and ``count`` go in the authenticated header.
    Extra memory: one chunk of ciphertext (``chunk_bytes`` + 16), whatever the payload size;
    ``payload`` may be a ``memoryview`` of a numpy array (not copied). The parent directory
    must exist.
    """
    if chunk_bytes <= 0:
        raise ValueError("chunk_bytes must be positive")
    epoch, key = seal.current()
    if len(key) != _KEY_BYTES:
        raise IntegrityError(f"an index key must be {_KEY_BYTES} bytes, got {len(key)}")
    view = memoryview(payload).cast("B")
    header = {
        "applied_seq": int(applied_seq),
        "backend": backend,
        "chunk_bytes": int(chunk_bytes),
        "count": int(count),
        "dimension": int(dimension),
        "epoch": int(epoch),
        "name": path.name,
        "payload_bytes": len(view),
        "version": FORMAT_VERSION,
    }
    prefix = _prefix(header)
    aead = AESGCM(key)
    chunks = _chunk_count(len(view), chunk_bytes)
    buffer = bytearray(min(len(view), chunk_bytes) + _TAG_BYTES)
    with atomic_writer(path) as handle:
        handle.write(prefix)
        for number in range(chunks):
            plain = view[number * chunk_bytes : (number + 1) * chunk_bytes]
            out = memoryview(buffer)[: len(plain) + _TAG_BYTES]
            nonce = os.urandom(_NONCE_BYTES)
            aad = _chunk_aad(prefix, path.name, number, final=number == chunks - 1)
            aead.encrypt_into(nonce, plain, aad, out)
            handle.write(nonce)
            handle.write(out)


def read_sealed(
    path: Path, *, seal: IndexSeal, backend: str
) -> tuple[NDArray[np.uint8], SealedHeader]:
    """Open a file ``write_sealed`` wrote for ``backend``: (payload, header).

    The payload is decrypted chunk by chunk straight into one uint8 array
    (no other copy of the plaintext). Raises ``IndexFileUnreadable``, saying which, for a
    missing file, a file without the magic (a plain index written before sealing), a bad or
    inconsistent header, another backend's file, a truncated or padded file, a key that
    ``seal.key`` refuses (its KEK destroyed by an erasure), or a failed authentication
    (wrong key, altered bytes, or a file renamed from another slot).
    """
    try:
        with open(path, "rb") as handle:
            return _read_open(path, handle, seal=seal, backend=backend)
    except FileNotFoundError:
        raise _unreadable(path, "does not exist") from None
    except OSError as error:
        raise _unreadable(path, f"cannot be read ({error})") from error


def _read_open(
    path: Path, handle: io.BufferedReader, *, seal: IndexSeal, backend: str
) -> tuple[NDArray[np.uint8], SealedHeader]:
    size = os.fstat(handle.fileno()).st_size
    start = handle.read(len(MAGIC) + _LENGTH_BYTES)
    if start[: len(MAGIC)] != MAGIC:
        raise _unreadable(
            path,
            "is not a sealed index file (a plain index written before index files were sealed?)",
        )
    if len(start) < len(MAGIC) + _LENGTH_BYTES:
        raise _unreadable(path, "is truncated (in its header)")
    header_length = int.from_bytes(start[len(MAGIC) :], "big")
    if header_length > _MAX_HEADER_BYTES:
        raise _unreadable(path, f"has a bad header (length {header_length})")
    header_bytes = handle.read(header_length)
    if len(header_bytes) < header_length:
        raise _unreadable(path, "is truncated (in its header)")
    header = _parse_header(path, header_bytes)
    if header["backend"] != backend:
        raise _unreadable(path, f"holds a '{header['backend']}' index, expected '{backend}'")
    if header["name"] != path.name:
        raise _unreadable(path, f"was sealed for the slot '{header['name']}', not this one")
    payload_bytes, chunk_bytes = header["payload_bytes"], header["chunk_bytes"]
    chunks = _chunk_count(payload_bytes, chunk_bytes)
    expected = len(start) + header_length + payload_bytes + chunks * (_NONCE_BYTES + _TAG_BYTES)
    if size < expected:
        raise _unreadable(path, f"is truncated ({size} bytes, expected {expected})")
    if size > expected:
        raise _unreadable(path, f"has {size - expected} bytes after its last chunk")
    epoch = header["epoch"]
    try:
        key = seal.key(epoch)
    except IntegrityError as error:
        raise _unreadable(
            path, f"is sealed under the index key of epoch {epoch}, which is gone ({error})"
        ) from error
    if len(key) != _KEY_BYTES:
        raise _unreadable(path, f"cannot be opened: the index key of epoch {epoch} is malformed")
    aead = AESGCM(key)
    prefix = start + header_bytes
    payload: NDArray[np.uint8] = np.empty(payload_bytes, dtype=np.uint8)
    out = payload.data
    buffer = bytearray(min(payload_bytes, chunk_bytes) + _NONCE_BYTES + _TAG_BYTES)
    for number in range(chunks):
        plain = out[number * chunk_bytes : (number + 1) * chunk_bytes]
        sealed = memoryview(buffer)[: _NONCE_BYTES + len(plain) + _TAG_BYTES]
        if handle.readinto(sealed) != len(sealed):
            raise _unreadable(path, "is truncated (it shrank while being read)")
        aad = _chunk_aad(prefix, path.name, number, final=number == chunks - 1)
        try:
            aead.decrypt_into(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], aad, plain)
        except InvalidTag:
            raise _unreadable(
                path,
                f"failed authentication in chunk {number} of {chunks}: a key other than "
                f"epoch {epoch}'s, altered bytes, or a file renamed from another slot",
            ) from None
    return payload, SealedHeader(
        backend=header["backend"],
        dimension=header["dimension"],
        count=header["count"],
        applied_seq=header["applied_seq"],
        epoch=epoch,
    )


def _parse_header(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _unreadable(path, "has a bad header (not JSON)") from None
    if not isinstance(header, dict) or set(header) != _HEADER_FIELDS:
        raise _unreadable(path, "has a bad header (wrong fields)")
    if header["version"] != FORMAT_VERSION:
        raise _unreadable(path, f"has format version {header['version']!r}, not {FORMAT_VERSION}")
    for field in ("applied_seq", "count", "dimension", "epoch", "payload_bytes"):
        value = header[field]
        if type(value) is not int or value < 0:
            raise _unreadable(path, f"has a bad header ({field} {value!r})")
    chunk_bytes = header["chunk_bytes"]
    if type(chunk_bytes) is not int or chunk_bytes <= 0:
        raise _unreadable(path, f"has a bad header (chunk_bytes {chunk_bytes!r})")
    if not isinstance(header["backend"], str) or not isinstance(header["name"], str):
        raise _unreadable(path, "has a bad header (backend or name)")
    return header


def _prefix(header: dict[str, Any]) -> bytes:
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return MAGIC + len(raw).to_bytes(_LENGTH_BYTES, "big") + raw


def _chunk_count(payload_bytes: int, chunk_bytes: int) -> int:
    # At least one chunk, so an empty payload still authenticates the header.
    return max(1, -(-payload_bytes // chunk_bytes))


def _chunk_aad(prefix: bytes, name: str, number: int, *, final: bool) -> bytes:
    name_bytes = name.encode("utf-8")
    return b"".join(
        (
            prefix,
            len(name_bytes).to_bytes(4, "big"),
            name_bytes,
            number.to_bytes(8, "big"),
            b"\x01" if final else b"\x00",
        )
    )


def _unreadable(path: Path, reason: str) -> IndexFileUnreadable:
    return IndexFileUnreadable(f"index file {path} {reason}; rebuild the index")

"""Keys: the master key and per-subject data keys (envelope encryption, AES-256-GCM).

- The **master key** (32 random bytes) comes from ``PROBITY_MASTER_KEY`` (base64) or from the
  key file ``<home>/master.key`` that ``probity init`` writes with mode 0600. It never goes
  in the database.
- Each **subject** gets its own random 32-byte data key, stored only *wrapped* (encrypted by
  the current key-encryption key, see ``Keyring``) in ``subject_keys``. Every image and
  template of the subject is encrypted with it. Destroying that one row (crypto-shredding)
  and rotating the key-encryption key makes all of the subject's ciphertext, including
  copies in backups of the database and blob store, unreadable with the current keys.
- Sealed format: ``b"\\x01" + 12-byte random nonce + ciphertext || 16-byte GCM tag``. The
  associated data binds a ciphertext to its purpose and owner, so a template blob cannot be
  swapped for another subject's.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from probity.errors import IntegrityError, NotInitialised

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_V1 = b"\x01"


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` under ``key`` (AES-256-GCM, random nonce)."""
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT_V1 + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Decrypt what ``seal`` produced; a wrong key, wrong aad or altered byte raises
    IntegrityError."""
    if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != FORMAT_V1:
        raise IntegrityError("sealed data has an unknown format")
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag as exc:
        raise IntegrityError("decryption failed: wrong key or altered data") from exc


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


WRAPPED_V2 = b"\x02"
"""Wrapped-key format 2: ``b"\x02" + epoch (4 bytes, big-endian) + seal(KEK_epoch, ...)``.
Format 1 (no prefix) is epoch 0, wrapped directly by the master key (homes made before key
rotation existed read as they always did)."""

WRAPPED_V3 = b"\x03"
"""Wrapped-key format 3 (the KEK tree): ``b"\x03" + bucket (2 bytes, big-endian) +
generation (4 bytes, big-endian) + seal(bucket KEK, data key, aad)``. The first three bytes
name the bucket, so an expression index on ``substr(wrapped, 1, 3)`` finds one bucket's rows
without a column of its own (see ``bucket_prefix`` and storage/vault.py)."""

BUCKETS = 4096
"""Bucket KEKs under the root KEK. An erasure re-wraps the data keys of the erased owners'
buckets only: about N / 4096 keys (2,400 at 10 million owners), plus the 4,096 bucket KEKs
themselves. More buckets would make the first term smaller and the second larger; at 10
million both are a few thousand AES-GCM wraps. Fixed for the life of a home: owners are
placed by ``bucket_of``, which depends on it."""


class Keyring:
    """Wraps and unwraps data keys with the current **key-encryption key** (KEK).

    The KEK of epoch 0 is the master key itself. Every erasure rotates it (storage/vault.py
    ``Vault.rotate``): a new random root KEK of the next epoch is written to
    ``<key_dir>/kek-<epoch>.key`` (sealed by the master key, mode 0600), and once that has
    committed the older KEK files are overwritten and deleted. Since migration 0016 the root
    wraps 4,096 bucket KEKs (``kek_buckets``), which wrap the data keys (format 3); the
    erased owners' buckets get new bucket KEKs and only their data keys are re-wrapped. A
    copy of the database taken before an erasure therefore holds the erased subject's data
    key under a bucket KEK that exists only sealed under a root that no longer exists: the
    current keys cannot open it.

    A data key dropped *without* an erasure (a rights request's photo key when the request
    closes) used to die at the next erasure's full rotation. With the tree its bucket is
    marked stale (``Vault.forget_key``, table ``kek_stale_buckets``) and the next erasure's
    rotation gives that bucket a fresh KEK too, so it still dies at the next erasure; until
    then a backup taken before the close opens it with the current keys, as before.

    What this does not defend against: a backup that includes both the old ``keys``
    folder and the master key (a full copy of the home with ``master.key`` in it) holds
    everything it needs. Back up ``keys/`` and the master key apart from the data, and keep
    only the latest key backup (see the README)."""

    def __init__(self, master_key: bytes, key_dir: Path | None = None) -> None:
        if len(master_key) != KEY_BYTES:
            raise IntegrityError(f"the master key must be {KEY_BYTES} bytes")
        self._master = master_key
        self.key_dir = key_dir
        self._keks: dict[int, bytes] = {0: master_key}
        self._bucket_salt = HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"probity/kek-bucket-of/v1"
        ).derive(master_key)
        self._floor = 0  # KEKs of epochs below this are destroyed: never loaded again
        # The oldest KEK file on disk marks where the living keys start: older epochs,
        # the master key's own epoch 0 included, were retired by a rotation.
        present = self._epochs_on_disk()
        if present:
            self.destroy_below(min(present), shred=False)

    # -- the KEK tree ---------------------------------------------------------------------

    def bucket_of(self, aad: bytes) -> int:
        """The bucket of the owner that ``aad`` names: HMAC-SHA256 under a key derived from
        the master key, modulo ``BUCKETS``. Keyed, so that the database alone does not tell
        which owners share a bucket; uniform whatever the shape of the ids."""
        digest = hmac.new(self._bucket_salt, aad, hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") % BUCKETS

    @staticmethod
    def bucket_prefix(bucket: int) -> bytes:
        """The first three bytes of every format-3 wrapped key in ``bucket``."""
        return WRAPPED_V3 + bucket.to_bytes(2, "big")

    @staticmethod
    def _bucket_aad(bucket: int, generation: int) -> bytes:
        return f"probity/kek-bucket/{bucket}/{generation}".encode()

    def seal_bucket_kek(self, epoch: int, bucket: int, generation: int, kek: bytes) -> bytes:
        """A bucket KEK wrapped under the root KEK of ``epoch`` (stored in ``kek_buckets``)."""
        return seal(self.kek(epoch), kek, self._bucket_aad(bucket, generation))

    def open_bucket_kek(self, epoch: int, bucket: int, generation: int, sealed: bytes) -> bytes:
        """What ``seal_bucket_kek`` made; IntegrityError once the root of ``epoch`` is gone."""
        return unseal(self.kek(epoch), sealed, self._bucket_aad(bucket, generation))

    @staticmethod
    def wrap_in_bucket(
        bucket: int, generation: int, bucket_kek: bytes, aad: bytes, data_key: bytes
    ) -> bytes:
        """A data key wrapped in format 3 under its bucket's KEK of ``generation``."""
        return (
            Keyring.bucket_prefix(bucket)
            + generation.to_bytes(4, "big")
            + seal(bucket_kek, data_key, aad)
        )

    @staticmethod
    def bucket_named(wrapped: bytes) -> tuple[int, int] | None:
        """(bucket, generation) of a format-3 wrapped key; None for formats 1 and 2."""
        if wrapped[:1] != WRAPPED_V3 or len(wrapped) < 7:
            return None
        return int.from_bytes(wrapped[1:3], "big"), int.from_bytes(wrapped[3:7], "big")

    def _epochs_on_disk(self) -> list[int]:
        if self.key_dir is None or not self.key_dir.is_dir():
            return []
        found = []
        for path in self.key_dir.glob("kek-*.key"):
            with contextlib.suppress(ValueError):
                found.append(int(path.stem.split("-", 1)[1]))
        return found

    # -- the KEKs -------------------------------------------------------------------------

    def _kek_path(self, epoch: int) -> Path:
        if self.key_dir is None:
            raise IntegrityError("this keyring has no key folder, so it cannot rotate")
        return self.key_dir / f"kek-{epoch}.key"

    def kek(self, epoch: int) -> bytes:
        """The KEK of ``epoch``; IntegrityError if it was destroyed by a rotation."""
        if epoch < self._floor:
            raise IntegrityError(f"the key-encryption key of epoch {epoch} was destroyed")
        if epoch not in self._keks:
            path = self._kek_path(epoch)
            try:
                sealed = base64.b64decode(path.read_bytes())
            except FileNotFoundError:
                raise IntegrityError(
                    f"the key-encryption key of epoch {epoch} is gone ({path}): data wrapped "
                    "under it was erased, or the keys folder is missing"
                ) from None
            self._keks[epoch] = unseal(self._master, sealed, f"probity/kek/{epoch}".encode())
        return self._keks[epoch]

    def index_key(self, epoch: int) -> bytes:
        """The 32-byte key that seals index files of ``epoch``: HKDF-SHA256 of that epoch's
        KEK, info ``b"probity/index-file/v1"``. It dies with the KEK, so index files saved
        before an erasure cannot be opened after it; IntegrityError (as ``kek``) once the
        epoch is destroyed."""
        return HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"probity/index-file/v1"
        ).derive(self.kek(epoch))

    def write_kek(self, epoch: int) -> None:
        """Create the KEK of a new epoch on disk (fsynced before the database may refer
        to it). Overwrites a stale file of the same epoch left by a rolled-back rotation."""
        path = self._kek_path(epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        kek = secrets.token_bytes(KEY_BYTES)
        sealed = seal(self._master, kek, f"probity/kek/{epoch}".encode())
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(sealed))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        self._keks[epoch] = kek

    def forget(self, epoch: int) -> None:
        """Drop a KEK of a rotation that did not commit (its file is removed)."""
        self._keks.pop(epoch, None)
        with contextlib.suppress(FileNotFoundError, IntegrityError):
            self._kek_path(epoch).unlink()

    def destroy_below(self, epoch: int, *, shred: bool = True) -> int:
        """Destroy every KEK older than ``epoch``: forget it in memory (epoch 0, the master
        key, included: it no longer wraps data keys) and, with ``shred``, overwrite and
        delete its file. Returns how many files were destroyed."""
        self._floor = max(self._floor, epoch)
        for old in [e for e in self._keks if e < epoch]:
            del self._keks[old]
        destroyed = 0
        if not shred:
            return destroyed
        for found in self._epochs_on_disk():
            if found < epoch:
                _shred(self._kek_path(found))
                destroyed += 1
        return destroyed

    def observe(self, epoch: int) -> None:
        """The database says ``epoch`` is current: KEKs older than it are dead here too (a
        rotation made by another process)."""
        if epoch > self._floor:
            self.destroy_below(epoch)

    # -- wrapping -------------------------------------------------------------------------

    def wrap_at(self, epoch: int, aad: bytes, data_key: bytes) -> bytes:
        if epoch == 0:
            return seal(self.kek(0), data_key, aad)
        return WRAPPED_V2 + epoch.to_bytes(4, "big") + seal(self.kek(epoch), data_key, aad)

    def unwrap_any(
        self,
        aad: bytes,
        wrapped: bytes,
        bucket_kek: Callable[[int, int], bytes] | None = None,
    ) -> bytes:
        """Open a wrapped data key of any format. Format 3 needs ``bucket_kek(bucket,
        generation)``, which reads the bucket KEK from the database (storage/vault.py):
        without it, IntegrityError."""
        named = self.bucket_named(wrapped)
        if named is not None:
            if bucket_kek is None:
                raise IntegrityError("a format-3 wrapped key needs its bucket KEK to open")
            return unseal(bucket_kek(*named), wrapped[7:], aad)
        if wrapped[:1] == WRAPPED_V2:
            epoch = int.from_bytes(wrapped[1:5], "big")
            return unseal(self.kek(epoch), wrapped[5:], aad)
        return unseal(self.kek(0), wrapped, aad)

    @staticmethod
    def subject_aad(subject_id: str) -> bytes:
        return b"probity/subject-key/" + subject_id.encode()

    @staticmethod
    def case_aad(case_id: str) -> bytes:
        return b"probity/case-key/" + case_id.encode()

    @staticmethod
    def purpose_aad(purpose: str, owner_id: str) -> bytes:
        return f"probity/{purpose}-key/{owner_id}".encode()

    def wrap(self, subject_id: str, data_key: bytes, epoch: int = 0) -> bytes:
        return self.wrap_at(epoch, self.subject_aad(subject_id), data_key)

    def unwrap(self, subject_id: str, wrapped: bytes) -> bytes:
        return self.unwrap_any(self.subject_aad(subject_id), wrapped)

    def wrap_for(self, purpose: str, owner_id: str, data_key: bytes, epoch: int = 0) -> bytes:
        """Wrap a data key for ``purpose`` (e.g. "rights-photo", "suppression")."""
        return self.wrap_at(epoch, self.purpose_aad(purpose, owner_id), data_key)

    def unwrap_for(self, purpose: str, owner_id: str, wrapped: bytes) -> bytes:
        return self.unwrap_any(self.purpose_aad(purpose, owner_id), wrapped)

    def wrap_case_key(self, case_id: str, data_key: bytes, epoch: int = 0) -> bytes:
        """A case's key for its probe images (a different purpose, so different AAD)."""
        return self.wrap_at(epoch, self.case_aad(case_id), data_key)

    def unwrap_case_key(self, case_id: str, wrapped: bytes) -> bytes:
        return self.unwrap_any(self.case_aad(case_id), wrapped)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _shred(path: Path) -> None:
    """Overwrite a key file with random bytes, fsync, then delete it. (On copy-on-write or
    journalling file systems the old blocks may survive; the key inside is sealed by the
    master key, and the README says to keep ``keys/`` off such media where that matters.)"""
    with contextlib.suppress(FileNotFoundError):
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.write(secrets.token_bytes(max(size, 1)))
            handle.flush()
            os.fsync(handle.fileno())
        path.unlink()


def create_master_key_file(path: Path) -> bool:
    """Write a new random master key to ``path`` (mode 0600) unless one exists.

    Returns True if a key was created. The file is opened with O_EXCL so an existing key is
    never overwritten: losing the master key loses every image and template.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def load_master_key(*, env_value: str | None, key_file: Path) -> bytes:
    """The master key from the environment value if set, else from the key file."""
    if env_value:
        return _decode_key(env_value, "PROBITY_MASTER_KEY")
    if not key_file.exists():
        raise NotInitialised(
            f"no master key: {key_file} does not exist and PROBITY_MASTER_KEY is not set "
            "(run 'probity init')"
        )
    return _decode_key(key_file.read_text().strip(), str(key_file))


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IntegrityError(f"the master key in {where} is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise IntegrityError(f"the master key in {where} must decode to {KEY_BYTES} bytes")
    return key


class CheckpointSigner:
    """Signs audit checkpoints with an Ed25519 key derived from the master key (HKDF-SHA256,
    its own label), so the key never sits in the database: someone who can rewrite the audit
    table and recompute every hash still cannot forge the signatures. ``public_hex`` is what
    an external auditor needs to check them."""

    def __init__(self, master_key: bytes) -> None:
        seed = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"probity/audit-checkpoint/v1"
        ).derive(master_key)
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        # Derived once: deriving it costs about as much as a signature, and verify checks
        # every checkpoint and witness entry.
        self._public = self._key.public_key()
        self.public_hex = self._public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        ).hex()

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

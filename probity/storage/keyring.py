"""Keys: the master key and per-subject data keys (envelope encryption, AES-256-GCM).

- The **master key** (32 random bytes) comes from ``PROBITY_MASTER_KEY`` (base64) or from the
  key file ``<home>/master.key`` that ``probity init`` writes with mode 0600. It never goes
  in the database.
- Each **subject** gets its own random 32-byte data key, stored only *wrapped* (encrypted by
  the master key) in ``subject_keys``. Every image and template of the subject is encrypted
  with it. Destroying that one row (crypto-shredding) makes all of the subject's ciphertext,
  including copies in backups, unreadable with the current keys.
- Sealed format: ``b"\\x01" + 12-byte random nonce + ciphertext || 16-byte GCM tag``. The
  associated data binds a ciphertext to its purpose and owner, so a template blob cannot be
  swapped for another subject's.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
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


class Keyring:
    """Wraps and unwraps subject data keys with the master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise IntegrityError(f"the master key must be {KEY_BYTES} bytes")
        self._master = master_key

    def wrap(self, subject_id: str, data_key: bytes) -> bytes:
        return seal(self._master, data_key, b"probity/subject-key/" + subject_id.encode())

    def unwrap(self, subject_id: str, wrapped: bytes) -> bytes:
        return unseal(self._master, wrapped, b"probity/subject-key/" + subject_id.encode())

    def wrap_for(self, purpose: str, owner_id: str, data_key: bytes) -> bytes:
        """Wrap a data key for ``purpose`` (e.g. "rights-photo", "suppression")."""
        return seal(self._master, data_key, f"probity/{purpose}-key/{owner_id}".encode())

    def unwrap_for(self, purpose: str, owner_id: str, wrapped: bytes) -> bytes:
        return unseal(self._master, wrapped, f"probity/{purpose}-key/{owner_id}".encode())

    def wrap_case_key(self, case_id: str, data_key: bytes) -> bytes:
        """A case's key for its probe images (a different purpose, so different AAD)."""
        return seal(self._master, data_key, b"probity/case-key/" + case_id.encode())

    def unwrap_case_key(self, case_id: str, wrapped: bytes) -> bytes:
        return unseal(self._master, wrapped, b"probity/case-key/" + case_id.encode())


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
        self.public_hex = (
            self._key.public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            .hex()
        )

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._key.public_key().verify(signature, message)
        except InvalidSignature:
            return False
        return True

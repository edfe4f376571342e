"""Envelope encryption of single text fields, and keyed hashes for looking them up.

Nothing here knows which fields are personal: a service decides that (the registry encrypts ID
and phone numbers, services/registry/personal_data.py).

- A data-encryption key (DEK, 32 random bytes) per owner (a household) encrypts its fields with
  AES-256-GCM; a field becomes `enc:v1:<base64 nonce+ciphertext>`, bound to its owner and field
  name (associated data), so a value copied to another household or field does not decrypt.
- The DEK is stored only wrapped (AES-GCM) by the key-encryption key (KEK), which lives outside
  the database: an environment variable from a Kubernetes Secret. Each wrapped DEK names the KEK
  that wrapped it (`kek_id`), so a KEK can be rotated: the new one wraps, the old ones in
  PII_KEK_PREVIOUS still unwrap until every DEK is rewrapped (docs/security.md).
- Destroying a DEK makes its owner's fields unreadable for good ("crypto-shredding").
- `keyed_hash` (HMAC-SHA256 under a separate key) lets a county-wide uniqueness check compare
  values without storing them.
"""
import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"
HASH_PREFIX = "hmac:"
# Only so a laptop runs without setup; refused outside development (key_ring_from_config).
DEVELOPMENT_KEK = base64.b64encode(hashlib.sha256(b"fupin development-only key-encryption key").digest()).decode()


class KeyUnavailable(Exception):
    """The key that would decrypt this is gone (erased) or not configured (an old KEK)."""


def _decode_key(text: str, name: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (ValueError, TypeError):
        raise RuntimeError(f"{name} must be 32 bytes in base64 (openssl rand -base64 32)") from None
    if len(key) != 32:
        raise RuntimeError(f"{name} must be 32 bytes in base64 (openssl rand -base64 32), not {len(key)} bytes")
    return key


def kek_id(key: bytes) -> str:
    return hashlib.sha256(b"fupin-kek-id" + key).hexdigest()[:16]


@dataclass(frozen=True)
class KeyRing:
    current: bytes
    previous: tuple[bytes, ...] = ()
    hash_key: bytes = b""

    @property
    def current_id(self) -> str:
        return kek_id(self.current)

    def _by_id(self, wanted: str) -> bytes:
        for key in (self.current, *self.previous):
            if kek_id(key) == wanted:
                return key
        raise KeyUnavailable(f"no configured key-encryption key has id {wanted}; add it to PII_KEK_PREVIOUS")

    def new_data_key(self) -> bytes:
        return os.urandom(32)

    def wrap(self, data_key: bytes, owner: str) -> tuple[str, str]:
        nonce = os.urandom(12)
        sealed = AESGCM(self.current).encrypt(nonce, data_key, f"dek:{owner}".encode())
        return self.current_id, base64.b64encode(nonce + sealed).decode()

    def unwrap(self, wrapping_kek_id: str, wrapped: str, owner: str) -> bytes:
        raw = base64.b64decode(wrapped)
        try:
            return AESGCM(self._by_id(wrapping_kek_id)).decrypt(raw[:12], raw[12:], f"dek:{owner}".encode())
        except InvalidTag:
            raise KeyUnavailable(f"the data key of {owner} does not unwrap (wrong key-encryption key)") from None

    def keyed_hash(self, value: str) -> str:
        return HASH_PREFIX + hmac.new(self.hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def key_ring_from_config(config: Mapping[str, Any]) -> KeyRing:
    """PII_KEK (base64, 32 bytes; required outside development), PII_KEK_PREVIOUS (comma-separated,
    for rotation), PII_HASH_KEY (base64, 32 bytes; derived from the KEK when empty)."""
    text = (config.get("PII_KEK") or "").strip()
    if not text:
        if config.get("ENVIRONMENT", "development") != "development":
            raise RuntimeError("FUPIN_PII_KEK must be set outside development (the key that wraps every "
                               "household's data key; docs/security.md)")
        text = DEVELOPMENT_KEK
    current = _decode_key(text, "FUPIN_PII_KEK")
    previous = tuple(_decode_key(part, "FUPIN_PII_KEK_PREVIOUS")
                     for part in (config.get("PII_KEK_PREVIOUS") or "").split(",") if part.strip())
    hash_text = (config.get("PII_HASH_KEY") or "").strip()
    hash_key = (_decode_key(hash_text, "FUPIN_PII_HASH_KEY") if hash_text
                else hmac.new(current, b"fupin keyed hash of ID numbers", hashlib.sha256).digest())
    return KeyRing(current, previous, hash_key)


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt_field(data_key: bytes, value: Any, owner: str, name: str) -> Any:
    if value is None or is_encrypted(value):
        return value
    nonce = os.urandom(12)
    sealed = AESGCM(data_key).encrypt(nonce, str(value).encode("utf-8"), f"{owner}:{name}".encode())
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def decrypt_field(data_key: bytes | None, value: Any, owner: str, name: str) -> Any:
    """Plaintext written before encryption existed comes back as it is (an upcaster's job)."""
    if not is_encrypted(value):
        return value
    if data_key is None:
        raise KeyUnavailable(f"the data key of {owner} is gone")
    raw = base64.b64decode(value[len(PREFIX):])
    try:
        return AESGCM(data_key).decrypt(raw[:12], raw[12:], f"{owner}:{name}".encode()).decode("utf-8")
    except InvalidTag:
        raise KeyUnavailable(f"{name} of {owner} does not decrypt with its data key") from None

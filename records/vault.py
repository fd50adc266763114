"""Secrets at rest: what the service must keep and use (a channel account's tokens and app
secrets) is stored sealed with an authenticated cipher, never in the clear.

AES-256-GCM (`cryptography`) under `COUNTERSIGN_SECRETS_KEY`, a 32-byte key in base64
(`countersign keys new` makes one). A sealed value reads `cs1.<key id>.<nonce and
ciphertext, base64url>`; the key id (the first 8 hex digits of the key's SHA-256) says
which key sealed it, so values sealed under a key listed in
`COUNTERSIGN_SECRETS_PREVIOUS_KEYS` still open while `countersign keys rotate` re-seals them
under the current one. Each value is bound to where it is kept (the associated data names
its table, column and row), so someone with the database file cannot move one account's
credentials onto another, and any change to the bytes is detected, not decrypted.

The key is process configuration, like the database URL: the API, the worker and the CLI
call `configure` once with their settings, and the records layer uses `current()`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SealError", "Vault", "configure", "current", "new_key"]

PREFIX = "cs1"
NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that cannot be opened: unknown key, altered bytes, or not sealed."""


def new_key() -> str:
    """A fresh key for COUNTERSIGN_SECRETS_KEY."""
    return base64.b64encode(os.urandom(32)).decode()


def decode_key(encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"a secrets key must be base64: {exc}") from None
    if len(key) != 32:
        raise ValueError(f"a secrets key must be 32 bytes (got {len(key)})")
    return key


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class Vault:
    """Seals under the current key; opens under the current or any previous key."""

    current_key: bytes
    previous_keys: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, settings: object) -> Vault:
        current = decode_key(settings.secrets_key)  # type: ignore[attr-defined]
        previous = settings.secrets_previous_keys  # type: ignore[attr-defined]
        return cls(current, tuple(decode_key(k) for k in previous))

    @property
    def key_id(self) -> str:
        return _key_id(self.current_key)

    def seal(self, plaintext: bytes, where: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.current_key).encrypt(nonce, plaintext, _aad(where))
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}.{self.key_id}.{body}"

    def open(self, sealed: str, where: str) -> bytes:
        prefix, key_id, body = [*sealed.split(".", 2), "", ""][:3]
        if prefix != PREFIX or not body:
            raise SealError(f"{where} is not a sealed value")
        key = self._keys().get(key_id)
        if key is None:
            raise SealError(
                f"{where} was sealed under key {key_id}, which is neither "
                "COUNTERSIGN_SECRETS_KEY nor one of COUNTERSIGN_SECRETS_PREVIOUS_KEYS"
            )
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(where))
        except (InvalidTag, ValueError, binascii.Error):
            raise SealError(f"{where} was altered or sealed for another place") from None

    def seal_json(self, value: object, where: str) -> str:
        return self.seal(json.dumps(value, separators=(",", ":"), sort_keys=True).encode(), where)

    def open_json(self, sealed: str, where: str) -> object:
        return json.loads(self.open(sealed, where))

    def is_current(self, sealed: str) -> bool:
        return sealed.startswith(f"{PREFIX}.{self.key_id}.")

    def _keys(self) -> dict[str, bytes]:
        keys: Iterable[bytes] = (self.current_key, *self.previous_keys)
        return {_key_id(key): key for key in keys}


def _aad(where: str) -> bytes:
    return f"{PREFIX}|{where}".encode()


_vault: Vault | None = None


def configure(vault: Vault) -> None:
    global _vault
    _vault = vault


@contextmanager
def configured(vault: Vault) -> Iterator[None]:
    """`vault` for a while, then whichever was before: a tool that seals secrets for other
    processes (a bench seeding their database) leaves its own process as it was."""
    global _vault
    before, _vault = _vault, vault
    try:
        yield
    finally:
        _vault = before


def current() -> Vault:
    if _vault is None:
        raise RuntimeError("no secrets key configured (records.vault.configure)")
    return _vault

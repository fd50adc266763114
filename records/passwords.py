"""Password hashing with argon2id (argon2-cffi's recommended parameters, RFC 9106)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

PARAMETERS = profiles.RFC_9106_LOW_MEMORY  # argon2id, 3 passes over 64 MiB
_hasher = PasswordHasher.from_parameters(PARAMETERS)
# Verified against when a username is unknown, so a miss costs as much as a wrong password:
# made with the parameters new passwords are hashed with (`_dummy`).
_DUMMY_HASH: str | None = None


# Each hash takes 64 MiB and a core for a while: only this many run at once (a flood of
# sign-ins queues here instead of taking the machine's memory), and a caller waits at most
# WAIT_SECONDS for its turn before being told to come back (HashingBusy).
AT_ONCE = max(1, os.cpu_count() or 1)
WAIT_SECONDS = 10.0
_turns = threading.BoundedSemaphore(AT_ONCE)


class HashingBusy(Exception):
    """Every hashing turn stayed taken for WAIT_SECONDS: the caller should retry shortly."""


@contextmanager
def _turn() -> Iterator[None]:
    if not _turns.acquire(timeout=WAIT_SECONDS):
        raise HashingBusy("the service is checking too many passwords at once; try again")
    try:
        yield
    finally:
        _turns.release()


def hash_password(password: str) -> str:
    with _turn():
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Checked with the parameters stored in the hash itself, whatever hashes new ones."""
    with _turn():
        try:
            return _hasher.verify(password_hash or _dummy(), password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False


def hash_new_passwords_with(parameters: Parameters) -> None:
    """Hash passwords set from now on with these parameters. Only the test suite calls
    this, with argon2's `profiles.CHEAPEST` (as argon2-cffi advises for tests): every
    test creates and logs in people, at about 0.1 s a hash with the real parameters."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher.from_parameters(parameters)
    _DUMMY_HASH = None  # a miss costs what a wrong password does with these


def _dummy() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash("countersign-timing-equaliser")
    return _DUMMY_HASH

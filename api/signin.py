"""Sign-in under attack: failed attempts are throttled per username and per client address.

Each key has several fixed windows (the `limits` library's counting, stored in the
database by `records.throttle`, so every API process sees the same count). Crossing a
small window makes the caller wait out that window; keep failing and the larger windows
fill, so the wait grows: a minute after 5 failures, up to 15 minutes after 10, an hour
after 20, a day after 50. A client address may fail more (several people share one
office or one proxy). While a key is throttled, its password is not even checked: the
right password after fifteen wrong ones waits like a wrong one. A successful sign-in
clears the username's count, not the address's.

Keys are hashes: attempted usernames (where people also type passwords) are not stored.
"""

from __future__ import annotations

import hashlib
import math
import time

from limits import RateLimitItem, parse_many
from limits.strategies import FixedWindowRateLimiter

from records.db import Database
from records.throttle import DatabaseStorage

PER_USERNAME = parse_many("5/minute;10/15 minutes;20/hour;50/day")
PER_ADDRESS = parse_many("30/minute;100/15 minutes;300/hour;1000/day")


class Throttled(Exception):
    """Too many failed sign-ins for this username or address; wait `retry_after` s."""

    def __init__(self, retry_after: int, which: str) -> None:
        self.retry_after = retry_after
        self.which = which  # "username" or "address"
        minutes = math.ceil(retry_after / 60)
        wait = f"{retry_after} seconds" if retry_after < 120 else f"{minutes} minutes"
        super().__init__(f"too many failed sign-ins for this {which}; try again in {wait}")


class SignInThrottle:
    def __init__(self, database: Database) -> None:
        self.storage = DatabaseStorage(database)
        self.limiter = FixedWindowRateLimiter(self.storage)

    def check(self, username: str, address: str) -> None:
        """Throttled if either key has used up a window (nothing is counted here)."""
        for which, limits, key in self._keys(username, address):
            waits = [
                self.limiter.get_window_stats(limit, key).reset_time - time.time()
                for limit in limits
                if not self.limiter.test(limit, key)
            ]
            if waits:
                raise Throttled(max(1, math.ceil(max(waits))), which)

    def failed(self, username: str, address: str) -> None:
        self.storage.forget_expired()
        for _which, limits, key in self._keys(username, address):
            for limit in limits:
                self.limiter.hit(limit, key)

    def succeeded(self, username: str) -> None:
        key = _hashed("username", username)
        for limit in PER_USERNAME:
            self.limiter.clear(limit, key)

    @staticmethod
    def _keys(username: str, address: str) -> list[tuple[str, list[RateLimitItem], str]]:
        return [
            ("username", PER_USERNAME, _hashed("username", username)),
            ("address", PER_ADDRESS, _hashed("address", address)),
        ]


def _hashed(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value.strip().casefold()}".encode()).hexdigest()[:32]

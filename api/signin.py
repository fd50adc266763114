"""Sign-in under attack: attempts are counted per username and address, per username and
per client address, before the password is checked.

Each key has several fixed windows (the `limits` library's rate-limit items and counting,
stored in the database by `records.throttle`, so every API process sees the same count).
An attempt is counted *before* its password is checked, all its windows in one
transaction: forty wrong passwords sent at once are forty attempts, not five that slipped
past a check made before any was counted. Crossing a small window makes the caller wait it
out; keep failing and the larger windows fill, so the wait grows: a minute after 5
attempts, up to 15 minutes after 10, an hour after 20, a day after 50. While a key is
throttled the password is not checked at all: the right password after fifteen wrong ones
waits like a wrong one.

The strict windows are per (username, address): an attacker hammering `admin` from one
address locks out that pair, not the real admin at their own desk. The username alone has
a higher ceiling (a spread-out attack on one account), and so does the address alone
(spraying many usernames; several people may share one office or proxy, and an IPv6
client is counted by its /64, which one machine usually holds whole). A successful sign-in
clears its username's counts and gives the address its attempt back.

Keys are HMACs under a server secret: attempted usernames (where people also type their
passwords) are neither stored nor recoverable from a copy of the table.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time

from limits import RateLimitItem, parse_many

from records.db import Database
from records.throttle import DatabaseStorage

PER_PAIR = parse_many("5/minute;10/15 minutes;20/hour;50/day")
PER_USERNAME = parse_many("100/hour;300/day")
PER_ADDRESS = parse_many("30/minute;100/15 minutes;300/hour;1000/day")


class Throttled(Exception):
    """Too many sign-in attempts for this username or address; wait `retry_after` s."""

    def __init__(self, retry_after: int, which: str) -> None:
        self.retry_after = retry_after
        self.which = which  # "username" or "address"
        minutes = math.ceil(retry_after / 60)
        wait = f"{retry_after} seconds" if retry_after < 120 else f"{minutes} minutes"
        super().__init__(f"too many failed sign-ins for this {which}; try again in {wait}")


Window = tuple[str, RateLimitItem, str]  # which (for the message), the limit, its key


class SignInThrottle:
    def __init__(self, database: Database, secret: str) -> None:
        self.storage = DatabaseStorage(database)
        self._secret = secret.encode()

    def attempt(self, username: str, address: str) -> None:
        """Count this attempt in every window; Throttled if any window is now over."""
        windows = self._windows(username, address)
        counts = self.storage.incr_many(
            [(limit.key_for(key), limit.get_expiry()) for _, limit, key in windows]
        )
        over = [
            (which, limit, key)
            for (which, limit, key), count in zip(windows, counts, strict=True)
            if count > limit.amount
        ]
        if over:
            waits = [
                self.storage.get_expiry(limit.key_for(key)) - time.time() for _, limit, key in over
            ]
            which = "username" if any(w != "address" for w, _, _ in over) else "address"
            raise Throttled(max(1, math.ceil(max(waits))), which)

    def succeeded(self, username: str, address: str) -> None:
        """The right password: the username's counts go, the address gets this one back."""
        windows = self._windows(username, address)
        self.storage.clear_many(
            [limit.key_for(key) for which, limit, key in windows if which != "address"]
        )
        self.storage.refund_many(
            [limit.key_for(key) for which, limit, key in windows if which == "address"]
        )

    def _windows(self, username: str, address: str) -> list[Window]:
        name, place = self._hashed("username", username), self._hashed("address", _network(address))
        return [
            *(("pair", limit, f"{name}:{place}") for limit in PER_PAIR),
            *(("username", limit, name) for limit in PER_USERNAME),
            *(("address", limit, place) for limit in PER_ADDRESS),
        ]

    def _hashed(self, kind: str, value: str) -> str:
        message = f"{kind}:{value.strip().casefold()}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]


def _network(address: str) -> str:
    """An IPv6 client as its /64 (one machine usually holds the whole of one)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)

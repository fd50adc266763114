"""Reaching the Temporal server, with retries: the server may still be starting, or restarting."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError

log = logging.getLogger("countersign.temporal")


async def connect(address: str, namespace: str, *, timeout: float = 60.0) -> Client:
    """Connect, retrying with capped exponential backoff until `timeout` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.2
    while True:
        try:
            return await Client.connect(address, namespace=namespace)
        except (RuntimeError, RPCError, OSError) as exc:
            if loop.time() + delay > deadline:
                raise ConnectionError(
                    f"Temporal at {address} (namespace {namespace!r}) is not reachable: {exc}"
                ) from exc
            log.info(
                "Temporal at %s not reachable yet (%s); retrying in %.1fs", address, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class TemporalGateway:
    """The API's handle on Temporal: connects lazily, so the API starts (and reports itself
    not ready) while Temporal is down, and reconnects when it comes back."""

    def __init__(self, address: str, namespace: str) -> None:
        self.address = address
        self.namespace = namespace
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self, *, timeout: float = 10.0) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await connect(self.address, self.namespace, timeout=timeout)
        return self._client

    async def healthy(self, *, timeout: float = 2.0) -> bool:
        try:
            client = await asyncio.wait_for(self.client(timeout=timeout), timeout)
            return await client.service_client.check_health(timeout=timedelta(seconds=timeout))
        except (TimeoutError, ConnectionError, RPCError, RuntimeError):
            return False

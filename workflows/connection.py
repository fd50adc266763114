"""Reaching the Temporal server, with retries: the server may still be starting, or restarting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from temporalio.client import Client, Interceptor
from temporalio.service import RPCError, TLSConfig

from workflows.payloads import DATA_CONVERTER

log = logging.getLogger("countersign.temporal")


class SecuritySettings(Protocol):
    """What `records.settings.Settings` says of reaching a secured cluster."""

    @property
    def temporal_tls(self) -> bool: ...
    @property
    def temporal_tls_ca_file(self) -> Path | None: ...
    @property
    def temporal_tls_cert_file(self) -> Path | None: ...
    @property
    def temporal_tls_key_file(self) -> Path | None: ...
    @property
    def temporal_tls_server_name(self) -> str: ...
    @property
    def temporal_api_key(self) -> str: ...


@dataclass(frozen=True)
class Access:
    """How to reach the frontend: plain (the dev server), TLS, mutual TLS, an API key."""

    tls: TLSConfig | None = None
    api_key: str | None = None

    @classmethod
    def of(cls, settings: SecuritySettings) -> Access:
        """From settings. Any TLS file turns TLS on; an API key implies TLS too (Temporal
        Cloud takes keys over TLS only)."""

        def read(path: Path | None) -> bytes | None:
            return path.read_bytes() if path is not None else None

        files = (
            settings.temporal_tls_ca_file,
            settings.temporal_tls_cert_file,
            settings.temporal_tls_key_file,
        )
        wanted = settings.temporal_tls or any(files) or bool(settings.temporal_api_key)
        tls = (
            TLSConfig(
                server_root_ca_cert=read(settings.temporal_tls_ca_file),
                client_cert=read(settings.temporal_tls_cert_file),
                client_private_key=read(settings.temporal_tls_key_file),
                domain=settings.temporal_tls_server_name or None,
            )
            if wanted
            else None
        )
        return cls(tls=tls, api_key=settings.temporal_api_key or None)


async def connect(
    address: str,
    namespace: str,
    *,
    timeout: float = 60.0,
    access: Access | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """Connect, retrying with capped exponential backoff until `timeout` seconds have passed.
    `interceptors` (the traces' propagation) apply to the client's calls and to any worker
    built on it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.2
    access = access or Access()
    while True:
        try:
            return await Client.connect(
                address,
                namespace=namespace,
                tls=access.tls or False,
                api_key=access.api_key,
                data_converter=DATA_CONVERTER,
                interceptors=interceptors,
            )
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

    def __init__(
        self,
        address: str,
        namespace: str,
        access: Access | None = None,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        self.address = address
        self.namespace = namespace
        self.access = access
        self.interceptors = interceptors
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self, *, timeout: float = 10.0) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await connect(
                        self.address,
                        self.namespace,
                        timeout=timeout,
                        access=self.access,
                        interceptors=self.interceptors,
                    )
        return self._client

    @property
    def connected(self) -> Client | None:
        """The client, if connected already (never waits to connect)."""
        return self._client

    async def healthy(self, *, timeout: float = 2.0) -> bool:
        try:
            client = await asyncio.wait_for(self.client(timeout=timeout), timeout)
            return await client.service_client.check_health(timeout=timedelta(seconds=timeout))
        except (TimeoutError, ConnectionError, RPCError, RuntimeError):
            return False

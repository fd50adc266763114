"""The worker's own small HTTP endpoint, for the platform that runs it: `GET /healthz` (the
worker's event loop answers: a liveness probe), `GET /readyz` (it is polling its task
queue: a readiness probe) and `GET /metrics` (Prometheus: the process's CPU, memory and
open files, and what the SDK and the product record).

Served on the worker's own event loop, so a loop that is stuck fails the liveness probe as
it should (a server on a thread of its own would answer for a worker that no longer works).
Off unless `WORKER_HEALTH_PORT` names a port: on one machine several workers (the tests,
`countersign dev`, the benches) would otherwise fight over it. HTTP/1.0, one request per
connection, nothing else: a probe and a scraper need no more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)
MAX_REQUEST_LINE = 1024
READ_SECONDS = 5.0  # a client that has not sent its request line by then is dropped


class Health:
    """Whether the worker is serving; the readiness probe's answer."""

    def __init__(self) -> None:
        self.ready = False


@contextlib.asynccontextmanager
async def serving(
    host: str, port: int, health: Health, registry: CollectorRegistry = REGISTRY
) -> AsyncIterator[int | None]:
    """Serve the endpoint while the block runs; yields the port it listens on (None when
    `port` is 0: off)."""
    if not port:
        yield None
        return

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=READ_SECONDS)
            parts = line[:MAX_REQUEST_LINE].decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 and parts[0] in ("GET", "HEAD") else None
            status, kind, body = _route(path, health, registry)
            head = (f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
            writer.write(head.encode() + (body if parts and parts[0] != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port)
    bound = server.sockets[0].getsockname()[1]
    log.info("worker health and metrics on http://%s:%s/", host, bound)
    try:
        yield int(bound)
    finally:
        server.close()
        await server.wait_closed()


def _route(path: str | None, health: Health, registry: CollectorRegistry) -> tuple[str, str, bytes]:
    text = "text/plain; charset=utf-8"
    if path == "/healthz":
        return "200 OK", "application/json", b'{"status":"ok"}'
    if path == "/readyz":
        if health.ready:
            return "200 OK", "application/json", b'{"status":"ready"}'
        return "503 Service Unavailable", "application/json", b'{"status":"starting"}'
    if path == "/metrics":
        return "200 OK", "text/plain; version=0.0.4; charset=utf-8", generate_latest(registry)
    if path is None:
        return "400 Bad Request", text, b"only GET and HEAD\n"
    return "404 Not Found", text, b"/healthz, /readyz or /metrics\n"

"""A lean HTTP/1.1 client for load generation: one keep-alive connection per simulated
client, JSON bodies, Content-Length responses.

The load generator shares the machine's cores with the system it measures, so its own cost
is charged to the system's throughput. httpx spends about 4 ms of CPU per request here
(about 20 ms per draft, as much as the API itself); this spends a few tenths of one. Only
the bench uses it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.parse
from typing import Any


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        form: str | None = None,
    ) -> tuple[int, Any]:
        """Send one request and read its answer: (status, decoded JSON body or None)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        if form is not None:
            body, kind = form.encode(), "application/x-www-form-urlencoded"
        elif json_body is not None:
            body, kind = json.dumps(json_body).encode(), "application/json"
        else:
            body, kind = b"", ""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines.append(f"Content-Length: {len(body)}")
        if kind:
            lines.append(f"Content-Type: {kind}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status, length = int(head[0].split(" ", 2)[1]), 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding":
                raise ValueError("chunked responses are not supported by this client")
        payload = await self._reader.readexactly(length) if length else b""
        return status, json.loads(payload) if payload else None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()


class BlockingConnection:
    """The same client for a bench that asks one request at a time (`bench/post_list.py`):
    a plain socket, no event loop, so what is timed is the server's answer."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port, self.headers = host, port, headers
        self._connect()

    def _connect(self) -> None:
        self._socket = socket.create_connection((self.host, self.port))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._stream = self._socket.makefile("rb")

    def get(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        """The answer's status and body, unparsed: parsing it is the client's work, not
        the server's, and is left out of what a bench times."""
        target = f"{path}?{urllib.parse.urlencode(query)}" if query else path
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self._socket.sendall(request)
        first = self._stream.readline()
        if not first:  # the server closed the idle connection (its keep-alive timeout)
            self.close()
            self._connect()
            self._socket.sendall(request)
            first = self._stream.readline()
        status = int(first.split(b" ", 2)[1])
        length = 0
        while (line := self._stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding":
                raise ValueError("chunked responses are not supported by this client")
        return status, self._stream.read(length) if length else b""

    def close(self) -> None:
        self._stream.close()
        self._socket.close()

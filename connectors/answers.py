"""How much of a remote answer the service reads, and for how long (THREATS: no input
stalls the service; a platform that answers nonsense, such as a 10 MB body).

Every outbound request goes through the guarded transports of `connectors.egress`, which
hold each answer to two bounds:
- **At most `MAX_BYTES` of body.** The largest answer a platform gives here, a page of 100
  posts with their authors, is a few hundred kilobytes. A body declared longer is not read
  at all; one that turns out longer is stopped there. Compressed answers are not asked
  for (`Accept-Encoding: identity`): over httpx, one that comes compressed anyway is
  refused, since httpx would inflate each piece whole (a small bomb, gigabytes); over
  requests, urllib3 inflates it piece by piece and the limit counts what it gives.
- **At most `SECONDS` from a request's last byte sent to its answer's last byte.** Each
  read's own timeout alone lets a byte every few seconds through for ever. Over httpx the
  clock is kept at the connection, headers included (`TimedStream`); over requests
  (Mastodon.py), while the body is read.

Past either bound the request fails with `AnswerRefused` (over httpx, at the connection:
`httpx.ReadTimeout`). The publishers treat that as an outcome not known, retried after a
look-up, as a dropped connection. The message names the host and the bound, never what
the answer said.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import requests

MAX_BYTES = 4 * 2**20
SECONDS = 60.0
IDENTITY = "identity"  # the only Accept-Encoding asked for


class AnswerRefused(Exception):
    """A remote answer over the bounds: not read further."""


def too_long(host: str) -> AnswerRefused:
    return AnswerRefused(f"the answer from {host} is over {MAX_BYTES // 2**20} MiB: not read")


def too_slow(host: str) -> AnswerRefused:
    return AnswerRefused(f"the answer from {host} took over {SECONDS:g} s: not read")


# --- httpx -------------------------------------------------------------------------------


class TimedStream(httpcore.NetworkStream):
    """A connection whose reads after each request share one deadline, `SECONDS` from the
    request's last write (a connection kept alive starts again with its next request)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self._deadline: float | None = None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)
        self._deadline = time.monotonic() + SECONDS

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ReadTimeout(f"no whole answer within {SECONDS:g} s")
            timeout = left if timeout is None else min(timeout, left)
        return self._inner.read(max_bytes, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return TimedStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def ask_plainly(request: httpx.Request) -> None:
    """The request asks for the answer as it is (not compressed)."""
    request.headers["Accept-Encoding"] = IDENTITY


def capped(response: httpx.Response, host: str) -> httpx.Response:
    """`response`, its body read up to `MAX_BYTES` (`AnswerRefused` past that, or when it
    is compressed, or declared longer)."""
    encoding = response.headers.get("content-encoding", IDENTITY).strip().lower()
    declared = response.headers.get("content-length", "").strip()
    refusal = None
    if encoding != IDENTITY:
        refusal = AnswerRefused(f"the answer from {host} is compressed ({encoding[:20]}): not read")
    elif declared.isdigit() and int(declared) > MAX_BYTES:
        refusal = too_long(host)
    if refusal is not None:
        response.close()
        raise refusal
    response.stream = _CappedBody(response.stream, host)
    return response


class _CappedBody(httpx.SyncByteStream):
    def __init__(self, inner: Any, host: str) -> None:
        self._inner, self._host = inner, host

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self._inner:
            seen += len(chunk)
            if seen > MAX_BYTES:
                raise too_long(self._host)
            yield chunk

    def close(self) -> None:
        self._inner.close()


# --- requests ----------------------------------------------------------------------------

_PIECE = 64 * 1024


def read_bounded(response: requests.Response, host: str) -> requests.Response:
    """`response` (sent with `stream=True`) with its body read, within both bounds; it is
    then used as if requests had read it."""
    deadline = time.monotonic() + SECONDS
    declared = response.headers.get("content-length", "").strip()
    body = bytearray()
    try:
        if declared.isdigit() and int(declared) > MAX_BYTES:
            raise too_long(host)
        while True:
            # One read from the socket at most, inflated to at most `_PIECE` bytes.
            piece = response.raw.read1(_PIECE, decode_content=True)
            if not piece:
                break
            body += piece
            if len(body) > MAX_BYTES:
                raise too_long(host)
            if time.monotonic() > deadline:
                raise too_slow(host)
    except AnswerRefused:
        response.close()
        raise
    response.raw.release_conn()  # read to its end: the connection may serve again
    # As requests itself keeps a body it has read.
    response._content = bytes(body)
    response._content_consumed = True
    return response

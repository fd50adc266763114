"""A platform that answers nonsense cannot stall the worker or fill its memory (THREATS: no
input stalls the service; a 10 MB body): every answer that comes through the guarded
transports (`connectors.egress`) is read up to `connectors.answers.MAX_BYTES`, within
`SECONDS`, over httpx (X, Meta, webhooks, Bluesky, the CRM, notifications) and over
requests (Mastodon.py). The fakes answer on 127.0.0.1, as a platform would, with a body
declared too long, a body that turns out too long, a compression bomb, and a trickle."""

from __future__ import annotations

import contextlib
import gzip
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from connectors import answers, egress
from connectors.base import Reply
from connectors.x import XPublisher
from records.channels import Account
from tests.helpers import serve

TEN_MB = 10 * 2**20
PIECE = b"x" * 2**16


def answering(write: Callable[[BaseHTTPRequestHandler], None]) -> type[BaseHTTPRequestHandler]:
    """A handler that answers every GET and POST by `write`, and notes the request's
    Accept-Encoding."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        asked_for: list[str] = []

        def _any(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            Handler.asked_for.append(self.headers.get("Accept-Encoding", ""))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                write(self)  # (the client stops reading what it refuses, as it should)

        do_GET = do_POST = _any

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def declared_ten_mb(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(TEN_MB))
    handler.end_headers()
    for _ in range(TEN_MB // len(PIECE)):
        handler.wfile.write(PIECE)


def chunked_ten_mb(handler: BaseHTTPRequestHandler) -> None:
    """Ten megabytes, their length not declared (chunked)."""
    handler.send_response(201)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for _ in range(TEN_MB // len(PIECE)):
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(PIECE), PIECE))
    handler.wfile.write(b"0\r\n\r\n")


BOMB = gzip.compress(b"\0" * (64 * 2**20))  # 64 MB of zeros in about 64 KB


def gzip_bomb(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Content-Length", str(len(BOMB)))
    handler.end_headers()
    handler.wfile.write(BOMB)


def trickle(handler: BaseHTTPRequestHandler) -> None:
    """A well-formed answer whose bytes come one every tenth of a second, for ten seconds."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.wfile.flush()
    for _ in range(100):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.1)


def slow_headers(handler: BaseHTTPRequestHandler) -> None:
    """The status line, then a header's bytes one every tenth of a second."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for char in b"X-Slow: " + b"y" * 100:
        handler.wfile.write(bytes([char]))
        handler.wfile.flush()
        time.sleep(0.1)


def small(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "12")
    handler.end_headers()
    handler.wfile.write(b'{"ok": true}')


@pytest.fixture
def short_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(answers, "SECONDS", 1.0)
    return 1.0


def over_httpx(url: str) -> bytes:
    return egress.request("GET", url, timeout=5).content


def over_requests(url: str) -> bytes:
    with egress.guarded_session() as session:
        return bytes(session.get(url, timeout=5).content)


CLIENTS = [pytest.param(over_httpx, id="httpx"), pytest.param(over_requests, id="requests")]


def peak_while(call: Callable[[], Any]) -> tuple[int, BaseException | None]:
    """The most memory Python held at once while `call` ran (over what it held before),
    and what it raised."""
    tracemalloc.start()
    try:
        call()
        raised = None
    except Exception as exc:  # the test says which it expects
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("write", [declared_ten_mb, chunked_ten_mb], ids=["declared", "chunked"])
def test_an_answer_over_the_limit_is_refused_without_being_held(
    client: Callable[[str], bytes], write: Callable[[BaseHTTPRequestHandler], None]
) -> None:
    with serve(answering(write)) as url:
        peak, raised = peak_while(lambda: client(url))
    assert isinstance(raised, answers.AnswerRefused), raised
    assert str(raised) == "the answer from 127.0.0.1 is over 4 MiB: not read"
    assert peak < answers.MAX_BYTES * 2 < TEN_MB  # stopped at the limit, not read whole


def test_a_compressed_answer_is_not_asked_for_and_over_httpx_refused() -> None:
    """httpx would inflate each piece whole: 64 KB of gzip, 64 MB in memory."""
    handler = answering(gzip_bomb)
    with serve(handler) as url:
        peak, raised = peak_while(lambda: over_httpx(url))
    assert handler.asked_for == ["identity"]
    assert isinstance(raised, answers.AnswerRefused)
    assert str(raised) == "the answer from 127.0.0.1 is compressed (gzip): not read"
    assert peak < answers.MAX_BYTES


def test_a_compression_bomb_over_requests_is_inflated_up_to_the_limit_only() -> None:
    handler = answering(gzip_bomb)
    with serve(handler) as url:
        peak, raised = peak_while(lambda: over_requests(url))
    assert handler.asked_for == ["identity"]
    assert isinstance(raised, answers.AnswerRefused)
    assert str(raised) == "the answer from 127.0.0.1 is over 4 MiB: not read"
    assert peak < answers.MAX_BYTES * 2


@pytest.mark.parametrize("client", CLIENTS)
def test_an_answer_that_trickles_is_given_up_on_time(
    client: Callable[[str], bytes], short_clock: float
) -> None:
    """A byte every tenth of a second passes every read's own timeout (5 s) for ten
    seconds: the answer as a whole has `SECONDS` (1 s here)."""
    with serve(answering(trickle)) as url:
        started = time.monotonic()
        with pytest.raises((answers.AnswerRefused, httpx.ReadTimeout)):
            client(url)
        assert time.monotonic() - started < short_clock + 1.5


def test_headers_that_trickle_are_given_up_on_time_over_httpx(short_clock: float) -> None:
    with serve(answering(slow_headers)) as url:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            over_httpx(url)
        assert time.monotonic() - started < short_clock + 1.5


@pytest.mark.parametrize("client", CLIENTS)
def test_an_answer_within_the_bounds_is_read_as_before(client: Callable[[str], bytes]) -> None:
    with serve(answering(small)) as url:
        assert client(url) == b'{"ok": true}'


def test_x_answering_a_reply_with_ten_megabytes_is_an_outcome_not_known() -> None:
    """The publisher's call fails as a dropped connection does (retried after a look-up),
    naming the host and the limit, nothing of what the answer said."""
    with serve(answering(chunked_ten_mb)) as url:
        account = Account(
            id=1, name="acme", channel="x", source=None,
            settings={"api_base": url, "user_id": "42"}, credentials={"bearer_token": "t"},
        )  # fmt: skip
        reply = Reply(
            key="draft-1-v1", channel="x", in_reply_to="1", body="Hello",
            requested_at=datetime.now(UTC),
        )  # fmt: skip
        with pytest.raises(answers.AnswerRefused, match=r"^the answer from 127\.0\.0\.1 is over"):
            XPublisher(account).post(reply)

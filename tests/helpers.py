"""Small helpers shared by tests: free ports, tampering past the trigger, a submitted draft,
two writers at once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Connection, event

from records import guards
from records.db import Database
from records.migrations import upgrade
from records.tables import POSTS


def own_secrets() -> dict[str, str]:
    """Environment for a `countersign api` or `worker` process a test starts itself: they
    refuse the published development secrets."""
    return {
        "COUNTERSIGN_JWT_SECRET": "t" * 40,
        "COUNTERSIGN_CSRF_SECRET": "c" * 40,
        "COUNTERSIGN_ACTION_KEY": "a" * 40,
        "COUNTERSIGN_AUDIT_SIGNING_KEY": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
        "COUNTERSIGN_SECRETS_KEY": "c2VjcmV0cy1rZXktZm9yLXRoZS10ZXN0cy0wMDAwMDA=",
    }


def at_once(*jobs: Callable[[], object], seconds: float = 60) -> list[BaseException]:
    """Run `jobs` at the same moment, each on a thread of its own (they start together, past
    a barrier), and wait for all: what each raised, whatever it was, for the test to report.
    A job still running after `seconds` in all fails the test (a hang, not a finish); its
    thread is a daemon, so it does not keep the test run from ending."""
    start = threading.Barrier(len(jobs))
    failures: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        start.wait()
        try:
            job()
        except BaseException as error:  # reported by the caller, whatever it is
            failures.append(error)

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0))
    hung = sum(thread.is_alive() for thread in threads)
    assert not hung, f"{hung} of {len(jobs)} jobs still run after {seconds} s; {failures}"
    return failures


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held open together so they are distinct)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


async def eventually(predicate: Callable[[], bool], seconds: float = 20) -> bool:
    """Whether `predicate` holds within `seconds` (work a worker does in the background)."""
    for _ in range(int(seconds / 0.1)):
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


class JsonHandler(BaseHTTPRequestHandler):
    """A fake platform's request handler: JSON answers, the request body, no access log."""

    def answer(self, status: int, payload: Any = None, **headers: str) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[str]:
    """Run `handler` on 127.0.0.1 on `port` (0: a free one), on its own thread; yields the
    base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(10)


def offer_until_interrupted(what: str, url: str, account: dict[str, Any]) -> None:
    """A fake run by hand: say where it is and the channel account to add for it, then
    serve until Ctrl-C."""
    print(f"{what} on {url}; add it as a channel account:\n{json.dumps(account)}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@contextmanager
def fresh_postgres(admin_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own, migrated; dropped when the block ends."""
    name = f"countersign_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def statements_sent(database: Database) -> Iterator[list[str]]:
    """The statements the block sends to the database, through any of its engines: a
    round trip each on PostgreSQL."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    for engine in database.engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        for engine in database.engines:
            event.remove(engine, "before_cursor_execute", record)


def account_reads(sent: list[str]) -> int:
    """How many of `sent` (`statements_sent`) read a caller's account: their standing
    (`records.sessions`)."""
    return sum("token_revoked" in statement for statement in sent)


@contextmanager
def explained(connection: Connection, explain: str = "EXPLAIN") -> Iterator[list[tuple[str, str]]]:
    """Each query (SELECT, UPDATE, DELETE) the block runs on `connection`, with its plan:
    read by `explain` once the block ends, in the same transaction (what the block set for
    its statements, `SET LOCAL`, holds there too)."""
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            statements.append((statement, parameters))

    plans: list[tuple[str, str]] = []
    event.listen(connection, "before_cursor_execute", seen)
    try:
        yield plans
    finally:
        event.remove(connection, "before_cursor_execute", seen)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    for statement, parameters in statements:
        cursor.execute(f"{explain} {statement}", parameters)
        # A plan's text is each row's last column (SQLite's EXPLAIN QUERY PLAN has four).
        plans.append((statement, "\n".join(str(row[-1]) for row in cursor.fetchall())))


@contextmanager
def around_the_trigger(database: Database) -> Iterator[Connection]:
    """A connection that can change audit_events as a database superuser (or whoever has
    the SQLite file) could, with the append-only triggers off (tampering, for verify to
    catch)."""
    with database.engine.begin() as conn, guards.lifted(conn):
        yield conn


def insert_post(
    connection: Connection,
    *,
    received_at: datetime = datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
    priority: str = "normal",
    text: str = "Hello?",
    account_id: int | None = None,
    external_id: str | None = None,
    channel: str = "x",
) -> int:
    """A fresh inbound post written straight to the table (tests below the API); its id."""
    return int(
        connection.execute(
            POSTS.insert().returning(POSTS.c.id),
            {
                "channel": channel,
                "external_id": external_id or uuid.uuid4().hex,
                "author": "@customer",
                "text": text,
                "url": "https://x.example/c/1",
                "received_at": received_at,
                "respond_by": received_at + timedelta(hours=8),
                "priority": priority,
                "status": "new",
                "account_id": account_id,
            },
        ).scalar_one()
    )


REPLY = "Thanks for reaching out! We have sent you a direct message."
PASSWORD = "correct horse battery staple"  # every test user's (tests/conftest.py: make_user)


async def signed_in(client: httpx.AsyncClient, *names: str) -> dict[str, dict[str, str]]:
    """Each person's `Authorization` header, from signing in over the API."""
    people = {}
    for name in names:
        token = await client.post(
            "/api/v1/auth/token", data={"username": name, "password": PASSWORD}
        )
        people[name] = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return people


async def new_post(client: httpx.AsyncClient, agent: dict[str, str], text: str) -> int:
    """A fresh inbound post on X, ingested over HTTP; its id."""
    post = await client.post(
        "/api/v1/posts",
        headers=agent,
        json={
            "channel": "x",
            "external_id": uuid.uuid4().hex,
            "author": "@customer",
            "text": text,
            "url": "https://x.example/c/1",
            "received_at": "2026-11-22T09:00:00Z",
        },
    )
    assert post.status_code in (200, 201), post.text
    return int(post.json()["id"])


async def submitted_draft(
    client: httpx.AsyncClient,
    people: dict[str, dict[str, str]],
    post_id: int | None = None,
    body: str = REPLY,
) -> str:
    """A draft of `body` replying to `post_id` (else a new post), submitted by the agent;
    its URL."""
    post_id = post_id or await new_post(client, people["agent"], "Hello?")
    draft = await client.post(
        "/api/v1/drafts",
        headers=people["agent"],
        json={"post_id": post_id, "body": body},
    )
    assert draft.status_code == 201, draft.text
    url = f"/api/v1/drafts/{draft.json()['id']}"
    submitted = await client.post(f"{url}/submit", headers=people["agent"])
    assert submitted.json()["status"] == "in_review", submitted.text
    return url


async def deliver_ticket(
    client: httpx.AsyncClient, account: str, secret: str, ticket: str
) -> dict[str, Any]:
    """A shop's signed JSON delivery of one customer ticket to `account`; the post made."""
    delivery = json.dumps(
        {
            "external_id": ticket,
            "author": "jo@example.com",
            "text": "My parcel never came",
            "url": f"https://shop.example/tickets/{ticket}",
            "received_at": "2026-11-22T09:00:00Z",
        }
    ).encode()
    signature = "sha256=" + hmac.new(secret.encode(), delivery, hashlib.sha256).hexdigest()
    received = await client.post(
        f"/api/v1/inbound/{account}",
        content=delivery,
        headers={"X-Countersign-Signature": signature},
    )
    assert received.status_code == 200, received.text
    [post] = received.json()["posts"]
    return dict(post)


class Meanwhile:
    """`job` run by another writer, in a transaction of its own, while the caller's is open:
    it is given `seconds` to finish (it may have to wait for the caller's to end), and is
    waited for in full by `done`."""

    def __init__(self, job: Callable[[], Any], seconds: float = 0.5) -> None:
        self.outcome: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(job,), daemon=True)
        self._thread.start()
        self._thread.join(timeout=seconds)

    def _run(self, job: Callable[[], Any]) -> None:
        try:
            self.outcome = job()
        except BaseException as error:  # the test reads it
            self.error = error

    def done(self) -> Meanwhile:
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the other writer still waits"
        return self


def postgresql_only(database: Database) -> None:
    """For a test of two writers inside each other's transactions."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: no writer comes in another's midst")

"""Small helpers shared by tests: free ports, tampering past the trigger, a submitted draft."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy import Connection

from records.db import Database


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


@contextmanager
def around_the_trigger(database: Database) -> Iterator[Connection]:
    """A connection that can change audit_events as a database superuser could, with the
    PostgreSQL append-only trigger switched off (tampering, for verify to catch)."""
    with database.engine.begin() as conn:
        postgres = database.dialect == "postgresql"
        trigger = "audit_events_append_only"
        if postgres:
            conn.exec_driver_sql(f"ALTER TABLE audit_events DISABLE TRIGGER {trigger}")
        yield conn
        if postgres:
            conn.exec_driver_sql(f"ALTER TABLE audit_events ENABLE TRIGGER {trigger}")


REPLY = "Thanks for reaching out! We have sent you a direct message."


async def submitted_draft(client: httpx.AsyncClient, people: dict[str, dict[str, str]]) -> str:
    post = await client.post(
        "/api/v1/posts",
        headers=people["agent"],
        json={
            "channel": "x",
            "external_id": uuid.uuid4().hex,
            "author": "@c",
            "text": "Hello?",
            "url": "https://x.example/1",
            "received_at": "2026-11-22T09:00:00Z",
        },
    )
    draft = await client.post(
        "/api/v1/drafts",
        headers=people["agent"],
        json={"post_id": post.json()["id"], "body": REPLY},
    )
    url = f"/api/v1/drafts/{draft.json()['id']}"
    submitted = await client.post(f"{url}/submit", headers=people["agent"])
    assert submitted.json()["status"] == "in_review", submitted.text
    return url

"""An answer of success means the write is in the database: a route that writes through the
request's session (`api.deps.WriteSession`) commits before the first byte of its answer.

FastAPI ends a dependency with `yield` after the response is sent unless it is scoped to
the function: a client could be told 201 for a post that another request then could not
find ("no post with id 1", seen in the suite), or that was never stored at all when the
commit failed. Both databases; no Temporal needed."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lifecycle.words import Role
from records.db import Database

Headers = dict[str, str]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class AnswerWatch:
    """Around the app (`around`, an ASGI middleware): at the start of every answer to a
    write, which write transactions are still open (begun on the writer's engine, neither
    committed nor rolled back)."""

    def __init__(self, database: Database) -> None:
        self.open: set[int] = set()
        self.seen: list[tuple[str, str, int, int]] = []  # method, path, status, still open
        writer = database.engines[-1]  # the writer's (SQLite) or the only engine
        for name, change in (("begin", self.open.add), ("commit", self.open.discard),
                             ("rollback", self.open.discard)):  # fmt: skip
            event.listen(writer, name, self._on(change))

    @staticmethod
    def _on(change: Callable[[int], None]) -> Callable[[Connection], None]:
        return lambda connection: change(id(connection))

    def around(self, app: ASGIApp) -> ASGIApp:
        async def watched_app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["method"] not in WRITES:
                return await app(scope, receive, send)

            async def watched(message: Message) -> None:
                if message["type"] == "http.response.start":
                    self.seen.append(
                        (scope["method"], scope["path"], message["status"], len(self.open))
                    )
                await send(message)

            return await app(scope, receive, watched)

        return watched_app


@pytest.fixture
def watch(app: FastAPI, database: Database) -> AnswerWatch:
    """Set up before `app_client` starts the app (a middleware is added only before)."""
    watch = AnswerWatch(database)
    app.add_middleware(watch.around)
    return watch


@pytest.fixture
def people(
    watch: AnswerWatch, make_user: Callable[..., str], login: Callable[[str], Headers]
) -> dict[str, Headers]:
    for name, role in (("ann", Role.agent), ("sue", Role.supervisor), ("root", Role.admin)):
        make_user(name, role)
    return {name: login(name) for name in ("ann", "sue", "root")}


def post_body(n: int, author: str) -> dict[str, str]:
    return {
        "channel": "x", "external_id": f"c-{n}", "author": author, "text": "Where is my parcel?",
        "url": f"https://x.example/{n}", "received_at": "2026-11-22T09:00:00Z",
    }  # fmt: skip


def test_every_write_through_the_request_session_is_committed_before_its_answer(
    people: dict[str, Headers], watch: AnswerWatch, app_client: TestClient
) -> None:
    ann, sue, root = people["ann"], people["sue"], people["root"]
    first = app_client.post("/api/v1/posts", json=post_body(1, "@one"), headers=ann)
    second = app_client.post("/api/v1/posts", json=post_body(2, "@two"), headers=ann)
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    post_id, other = first.json()["id"], second.json()["id"]
    customer = app_client.get(f"/api/v1/posts/{post_id}", headers=ann).json()["customer_id"]
    duplicate = app_client.get(f"/api/v1/posts/{other}", headers=ann).json()["customer_id"]
    answers = [
        app_client.post(f"/api/v1/posts/{post_id}/dismiss", json={"reason": "spam"}, headers=ann),
        app_client.post(f"/api/v1/posts/{post_id}/restore", headers=sue),
        app_client.post(f"/api/v1/posts/{post_id}/follow-up", headers=sue),
        app_client.post(f"/api/v1/customers/{customer}/notes", json={"text": "VIP"}, headers=ann),
        app_client.post(
            f"/api/v1/customers/{customer}/link", json={"customer_id": duplicate}, headers=ann
        ),
        app_client.post(
            "/api/v1/users",
            json={"username": "newbie", "password": "a long enough password", "roles": ["agent"]},
            headers=root,
        ),
        app_client.patch("/api/v1/users/newbie", json={"roles": ["agent", "comms"]}, headers=root),
    ]
    assert all(a.status_code < 300 for a in answers), [a.text for a in answers]
    writes = [s for s in watch.seen if s[1] != "/api/v1/auth/token"]
    assert len(writes) == 9, writes
    still_open = [s for s in writes if s[3]]
    assert not still_open, f"answered before the commit: {still_open}"


def test_a_commit_that_fails_is_not_answered_as_done(
    people: dict[str, Headers],
    app_client: TestClient,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database refuses the commit (SQLite's write lock held past the wait, the
    PostgreSQL server shutting down): the client hears 503 and may send the post again,
    which is then stored once."""
    commit = Session.commit
    why: Exception = (
        sqlite3.OperationalError("database is locked")
        if database.dialect == "sqlite"
        else psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    )

    def refused(self: Session) -> None:
        self.rollback()
        raise OperationalError("COMMIT", {}, why)

    monkeypatch.setattr(Session, "commit", refused)
    failed = app_client.post("/api/v1/posts", json=post_body(3, "@three"), headers=people["ann"])
    assert failed.status_code == 503, failed.text
    assert failed.headers["content-type"].startswith("application/problem+json")
    monkeypatch.setattr(Session, "commit", commit)
    again = app_client.post("/api/v1/posts", json=post_body(3, "@three"), headers=people["ann"])
    assert again.status_code == 201, again.text
    assert app_client.get(f"/api/v1/posts/{again.json()['id']}", headers=people["ann"]).is_success

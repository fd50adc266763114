"""Inbound posts over HTTP: ingestion, deduplication, the queue, assignment."""

from __future__ import annotations

import enum
import string
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import event
from sqlmodel import func, select

from api.schemas import Page
from lifecycle.words import PostStatus, QueueOrder, Role
from records import audit, posts
from records import cursor as cursors
from records.audit_models import AuditEvent
from records.db import Database
from records.fields import Priority
from records.migrations import upgrade
from records.post_models import Post, PostPublic

Headers = dict[str, str]
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def post_body(n: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "x",
        "external_id": f"x-{n}",
        "author": f"@customer{n}",
        "text": f"My order #{n} never arrived and nobody answers the phone.",
        "url": f"https://x.example/customer{n}/status/{n}",
        "received_at": (T0 + timedelta(minutes=n)).isoformat(),
    }
    body.update(overrides)
    return body


@pytest.fixture
def agent(make_user: Callable[..., str], login: Callable[..., Headers]) -> Headers:
    make_user("agent", Role.agent)
    return login("agent")


def count(database: Database, model: Any = Post) -> int:
    with database.read_session() as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_ingest_twice_gives_one_post(
    app_client: TestClient, agent: Headers, database: Database
) -> None:
    first = app_client.post("/api/v1/posts", json=post_body(1), headers=agent)
    assert first.status_code == 201, first.text
    again = app_client.post("/api/v1/posts", json=post_body(1, text="edited"), headers=agent)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["status"] == "new"
    # Triage's priority: a complaint to us ("nobody answers") about a delivery.
    assert first.json()["priority"] == "high"
    assert first.json()["topic"] == "delivery"
    assert first.json()["assignee"] is None
    assert count(database) == 1
    # One audit event for the one post, in a chain that verifies.
    with database.read_session() as session:
        actions = session.exec(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
        assert actions == ["user.created", "post.received"]
        assert audit.verify(session).ok


def test_the_same_external_id_on_another_channel_is_another_post(
    app_client: TestClient, agent: Headers, database: Database
) -> None:
    assert app_client.post("/api/v1/posts", json=post_body(1), headers=agent).status_code == 201
    other = post_body(1, channel="mastodon")
    assert app_client.post("/api/v1/posts", json=other, headers=agent).status_code == 201
    assert count(database) == 2


@pytest.mark.parametrize(
    "change, field",
    [
        ({"channel": "myspace"}, "channel"),
        ({"received_at": "2026-11-01T09:00:00"}, "received_at"),  # no time zone
        ({"url": "javascript:alert(1)"}, "url"),
        ({"text": ""}, "text"),
        ({"priority": "whenever"}, "priority"),
        ({"surprise": True}, "surprise"),  # unknown fields are refused, never ignored
        ({"text": "nul\x00inside"}, "text"),  # PostgreSQL cannot store NUL
        ({"author": "two\nlines"}, "author"),
    ],
)
def test_bad_posts_are_refused_with_the_field_named_and_nothing_written(
    app_client: TestClient, agent: Headers, database: Database, change: dict[str, Any], field: str
) -> None:
    response = app_client.post("/api/v1/posts", json=post_body(1, **change), headers=agent)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert any(field in map(str, error["loc"]) for error in problem["errors"]), problem
    assert count(database) == 0
    assert count(database, AuditEvent) == 1  # the agent's creation only


def test_only_agents_and_admins_ingest(
    app_client: TestClient, make_user: Callable[..., str], login: Callable[..., Headers]
) -> None:
    make_user("legal", Role.legal)
    response = app_client.post("/api/v1/posts", json=post_body(1), headers=login("legal"))
    assert response.status_code == 403
    assert "agent" in response.json()["detail"]


def test_queue_filters_and_cursor_pages_stay_stable_while_posts_arrive(
    app_client: TestClient, agent: Headers
) -> None:
    for n in range(1, 8):
        channel = "x" if n % 2 else "mastodon"
        priority = "urgent" if n in (2, 5) else "normal"
        body = post_body(n, channel=channel, priority=priority)
        assert app_client.post("/api/v1/posts", json=body, headers=agent).status_code == 201

    first = app_client.get("/api/v1/posts?limit=3", headers=agent).json()
    assert [p["external_id"] for p in first["items"]] == ["x-1", "x-2", "x-3"]
    # New posts, older and newer than the page boundary, arrive between page requests.
    for n in (0, 50):
        app_client.post("/api/v1/posts", json=post_body(n), headers=agent)
    second = app_client.get(
        f"/api/v1/posts?limit=3&cursor={first['next_cursor']}", headers=agent
    ).json()
    assert [p["external_id"] for p in second["items"]] == ["x-4", "x-5", "x-6"]
    third = app_client.get(
        f"/api/v1/posts?limit=3&cursor={second['next_cursor']}", headers=agent
    ).json()
    assert [p["external_id"] for p in third["items"]] == ["x-7", "x-50"]
    assert third["next_cursor"] is None

    urgent = app_client.get("/api/v1/posts?priority=urgent", headers=agent).json()
    assert [p["external_id"] for p in urgent["items"]] == ["x-2", "x-5"]
    mastodon = app_client.get("/api/v1/posts?channel=mastodon&priority=urgent", headers=agent)
    assert [p["external_id"] for p in mastodon.json()["items"]] == ["x-2"]


def test_a_cursor_not_issued_by_the_api_is_a_clear_422(
    app_client: TestClient, agent: Headers
) -> None:
    for cursor in ("garbage!!", "WzFd", "eyJhIjoxfQ"):
        response = app_client.get(f"/api/v1/posts?cursor={cursor}", headers=agent)
        assert response.status_code == 422
        assert "cursor" in response.json()["detail"]


def test_an_agent_takes_a_post_and_a_supervisor_assigns_anyone(
    app_client: TestClient,
    agent: Headers,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
    database: Database,
) -> None:
    make_user("agent2", Role.agent)
    make_user("boss", Role.supervisor)
    make_user("lawyer", Role.legal)
    post_id = app_client.post("/api/v1/posts", json=post_body(1), headers=agent).json()["id"]
    url = f"/api/v1/posts/{post_id}/assign"

    taken = app_client.post(url, headers=agent)
    assert taken.status_code == 200
    assert (taken.json()["assignee"], taken.json()["status"]) == ("agent", "assigned")

    agent2 = login("agent2")
    assert app_client.post(url, headers=agent2).status_code == 409  # someone else has it
    to_other = app_client.post(url, json={"assignee": "agent2"}, headers=agent)
    assert to_other.status_code == 403

    boss = login("boss")
    moved = app_client.post(url, json={"assignee": "agent2"}, headers=boss)
    assert moved.status_code == 200 and moved.json()["assignee"] == "agent2"
    assert app_client.post(url, json={"assignee": "lawyer"}, headers=boss).status_code == 422
    assert app_client.post(url, json={"assignee": "ghost"}, headers=boss).status_code == 422
    assert app_client.post("/api/v1/posts/999999/assign", headers=agent).status_code == 404

    mine = app_client.get("/api/v1/posts?assignee=agent2&status=assigned", headers=boss).json()
    assert [p["id"] for p in mine["items"]] == [post_id]
    with database.read_session() as session:
        actions = session.exec(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
        assert actions[-2:] == ["post.assigned", "post.assigned"]
        assert audit.verify(session).ok


def _values_of(annotation: Any) -> st.SearchStrategy[Any]:
    """Values a stored post may hold in a column of this type."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return st.one_of(*(_values_of(arg) for arg in typing.get_args(annotation)))
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(list(annotation))
    if typing.get_origin(annotation) is list:
        return st.lists(
            st.text(
                st.characters(min_codepoint=32, blacklist_categories=("Cs",)),
                min_size=1,
                max_size=8,
            ),
            max_size=3,
        )
    strategies: dict[Any, st.SearchStrategy[Any]] = {
        # Any character a writer could meet, control characters too: the two writers must
        # agree on each, whatever the columns are allowed to hold.
        str: st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
        int: st.integers(0, 2**40), bool: st.booleans(),
        float: st.floats(-1, 1) | st.sampled_from([float("nan"), float("inf"), -float("inf")]),
        datetime: st.datetimes(timezones=st.just(UTC)),
    }  # fmt: skip
    return strategies[annotation]


@pytest.mark.long(35)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_page_of_the_queue_is_written_as_its_documented_shape_writes_it(
    data: st.DataObject,
) -> None:
    """`GET /posts` writes its page from the rows as read (`posts.page_json`), documented
    as `Page[PostPublic]`: the two write any post the same, byte for byte."""
    values = {name: data.draw(_values_of(field.annotation), label=name)
              for name, field in PostPublic.model_fields.items()}  # fmt: skip
    values["url"] = "https://x.example/1"
    try:
        public = PostPublic.model_validate(values)
    except ValidationError:
        assume(False)
    # As the columns read: an enum's column holds its value, as text.
    row = {name: v.value if isinstance(v, enum.Enum) else v for name, v in values.items()}
    cursor = data.draw(st.none() | st.text(string.ascii_letters, min_size=1))
    fast = posts.page_json([row], cursor)
    assert fast == Page[PostPublic](items=[public], next_cursor=cursor).model_dump_json().encode()


def test_a_page_of_the_queue_is_each_post_as_its_own_answer_shows_it(
    app_client: TestClient, agent: Headers, database: Database
) -> None:
    """The queue's columns, read as rows, answer byte for byte what the stored posts give as
    `PostPublic` (read as ORM objects, as `GET /posts/{id}` reads one), in both orders."""
    bodies = [
        post_body(1),
        post_body(2, text="Thanks, all sorted!", in_reply_to="x-1", root_id="x-1"),
        post_body(3, text="free followers https://spam.example/x", origin="listening"),
        post_body(4, channel="mastodon", author="@ana@social.example", priority="urgent"),
    ]
    for body in bodies:
        assert app_client.post("/api/v1/posts", json=body, headers=agent).status_code == 201
    for order, key in (("arrival", Post.received_at), ("due", Post.respond_by)):
        answer = app_client.get(f"/api/v1/posts?limit=3&order={order}", headers=agent)
        assert answer.status_code == 200, answer.text
        with database.read_session() as session:
            stored = session.exec(select(Post).order_by(key, Post.id)).all()  # type: ignore[arg-type]
            shown = [PostPublic.model_validate(p, from_attributes=True) for p in stored[:3]]
        expected = Page[PostPublic](items=shown, next_cursor=answer.json()["next_cursor"])
        assert answer.content == expected.model_dump_json().encode()
        assert answer.json()["next_cursor"] is not None


INDEXED = [
    ({}, QueueOrder.arrival), ({"status": PostStatus.new}, QueueOrder.arrival),
    ({"channel": "x"}, QueueOrder.arrival), ({"assignee": "ana"}, QueueOrder.arrival),
    ({"priority": Priority.high}, QueueOrder.arrival), ({"topic": "billing"}, QueueOrder.arrival),
    ({}, QueueOrder.due), ({"status": PostStatus.new}, QueueOrder.due),
]  # fmt: skip


@pytest.mark.parametrize(("filters", "order"), INDEXED, ids=str)
@pytest.mark.parametrize("paged", [False, True], ids=["first page", "after a cursor"])
def test_a_page_read_on_the_event_loop_comes_in_order_from_an_index(
    tmp_path: Path, filters: dict[str, Any], order: QueueOrder, paged: bool
) -> None:
    """A page of one filter with an index of its own (or none), in its order: SQLite's
    plan for it reads that index and sorts nothing, so the page costs a few rows whatever
    the queue's size (within what `Database.read` runs on the event loop:
    `tests/test_inline_reads.py` counts it)."""
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    upgrade(url)
    database = Database(url)
    where = posts.QueueFilter(**filters)
    after = None
    if paged:
        tag = [order.value] if order is QueueOrder.due else []
        after = cursors.encode([*tag, T0.isoformat(), 7])
    statements: list[tuple[str, Any]] = []
    with database.engine.connect() as connection:
        event.listen(
            connection, "before_cursor_execute",
            lambda _c, _cur, sql, params, *_: statements.append((sql, params)),
        )  # fmt: skip
        posts.queue(connection, where, after=after, limit=50, order=order)
        sql, params = statements[-1]
        explained = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " ".join(str(row[-1]) for row in explained)
    database.dispose()
    assert "TEMP B-TREE" not in plan, plan  # nothing sorted
    for column in filters:  # each filter an equality on the index's first column
        assert "SEARCH posts USING INDEX" in plan and f"({column}=?" in plan, plan
    if not filters:  # the order's own index, walked from the start or the cursor
        ordered = "ix_posts_due_queue" if order is QueueOrder.due else "ix_posts_queue"
        assert f"USING INDEX {ordered}" in plan, plan

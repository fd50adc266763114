"""Queues, skills, presence and capacity in the database (issue 23, item 3): a new post
waits in the first queue whose rules it meets; a router round gives the waiting posts to
available agents with the skills, below capacity, the longest idle first, never one post to
two agents nor an agent over capacity even with rounds at the same moment; an agent who
goes away gives back what they have not started; a post waiting too long overflows to a
wider queue. Both databases; no Temporal needed (the worker's rounds are next)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from lifecycle.words import Role
from policies.versions import RuleBook
from records import drafts, ingest, routing, users
from records.audit_models import AuditEvent
from records.db import Database
from records.notification_models import Notification
from records.post_models import PostCreate
from records.routing_models import AgentProfile
from tests.helpers import at_once

Headers = dict[str, str]
T0 = datetime.now(UTC) - timedelta(hours=2)
AGENTS = ("ana", "ben", "cho", "dee")


@pytest.fixture
def people(make_user: Callable[..., str], login: Callable[..., Headers]) -> dict[str, Headers]:
    for name in AGENTS:
        make_user(name, Role.agent)
    make_user("sue", Role.supervisor)
    make_user("rex", Role.comms)
    return {name: login(name) for name in (*AGENTS, "sue", "rex")}


def ok(answer: Any, code: int = 200) -> Any:
    assert answer.status_code == code, answer.text
    return answer.json()


def post(client: TestClient, who: Headers, n: int, text: str, minutes_ago: int = 60) -> int:
    body = {
        "channel": "x", "external_id": f"r-{n}", "author": f"@c{n}", "text": text,
        "url": f"https://x.example/{n}",
        "received_at": (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(),
    }  # fmt: skip
    return int(ok(client.post("/api/v1/posts", json=body, headers=who), 201)["id"])


def queue(client: TestClient, sue: Headers, name: str, **rules: Any) -> int:
    body = {"name": name, **rules}
    return int(ok(client.post("/api/v1/queues", json=body, headers=sue), 201)["id"])


def skills(client: TestClient, sue: Headers, who: str, **body: Any) -> dict[str, Any]:
    answer: dict[str, Any] = ok(client.put(f"/api/v1/agents/{who}/skills", json=body, headers=sue))
    return answer


def presence(client: TestClient, by: Headers, who: str, state: str) -> Any:
    return client.put(f"/api/v1/agents/{who}/presence", json={"presence": state}, headers=by)


def test_a_new_post_waits_in_the_first_queue_whose_rules_it_meets(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    sue = people["sue"]
    fraud = queue(app_client, sue, "fraud", topics=["fraud"], position=1)
    spanish = queue(app_client, sue, "spanish", languages=["es"], position=2)
    rest = queue(app_client, sue, "everything", position=9)
    ids = [
        post(
            app_client,
            people["dee"],
            1,
            "@AcmeBank someone used my card, I did not make these payments",
        ),
        post(
            app_client,
            people["dee"],
            2,
            "@AcmeBank me cobraron dos veces la comisión de la tarjeta",
        ),
        post(app_client, people["dee"], 3, "@AcmeBank what time does the Leeds branch open?"),
    ]
    got = [ok(app_client.get(f"/api/v1/posts/{i}", headers=sue))["queue_id"] for i in ids]
    assert got == [fraud, spanish, rest]


def test_a_post_that_came_before_any_queue_is_placed_when_one_takes_it(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    early = post(app_client, people["dee"], 1, "@AcmeBank a question about my statement fee")
    assert ok(app_client.get(f"/api/v1/posts/{early}", headers=people["sue"]))["queue_id"] is None
    billing = queue(app_client, people["sue"], "billing", topics=["billing"])
    with database.write() as connection:
        assert routing.place_waiting(connection) == 1
        assert routing.place_waiting(connection) == 0
    got = ok(app_client.get(f"/api/v1/posts/{early}", headers=people["sue"]))
    assert got["queue_id"] == billing


def test_a_round_gives_posts_by_skills_presence_and_capacity(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    sue = people["sue"]
    team = ok(app_client.post("/api/v1/teams", json={"name": "care"}, headers=sue), 201)["id"]
    q = queue(app_client, sue, "care", team_id=team)
    skills(app_client, sue, "ana", team_id=team, languages=["es"], capacity=1)
    skills(app_client, sue, "ben", team_id=team, languages=["en"], capacity=2)
    skills(app_client, sue, "cho", team_id=team, capacity=5)  # available? no: stays offline
    for who in ("ana", "ben"):
        ok(presence(app_client, people[who], who, "available"))
    dee = people["dee"]
    spanish = [post(app_client, dee, n, f"@AcmeBank no me ha llegado la tarjeta nueva {n}",
                    minutes_ago=90 - n) for n in range(1, 3)]  # fmt: skip
    english = [post(app_client, dee, n, f"@AcmeBank my new card has not arrived ({n})",
                    minutes_ago=90 - n) for n in range(3, 7)]  # fmt: skip
    routed = ok(app_client.post(f"/api/v1/queues/{q}/route", headers=sue))["assigned"]
    mine = Counter(agent for _, agent in routed)
    # Ana: one Spanish post (her capacity); Ben: two English ones; Cho is offline.
    assert mine == {"ana": 1, "ben": 2}
    assert {p for p, a in routed if a == "ana"} <= set(spanish)
    assert {p for p, a in routed if a == "ben"} <= set(english)
    # The oldest first.
    assert [p for p, a in routed if a == "ben"] == english[:2]
    # A second round has nothing to give: everyone available is full.
    assert ok(app_client.post(f"/api/v1/queues/{q}/route", headers=sue))["assigned"] == []
    assert ok(app_client.get("/api/v1/agents/ben", headers=sue))["load"] == 2
    with database.read_session() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "post.assigned")).all()
        told = session.exec(select(Notification).where(Notification.event == "assigned")).all()
    assert {e.actor for e in events} == {"router"} and len(events) == 3
    assert Counter(n.recipient for n in told) == {"ana": 1, "ben": 2}


def test_going_away_gives_back_what_was_not_started(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    sue = people["sue"]
    q = queue(app_client, sue, "all")
    skills(app_client, sue, "ana", capacity=3)
    ok(presence(app_client, people["ana"], "ana", "available"))
    ids = [post(app_client, people["dee"], n, f"@AcmeBank question number {n} about my account")
           for n in range(1, 4)]  # fmt: skip
    assert len(ok(app_client.post(f"/api/v1/queues/{q}/route", headers=sue))["assigned"]) == 3
    with database.write() as connection:  # she started on the first
        drafts.create(connection, post_id=ids[0], author="ana", body="Hello!")
    away = ok(presence(app_client, people["ana"], "ana", "away"))
    assert (away["presence"], away["load"]) == ("away", 1)
    states = [ok(app_client.get(f"/api/v1/posts/{i}", headers=sue)) for i in ids]
    assert [(s["status"], s["assignee"]) for s in states] == [
        ("assigned", "ana"), ("new", None), ("new", None),
    ]  # fmt: skip
    # Away: offered nothing.
    assert ok(app_client.post(f"/api/v1/queues/{q}/route", headers=sue))["assigned"] == []


def test_who_may_set_what(app_client: TestClient, people: dict[str, Headers]) -> None:
    # An agent sets their own presence, not another's; a supervisor anyone's.
    assert presence(app_client, people["ana"], "ben", "available").status_code == 403
    assert presence(app_client, people["sue"], "ben", "available").status_code == 200
    # Skills and queues are a supervisor's.
    bad = app_client.put("/api/v1/agents/ana/skills", json={"capacity": 9}, headers=people["ana"])
    assert bad.status_code == 403
    assert (
        app_client.post("/api/v1/queues", json={"name": "q"}, headers=people["ana"]).status_code
        == 403
    )
    # Clear refusals.
    wrong = presence(app_client, people["sue"], "ana", "asleep")
    assert wrong.status_code == 422
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert (
        presence(app_client, people["sue"], "rex", "available").status_code == 422
    )  # not an agent
    assert presence(app_client, people["sue"], "nobody", "available").status_code == 404
    half = app_client.post("/api/v1/queues", json={"name": "q", "overflow_to": 1},
                           headers=people["sue"])  # fmt: skip
    assert half.status_code == 422
    twice = [app_client.post("/api/v1/queues", json={"name": "same"}, headers=people["sue"])
             for _ in range(2)]  # fmt: skip
    assert [t.status_code for t in twice] == [201, 409]
    ghost_team = app_client.post("/api/v1/queues", json={"name": "g", "team_id": 999},
                                 headers=people["sue"])  # fmt: skip
    assert ghost_team.status_code == 422


def test_a_post_waiting_too_long_overflows_to_a_wider_queue(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    sue = people["sue"]
    wide = queue(app_client, sue, "wide", position=9)
    narrow = queue(app_client, sue, "narrow", position=1, topics=["billing"], overflow_to=wide,
                   overflow_after_minutes=30)  # fmt: skip
    old = post(
        app_client, people["dee"], 1, "@AcmeBank why this fee on my statement?", minutes_ago=45
    )
    fresh = post(
        app_client, people["dee"], 2, "@AcmeBank why this other fee on my statement?", minutes_ago=5
    )
    with database.write() as connection:
        moved = routing.overflow(connection)
    assert moved == [(old, wide)]
    queues = [
        ok(app_client.get(f"/api/v1/posts/{i}", headers=sue))["queue_id"] for i in (old, fresh)
    ]
    assert queues == [wide, narrow]


def test_the_overflow_moves_a_backlog_a_part_at_a_time_the_oldest_first(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    """A backlog after an outage moves in parts of `limit` posts (each part's ids travel in
    one statement, which takes only so many), the oldest by id first, none twice."""
    sue = people["sue"]
    wide = queue(app_client, sue, "wide", position=9)
    queue(app_client, sue, "narrow", position=1, overflow_to=wide, overflow_after_minutes=30)
    late = [post(app_client, people["dee"], n, f"@AcmeBank still waiting {n}", minutes_ago=45)
            for n in range(5)]  # fmt: skip
    parts = []
    for _ in range(3):
        with database.write() as connection:
            parts.append(routing.overflow(connection, limit=2))
    assert parts == [[(p, wide) for p in late[:2]], [(p, wide) for p in late[2:4]],
                     [(late[4], wide)]]  # fmt: skip


@pytest.mark.parametrize("attempt", range(2))
def test_rounds_at_the_same_moment_never_double_give_nor_overfill(
    attempt: int, app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    sue = people["sue"]
    q = queue(app_client, sue, f"busy-{attempt}")
    for who in AGENTS:
        skills(app_client, sue, who, capacity=2)
        ok(presence(app_client, people[who], who, "available"))
    for n in range(12):
        post(
            app_client, people["dee"], 100 * attempt + n, f"@AcmeBank question {attempt}-{n} please"
        )
    start = threading.Barrier(3)
    results: list[list[tuple[int, str]]] = []

    def round_() -> None:
        start.wait()
        with database.write() as connection:
            results.append(routing.route(connection, q))

    threads = [threading.Thread(target=round_) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    given = [pair for result in results for pair in result]
    assert len({p for p, _ in given}) == len(given)  # no post twice
    assert len(given) == 8  # four agents, two each
    for who in AGENTS:
        assert ok(app_client.get(f"/api/v1/agents/{who}", headers=sue))["load"] == 2


def test_reading_an_agents_state_writes_nothing(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    """The inbox reads its agent's presence on every view: a read takes no write lock and
    makes no row; an agent never set up reads as offline with the default capacity."""
    mine = ok(app_client.get("/api/v1/agents/ana", headers=people["ana"]))
    every = ok(app_client.get("/api/v1/agents", headers=people["sue"]))
    assert (mine["presence"], mine["capacity"], mine["load"]) == ("offline", 3, 0)
    assert [a["username"] for a in every] == list(AGENTS)  # rex (comms) is not an agent
    with database.engine.connect() as connection:
        assert connection.execute(select(AgentProfile)).all() == []
    ok(presence(app_client, people["ana"], "ana", "available"))
    again = ok(app_client.get("/api/v1/agents/ana", headers=people["ana"]))
    assert again["presence"] == "available"


def test_a_supervisor_takes_back_the_posts_of_an_agent_who_was_disabled(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    """Disabling a person does not release their posts; setting them offline does, and a
    disabled agent's state still reads (it is what the supervisor acts on)."""
    sue = people["sue"]
    queue(app_client, sue, "all")
    ok(presence(app_client, people["ana"], "ana", "available"))
    first = post(app_client, people["dee"], 1, "@AcmeBank where is my new card?")
    queue_id = ok(app_client.get(f"/api/v1/posts/{first}", headers=sue))["queue_id"]
    with database.write() as connection:
        assert routing.route(connection, queue_id) == [(first, "ana")]
    with database.write_session() as session:
        users.disable(session, "ana", actor="root", actor_role="admin")
    assert ok(app_client.get(f"/api/v1/posts/{first}", headers=sue))["assignee"] == "ana"
    answer = ok(presence(app_client, sue, "ana", "offline"))
    assert answer["presence"] == "offline" and answer["load"] == 0
    back = ok(app_client.get(f"/api/v1/posts/{first}", headers=sue))
    assert (back["assignee"], back["status"]) == (None, "new")
    assert ok(app_client.get("/api/v1/agents/ana", headers=sue))["presence"] == "offline"


@pytest.mark.parametrize("router", ["round", "overflow"])
def test_the_router_and_an_ingest_touching_the_same_posts_at_once_both_finish(
    router: str, app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    """Posts first found by listening wait in a queue; they come again as mentions (the
    ingest marks each, audited) while the router gives them to agents (a round) or moves
    them to a wider queue (the overflow). Each takes the posts in the same order and the
    audit record's lock last: neither waits for the other crosswise (a deadlock fails one
    of them), and each post is given or moved once, and marked once."""
    sue = people["sue"]
    wide = queue(app_client, sue, "wide", position=9)
    # Two queues whose posts' ids interleave: the overflow meets them queue by queue.
    on_x, _ = (queue(app_client, sue, channel, position=1, channels=[channel], overflow_to=wide,
                     overflow_after_minutes=30) for channel in ("x", "facebook"))  # fmt: skip
    for who in AGENTS:
        skills(app_client, sue, who, capacity=40)
        ok(presence(app_client, people[who], who, "available"))
    # The later a post's id, the older it is: the router meets the posts in the opposite
    # order to their ids.
    heard = [
        {"channel": ("x", "facebook")[n % 2], "external_id": f"heard-{n}", "author": f"@c{n}",
         "origin": "listening",
         "text": f"Acme Bank lost my card again {n}", "url": f"https://x.example/{n}",
         "received_at": (T0 - timedelta(seconds=n)).isoformat()}
        for n in range(60)
    ]  # fmt: skip
    with database.write_session() as session:
        ingest.store(session, [PostCreate.model_validate(p) for p in heard], rules=RuleBook(),
                     actor="poller:x", actor_role="integration")  # fmt: skip
    # All but the first come again (in a page's order, not the posts' ids): the ingest
    # starts among the router's posts, not before them.
    again = [PostCreate.model_validate(p | {"origin": "mention"}) for p in heard[1:]]
    random.Random(7).shuffle(again)
    done: list[tuple[int, object]] = []

    def marked() -> None:
        with database.write_session() as session:
            ingest.store(session, again, rules=RuleBook(), actor="poller:x",
                         actor_role="integration")  # fmt: skip

    def routed() -> None:
        with database.write() as connection:
            if router == "round":  # the X queue's: every other post
                done.extend(routing.route(connection, on_x))
            else:
                done.extend(routing.overflow(connection))

    failures = at_once(marked, routed)
    assert not failures, failures[0]
    expected = len(heard) // 2 if router == "round" else len(heard)
    assert len(done) == len({p for p, _ in done}) == expected
    with database.read_session() as session:
        events = Counter(session.exec(select(AuditEvent.action)).all())
    assert events["post.addressed_to_us"] == len(again)
    assert events["post.assigned" if router == "round" else "post.overflowed"] == expected

"""Writers at the same moment, on SQLite and PostgreSQL: one post per (channel,
external_id), and a gapless, valid audit chain. A mention poller, a listening poller and a
webhook deliver overlapping posts by the same authors at once (`records.ingest.store`):
every batch is stored, none fails (no deadlock); each post is stored once with one
`post.received` event; each author is one identity of one customer, whose profile is the
one of their newest post whichever batch brought it; each conversation spans its posts; a
post first found by listening that comes again as a mention is marked so once (one
`post.addressed_to_us` event). A customer linked, unlinked or erased while their posts
arrive stays as that change left them."""

from __future__ import annotations

import functools
import json
import random
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, func, select

from policies.versions import RuleBook
from records import audit, customers, erasure, ingest, locks, retention
from records.audit_models import AuditEvent
from records.db import Database
from records.fields import Channel
from records.ingest import store
from records.post_models import Post, PostCreate
from records.posts import ingest as ingest_post
from records.tables import CONVERSATIONS, CUSTOMERS, EVENTS, IDENTITIES, POSTS
from tests.helpers import at_once


def body(external_id: str) -> PostCreate:
    return PostCreate(
        channel=Channel.x,
        external_id=external_id,
        author="@c",
        text=f"hello, about {external_id}",  # one author, different posts (not spam)
        url="https://x.example/1",
        received_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


RULES = RuleBook()  # the shipped rule set triages
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
WRITERS = 4
ROUNDS = 8
AUTHORS = 10  # known before the rounds, with profiles older than any round's posts


def ingest_one(database: Database, external_id: str) -> tuple[int, bool]:
    with database.write_session() as session:
        post, created = ingest_post(
            session, body(external_id), rules=RULES, actor="agent", actor_role="agent"
        )
        assert post.id is not None
        return post.id, created


def test_the_same_post_delivered_concurrently_is_stored_once(database: Database) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: ingest_one(database, "same"), range(24)))
    assert len({post_id for post_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with database.read_session() as session:
        assert session.exec(select(func.count()).select_from(Post)).one() == 1
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 1


def test_concurrent_writers_keep_the_audit_chain_gapless(database: Database) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: ingest_one(database, f"post-{n}"), range(60)))
    with database.read_session() as session:
        seqs = session.exec(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
        assert list(seqs) == list(range(1, 61))
        result = audit.verify(session)
        assert (result.ok, result.events_checked, result.first_bad_seq) == (True, 60, None)


def post(key: str, minute: int, author: int | str, **extra: Any) -> dict[str, Any]:
    """A post as a connector hands it over; its author's profile names the post's minute,
    so the identity shows which post it was last updated from."""
    return {
        "channel": "x", "external_id": key, "author": f"@user{author}",
        "author_profile": {"id": f"id-{author}", "display_name": f"user {author} @{minute}",
                           "followers": minute},
        "text": f"@AcmeBank my card was charged twice, ref {key}",
        "url": f"https://x.example/status/{key}", "origin": "mention",
        "received_at": (T0 + timedelta(minutes=minute)).isoformat(),
    } | extra  # fmt: skip


def stored(database: Database, batch: list[dict[str, Any]], actor: str = "poller:x") -> None:
    """`batch` stored in a transaction of its own, as a poller's activity stores a page."""
    with database.write_session() as session:
        store(session, [PostCreate.model_validate(p) for p in batch], rules=RULES, actor=actor,
              actor_role="integration")  # fmt: skip


def round_posts(number: int) -> list[dict[str, Any]]:
    """A round's posts: by known authors and by new ones, some answering a stored root
    (its conversation moves on), some each other, and the listening posts again as
    mentions."""
    rng = random.Random(number)
    base = 100 + number * 40
    posts = []
    for n in range(24):
        author: int | str = rng.randrange(AUTHORS) if n % 3 else f"r{number}-{n % 6}"
        extra = {"in_reply_to": f"root-{author}"} if isinstance(author, int) and n % 2 else {}
        if n >= 12 and n % 4 == 0:
            extra = {"in_reply_to": f"p{number}-{n - 4}"}
        posts.append(post(f"p{number}-{n}", base + n, author, **extra))
    posts += [post(f"heard-{a}", 10 + a, a) for a in range(AUTHORS)]  # now talking to us
    return posts


def route_batch(posts: list[dict[str, Any]], route: int, number: int) -> list[dict[str, Any]]:
    """What one route brings of a round: three posts in four (so each post comes by three
    routes), in an order of its own."""
    mine = [p for n, p in enumerate(posts) if n % WRITERS != route]
    random.Random(route * 1000 + number).shuffle(mine)
    return mine


def test_overlapping_batches_stored_at_once_are_stored_once_and_consistently(
    database: Database,
) -> None:
    seed = [post(f"root-{a}", a, a) for a in range(AUTHORS)]
    seed += [post(f"heard-{a}", 10 + a, a, origin="listening") for a in range(AUTHORS)]
    stored(database, seed, "poller:seed")

    failures: list[BaseException] = []
    sent: dict[str, dict[str, Any]] = {p["external_id"]: p for p in seed}
    for number in range(ROUNDS):
        posts = round_posts(number)
        sent |= {p["external_id"]: p for p in posts}
        failures += at_once(*(
            functools.partial(stored, database, route_batch(posts, w, number), f"route:{w}")
            for w in range(WRITERS)
        ))  # fmt: skip
    assert not failures, failures[0]

    with database.engine.connect() as connection:
        posts = connection.execute(select(POSTS)).mappings().all()
        identities = connection.execute(select(IDENTITIES)).mappings().all()
        conversations = connection.execute(select(CONVERSATIONS)).mappings().all()
        customers = connection.execute(select(func.count()).select_from(CUSTOMERS)).scalar_one()
        events = connection.execute(select(EVENTS.c.action, EVENTS.c.payload)).all()
    stored_keys = [p["external_id"] for p in posts]
    # Every post sent is stored (a round's batches together bring all its posts), once.
    assert sorted(stored_keys) == sorted(sent)

    # One identity per author, each with a customer of its own and no customer left over.
    authors = {p["author_profile"]["id"] for p in sent.values()}
    assert sorted(i["author_id"] for i in identities) == sorted(authors)
    assert customers == len(identities) == len({i["customer_id"] for i in identities})
    # Each identity holds its newest post's profile, whichever batch brought that post.
    newest: dict[str, dict[str, Any]] = {}
    for p in sent.values():
        author = p["author_profile"]["id"]
        if author not in newest or p["received_at"] > newest[author]["received_at"]:
            newest[author] = p
    for identity in identities:
        expected = newest[identity["author_id"]]
        assert identity["display_name"] == expected["author_profile"]["display_name"], identity
        assert as_utc(identity["seen_at"]) == datetime.fromisoformat(expected["received_at"])

    # Each conversation spans exactly its posts.
    times = defaultdict(list)
    for p in posts:
        times[p["conversation_id"]].append(as_utc(p["received_at"]))
    for conversation in conversations:
        span = times[conversation["id"]]
        assert as_utc(conversation["started_at"]) == min(span), conversation
        assert as_utc(conversation["last_post_at"]) == max(span), conversation

    # One `post.received` per post; one `post.addressed_to_us` per listening post that
    # came again as a mention, in however many batches at once.
    received = Counter(audit_payload(payload)["post_id"] for action, payload in events
                       if action == "post.received")  # fmt: skip
    assert sorted(received.values()) == [1] * len(posts)
    assert set(received) == {p["id"] for p in posts}
    addressed = Counter(audit_payload(payload)["post_id"] for action, payload in events
                        if action == "post.addressed_to_us")  # fmt: skip
    heard = {p["id"] for p in posts if p["external_id"].startswith("heard-")}
    assert addressed == dict.fromkeys(heard, 1)
    assert {p["origin"] for p in posts if p["id"] in heard} == {"mention"}
    with Session(database.engine) as session:
        assert audit.verify(session).ok


def as_utc(value: datetime | str) -> datetime:
    """A stored time as an aware UTC time (SQLite keeps UTC wall time)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def audit_payload(payload: str) -> dict[str, Any]:
    return dict(json.loads(payload))


def test_posts_stored_while_their_author_is_linked_and_unlinked_stay_with_their_customer(
    database: Database,
) -> None:
    """An agent links the X author's customer into their Facebook one and unlinks them
    again, over and over, while the author's posts arrive. Every post and conversation
    ends on the customer its identity belongs to (none on a customer merged away), and
    neither side fails."""
    seed = [post("x-root", 0, "dana"), post("fb-root", 0, "dana-fb") | {"channel": "facebook"}]
    stored(database, seed, "poller:seed")
    with database.engine.connect() as connection:
        ids = dict(connection.execute(select(IDENTITIES.c.author_id, IDENTITIES.c.id)).all())
    on_x, on_facebook = ids["id-dana"], ids["id-dana-fb"]

    replies = [{}, {"in_reply_to": "x-root"}, {"in_reply_to": "x-root"}]  # a page of three

    def arrive() -> None:
        for n in range(1, 41):
            stored(
                database, [post(f"x-{n}-{k}", n * 3 + k, "dana", **replies[k]) for k in range(3)]
            )

    def link_and_unlink() -> None:
        for _ in range(25):
            with database.write_session() as session:
                x_customer = owner(session, on_x)
                merged = customers.link(session, owner(session, on_facebook), x_customer,
                                        actor="agent", role="agent")  # fmt: skip
            with database.write_session() as session:
                assert merged.id is not None
                customers.unlink(session, merged.id, on_x, actor="agent", role="agent")

    failures = at_once(arrive, link_and_unlink)
    assert not failures, failures[0]
    with database.engine.connect() as connection:
        identity_owner = dict(
            connection.execute(select(IDENTITIES.c.id, IDENTITIES.c.customer_id)).all()
        )
        merged_away = set(connection.execute(
            select(CUSTOMERS.c.id).where(CUSTOMERS.c.merged_into.is_not(None))
        ).scalars())  # fmt: skip
        for table in (POSTS, CONVERSATIONS):
            rows = connection.execute(select(table.c.identity_id, table.c.customer_id)).all()
            assert rows and all(identity_owner[i] == c for i, c in rows), table.name
            assert not {c for _, c in rows} & merged_away, table.name


def owner(session: Session, identity_id: int) -> int:
    """The customer an identity belongs to now."""
    return int(session.execute(
        select(IDENTITIES.c.customer_id).where(IDENTITIES.c.id == identity_id)
    ).scalar_one())  # fmt: skip


def test_an_author_erased_while_their_posts_arrive_stays_erased(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer's erasure, asked again and again while their posts keep arriving: an
    identity once erased never takes their handle or profile back (their later posts make
    an identity of their own), and neither side fails. (The ingest dwells a little after
    reading the authors' identities, as a busy machine may: the moment an erasure could
    slip in.)"""
    found = ingest._found_identities
    arrived = threading.Event()

    def dwelling(*args: Any) -> Any:
        answer = found(*args)
        time.sleep(0.03)
        return answer

    monkeypatch.setattr(ingest, "_found_identities", dwelling)

    def arrive() -> None:
        try:
            for n in range(30):
                stored(database, [post(f"jo-{n}-{k}", n * 3 + k, "jo") for k in range(3)])
        finally:
            arrived.set()

    def erase() -> None:
        while not arrived.is_set():
            with database.write() as connection:
                erasure.erase_customer(connection, "@userjo", actor="adm", role="admin")
            time.sleep(0.005)  # the ingest's turn on SQLite, which has one writer

    failures = at_once(arrive, erase)
    assert not failures, failures[0]
    with database.engine.connect() as connection:
        erased = connection.execute(
            select(IDENTITIES).where(IDENTITIES.c.author_id.like(f"{retention.ERASED}:%"))
        ).mappings().all()  # fmt: skip
    assert erased
    for identity in erased:
        assert identity["handle"] == retention.ERASED, identity
        assert identity["display_name"] is None and identity["followers"] is None, identity


def test_a_post_that_arrives_while_an_erasure_looks_is_erased_with_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An erasure reads the author's posts and their audit events before it holds off the
    ingest (that read is long); a post of theirs stored in between is found when it reads
    again, and erased with its events."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: no post is stored during an erasure")

    stored(database, [post("jo-1", 1, "jo")])
    hold_off = locks.hold_off_ingest

    def after_another_post(connection: Any) -> None:
        # Another writer, in a transaction of its own.
        thread = threading.Thread(target=stored, args=(database, [post("jo-2", 2, "jo")]))
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive()
        hold_off(connection)

    monkeypatch.setattr(locks, "hold_off_ingest", after_another_post)
    with database.write() as connection:
        erased = erasure.erase_customer(connection, "@userjo", actor="adm", role="admin")
    assert erased.posts == 2
    with database.engine.connect() as connection:
        posts = connection.execute(select(POSTS.c.id, POSTS.c.text, POSTS.c.author)).all()
        events = connection.execute(
            select(EVENTS.c.payload, EVENTS.c.erased).where(EVENTS.c.action == "post.received")
        ).all()  # fmt: skip
    assert [(p.text, p.author) for p in posts] == [(retention.ERASED, retention.ERASED)] * 2
    assert len(events) == 2 and all(event.erased for event in events)

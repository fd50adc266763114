"""Writers of many posts lock them in id order, as a routing round does (PostgreSQL; SQLite
has one writer at a time): a link or unlink of customers, or an erasure, beside another
writer that holds an author's first post and then wants the second, finishes, and so does
the other writer; neither is chosen as a deadlock's victim.

The posts are laid out against their ids first (the first received later, and its row
rewritten, so a plain scan and the indexes meet it last): an UPDATE of many rows locks them
in the order its plan meets them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from records import customers, erasure
from records.db import Database
from records.tables import IDENTITIES, POSTS
from tests.helpers import Meanwhile, postgresql_only
from tests.test_concurrency import post, stored


def dana_on_two_channels(database: Database) -> tuple[list[int], int, int]:
    """Dana's two X posts (the first one received later, and its row rewritten), her X
    identity and her Facebook one, each its own customer."""
    stored(database, [post("x-1", 5, "dana"), post("x-2", 2, "dana")])
    stored(database, [post("fb-1", 3, "dana-fb") | {"channel": "facebook"}])
    with database.write() as c:
        first, second = c.execute(
            select(POSTS.c.id).where(POSTS.c.channel == "x").order_by(POSTS.c.id)
        ).scalars()  # fmt: skip
        c.execute(POSTS.update().where(POSTS.c.id == first).values(priority="high"))
        ids = dict(c.execute(select(IDENTITIES.c.author_id, IDENTITIES.c.id)).all())
    return [first, second], ids["id-dana"], ids["id-dana-fb"]


def sams_posts_by_handle(database: Database) -> list[int]:
    """Sam's two X posts stored by his handle alone (no platform id), as `dana_on_two_channels`
    lays them out."""
    bare = [post("x-1", 5, "sam"), post("x-2", 2, "sam")]
    stored(database, [{k: v for k, v in p.items() if k != "author_profile"} for p in bare])
    with database.write() as c:
        first, second = c.execute(select(POSTS.c.id).order_by(POSTS.c.id)).scalars()
        c.execute(POSTS.update().where(POSTS.c.id == first).values(priority="high"))
    return [first, second]


def owner(session: Session, identity_id: int) -> int:
    return int(
        session.execute(
            select(IDENTITIES.c.customer_id).where(IDENTITIES.c.id == identity_id)
        ).scalar_one()
    )


def beside_a_writer_in_id_order(
    database: Database, posts: list[int], change: Callable[[], Any]
) -> None:
    """`change` runs while another transaction holds the first post and, once `change`
    has had its moment to start, asks for the second; both must finish."""
    first, second = posts
    with database.engine.connect() as other, other.begin():
        other.execute(select(POSTS.c.id).where(POSTS.c.id == first).with_for_update())
        changing = Meanwhile(change, seconds=0.5)
        other.execute(select(POSTS.c.id).where(POSTS.c.id == second).with_for_update())
    assert changing.done().error is None, changing.error


def test_a_link_locks_the_posts_it_moves_in_id_order(database: Database) -> None:
    postgresql_only(database)
    posts, on_x, on_facebook = dana_on_two_channels(database)

    def link() -> None:
        with database.write_session() as session:
            into, other = owner(session, on_facebook), owner(session, on_x)
            customers.link(session, into, other, actor="agent", role="agent")

    beside_a_writer_in_id_order(database, posts, link)


def test_an_unlink_locks_the_posts_it_moves_in_id_order(database: Database) -> None:
    postgresql_only(database)
    posts, on_x, on_facebook = dana_on_two_channels(database)
    with database.write_session() as session:
        merged = customers.link(
            session, owner(session, on_facebook), owner(session, on_x), actor="a", role="agent"
        )
        assert merged.id is not None
        merged_id = merged.id

    def unlink() -> None:
        with database.write_session() as session:
            customers.unlink(session, merged_id, on_x, actor="agent", role="agent")

    beside_a_writer_in_id_order(database, posts, unlink)


def test_an_erasure_locks_the_posts_it_erases_in_id_order(database: Database) -> None:
    postgresql_only(database)
    posts, _, _ = dana_on_two_channels(database)

    def erase() -> None:
        with database.write() as c:
            erasure.erase_customer(c, "@userdana", actor="adm", role="admin")

    beside_a_writer_in_id_order(database, posts, erase)


def test_an_ingest_adopting_an_identity_locks_its_posts_in_id_order(database: Database) -> None:
    """Sam's next post names his platform id: his identity takes it, and so do his posts."""
    postgresql_only(database)
    posts = sams_posts_by_handle(database)
    beside_a_writer_in_id_order(database, posts, lambda: stored(database, [post("x-3", 9, "sam")]))
    with database.engine.connect() as c:
        ids = c.execute(select(POSTS.c.author_id).order_by(POSTS.c.id)).scalars().all()
    assert ids == ["id-sam"] * 3

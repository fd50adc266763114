"""A customer's erasure meets the rest of the record (SQLite and PostgreSQL): a legal hold
placed at the same moment either stops it or comes after it; a reply begun at the same
moment is refused or erased with the rest; an erased post takes no new reply. (A reply
approved before the erasure is not posted: tests/test_what_leaves.py.)"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from connectors import crm
from policies.versions import RuleBook
from records import drafts, erasure, retention
from records.audit_models import HoldCreate, HoldScope
from records.db import Database
from records.errors import Conflict
from records.ingest import store
from records.post_models import PostCreate
from records.settings import Settings
from records.tables import CUSTOMERS, DRAFTS, EVENTS, NOTIFICATIONS, POSTS, VERSIONS
from tests.helpers import JsonHandler, Meanwhile, insert_post, postgresql_only, serve
from tests.test_customers import post as customer_post
from tests.test_retention import a_draft, state

ERASE = {"actor": "adm", "role": "admin"}


def seq_of(database: Database, action: str) -> int:
    with database.engine.connect() as c:
        return int(c.execute(select(EVENTS.c.seq).where(EVENTS.c.action == action)).scalar_one())


def test_a_hold_placed_while_an_erasure_looks_stops_it_or_comes_after_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A legal hold stops erasure: one committed while an erasure is finding what to erase
    is either seen by it, or placed only once it has ended (then on what is left)."""
    postgresql_only(database)
    post_id, draft_id = a_draft(database, author="@jo")
    finding = erasure._posts_of
    others: list[Meanwhile] = []

    def place() -> None:
        hold = HoldCreate(scope=HoldScope.post, post_id=post_id, reason="litigation 7")
        with database.write() as c:
            retention.place(c, hold, actor="legal", role="legal")

    def while_finding(*args: Any, **kwargs: Any) -> Any:
        if not others:
            others.append(Meanwhile(place))
        return finding(*args, **kwargs)

    monkeypatch.setattr(erasure, "_posts_of", while_finding)
    with database.write() as c:
        erasure.erase_customer(c, "@jo", **ERASE)
    assert others[0].done().error is None
    post_erased, versions_erased, _ = state(database, post_id, draft_id)
    if seq_of(database, "hold.placed") < seq_of(database, "customer.erased"):
        assert not post_erased and not versions_erased, "erased under a legal hold"
    else:
        assert post_erased and versions_erased


def test_a_reply_begun_while_its_post_is_erased_is_refused_or_erased_with_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A draft started on the customer's post just after the erasure's last look for drafts:
    it waits for the erasure and is refused (or, had it come first, it would have been
    found, withdrawn and erased); never a draft with its text on an erased post."""
    postgresql_only(database)
    with database.write() as c:
        post_id = insert_post(c, text="My order 1234 never came")
        c.execute(POSTS.update().where(POSTS.c.id == post_id).values(author="@jo"))
    finding = erasure._drafts_of
    others: list[Meanwhile] = []

    def begin() -> int:
        with database.write() as c:
            return drafts.create(c, post_id=post_id, author="agent", body="Sorry, Jo!").draft_id

    def then_begin(*args: Any, **kwargs: Any) -> list[int]:
        found = finding(*args, **kwargs)
        if kwargs.get("lock"):  # the second look, which is the last
            others.append(Meanwhile(begin))
        return found

    monkeypatch.setattr(erasure, "_drafts_of", then_begin)
    with database.write() as c:
        erasure.erase_customer(c, "@jo", **ERASE)
    other = others[0].done()
    if other.error is not None:
        assert isinstance(other.error, Conflict) and "erased" in str(other.error), other.error
    else:
        with database.engine.connect() as c:
            bodies = c.execute(
                select(VERSIONS.c.body).where(VERSIONS.c.draft_id == other.outcome)
            ).scalars().all()  # fmt: skip
        assert bodies == [retention.ERASED], "a reply's text kept on an erased post"


def test_an_erased_post_takes_no_new_reply(database: Database) -> None:
    post_id, _ = a_draft(database, author="@jo")
    with database.write() as c:
        erasure.erase_customer(c, "@jo", **ERASE)
    with database.write() as c, pytest.raises(Conflict, match="erased") as refused:
        drafts.create(c, post_id=post_id, author="agent", body="Hello again, Jo")
    assert f"post {post_id}" in str(refused.value)


@dataclass(frozen=True)
class Rendered:
    """A reply template as rendered for the customer (`records.drafts.RenderedTemplate`)."""

    template_id: str = "apology"
    template_version: str = "1"
    body: str = "Sorry, Jo Bloggs of 1 Main St, we are on it."
    variable_spans: tuple[tuple[int, int], ...] = ((7, 16), (20, 29))


def test_an_erasure_takes_the_rendered_template_and_the_messages_about_the_reply(
    database: Database,
) -> None:
    """What else holds the reply's words beside its versions: the template as rendered for
    the customer, and a reviewer's comment told to the author."""
    with database.write() as c:
        post_id = insert_post(c, text="Where is my parcel?")
        c.execute(POSTS.update().where(POSTS.c.id == post_id).values(author="@jo"))
        draft_id = drafts.create(
            c, post_id=post_id, author="agent", body=Rendered.body, template=Rendered()
        ).draft_id
        c.execute(
            NOTIFICATIONS.insert(),
            {"recipient": "agent", "event": "changes_requested", "draft_id": draft_id,
             "post_id": post_id, "event_key": f"d{draft_id}-changes",
             "message": f"comms asked for changes to draft {draft_id}: not 1 Main St"},
        )  # fmt: skip
    with database.write() as c:
        erasure.erase_customer(c, "@jo", **ERASE)
    with database.engine.connect() as c:
        basis = c.execute(select(DRAFTS.c.template_basis).where(DRAFTS.c.id == draft_id))
        messages = c.execute(select(NOTIFICATIONS.c.message)).scalars().all()
    assert "Main St" not in json.dumps(basis.scalar_one())
    assert messages and not any("Main St" in message for message in messages)


def test_a_crm_answer_that_comes_after_the_erasure_is_not_kept(
    settings: Settings, database: Database
) -> None:
    """The CRM is asked about the customer, and answers only once they were erased: what it
    says of them is not written back."""
    crm._failed_at.clear()  # no back-off left over from elsewhere
    with database.write_session() as session:
        store(session, [PostCreate.model_validate(customer_post(1))], rules=RuleBook(),
              actor="poller:x", actor_role="integration")  # fmt: skip
    with database.engine.connect() as c:
        customer_id = int(c.execute(select(CUSTOMERS.c.id)).scalar_one())

    class Crm(JsonHandler):
        def do_POST(self) -> None:
            self.body()
            with database.write() as c:
                erasure.erase_customer(c, "@dana", **ERASE)
            self.answer(200, {"id": "C-77", "tier": "gold", "value": 1200})

    with serve(Crm) as url:
        live = settings.model_copy(update={"crm_url": url, "crm_secret": "crm-secret-of-16-chars"})
        crm.refresh(live, database, customer_id)
    with database.engine.connect() as c:
        kept = c.execute(
            select(CUSTOMERS.c.crm_id, CUSTOMERS.c.crm_tier, CUSTOMERS.c.crm_value)
            .where(CUSTOMERS.c.id == customer_id)
        ).one()  # fmt: skip
    assert tuple(kept) == (None, None, None)

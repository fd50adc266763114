"""Notifications: in-app over the API, a signed webhook and e-mail, each sent once per event
and person, against local receivers on 127.0.0.1 (an HTTP server, aiosmtpd)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from connectors.base import Posted, PublishRefused, Reply
from connectors.outbox import OutboxPublisher
from lifecycle.words import Role
from policies.engine import RuleSet
from records import drafts, notifications
from records.db import Database
from records.settings import Settings
from records.tables import DELIVERIES, NOTIFICATIONS, OUTBOX, PUBLICATIONS
from tests.conftest import Headers
from tests.helpers import JsonHandler, eventually, insert_post, new_post, serve
from tests.sealing import SealedHandle
from workflows.approval import ResponseApproval
from workflows.contracts import (
    Actor,
    CheckSubmission,
    DecisionRequest,
    DeliveryJob,
    DraftStart,
    PublishRequest,
    SubmitRequest,
)
from workflows.outbound import NotifyActivities
from workflows.transitions import TransitionActivities
from workflows.worker import ACTIVITY_THREADS, build_worker

SECRET = "webhook-secret-for-tests"
CLEAN = "Thanks for reaching out! We have sent you a direct message to sort this out."
API = "/api/v1"


@dataclass
class Receiver:
    """A webhook endpoint that answers 500 to its first `failures` requests."""

    failures: int = 0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = self.body()
            state.received.append((dict(self.headers.items()), body))
            if len(state.received) <= state.failures:
                self.send_response(500)
            else:
                state.accepted.append(json.loads(body))
                self.send_response(204)
            self.end_headers()

    with serve(Handler) as base:
        state.url = f"{base}/hooks/countersign"
        yield state


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with socket.socket() as probe:  # aiosmtpd checks its own port, so it needs a real one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def settings(settings: Settings, receiver: Receiver, mailbox: tuple[Mailbox, int]) -> Settings:
    return settings.model_copy(
        update={
            "notify_webhook_url": receiver.url,
            "notify_webhook_secret": SECRET,
            "smtp_host": "127.0.0.1",
            "smtp_port": mailbox[1],
        }
    )


async def new_draft(client: httpx.AsyncClient, people: dict[str, Headers]) -> int:
    post_id = await new_post(client, people["agent"], "My card was charged twice")
    draft = await client.post(
        f"{API}/drafts", headers=people["agent"], json={"post_id": post_id, "body": CLEAN}
    )
    assert draft.status_code == 201, draft.text
    return int(draft.json()["id"])


def deliveries(database: Database) -> list[Any]:
    with database.engine.connect() as c:
        return list(
            c.execute(
                select(DELIVERIES, NOTIFICATIONS.c.event, NOTIFICATIONS.c.recipient)
                .join(NOTIFICATIONS, NOTIFICATIONS.c.id == DELIVERIES.c.notification_id)
                .order_by(DELIVERIES.c.id)
            )
        )


@pytest.mark.temporal
async def test_in_app_notifications_are_listed_marked_read_and_chosen_per_event(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    draft_id = await new_draft(client, people)
    submitted = await client.post(f"{API}/drafts/{draft_id}/submit", headers=people["agent"])
    assert submitted.status_code == 200, submitted.text

    mine = await client.get(f"{API}/notifications", headers=people["comms"])
    assert mine.status_code == 200
    page = mine.json()
    assert page["unread"] == 1
    [item] = page["items"]
    assert (item["event"], item["draft_id"], item["read_at"]) == (
        "review_requested",
        draft_id,
        None,
    )
    assert "comms review" in item["message"]
    # The author is not asked to review their own draft; a reviewer of both stages is.
    assert (await client.get(f"{API}/notifications", headers=people["agent"])).json()["items"] == []
    assert (await client.get(f"{API}/notifications", headers=people["both"])).json()["unread"] == 1

    read = await client.post(f"{API}/notifications/read", headers=people["comms"], json={})
    assert read.json() == {"marked": 1}
    assert (await client.get(f"{API}/notifications?unread=true", headers=people["comms"])).json()[
        "items"
    ] == []

    # A reviewer who turns in-app off for requests no longer sees them in the list.
    chosen = await client.put(
        f"{API}/notifications/preferences",
        headers=people["legal"],
        json={"channels": {"review_requested": []}},
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["channels"]["review_requested"] == []
    assert chosen.json()["channels"]["reminder"] == ["in_app"]
    assert set(chosen.json()["available"]) == {"in_app", "webhook", "email"}
    decided = await client.post(
        f"{API}/drafts/{draft_id}/decisions",
        headers=people["comms"],
        json={"stage": "comms", "decision": "request_changes", "version": 1, "comment": "Tone"},
    )
    assert decided.status_code == 200, decided.text
    told = (await client.get(f"{API}/notifications", headers=people["agent"])).json()["items"]
    assert [(n["event"], "Tone" in n["message"]) for n in told] == [("changes_requested", True)]


@pytest.mark.temporal
async def test_bad_preferences_are_refused_with_what_is_wrong(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    url = f"{API}/notifications/preferences"
    for body, where in [
        ({"channels": {"lunch": ["in_app"]}}, "lunch"),
        ({"channels": {"reminder": ["pager"]}}, "reminder"),
        ({"email": "not-an-address"}, "email"),
        ({"colour": "blue"}, "colour"),
    ]:
        answer = await client.put(url, headers=people["comms"], json=body)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"] == "application/problem+json"
        assert where in answer.text
    # E-mail needs an address first.
    answer = await client.put(
        url, headers=people["comms"], json={"channels": {"reminder": ["email"]}}
    )
    assert answer.status_code == 422 and "e-mail address" in answer.text
    assert (await client.get(url, headers=people["comms"])).json()["channels"]["reminder"] == [
        "in_app"
    ]


@pytest.mark.temporal
async def test_a_signed_webhook_is_retried_until_accepted_and_sent_once(
    client: httpx.AsyncClient, people: dict[str, Headers], receiver: Receiver, database: Database
) -> None:
    receiver.failures = 1  # the first attempt fails; Temporal retries after its backoff
    chosen = await client.put(
        f"{API}/notifications/preferences",
        headers=people["comms"],
        json={"channels": {"review_requested": ["in_app", "webhook"]}},
    )
    assert chosen.status_code == 200, chosen.text
    draft_id = await new_draft(client, people)
    await client.post(f"{API}/drafts/{draft_id}/submit", headers=people["agent"])

    assert await eventually(lambda: len(receiver.accepted) == 1)
    [sent] = receiver.accepted
    assert (sent["event"], sent["recipient"], sent["draft_id"]) == (
        "review_requested",
        "comms",
        draft_id,
    )
    headers, body = receiver.received[-1]
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Countersign-Signature"] == f"sha256={expected}"
    assert headers["X-Countersign-Event"] == "review_requested"
    assert await eventually(lambda: deliveries(database)[0].status == "sent")
    [row] = deliveries(database)
    assert (row.channel, row.attempts, row.recipient) == ("webhook", 2, "comms")
    assert len(receiver.received) == 2  # one failure, one success, nothing after

    # Running the delivery again (a retry after success) sends nothing more.
    activities = NotifyActivities(database, webhook_url=receiver.url, webhook_secret=SECRET)
    again = ActivityEnvironment().run(
        activities.deliver_notification, DeliveryJob(delivery_id=row.id)
    )
    assert again == "sent" and len(receiver.received) == 2


@pytest.mark.temporal
async def test_email_goes_to_the_address_the_person_gave(
    client: httpx.AsyncClient, people: dict[str, Headers], mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    chosen = await client.put(
        f"{API}/notifications/preferences",
        headers=people["agent"],
        json={"email": "agent@acme.example", "channels": {"changes_requested": ["email"]}},
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["email"] == "agent@acme.example"
    draft_id = await new_draft(client, people)
    await client.post(f"{API}/drafts/{draft_id}/submit", headers=people["agent"])
    decided = await client.post(
        f"{API}/drafts/{draft_id}/decisions",
        headers=people["comms"],
        json={
            "stage": "comms",
            "decision": "request_changes",
            "version": 1,
            "comment": "Please drop the exclamation mark",
        },
    )
    assert decided.status_code == 200, decided.text
    assert await eventually(lambda: len(box.messages) == 1)
    [mail] = box.messages
    assert mail["To"] == "agent@acme.example"
    assert mail["Subject"] == "Countersign: changes requested"
    assert "exclamation mark" in mail.get_payload()
    # E-mail only: nothing in the agent's in-app list.
    listed = (await client.get(f"{API}/notifications", headers=people["agent"])).json()
    assert listed["items"] == []
    await asyncio.sleep(0.5)
    assert len(box.messages) == 1


@pytest.mark.temporal
async def test_a_supervisor_assigning_a_post_notifies_the_agent(
    client: httpx.AsyncClient, people: dict[str, Headers], receiver: Receiver
) -> None:
    chosen = await client.put(
        f"{API}/notifications/preferences",
        headers=people["agent2"],
        json={"channels": {"assigned": ["in_app", "webhook"]}},
    )
    assert chosen.status_code == 200
    post_id = await new_post(client, people["agent"], "Hello?")
    assigned = await client.post(
        f"{API}/posts/{post_id}/assign", headers=people["boss"], json={"assignee": "agent2"}
    )
    assert assigned.status_code == 200, assigned.text
    [item] = (await client.get(f"{API}/notifications", headers=people["agent2"])).json()["items"]
    assert (item["event"], item["post_id"]) == ("assigned", post_id)
    assert await eventually(lambda: len(receiver.accepted) == 1)
    assert receiver.accepted[0]["recipient"] == "agent2"
    # Taking a post for oneself tells nobody.
    taken = await client.post(f"{API}/posts/{post_id}/assign", headers=people["agent2"])
    assert taken.status_code == 200 and taken.json()["assignee"] == "agent2"
    reassigned = await client.post(
        f"{API}/posts/{post_id}/assign", headers=people["boss"], json={"assignee": "agent"}
    )
    assert reassigned.status_code == 200
    mine = (await client.get(f"{API}/notifications", headers=people["agent2"])).json()["items"]
    assert len(mine) == 1
    assert [
        n["event"]
        for n in (await client.get(f"{API}/notifications", headers=people["agent"])).json()["items"]
    ] == ["assigned"]


def test_a_retried_transition_notifies_once(
    database: Database, make_user: Callable[..., str]
) -> None:
    """The transition's compare-and-set makes its notifications once-only: a retry answers
    `recorded` with the same pending deliveries, and writes no second notification."""
    make_user("agent", Role.agent)
    make_user("reviewer", Role.comms)
    with database.write() as c:
        notifications.choose(c, "reviewer", {"review_requested": ["in_app", "webhook"]})
        post_id = insert_post(c)
        draft_id = drafts.create(c, post_id=post_id, author="agent", body=CLEAN).draft_id
    activities = TransitionActivities(database, RuleSet.load(), outbound=("webhook",))
    request = CheckSubmission(
        event_key=f"draft-{draft_id}/submit/once",
        expected=0,
        draft_id=draft_id,
        version=1,
        actor="agent",
        review_round=1,
    )
    first = ActivityEnvironment().run(activities.submit_checks, request)
    again = ActivityEnvironment().run(activities.submit_checks, request)
    assert (first.status, again.status) == ("applied", "recorded")
    assert len(first.deliveries) == 1 and again.deliveries == first.deliveries
    with database.engine.connect() as c:
        told = c.execute(
            select(NOTIFICATIONS.c.recipient).where(NOTIFICATIONS.c.event_key == request.event_key)
        ).all()
    assert [r.recipient for r in told] == ["reviewer"]
    assert len(deliveries(database)) == 1


@pytest.mark.temporal
async def test_a_rejection_tells_the_author_why(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    draft_id = await new_draft(client, people)
    await client.post(f"{API}/drafts/{draft_id}/submit", headers=people["agent"])
    rejected = await client.post(
        f"{API}/drafts/{draft_id}/decisions",
        headers=people["comms"],
        json={"stage": "comms", "decision": "reject", "version": 1, "comment": "Off-brand"},
    )
    assert rejected.json()["status"] == "rejected"
    [item] = (await client.get(f"{API}/notifications", headers=people["agent"])).json()["items"]
    assert item["event"] == "rejected" and "Off-brand" in item["message"]


class RefusesOnce(OutboxPublisher):
    """The outbox, except that the first reply is refused as a platform would a bad token."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.refused = 0

    def post(self, reply: Reply) -> Posted:
        if not self.refused:
            self.refused += 1
            raise PublishRefused("401 Unauthorized: the channel's token was revoked")
        return super().post(reply)


@pytest.mark.temporal
async def test_a_refused_reply_is_publish_failed_with_the_reason_and_can_be_retried(
    temporal_env: WorkflowEnvironment, database: Database, make_user: Callable[..., str]
) -> None:
    for name, role in [("agent", Role.agent), ("comms", Role.comms), ("pub", Role.publisher)]:
        make_user(name, role)
    queue = f"refuse-{uuid.uuid4().hex[:8]}"
    publisher = RefusesOnce(database)
    agent = Actor(username="agent", roles=["agent"])
    pub = Actor(username="pub", roles=["publisher"])
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(
            temporal_env.client, queue, database, executor, publishers={"outbox": publisher}
        ):
            with database.write() as c:
                post_id = insert_post(c)
                draft_id = drafts.create(c, post_id=post_id, author="agent", body=CLEAN).draft_id
            handle: Any = SealedHandle(
                await temporal_env.client.start_workflow(
                    ResponseApproval.run,
                    DraftStart(draft_id=draft_id, author="agent"),
                    id=f"{queue}-draft-{draft_id}",
                    task_queue=queue,
                )
            )
            await handle.execute_update(ResponseApproval.submit, SubmitRequest(actor=agent))
            await handle.execute_update(
                ResponseApproval.decide,
                DecisionRequest(
                    actor=Actor(username="comms", roles=["comms"]),
                    stage="comms",
                    decision="approve",
                    version=1,
                ),
            )
            state = await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=pub))
            assert state.status == "publish_failed"
            with database.engine.connect() as c:
                publication = c.execute(
                    select(PUBLICATIONS.c.status, PUBLICATIONS.c.error).where(
                        PUBLICATIONS.c.draft_id == draft_id
                    )
                ).one()
                told = c.execute(
                    select(NOTIFICATIONS.c.recipient, NOTIFICATIONS.c.message).where(
                        NOTIFICATIONS.c.event == "publish_failed"
                    )
                ).all()
            assert publication.status == "failed" and "401" in (publication.error or "")
            assert sorted(r.recipient for r in told) == ["agent", "pub"]
            assert all("token was revoked" in r.message for r in told)

            # A publisher tries again once the channel is fixed: posted once.
            state = await handle.execute_update(ResponseApproval.publish, PublishRequest(actor=pub))
            assert state.status == "published"
            with database.engine.connect() as c:
                posted = c.execute(
                    select(OUTBOX.c.id).where(OUTBOX.c.publication_key.like(f"draft-{draft_id}-%"))
                ).all()
            assert len(posted) == 1


@pytest.mark.temporal
async def test_a_webhook_to_a_refused_address_fails_at_once_and_calls_nobody(
    client: httpx.AsyncClient, people: dict[str, Headers], receiver: Receiver, database: Database
) -> None:
    """The notification webhook goes through the same outbound check as the channels
    (`connectors.egress`): on loopback, with nothing allowed, the delivery fails on its
    first attempt with the reason, and the receiver hears nothing."""
    from connectors import egress

    await client.put(
        f"{API}/notifications/preferences",
        headers=people["comms"],
        json={"channels": {"review_requested": ["in_app", "webhook"]}},
    )
    egress.configure(egress.EgressPolicy())
    draft_id = await new_draft(client, people)
    await client.post(f"{API}/drafts/{draft_id}/submit", headers=people["agent"])
    assert await eventually(
        lambda: bool(deliveries(database)) and deliveries(database)[0].status == "failed"
    )
    [row] = deliveries(database)
    assert row.attempts == 1 and "127.0.0.1 is a loopback address" in row.last_error
    assert receiver.received == []

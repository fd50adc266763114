"""Hostile clients against the whole stack (the API, a real worker on the Temporal dev
server, SQLite and PostgreSQL): someone who reaches Temporal without Countersign
credentials, someone with the database, reviewers and agents racing, an agent who edits a
template's meaning away, a supervisor backing up an overdue stage. Each promise must hold
whoever sends what (DESIGN's invariants 1, 2, 3, 7 and 8; THREATS.md)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from lifecycle.words import Role
from records.db import Database
from records.settings import Settings
from records.tables import DECISIONS, DRAFTS, EVENTS, OUTBOX, PUBLICATIONS
from tests.conftest import PASSWORD, Headers
from tests.helpers import REPLY, eventually, new_post
from tests.sealing import seal
from workflows.contracts import (
    Actor,
    DecisionRequest,
    PublishRequest,
    WithdrawRequest,
    workflow_id,
)

pytestmark = pytest.mark.temporal
FAULT = "We are sorry, this was our fault. A colleague will message you privately today."
OTHER_KEY = "a-key-that-is-not-the-apis-but-just-as-long-0123456789"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Legal is due in about a second here, and a supervisor backs it up once overdue."""
    return settings.model_copy(
        update={
            "sla_minutes": {"comms": 30, "legal": 0.02},
            "sla_reminder_fraction": 0,
            "sla_backup_roles": {"legal": "supervisor"},
        }
    )


async def login(client: httpx.AsyncClient, username: str) -> Headers:
    response = await client.post(
        "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def draft(client: httpx.AsyncClient, agent: Headers, body: str = REPLY) -> dict[str, Any]:
    post_id = await new_post(client, agent, "Hello?")
    created = await client.post(
        "/api/v1/drafts", headers=agent, json={"post_id": post_id, "body": body}
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def submitted(client: httpx.AsyncClient, agent: Headers, body: str = REPLY) -> str:
    url = f"/api/v1/drafts/{(await draft(client, agent, body))['id']}"
    answer = await client.post(f"{url}/submit", headers=agent)
    assert answer.json()["status"] == "in_review", answer.text
    return url


def counts(database: Database) -> tuple[int, int, int, int]:
    """Audit events, decisions, publications and posted replies: what an action writes."""
    with database.engine.connect() as c:
        return tuple(  # type: ignore[return-value]
            int(c.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (EVENTS, DECISIONS, PUBLICATIONS, OUTBOX)
        )


# --- straight to Temporal, with no Countersign credentials ----------------------------------


async def test_updates_sent_straight_to_temporal_without_the_apis_seal_are_refused(
    client: httpx.AsyncClient,
    people: dict[str, Headers],
    live_settings: Settings,
    temporal_env: WorkflowEnvironment,
    database: Database,
) -> None:
    """The attack from issue 18: decide as comms and legal, then publish as publisher,
    straight to the Temporal frontend. Unsigned, signed with another key, expired, or with a
    seal taken from another draft, another action or another update: all refused, nothing
    written, nothing posted, and the draft stays where it was."""
    url = await submitted(client, people["agent"], FAULT)  # route comms, legal
    other = await submitted(client, people["agent"], FAULT)
    draft_id, other_id = int(url.rsplit("/", 1)[1]), int(other.rsplit("/", 1)[1])
    prefix = live_settings.workflow_id_prefix
    target, elsewhere = workflow_id(draft_id, prefix), workflow_id(other_id, prefix)
    handle = temporal_env.client.get_workflow_handle(target)
    comms = DecisionRequest(
        actor=Actor(username="mallory", roles=["comms", "legal", "publisher"]),
        stage="comms",
        decision="approve",
        version=1,
    )
    before = counts(database)
    now = datetime.now(UTC)

    def sealed(request: Any, **claims: Any) -> Any:
        return seal(request, **{"workflow_id": target, "update": "decide", **claims})

    withdraw = WithdrawRequest(actor=Actor(username="agent", roles=["agent"]))
    publish = PublishRequest(actor=Actor(username="mallory", roles=["publisher"]))
    # (what, the update it is sent as, under which update id, the request)
    attempts: list[tuple[str, str, str, Any]] = [
        ("unsigned", "decide", "u0", comms),
        ("another key", "decide", "u1", sealed(comms, update_id="u1", key=OTHER_KEY)),
        ("expired", "decide", "u2", sealed(comms, update_id="u2", at=now - timedelta(minutes=6))),
        ("ahead", "decide", "u3", sealed(comms, update_id="u3", at=now + timedelta(minutes=5))),
        ("another draft's", "decide", "u4", sealed(comms, update_id="u4", workflow_id=elsewhere)),
        ("another update's", "decide", "u5", sealed(comms, update_id="not-u5")),
        (
            "another action's",
            "submit",
            "u6",
            seal(withdraw, workflow_id=target, update="withdraw", update_id="u6"),
        ),
        ("another author's", "decide", "u7", sealed(comms, update_id="u7", author="mallory")),
        ("unsigned publish", "publish", "u8", publish),
    ]
    for name, update_name, update_id, request in attempts:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(update_name, request, id=update_id)
        assert getattr(refused.value.cause, "type", None) == "Forbidden", name
    assert counts(database) == before  # nothing written, nothing posted
    view = (await client.get(url, headers=people["comms"])).json()
    assert (view["status"], view["stage"], view["decisions"]) == ("in_review", "comms", [])
    # The same workflow still takes the API's own, sealed, action.
    approved = await client.post(
        f"{url}/decisions",
        headers=people["comms"],
        json={"stage": "comms", "decision": "approve", "version": 1},
    )
    assert approved.status_code == 200, approved.text


# --- someone with the database -------------------------------------------------------------


async def test_a_deleted_approval_is_refused_at_publish_and_nothing_is_posted(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    url = await submitted(client, people["agent"], FAULT)
    for who, stage in (("comms", "comms"), ("legal", "legal")):
        body = {"stage": stage, "decision": "approve", "version": 1}
        decided = await client.post(f"{url}/decisions", headers=people[who], json=body)
        assert decided.status_code == 200, decided.text
    draft_id = int(url.rsplit("/", 1)[1])
    with database.engine.begin() as c:  # someone with the database file
        c.execute(
            delete(DECISIONS).where(DECISIONS.c.draft_id == draft_id, DECISIONS.c.stage == "legal")
        )
    published = await client.post(f"{url}/publish", headers=people["pub"])
    assert published.status_code == 200, published.text
    view = published.json()
    assert view["status"] == "publish_failed"
    assert "no legal approval" in view["publication"]["error"]
    assert counts(database)[3] == 0  # the channel was never called
    with database.engine.connect() as c:
        actions = (
            c.execute(
                select(EVENTS.c.action).where(EVENTS.c.draft_id == draft_id).order_by(EVENTS.c.seq)
            )
            .scalars()
            .all()
        )
    assert actions[-1] == "draft.publish_refused"
    verify = await client.get("/api/v1/audit/verify", headers=people["boss"])
    assert verify.status_code in (200, 403)


async def test_approvals_of_other_text_or_a_second_reply_are_refused_at_publish(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    """The record, not the workflow, decides: an approval whose hash is not the text's, or
    a post that already has its reply out, stops the publication before the channel."""
    tampered = await submitted(client, people["agent"])
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    assert (
        await client.post(f"{tampered}/decisions", headers=people["comms"], json=approve)
    ).status_code == 200
    draft_id = int(tampered.rsplit("/", 1)[1])
    with database.engine.begin() as c:
        c.execute(
            update(DECISIONS)
            .where(DECISIONS.c.draft_id == draft_id)
            .values(content_sha256="0" * 64)
        )
    view = (await client.post(f"{tampered}/publish", headers=people["pub"])).json()
    assert view["status"] == "publish_failed" and "other text" in view["publication"]["error"]

    second = await submitted(client, people["agent"])
    assert (
        await client.post(f"{second}/decisions", headers=people["comms"], json=approve)
    ).status_code == 200
    second_id = int(second.rsplit("/", 1)[1])
    with database.engine.begin() as c:  # another reply to the same post, already out
        post_id = c.execute(select(DRAFTS.c.post_id).where(DRAFTS.c.id == second_id)).scalar_one()
        rogue = c.execute(
            DRAFTS.insert().returning(DRAFTS.c.id),
            {
                "post_id": post_id,
                "author": "agent2",
                "status": "published",
                "version": 1,
                "review_round": 1,
                "route": ["comms"],
                "transitions": 3,
                "created_at": datetime.now(UTC),
                "updated_at": datetime.now(UTC),
            },
        ).scalar_one()
        c.execute(
            PUBLICATIONS.insert(),
            {
                "draft_id": rogue,
                "version": 1,
                "channel": "x",
                "status": "confirmed",
                "requested_by": "pub",
                "attempts": 1,
                "created_at": datetime.now(UTC),
                "updated_at": datetime.now(UTC),
            },
        )
    view = (await client.post(f"{second}/publish", headers=people["pub"])).json()
    assert view["status"] == "publish_failed"
    assert "already has its public reply" in view["publication"]["error"]
    assert counts(database)[3] == 0


# --- people racing -------------------------------------------------------------------------


@pytest.mark.parametrize("reviewers", [2, 8, 32])
async def test_of_n_reviewers_racing_on_one_stage_exactly_one_wins_and_each_is_told_the_truth(
    client: httpx.AsyncClient,
    people: dict[str, Headers],
    make_user: Callable[..., str],
    database: Database,
    reviewers: int,
) -> None:
    names = [make_user(f"rev{uuid.uuid4().hex[:6]}", Role.comms) for _ in range(reviewers)]
    headers = {name: await login(client, name) for name in names}
    url = await submitted(client, people["agent"])  # route: comms
    body = {"stage": "comms", "decision": "approve", "version": 1, "comment": "ok"}
    answers = await asyncio.gather(
        *(client.post(f"{url}/decisions", headers=headers[n], json=body) for n in names)
    )
    won = [(n, a) for n, a in zip(names, answers, strict=True) if a.status_code == 200]
    assert len(won) == 1, [a.status_code for a in answers]
    assert sorted(a.status_code for a in answers) == [200] + [409] * (reviewers - 1)
    winner, answer = won[0]
    assert [d["reviewer"] for d in answer.json()["decisions"]] == [winner]
    draft_id = int(url.rsplit("/", 1)[1])
    with database.engine.connect() as c:
        recorded = (
            c.execute(select(DECISIONS.c.reviewer).where(DECISIONS.c.draft_id == draft_id))
            .scalars()
            .all()
        )
    assert recorded == [winner]


async def test_a_caller_repeating_their_own_request_gets_one_effect(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    """A double click (the same request twice at once, no key) and a retry with the same
    Idempotency-Key: one decision, and every answer is 200 and shows it."""
    body = {"stage": "comms", "decision": "approve", "version": 1}
    for headers in (people["comms"], {**people["comms"], "Idempotency-Key": "approve-once"}):
        url = await submitted(client, people["agent"])
        answers = await asyncio.gather(
            *(client.post(f"{url}/decisions", headers=headers, json=body) for _ in range(3))
        )
        assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
        for answer in answers:
            assert [d["reviewer"] for d in answer.json()["decisions"]] == ["comms"]


async def test_one_idempotency_key_for_two_actions_is_two_actions(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    """Found by the stateful schema run: a client that sends the same Idempotency-Key with
    an edit and then a submit got the edit's stored answer back as the submit's, which
    the API could not read (500). A key scopes one action on one draft."""
    post_id = await new_post(client, people["agent"], "Where is my card?")
    created = await client.post(
        "/api/v1/drafts", headers=people["agent"], json={"post_id": post_id, "body": "Soon."}
    )
    url = f"/api/v1/drafts/{created.json()['id']}"
    keyed = {**people["agent"], "Idempotency-Key": "same-key"}
    edited = await client.put(url, headers=keyed, json={"body": "Today.", "expected_version": 1})
    assert edited.status_code == 200, edited.text
    submitted = await client.post(f"{url}/submit", headers=keyed)
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "in_review" and submitted.json()["version"] == 2


async def test_three_agents_racing_to_draft_one_post_one_wins_the_others_are_told_who(
    client: httpx.AsyncClient, people: dict[str, Headers], make_user: Callable[..., str]
) -> None:
    make_user("agent3", Role.agent)
    agents = {"agent": people["agent"], "agent2": people["agent2"]}
    agents["agent3"] = await login(client, "agent3")
    post_id = await new_post(client, people["agent"], "Where is my parcel?")
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/drafts", headers=h, json={"post_id": post_id, "body": REPLY})
            for h in agents.values()
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409], [a.text for a in answers]
    holder = next(a.json() for a in answers if a.status_code == 201)
    for answer in answers:
        if answer.status_code == 409:
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert holder["author"] in answer.json()["detail"]
    drafts = (await client.get(f"/api/v1/drafts?post_id={post_id}", headers=people["boss"])).json()
    assert len(drafts["items"]) == 1
    post = (await client.get(f"/api/v1/posts/{post_id}", headers=people["boss"])).json()
    assert post["assignee"] == holder["author"]  # drafting took the post


async def test_a_post_assigned_to_someone_else_is_not_drafted_until_a_supervisor_reassigns(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    post_id = await new_post(client, people["agent"], "Hello?")
    taken = await client.post(f"/api/v1/posts/{post_id}/assign", headers=people["agent"])
    assert taken.status_code == 200, taken.text
    mine = {"post_id": post_id, "body": REPLY}
    refused = await client.post("/api/v1/drafts", headers=people["agent2"], json=mine)
    assert refused.status_code == 409 and "assigned to agent" in refused.json()["detail"]
    moved = await client.post(
        f"/api/v1/posts/{post_id}/assign", headers=people["boss"], json={"assignee": "agent2"}
    )
    assert moved.status_code == 200, moved.text
    assert (
        await client.post("/api/v1/drafts", headers=people["agent2"], json=mine)
    ).status_code == 201


async def test_a_follow_up_reply_needs_a_supervisors_audited_allowance(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    url = await submitted(client, people["agent"])
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    assert (
        await client.post(f"{url}/decisions", headers=people["comms"], json=approve)
    ).status_code == 200
    published = (await client.post(f"{url}/publish", headers=people["pub"])).json()
    assert published["status"] == "published"
    post_id, again = published["post_id"], {"post_id": published["post_id"], "body": REPLY}
    refused = await client.post("/api/v1/drafts", headers=people["agent"], json=again)
    assert refused.status_code == 409 and "already has its public reply" in refused.json()["detail"]
    assert (
        await client.post(f"/api/v1/posts/{post_id}/follow-up", headers=people["agent"])
    ).status_code == 403
    allowed = await client.post(f"/api/v1/posts/{post_id}/follow-up", headers=people["boss"])
    assert allowed.status_code == 200 and allowed.json()["replies_allowed"] == 2
    follow_up = await client.post("/api/v1/drafts", headers=people["agent"], json=again)
    assert follow_up.status_code == 201, follow_up.text
    with database.engine.connect() as c:
        actors = (
            c.execute(select(EVENTS.c.actor).where(EVENTS.c.action == "post.follow_up_allowed"))
            .scalars()
            .all()
        )
    assert actors == ["boss"]


# --- a template's meaning edited away --------------------------------------------------------


async def test_a_template_edit_that_reverses_its_meaning_routes_to_legal(
    client: httpx.AsyncClient, people: dict[str, Headers]
) -> None:
    """Eight characters turn the fee-refund template around; its pre-approval goes with
    them, and the text routes as free text would."""
    post_id = await new_post(client, people["agent"], "Why the overdraft fee?")
    values = {"name": "Sam", "fee": "overdraft fee", "days": 3}
    created = await client.post(
        "/api/v1/drafts",
        headers=people["agent"],
        json={"post_id": post_id, "template_id": "fee-refund", "variables": values},
    )
    assert created.status_code == 201, created.text
    url, text = f"/api/v1/drafts/{created.json()['id']}", created.json()["body"]
    reversed_ = text.replace("should not have been", "should have been").replace(
        "will arrange", "will not arrange"
    )
    assert len(text) - len(reversed_) == 0  # "not" moved: the same length, 8 characters
    edited = await client.put(
        url, headers=people["agent"], json={"body": reversed_, "expected_version": 1}
    )
    assert edited.status_code == 200, edited.text
    answer = await client.post(f"{url}/submit", headers=people["agent"])
    assert answer.json()["route"] == ["comms", "legal"], answer.text
    free = await client.post(
        "/api/v1/policies/check", headers=people["agent"], json={"body": reversed_, "channel": "x"}
    )
    assert free.json()["route"] == answer.json()["route"]


# --- a supervisor backing up an overdue stage ------------------------------------------------


async def test_a_backup_supervisor_sees_decides_and_is_recorded_as_supervisor(
    client: httpx.AsyncClient, people: dict[str, Headers], database: Database
) -> None:
    url = await submitted(client, people["agent"], FAULT)
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    assert (
        await client.post(f"{url}/decisions", headers=people["comms"], json=approve)
    ).status_code == 200
    draft_id = int(url.rsplit("/", 1)[1])

    def overdue() -> bool:
        with database.engine.connect() as c:
            return bool(
                c.execute(select(DRAFTS.c.sla_breached).where(DRAFTS.c.id == draft_id)).scalar_one()
            )

    assert await eventually(overdue, 30), "legal's review time did not pass"
    view = (await client.get(url, headers=people["boss"])).json()
    assert "decide" in view["allowed_actions"]
    queue = (await client.get("/api/v1/reviews", headers=people["boss"])).json()
    assert draft_id in [d["id"] for d in queue["items"]]
    legal = {"stage": "legal", "decision": "approve", "version": 1}
    decided = await client.post(f"{url}/decisions", headers=people["boss"], json=legal)
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert decided.json()["decisions"][-1]["role"] == "supervisor"
    with database.engine.connect() as c:
        role = c.execute(
            select(EVENTS.c.role).where(
                EVENTS.c.draft_id == draft_id,
                EVENTS.c.action == "draft.approve",
                EVENTS.c.actor == "boss",
            )
        ).scalar_one()
    assert role == "supervisor"
    # The page shows the supervisor exactly what the API allows.
    assert "publish" in (await client.get(url, headers=people["pub"])).json()["allowed_actions"]

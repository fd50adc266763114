"""A rolling deploy (issue 25, item 2): drafts under way on one release's worker finish on
the next release's, which changed the workflow the way the README's Operations section
says, behind `workflow.patched`.

Release two adds a step to every submission. A draft submitted under release one has its
submission in its history: the new worker replays it the old way and takes it on to
publication. A draft created under release one and submitted after the deploy, and one
begun after it, run the new step. (`tests/test_replay.py` shows the same change made
without the patch breaks the recorded drafts.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from lifecycle.words import Role
from records.db import Database
from records.settings import Settings
from tests.helpers import REPLY, new_post, signed_in, submitted_draft
from tests.release_two import NEW_STEP, ReleaseTwo, release_two_step
from workflows.approval import ResponseApproval
from workflows.connection import TemporalGateway
from workflows.worker import ACTIVITY_THREADS, WORKFLOWS, build_worker

pytestmark = [pytest.mark.temporal, pytest.mark.long(10)]
RELEASE_TWO = [ReleaseTwo, *(w for w in WORKFLOWS if w is not ResponseApproval)]


async def test_drafts_under_way_finish_after_the_worker_is_replaced_by_the_next_release(
    settings: Settings,
    database: Database,
    temporal_env: WorkflowEnvironment,
    temporal_gateway: TemporalGateway,
    make_user: Callable[..., str],
) -> None:
    NEW_STEP.clear()
    queue = f"deploy-{uuid.uuid4().hex[:8]}"
    live = settings.model_copy(update={"task_queue": queue, "workflow_id_prefix": f"{queue}-"})
    for name, role in (("agent", Role.agent), ("comms", Role.comms), ("pub", Role.publisher)):
        make_user(name, role)
    approve = {"stage": "comms", "decision": "approve", "version": 1}
    app = create_app(live, database=database, temporal=temporal_gateway)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            people = await signed_in(client, "agent", "comms", "pub")

            async def draft(n: int) -> str:
                """A submitted draft answering a post of its own (repeats are dismissed)."""
                text = f"Order {n} never came and nobody answers!"
                post_id = await new_post(client, people["agent"], text)
                return await submitted_draft(client, people, post_id)

            with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
                # Release one: drafts in review, one approved, one not yet submitted.
                async with build_worker(temporal_env.client, queue, database, executor,
                                        settings=live):  # fmt: skip
                    in_review = [await draft(n) for n in range(3)]
                    approved = await draft(3)
                    decided = await client.post(
                        f"{approved}/decisions", headers=people["comms"], json=approve
                    )
                    assert decided.json()["status"] == "approved"
                    post_id = await new_post(client, people["agent"], "You charged me twice for 4!")
                    made = await client.post("/api/v1/drafts", headers=people["agent"],
                                             json={"post_id": post_id, "body": REPLY})  # fmt: skip
                    assert made.status_code == 201, made.text
                unsubmitted = f"/api/v1/drafts/{made.json()['id']}"
                # Release one has stopped; release two takes the task queue.
                async with build_worker(temporal_env.client, queue, database, executor,
                                        settings=live, release=RELEASE_TWO,
                                        new_activities=[release_two_step]):  # fmt: skip
                    submitted = await client.post(f"{unsubmitted}/submit", headers=people["agent"])
                    assert submitted.json()["status"] == "in_review", submitted.text
                    after = await draft(5)
                    for url in [*in_review, unsubmitted, after]:
                        decided = await client.post(
                            f"{url}/decisions", headers=people["comms"], json=approve
                        )
                        assert decided.json()["status"] == "approved", decided.text
                    for url in [*in_review, approved, unsubmitted, after]:
                        published = await client.post(f"{url}/publish", headers=people["pub"])
                        assert published.json()["status"] == "published", published.text

    def draft_id(url: str) -> int:
        return int(url.rsplit("/", 1)[1])

    # Only the submissions made under release two ran its step.
    assert sorted(NEW_STEP) == sorted([draft_id(unsubmitted), draft_id(after)])

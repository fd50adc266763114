"""What people write about a draft, sealed on its way through Temporal (`records.draft_texts`):
an edit's text and a reviewer's comment are in the database in the clear and in the
workflow's history only sealed; erasing the customer forgets the draft's key, and what the
history keeps no longer opens. And the seal itself: bound to its draft, any change to its
bytes detected, a text sent before sealing existed taken as it is."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from records import draft_texts, erasure
from records.db import Database
from records.errors import Conflict
from records.settings import Settings
from records.tables import DECISIONS, DRAFTS, VERSIONS
from tests.helpers import new_post
from workflows.contracts import workflow_id

pytestmark = pytest.mark.temporal
KEY = draft_texts.new_key()
SEALED = re.compile(rb"dt1\.[A-Za-z0-9_-]+")
EDITED = "Thanks for waiting: our Elm Street branch will call you back this afternoon."
COMMENT = "Do not name the card number in public, even its last digits."


def test_a_sealed_text_opens_for_its_draft_and_only_there() -> None:
    sealed = draft_texts.seal(KEY, 7, EDITED)
    assert sealed is not None and sealed.startswith(draft_texts.PREFIX) and EDITED not in sealed
    assert draft_texts.seal(KEY, 7, EDITED) != sealed  # a nonce of its own each time
    assert draft_texts.opened(KEY, 7, sealed) == EDITED
    with pytest.raises(draft_texts.TextSealError, match="sealed for another"):
        draft_texts.opened(KEY, 8, sealed)  # another draft's
    with pytest.raises(draft_texts.TextSealError, match="sealed for another"):
        draft_texts.opened(draft_texts.new_key(), 7, sealed)  # another key
    altered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(draft_texts.TextSealError, match="altered"):
        draft_texts.opened(KEY, 7, altered)
    with pytest.raises(draft_texts.TextSealError, match="erased"):
        draft_texts.opened(None, 7, sealed)  # the key forgotten


def test_a_retried_request_s_update_id_derives_from_a_keyed_fingerprint_of_its_words() -> None:
    """The same words give the same fingerprint (a request retried without an
    Idempotency-Key stays one update), which, keyed by the draft's key, says nothing of the
    words once the key is forgotten."""
    once = draft_texts.fingerprint(KEY, 7, COMMENT)
    assert draft_texts.fingerprint(KEY, 7, COMMENT) == once
    assert once != draft_texts.fingerprint(draft_texts.new_key(), 7, COMMENT)
    assert once != draft_texts.fingerprint(KEY, 8, COMMENT)
    with pytest.raises(Conflict, match="erased"):
        draft_texts.fingerprint(None, 7, COMMENT)


def test_empty_and_unsealed_texts_pass_as_they_are() -> None:
    """An empty or blank comment stays as it is (the workflow still refuses a rejection
    without one, even one sent with an Idempotency-Key, which only the workflow judges),
    and a text a draft in flight sent before sealing existed is read as sent."""
    assert draft_texts.seal(KEY, 7, None) is None and draft_texts.seal(KEY, 7, "") == ""
    assert draft_texts.seal(KEY, 7, " \n ") == " \n "  # blank: the workflow refuses it
    assert draft_texts.opened(None, 7, "sent before sealing") == "sent before sealing"
    with pytest.raises(Conflict, match="erased"):
        draft_texts.seal(None, 7, "new words for an erased draft")


async def history_bytes(env: WorkflowEnvironment, settings: Settings, draft_id: int) -> bytes:
    handle = env.client.get_workflow_handle(workflow_id(draft_id, settings.workflow_id_prefix))
    history = await handle.fetch_history()
    return b"".join(event.SerializeToString() for event in history.events)


async def test_an_edit_and_a_comment_are_sealed_in_the_history_and_erased_with_the_customer(
    client: httpx.AsyncClient,
    people: dict[str, dict[str, str]],
    database: Database,
    temporal_env: WorkflowEnvironment,
    live_settings: Settings,
) -> None:
    agent, comms = people["agent"], people["comms"]
    post_id = await new_post(client, agent, "My card does not work")
    made = await client.post("/api/v1/drafts", headers=agent,
                             json={"post_id": post_id, "body": "Sorry to hear that."})  # fmt: skip
    assert made.status_code in (200, 201), made.text
    url = f"/api/v1/drafts/{made.json()['id']}"
    draft_id = made.json()["id"]
    edited = await client.put(url, headers=agent, json={"body": EDITED, "expected_version": 1})
    assert edited.status_code == 200, edited.text
    assert (await client.post(f"{url}/submit", headers=agent)).status_code == 200
    blank = {"stage": "comms", "decision": "request_changes", "version": 2, "comment": "  "}
    keyed = {**comms, "Idempotency-Key": "blank-1"}  # only the workflow judges it then
    refused = await client.post(f"{url}/decisions", headers=keyed, json=blank)
    assert refused.status_code == 422 and "comment is required" in refused.json()["detail"]
    asked = {"stage": "comms", "decision": "request_changes", "version": 2, "comment": COMMENT}
    changes = await client.post(f"{url}/decisions", headers=comms, json=asked)
    assert changes.status_code == 200, changes.text
    assert changes.json()["decisions"][0]["comment"] == COMMENT  # the record has it in full

    with database.engine.connect() as connection:
        bodies = connection.execute(select(VERSIONS.c.body).where(VERSIONS.c.draft_id == draft_id))
        assert EDITED in bodies.scalars().all()
        comments = select(DECISIONS.c.comment).where(DECISIONS.c.draft_id == draft_id)
        assert connection.execute(comments).scalars().all() == [COMMENT]
        key = draft_texts.key_of(connection, draft_id)
    history = await history_bytes(temporal_env, live_settings, draft_id)
    for words in (EDITED, COMMENT, "Elm Street", "card number"):
        assert words.encode() not in history, f"{words!r} is in the history in the clear"
    sealed = {found.decode() for found in SEALED.findall(history)}
    assert {draft_texts.opened(key, draft_id, text) for text in sealed} == {EDITED, COMMENT}

    with database.write() as connection:
        erasure.erase_customer(connection, "@customer", actor="adm", role="admin")
    with database.engine.connect() as connection:
        forgotten = select(DRAFTS.c.text_key).where(DRAFTS.c.id == draft_id)
        assert connection.execute(forgotten).scalar_one() is None
        key = draft_texts.key_of(connection, draft_id)
    history = await history_bytes(temporal_env, live_settings, draft_id)
    assert {found.decode() for found in SEALED.findall(history)} == sealed  # Temporal's, as kept
    for text in sealed:
        with pytest.raises(draft_texts.TextSealError, match="erased"):
            draft_texts.opened(key, draft_id, text)

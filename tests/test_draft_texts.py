"""What people write about a draft, sealed on its way through Temporal (`records.draft_texts`):
an edit's text and a reviewer's comment are in the database in the clear and in the
workflow's history only sealed, and what the checks found in a blocked text is not there
at all; erasing the customer forgets the draft's key, and what the history keeps no longer
opens. And the seal itself: bound to its draft and its field, any change detected, a text
sent before sealing existed taken as it is; a draft's key given with its first text."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select, update
from temporalio.testing import WorkflowEnvironment

from records import draft_texts, drafts, erasure
from records.db import Database
from records.draft_texts import TextField
from records.errors import Conflict
from records.settings import Settings
from records.tables import DECISIONS, DRAFTS, VERSIONS
from tests.helpers import Meanwhile, insert_post, new_post, postgresql_only
from workflows.contracts import workflow_id

pytestmark = pytest.mark.temporal
KEY = "11" * 32
OTHER_KEY = "22" * 32
SEALED = re.compile(rb"dt1\.[A-Za-z0-9_-]+")
EDITED = "Thanks for waiting: our Elm Street branch will call you back this afternoon."
COMMENT = "Do not name the card number in public, even its last digits."
TOO_LONG = "Maple Avenue branch news for you: " + "we are on it. " * 30  # over X's 280


def test_a_sealed_text_opens_for_its_draft_and_field_and_only_there() -> None:
    sealed = draft_texts.seal(KEY, 7, TextField.edit, EDITED)
    assert sealed is not None and sealed.startswith(draft_texts.PREFIX) and EDITED not in sealed
    assert draft_texts.seal(KEY, 7, TextField.edit, EDITED) != sealed  # a nonce of its own
    assert draft_texts.opened(KEY, 7, TextField.edit, sealed) == EDITED
    for key, draft_id, words in ((KEY, 8, TextField.edit), (OTHER_KEY, 7, TextField.edit),
                                 (KEY, 7, TextField.comment)):  # fmt: skip
        with pytest.raises(draft_texts.TextSealError, match="sealed for another"):
            draft_texts.opened(key, draft_id, words, sealed)
    for altered in (sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1],
                    sealed[:10] + "!!" + sealed[10:], sealed[:-4]):  # fmt: skip
        with pytest.raises(draft_texts.TextSealError, match="altered"):
            draft_texts.opened(KEY, 7, TextField.edit, altered)
    for broken in ("dt1.é", "dt1.", "dt1.AAAA", "dt1.+/+/" + sealed[8:]):
        with pytest.raises(draft_texts.TextSealError, match="altered"):
            draft_texts.opened(KEY, 7, TextField.edit, broken)  # refused, never a crash
    with pytest.raises(draft_texts.TextErased, match="erased"):
        draft_texts.opened(None, 7, TextField.edit, sealed)  # the key forgotten


def test_a_retried_request_s_update_id_derives_from_a_keyed_fingerprint_of_its_words() -> None:
    """The same words give the same fingerprint (a request retried without an
    Idempotency-Key stays one update), which, keyed by the draft's key, says nothing of the
    words once the key is forgotten."""
    once = draft_texts.fingerprint(KEY, 7, TextField.comment, COMMENT)
    assert draft_texts.fingerprint(KEY, 7, TextField.comment, COMMENT) == once
    assert once != draft_texts.fingerprint(OTHER_KEY, 7, TextField.comment, COMMENT)
    assert once != draft_texts.fingerprint(KEY, 8, TextField.comment, COMMENT)
    assert once != draft_texts.fingerprint(KEY, 7, TextField.edit, COMMENT)


def test_empty_blank_and_unsealed_texts_pass_as_they_are() -> None:
    """An empty or blank comment stays as it is (the workflow still refuses a rejection
    without one, even one sent with an Idempotency-Key, which only the workflow judges),
    and a text a draft in flight sent before sealing existed is read as sent."""
    assert draft_texts.seal(KEY, 7, TextField.comment, None) is None
    assert draft_texts.seal(KEY, 7, TextField.comment, "") == ""
    assert draft_texts.seal(KEY, 7, TextField.comment, " \n ") == " \n "
    assert (
        draft_texts.opened(None, 7, TextField.edit, "sent before sealing") == "sent before sealing"
    )


def test_a_draft_gets_its_key_with_its_first_text_unless_its_words_were_erased(
    database: Database,
) -> None:
    """A draft made before keys existed (or by the release before, during an upgrade) gets
    one when it is first needed, once; an erased draft never gets one again."""
    with database.write() as connection:
        made = [drafts.create(connection, post_id=insert_post(connection), author="ann",
                              body=f"Hello {n}") for n in range(2)]  # fmt: skip
    kept, erased = (created.draft_id for created in made)
    with database.write() as connection:
        connection.execute(
            update(VERSIONS).where(VERSIONS.c.draft_id == erased).values(erased=True, body="")
        )
        assert draft_texts.key_of(connection, kept) is None
        key = draft_texts.key_for(connection, kept)
        assert draft_texts.key_for(connection, kept) == key == draft_texts.key_of(connection, kept)
        with pytest.raises(Conflict, match="erased"):
            draft_texts.key_for(connection, erased)
        assert draft_texts.key_of(connection, erased) is None


def opened(key: str | None, draft_id: int, text: str) -> str | None:
    """A sealed text, whichever field it was sealed as."""
    for words in TextField:
        try:
            return draft_texts.opened(key, draft_id, words, text)
        except draft_texts.TextSealError:
            continue
    raise AssertionError(f"{text} does not open for draft {draft_id}")


def test_a_key_asked_for_while_the_draft_is_being_erased_is_not_given(database: Database) -> None:
    """An erasure holds the draft's row until it commits; a first sealed text asked for
    meanwhile waits, and then finds the words erased: no key is given to an erased draft
    (which nothing would forget again)."""
    postgresql_only(database)
    with database.write() as connection:
        post_id = insert_post(connection)
        draft_id = drafts.create(connection, post_id=post_id, author="ann", body="Hi").draft_id

    def ask() -> str:
        with database.write() as connection:
            return draft_texts.key_for(connection, draft_id)

    with database.write() as connection:
        erasure.erase_customer(connection, "@customer", actor="adm", role="admin")
        asking = Meanwhile(ask, seconds=0.5)
        assert (asking.outcome, asking.error) == (None, None), "it did not wait"
    asking.done()
    assert isinstance(asking.error, Conflict) and "erased" in str(asking.error), asking.outcome
    with database.engine.connect() as connection:
        assert draft_texts.key_of(connection, draft_id) is None


async def history_bytes(env: WorkflowEnvironment, settings: Settings, draft_id: int) -> bytes:
    handle = env.client.get_workflow_handle(workflow_id(draft_id, settings.workflow_id_prefix))
    history = await handle.fetch_history()
    return b"".join(event.SerializeToString() for event in history.events)


async def test_what_people_write_is_sealed_in_the_history_and_erased_with_the_customer(
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
    draft_id = made.json()["id"]
    url = f"/api/v1/drafts/{draft_id}"
    for version, text in ((1, TOO_LONG), (2, EDITED)):
        edit = {"body": text, "expected_version": version}
        assert (await client.put(url, headers=agent, json=edit)).status_code == 200
        submitted = await client.post(f"{url}/submit", headers=agent)
        if text == TOO_LONG:  # blocked: the author is told what the checks found in it
            assert submitted.status_code == 422, submitted.text
            found = submitted.json()["findings"]
            assert [f["excerpt"] for f in found if f["category"] == "channel_limit"] == [
                TOO_LONG[:40]
            ]
    assert submitted.status_code == 200, submitted.text
    blank = {"stage": "comms", "decision": "request_changes", "version": 3, "comment": "  "}
    keyed = {**comms, "Idempotency-Key": "blank-1"}  # only the workflow judges it then
    refused = await client.post(f"{url}/decisions", headers=keyed, json=blank)
    assert refused.status_code == 422 and "comment is required" in refused.json()["detail"]
    asked = {"stage": "comms", "decision": "request_changes", "version": 3, "comment": COMMENT}
    changes = await client.post(f"{url}/decisions", headers=comms, json=asked)
    assert changes.status_code == 200, changes.text
    assert changes.json()["decisions"][0]["comment"] == COMMENT  # the record has it in full

    with database.engine.connect() as connection:
        bodies = connection.execute(select(VERSIONS.c.body).where(VERSIONS.c.draft_id == draft_id))
        assert {TOO_LONG, EDITED} <= set(bodies.scalars().all())
        comments = select(DECISIONS.c.comment).where(DECISIONS.c.draft_id == draft_id)
        assert connection.execute(comments).scalars().all() == [COMMENT]
        key = draft_texts.key_of(connection, draft_id)
    history = await history_bytes(temporal_env, live_settings, draft_id)
    for words in (EDITED, COMMENT, TOO_LONG[:30], "Elm Street", "card number"):
        assert words.encode() not in history, f"{words!r} is in the history in the clear"
    sealed = {found.decode() for found in SEALED.findall(history)}
    assert {opened(key, draft_id, text) for text in sealed} == {TOO_LONG, EDITED, COMMENT}

    with database.write() as connection:
        erasure.erase_customer(connection, "@customer", actor="adm", role="admin")
    with database.engine.connect() as connection:
        forgotten = select(DRAFTS.c.text_key).where(DRAFTS.c.id == draft_id)
        assert connection.execute(forgotten).scalar_one() is None
        assert draft_texts.key_of(connection, draft_id) is None  # and no new one is given:
        with pytest.raises(Conflict, match="erased"):
            draft_texts.key_for(connection, draft_id)
    history = await history_bytes(temporal_env, live_settings, draft_id)
    assert {found.decode() for found in SEALED.findall(history)} == sealed  # Temporal's, as kept

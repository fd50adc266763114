"""The API's side of acting on a draft: judge the action on the record with the rulebook,
send it to the draft's workflow (sealed there, `api.lifecycle`), and answer with the draft
as the caller now sees it, with what they may do next.

The rulebook (`lifecycle.rulebook`) judges each action twice: here, on the record, before
anything is sent (a clear answer at no cost to Temporal), and in the workflow's
validators, which decide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from anyio import to_thread
from fastapi import Depends, Request

from api.deps import Principal
from api.lifecycle import ERRORS, Lifecycle, update_id
from api.metrics import Metrics
from countersign import logs
from lifecycle import rulebook
from lifecycle.rulebook import Person, Refusal
from lifecycle.words import Action, Role
from policies.sla import ServiceLevels
from records import draft_reads, draft_texts
from records.db import DATABASE_ERRORS, Database, out_of_reach
from records.draft_shapes import DraftDetail, DraftView
from records.errors import CountersignError, NotFound
from workflows.contracts import (
    Actor,
    DecisionRequest,
    EditRequest,
    PublishRequest,
    SubmitRequest,
)

# The requests that carry what a person wrote about the draft, and the field that does:
# sealed here for their way through Temporal, whose history keeps them, and opened by the
# worker where it writes them to the database (`records.draft_texts`).
_SEALED = {EditRequest: draft_texts.TextField.edit, DecisionRequest: draft_texts.TextField.comment}
# A rulebook check of an action on a draft by a person.
Judge = Callable[[rulebook.Draft, Person], Refusal | None]
V = TypeVar("V", bound=DraftView)


def actor(principal: Principal) -> Actor:
    return Actor(username=principal.username, roles=sorted(r.value for r in principal.roles))


def person(principal: Principal) -> Person:
    return Person.of(principal.username, (r.value for r in principal.roles))


def sees_only_own(principal: Principal) -> bool:
    """An agent and nothing more sees only their own drafts."""
    return principal.roles <= {Role.agent}


@dataclass(frozen=True)
class Desk:
    """What every route on drafts needs: the record, the workflows, the review SLAs (whose
    backup roles the rulebook asks)."""

    database: Database
    lifecycle: Lifecycle
    levels: ServiceLevels
    metrics: Metrics

    async def view(self, draft_id: int, caller: Principal) -> DraftView:
        """What an action answers (the caller was allowed to act, so may see it);
        versions and the timeline are in `detail`."""
        found = await self.database.read(lambda connection: draft_reads.view(connection, draft_id))
        return self._with_actions(found, caller)

    async def detail(self, draft_id: int, caller: Principal) -> DraftDetail:
        found = await self.database.read(lambda c: draft_reads.detail(c, draft_id))
        if sees_only_own(caller) and found.author != caller.username:
            raise NotFound(f"no draft with id {draft_id}")
        return self._with_actions(found, caller)

    def _with_actions(self, view: V, caller: Principal) -> V:
        facts = draft_reads.of_view(view).as_rulebook(self.levels.backup_roles)
        view.allowed_actions = rulebook.allowed_actions(facts, person(caller))
        return view

    async def act(
        self,
        caller: Principal,
        draft_id: int,
        action: Action,
        request: object,
        idempotency_key: str | None,
        *derived: object,
        judge: Judge,
        result_type: Any = Any,
    ) -> Any:
        """Judge the action on the record (`judge`), then send it to the draft's workflow;
        its answer as `result_type` (by default plain decoded JSON: most routes answer with
        the draft read back). Without an Idempotency-Key the update id derives from the
        caller, the request and the draft's state as the record has it now, so an action
        retried in the same state is one update, and asked again in a later state a new one.
        Each is counted by its outcome: done, or the kind of refusal (`api.metrics`).
        """
        logs.DRAFT_ID.set(draft_id)  # every line logged for this request names the draft
        with self._counted(action):
            return await self._send(caller, draft_id, action, request, idempotency_key,
                                    *derived, judge=judge, result_type=result_type)  # fmt: skip

    @contextmanager
    def _counted(self, action: Action) -> Iterator[None]:
        """The action counted by its outcome: done, or the kind of refusal (a database out
        of reach counts as `unavailable`, as Temporal out of reach does)."""
        try:
            yield
        except CountersignError as refused:
            self.metrics.actions.labels(action.value, type(refused).__name__.lower()).inc()
            raise
        except DATABASE_ERRORS as failed:
            outcome = "unavailable" if out_of_reach(failed) else "error"
            self.metrics.actions.labels(action.value, outcome).inc()
            raise
        self.metrics.actions.labels(action.value, "done").inc()

    async def _send(
        self, caller: Principal, draft_id: int, action: Action, request: object,
        idempotency_key: str | None, *derived: object, judge: Judge, result_type: Any,
    ) -> Any:  # fmt: skip
        now = await self.database.read(lambda c: draft_reads.standing(c, draft_id))
        if sees_only_own(caller) and now.author != caller.username:
            # An agent does not see others' drafts: acting on one answers as a missing one.
            raise NotFound(f"no draft with id {draft_id}")
        # A request with an Idempotency-Key may be a retry of one already done, whose first
        # answer Temporal replays: only the workflow, which knows, judges it.
        refusal = judge(now.as_rulebook(self.levels.backup_roles), person(caller))
        if refusal is not None and idempotency_key is None:
            raise ERRORS[refusal.kind](refusal.reason)
        if isinstance(request, SubmitRequest | PublishRequest) and request.version is None:
            # Bound to the text the record shows now: the workflow refuses it for any other.
            request = dataclasses.replace(request, version=now.version)
        request, words = await self._sealed(draft_id, request)
        state = (now.status, now.stage, now.version)
        uid = update_id(
            caller.username, idempotency_key, (action, draft_id), state, *derived, *words
        )
        return await self.lifecycle.update(
            draft_id,
            now.author,
            action,
            request,
            update_id=uid,
            result_type=result_type,
            expires_at=now.expires_at,
        )

    async def _sealed(self, draft_id: int, request: object) -> tuple[object, tuple[str, ...]]:
        """The request with what the person wrote sealed under the draft's key, and that
        text's fingerprint for the update id (`records.draft_texts`): the workflow's
        history keeps both, and an erasure that forgets the key leaves nothing readable."""
        field = _SEALED.get(type(request))
        text = getattr(request, field.value) if field else None
        if field is None or not text or not text.strip():
            return request, ()  # nothing written: the workflow reads it as it is
        key = await self.database.read(lambda c: draft_texts.key_of(c, draft_id))
        if key is None:  # its first sealed text (or its words were erased: Conflict)
            key = await to_thread.run_sync(self._key_for, draft_id)
        sealed = draft_texts.seal(key, draft_id, field, text)
        fingerprint = draft_texts.fingerprint(key, draft_id, field, text)
        return dataclasses.replace(request, **{field.value: sealed}), (fingerprint,)  # type: ignore[type-var]

    def _key_for(self, draft_id: int) -> str:
        with self.database.write() as connection:
            return draft_texts.key_for(connection, draft_id)


async def get_desk(request: Request) -> Desk:
    state = request.app.state
    return Desk(state.database, state.lifecycle, state.service_levels, state.metrics)


DeskDep = Annotated[Desk, Depends(get_desk)]

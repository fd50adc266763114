"""Drafts and reviews. Reads come from the database; every action is a workflow update
(see `api.lifecycle`). The rulebook (`lifecycle.rulebook`) judges each action twice: here,
on the record, before anything is sent (a clear answer at no cost to Temporal), and in the
workflow's validators, which decide. A draft's view answers what the caller may do next."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep, Principal, require_roles
from api.lifecycle import ERRORS, Lifecycle, update_id
from api.policy import PoliciesDep
from api.schemas import Page, ResourceId
from lifecycle import rulebook
from lifecycle.rulebook import Person, Refusal
from lifecycle.words import Action
from policies.sla import ServiceLevels
from records import drafts, posts
from records.db import Database
from records.errors import Forbidden, Invalid, NotFound
from records.models import (
    USERNAME_PATTERN,
    DecisionCreate,
    DraftCreate,
    DraftDetail,
    DraftPublic,
    DraftStatus,
    DraftUpdate,
    DraftView,
    PublishCreate,
    ReviewStage,
    Role,
)
from workflows.contracts import (
    Actor,
    DecisionRequest,
    EditRequest,
    PublishRequest,
    SubmitOutcome,
    SubmitRequest,
    WithdrawRequest,
)

router = APIRouter(tags=["drafts"])
Agent = Annotated[Principal, Depends(require_roles(Role.agent))]
Publisher = Annotated[Principal, Depends(require_roles(Role.publisher))]
# A publisher withdraws only a draft whose publication failed (the workflow checks).
Withdrawer = Annotated[
    Principal, Depends(require_roles(Role.agent, Role.supervisor, Role.publisher))
]
Reader = Annotated[Principal, Depends(require_roles(*Role))]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, pattern=r"^[\x21-\x7e]+$"),
]
CursorParam = Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+=*$")]
LimitParam = Annotated[int, Query(ge=1, le=200)]


async def get_lifecycle(request: Request) -> Lifecycle:
    lifecycle: Lifecycle = request.app.state.lifecycle
    return lifecycle


LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]


async def get_levels(request: Request) -> ServiceLevels:
    levels: ServiceLevels = request.app.state.service_levels
    return levels


LevelsDep = Annotated[ServiceLevels, Depends(get_levels)]


def _actor(principal: Principal) -> Actor:
    return Actor(username=principal.username, roles=sorted(r.value for r in principal.roles))


def _person(principal: Principal) -> Person:
    return Person.of(principal.username, (r.value for r in principal.roles))


def _sees_only_own(principal: Principal) -> bool:
    return principal.roles <= {Role.agent}


async def _detail(
    database: Database, draft_id: int, principal: Principal, levels: ServiceLevels
) -> DraftDetail:
    detail = await database.read(lambda connection: drafts.detail(connection, draft_id))
    if _sees_only_own(principal) and detail.author != principal.username:
        raise NotFound(f"no draft with id {draft_id}")
    return _with_actions(detail, principal, levels)


async def _view(
    database: Database, draft_id: int, principal: Principal, levels: ServiceLevels
) -> DraftView:
    """What an action answers (the caller was allowed to act, so may see it), with what
    they may do next; versions and the timeline are in `GET /drafts/{id}`."""
    view = await database.read(lambda connection: drafts.view(connection, draft_id))
    return _with_actions(view, principal, levels)


V = TypeVar("V", bound=DraftView)


def _with_actions(view: V, principal: Principal, levels: ServiceLevels) -> V:
    facts = drafts.of_view(view).as_rulebook(levels.backup_roles)
    view.allowed_actions = rulebook.allowed_actions(facts, _person(principal))
    return view


async def _snapshot(database: Database, draft_id: int) -> drafts.Standing:
    """The draft as the record has it now: what the rulebook asks, and the deadline.

    Derived update ids include the state, so an action retried in the same state is one
    update, and the same action asked again in a later state is a new one.
    """

    return await database.read(lambda connection: drafts.standing(connection, draft_id))


Judge = Callable[[rulebook.Draft, Person], Refusal | None]


async def _act(
    database: Database,
    lifecycle: Lifecycle,
    levels: ServiceLevels,
    caller: Principal,
    draft_id: int,
    action: Action,
    request: object,
    idempotency_key: str | None,
    *derived: object,
    judge: Judge,
    result_type: Any = Any,
) -> Any:
    """Judge the action on the record (`judge`, a rulebook check), then send it to the
    draft's workflow; its answer as `result_type` (by default as plain decoded JSON: most
    routes answer with the draft read back from the database). Without an Idempotency-Key
    the update id derives from the caller, the request and the draft's current state (see
    `_snapshot`)."""
    now = await _snapshot(database, draft_id)
    author, state = now.author, (now.status, now.stage, now.version)
    if _sees_only_own(caller) and author != caller.username:
        # An agent does not see others' drafts: acting on one answers as a missing one.
        raise NotFound(f"no draft with id {draft_id}")
    # A request with an Idempotency-Key may be a retry of one already done, whose first
    # answer Temporal replays: only the workflow, which knows, judges it.
    refusal = judge(now.as_rulebook(levels.backup_roles), _person(caller))
    if refusal is not None and idempotency_key is None:
        raise ERRORS[refusal.kind](refusal.reason)
    if isinstance(request, SubmitRequest | PublishRequest) and request.version is None:
        # Bound to the text the record shows now: the workflow refuses it for any other.
        request = dataclasses.replace(request, version=now.version)
    uid = update_id(caller.username, idempotency_key, action, draft_id, state, *derived)
    return await lifecycle.update(
        draft_id,
        author,
        action,
        request,
        update_id=uid,
        result_type=result_type,
        expires_at=now.expires_at,
    )


@router.post(
    "/drafts",
    response_model=DraftView,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": DraftView, "description": "the draft this key created before"}},
)
async def create_draft(
    body: DraftCreate,
    caller: Agent,
    database: DatabaseDep,
    lifecycle: LifecycleDep,
    policies: PoliciesDep,
    levels: LevelsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    """A draft of free text (`body`), or of a pre-approved template (`template_id` and
    `variables`), which records the template's id and version."""
    key = update_id(caller.username, idempotency_key) if idempotency_key else None
    rendered, text = None, body.body
    if body.template_id is not None:
        post_id = body.post_id
        channel, _ = await database.read(lambda c: posts.channel_and_text(c, post_id))
        rendered = policies.render(body.template_id, body.variables or {}, channel)
        text = rendered.body
    assert text is not None

    def create() -> drafts.Created:
        with database.write() as connection:
            return drafts.create(
                connection,
                post_id=body.post_id,
                author=caller.username,
                body=text,
                creation_key=key,
                template=rendered,
                deadline=levels.post_deadline,
            )

    draft_id, created, expires_at = await run_in_threadpool(create)
    await lifecycle.start(draft_id, caller.username, expires_at)
    if not created:
        response.status_code = status.HTTP_200_OK
    return await _view(database, draft_id, caller, levels)


@router.get("/drafts", response_model=Page[DraftPublic])
async def list_drafts(
    caller: Reader,
    database: DatabaseDep,
    status_: Annotated[DraftStatus | None, Query(alias="status")] = None,
    stage: ReviewStage | None = None,
    author: Annotated[str | None, Query(max_length=64, pattern=USERNAME_PATTERN)] = None,
    post_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[DraftPublic]:
    if _sees_only_own(caller):
        author = caller.username
    where = drafts.DraftFilter(
        status=status_.value if status_ else None,
        stages=(stage.value,) if stage else None,
        author=author,
        post_id=post_id,
    )

    def read() -> Page[DraftPublic]:
        with database.read_session() as session:
            items, next_cursor = drafts.listing(session, where, after=cursor, limit=limit)
            return Page(items=items, next_cursor=next_cursor)

    return await run_in_threadpool(read)


@router.get("/drafts/{draft_id}", response_model=DraftDetail)
async def get_draft(
    draft_id: ResourceId, caller: Reader, database: DatabaseDep, levels: LevelsDep
) -> DraftDetail:
    return await _detail(database, draft_id, caller, levels)


@router.put("/drafts/{draft_id}", response_model=DraftView)
async def edit_draft(
    draft_id: ResourceId,
    body: DraftUpdate,
    caller: Agent,
    database: DatabaseDep,
    lifecycle: LifecycleDep,
    levels: LevelsDep,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    expected = body.expected_version
    request = EditRequest(actor=_actor(caller), body=body.body, expected_version=expected)
    await _act(
        database,
        lifecycle,
        levels,
        caller,
        draft_id,
        Action.edit,
        request,
        idempotency_key,
        body.expected_version,
        body.body,
        judge=lambda draft, person: rulebook.may_edit(draft, person, expected_version=expected),
    )
    return await _view(database, draft_id, caller, levels)


@router.post("/drafts/{draft_id}/submit", response_model=DraftView)
async def submit_draft(
    draft_id: ResourceId,
    caller: Agent,
    database: DatabaseDep,
    lifecycle: LifecycleDep,
    levels: LevelsDep,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    outcome: SubmitOutcome = await _act(
        database,
        lifecycle,
        levels,
        caller,
        draft_id,
        Action.submit,
        SubmitRequest(actor=_actor(caller)),
        idempotency_key,
        judge=rulebook.may_submit,
        result_type=SubmitOutcome,
    )
    if outcome.blocked:
        raise Invalid(
            "the policy checks blocked this reply; see findings",
            findings=outcome.findings,
            ruleset_version=outcome.ruleset_version,
        )
    return await _view(database, draft_id, caller, levels)


@router.post("/drafts/{draft_id}/decisions", response_model=DraftView)
async def decide(
    draft_id: ResourceId,
    body: DecisionCreate,
    caller: Reader,
    database: DatabaseDep,
    lifecycle: LifecycleDep,
    levels: LevelsDep,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    """Approve, reject or ask for changes at a stage. Holders of the stage's role decide
    it; once the stage is overdue, so may holders of its backup role (if one is set)."""
    request = DecisionRequest(
        actor=_actor(caller),
        stage=body.stage.value,
        decision=body.decision.value,
        version=body.version,
        comment=body.comment,
    )

    def judge(draft: rulebook.Draft, person: Person) -> Refusal | None:
        return rulebook.may_decide(
            draft,
            person,
            stage=request.stage,
            decision=request.decision,
            version=request.version,
            comment=request.comment,
        )

    await _act(
        database,
        lifecycle,
        levels,
        caller,
        draft_id,
        Action.decide,
        request,
        idempotency_key,
        body.stage,
        body.version,
        body.decision,
        body.comment,
        judge=judge,
    )
    return await _view(database, draft_id, caller, levels)


@router.post("/drafts/{draft_id}/publish", response_model=DraftView)
async def publish(
    draft_id: ResourceId,
    caller: Publisher,
    database: DatabaseDep,
    lifecycle: LifecycleDep,
    levels: LevelsDep,
    body: PublishCreate | None = None,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    """Post now, or at `at` (a durable timer; withdrawing the draft cancels it)."""
    at = body.at if body else None
    later = at is not None and at > datetime.now(UTC)
    request = PublishRequest(actor=_actor(caller), at=at)
    await _act(
        database,
        lifecycle,
        levels,
        caller,
        draft_id,
        Action.publish,
        request,
        idempotency_key,
        at,
        judge=lambda draft, person: rulebook.may_publish(draft, person, later=later),
    )
    return await _view(database, draft_id, caller, levels)


@router.post("/drafts/{draft_id}/withdraw", response_model=DraftView)
async def withdraw(
    draft_id: ResourceId,
    caller: Withdrawer,
    database: DatabaseDep,
    lifecycle: LifecycleDep,
    levels: LevelsDep,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    await _act(
        database,
        lifecycle,
        levels,
        caller,
        draft_id,
        Action.withdraw,
        WithdrawRequest(actor=_actor(caller)),
        idempotency_key,
        judge=rulebook.may_withdraw,
    )
    return await _view(database, draft_id, caller, levels)


@router.get("/reviews", response_model=Page[DraftPublic])
async def my_reviews(
    caller: Reader,
    database: DatabaseDep,
    levels: LevelsDep,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[DraftPublic]:
    """Drafts waiting at the caller's stages, and at stages they back up once overdue (a
    supervisor backing legal sees legal's overdue drafts), the longest waiting first."""
    person = _person(caller)
    stages = tuple(s.value for s in ReviewStage if person.holds(s))
    overdue = tuple(
        s.value
        for s in ReviewStage
        if not person.holds(s) and person.holds(levels.backup_roles.get(s.value, ""))
    )
    if not stages and not overdue:
        raise Forbidden(
            "the review queue needs the comms or legal role, or a role that backs up an "
            "overdue stage"
        )
    where = drafts.DraftFilter(
        status=DraftStatus.in_review.value, stages=stages, overdue_stages=overdue
    )

    def read() -> Page[DraftPublic]:
        with database.read_session() as session:
            items, next_cursor = drafts.listing(
                session, where, after=cursor, limit=limit, oldest_stage_first=True
            )
            return Page(items=items, next_cursor=next_cursor)

    return await run_in_threadpool(read)

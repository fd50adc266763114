"""Drafts and reviews. Reads come from the database; every action is judged by the
rulebook on the record and sent as a workflow update (`api.desk`), and answers with the
draft's view, which says what the caller may do next."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep, Principal, require_roles
from api.desk import DeskDep, actor, person, sees_only_own
from api.lifecycle import update_id
from api.policy import PoliciesDep
from api.schemas import Page, ResourceId
from lifecycle import rulebook
from lifecycle.rulebook import Person, Refusal
from lifecycle.words import Action, DraftStatus, ReviewStage, Role
from records import conversations, draft_reads, drafts, posts
from records.draft_shapes import (
    DecisionCreate,
    DraftCreate,
    DraftDetail,
    DraftPublic,
    DraftUpdate,
    DraftView,
    PublishCreate,
)
from records.errors import Forbidden, Invalid
from records.fields import USERNAME_PATTERN
from workflows.contracts import (
    DecisionRequest,
    EditRequest,
    PublishRequest,
    SubmitRequest,
    Submitted,
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


@router.post(
    "/drafts",
    response_model=DraftView,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": DraftView, "description": "the draft this key created before"}},
)
async def create_draft(
    body: DraftCreate,
    caller: Agent,
    desk: DeskDep,
    policies: PoliciesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    """A draft of free text (`body`), or of a pre-approved template (`template_id` and
    `variables`), which records the template's id and version."""
    key = update_id(caller.username, idempotency_key, ("create",)) if idempotency_key else None
    post_id = body.post_id
    if post_id is None:
        assert body.conversation_id is not None
        conversation_id = body.conversation_id
        post_id = await desk.database.read(lambda c: conversations.latest_post(c, conversation_id))
    rendered, text = None, body.body
    if body.template_id is not None:
        channel, _ = await desk.database.read(lambda c: posts.channel_and_text(c, post_id))
        rendered = policies.render(body.template_id, body.variables or {}, channel)
        text = rendered.body
    assert text is not None

    def create() -> drafts.Created:
        with desk.database.write() as connection:
            return drafts.create(
                connection,
                post_id=post_id,
                author=caller.username,
                body=text,
                creation_key=key,
                template=rendered,
                deadline=desk.levels.post_deadline,
            )

    draft_id, created, expires_at = await run_in_threadpool(create)
    await desk.lifecycle.start(draft_id, caller.username, expires_at)
    if not created:
        response.status_code = status.HTTP_200_OK
    return await desk.view(draft_id, caller)


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
    if sees_only_own(caller):
        author = caller.username
    where = draft_reads.DraftFilter(
        status=status_.value if status_ else None,
        stages=(stage.value,) if stage else None,
        author=author,
        post_id=post_id,
    )

    def read() -> Page[DraftPublic]:
        with database.read_session() as session:
            items, next_cursor = draft_reads.listing(session, where, after=cursor, limit=limit)
            return Page(items=items, next_cursor=next_cursor)

    return await run_in_threadpool(read)


@router.get("/drafts/{draft_id}", response_model=DraftDetail)
async def get_draft(draft_id: ResourceId, caller: Reader, desk: DeskDep) -> DraftDetail:
    return await desk.detail(draft_id, caller)


@router.put("/drafts/{draft_id}", response_model=DraftView)
async def edit_draft(
    draft_id: ResourceId,
    body: DraftUpdate,
    caller: Agent,
    desk: DeskDep,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    expected = body.expected_version
    request = EditRequest(actor=actor(caller), body=body.body, expected_version=expected)
    await desk.act(
        caller,
        draft_id,
        Action.edit,
        request,
        idempotency_key,
        body.expected_version,  # and the text, by its fingerprint (`Desk`)
        judge=lambda draft, person: rulebook.may_edit(draft, person, expected_version=expected),
    )
    return await desk.view(draft_id, caller)


@router.post("/drafts/{draft_id}/submit", response_model=DraftView)
async def submit_draft(
    draft_id: ResourceId,
    caller: Agent,
    desk: DeskDep,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    outcome: Submitted = await desk.act(
        caller,
        draft_id,
        Action.submit,
        SubmitRequest(actor=actor(caller)),
        idempotency_key,
        judge=rulebook.may_submit,
        result_type=Submitted,
    )
    if outcome.blocked:  # what the checks found is the version's record, not the history's
        checked = outcome.version
        findings = await desk.database.read(lambda c: draft_reads.findings(c, draft_id, checked))
        raise Invalid(
            "the policy checks blocked this reply; see findings",
            findings=findings,
            ruleset_version=outcome.ruleset_version,
        )
    return await desk.view(draft_id, caller)


@router.post("/drafts/{draft_id}/decisions", response_model=DraftView)
async def decide(
    draft_id: ResourceId,
    body: DecisionCreate,
    caller: Reader,
    desk: DeskDep,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    """Approve, reject or ask for changes at a stage. Holders of the stage's role decide
    it; once the stage is overdue, so may holders of its backup role (if one is set)."""
    request = DecisionRequest(
        actor=actor(caller),
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

    await desk.act(
        caller,
        draft_id,
        Action.decide,
        request,
        idempotency_key,
        body.stage,
        body.version,
        body.decision,  # and the comment, by its fingerprint (`Desk`)
        judge=judge,
    )
    return await desk.view(draft_id, caller)


@router.post("/drafts/{draft_id}/publish", response_model=DraftView)
async def publish(
    draft_id: ResourceId,
    caller: Publisher,
    desk: DeskDep,
    body: PublishCreate | None = None,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    """Post now, or at `at` (a durable timer; withdrawing the draft cancels it)."""
    at = body.at if body else None
    later = at is not None and at > datetime.now(UTC)
    request = PublishRequest(actor=actor(caller), at=at)
    await desk.act(
        caller,
        draft_id,
        Action.publish,
        request,
        idempotency_key,
        at,
        judge=lambda draft, person: rulebook.may_publish(draft, person, later=later),
    )
    return await desk.view(draft_id, caller)


@router.post("/drafts/{draft_id}/withdraw", response_model=DraftView)
async def withdraw(
    draft_id: ResourceId,
    caller: Withdrawer,
    desk: DeskDep,
    idempotency_key: IdempotencyKey = None,
) -> DraftView:
    await desk.act(
        caller,
        draft_id,
        Action.withdraw,
        WithdrawRequest(actor=actor(caller)),
        idempotency_key,
        judge=rulebook.may_withdraw,
    )
    return await desk.view(draft_id, caller)


@router.get("/reviews", response_model=Page[DraftPublic])
async def my_reviews(
    caller: Reader,
    desk: DeskDep,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[DraftPublic]:
    """Drafts waiting at the caller's stages, and at stages they back up once overdue (a
    supervisor backing legal sees legal's overdue drafts), the longest waiting first. A
    supervisor sees every stage's queue (deciding is still the stage's, or its backup's
    once overdue)."""
    who = person(caller)
    every = who.holds(Role.supervisor)
    stages = tuple(s.value for s in ReviewStage if every or who.holds(s))
    overdue = tuple(
        s.value
        for s in ReviewStage
        if not who.holds(s) and who.holds(desk.levels.backup_roles.get(s.value, ""))
    )
    if not stages and not overdue:
        raise Forbidden(
            "the review queue needs the comms or legal role, or a role that backs up an "
            "overdue stage"
        )
    where = draft_reads.DraftFilter(
        status=DraftStatus.in_review.value, stages=stages, overdue_stages=overdue
    )

    def read() -> Page[DraftPublic]:
        with desk.database.read_session() as session:
            items, next_cursor = draft_reads.listing(
                session, where, after=cursor, limit=limit, oldest_stage_first=True
            )
            return Page(items=items, next_cursor=next_cursor)

    return await run_in_threadpool(read)

"""Inbound posts: ingest, the queue, take or assign."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api import query_models
from api.deps import (
    DatabaseDep,
    Principal,
    ReadSession,
    SettingsDep,
    WriteSession,
    require_roles,
)
from api.lifecycle import Lifecycle
from api.policy import PoliciesDep
from api.schemas import Page, ResourceId
from lifecycle.words import PostStatus, QueueOrder, Role
from records import dismissals, posts
from records.errors import Invalid
from records.fields import USERNAME_PATTERN, Channel, Priority
from records.notifications import outbound_channels
from records.post_models import PostAssign, PostCreate, PostDismiss, PostPublic

router = APIRouter(prefix="/posts", tags=["posts"])
Ingester = Annotated[Principal, Depends(require_roles(Role.agent, Role.admin))]
QueueReader = Annotated[Principal, Depends(require_roles(Role.agent, Role.supervisor, Role.admin))]
Assigner = Annotated[Principal, Depends(require_roles(Role.agent, Role.supervisor))]
Supervisor = Annotated[Principal, Depends(require_roles(Role.supervisor))]
# One post is read by everyone a reply to it reaches: reviewers and publishers see the
# customer's words beside the reply, auditors the context of the trail.
Anyone = Annotated[Principal, Depends(require_roles(*Role))]


@router.post(
    "",
    response_model=PostPublic,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": PostPublic, "description": "already known: the existing post"}},
)
def ingest_post(
    body: PostCreate,
    caller: Ingester,
    session: WriteSession,
    response: Response,
    policies: PoliciesDep,
    request: Request,
    background: BackgroundTasks,
) -> PostPublic:
    role = Role.agent if caller.has_any(Role.agent) else Role.admin
    if body.author_profile is not None:
        # An author's profile (their platform id, "verified", followers) comes from the
        # platform, through a connector: a person typing a post in cannot set someone's.
        raise Invalid(
            "author_profile comes from the channel's connector, not from a person",
            field="author_profile",
        )
    post, created = posts.ingest(
        session, body, rules=policies.book, actor=caller.username, actor_role=role.value
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    elif post.queue_id is not None:  # the router offers it now, not at its next round
        background.add_task(request.app.state.lifecycle.nudge_router)
    return posts.to_public(post)


class QueueQuery(BaseModel):
    """A page of the queue's filters, order and position, read as one model by pydantic
    alone (`api.query_models`): the page is the API's hottest read (issue 24). Unknown
    parameters are ignored, as before."""

    status: PostStatus | None = None
    channel: Channel | None = None
    assignee: str | None = Field(default=None, max_length=64, pattern=USERNAME_PATTERN)
    priority: Priority | None = None
    topic: str | None = Field(
        default=None, max_length=32, pattern=r"^[a-z0-9_-]+$", description="triage's topic"
    )
    language: str | None = Field(
        default=None, max_length=8, pattern=r"^[a-z]{2}$", description="ISO 639-1"
    )
    public_risk: bool | None = Field(default=None, description="triage found a public risk")
    cursor: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^[A-Za-z0-9_-]+=*$",
        description="next_cursor of a page",
    )
    limit: int = Field(default=50, ge=1, le=200)
    order: QueueOrder = Field(
        default=QueueOrder.arrival,
        description="arrival: oldest first; due: most urgent first (first reply due)",
    )


@router.get("", response_model=Page[PostPublic], openapi_extra=query_models.documented(QueueQuery))
async def list_posts(
    _caller: QueueReader,
    database: DatabaseDep,
    query: Annotated[QueueQuery, Depends(query_models.query_of(QueueQuery))],
) -> Response:
    where = posts.QueueFilter(
        status=query.status,
        channel=query.channel.value if query.channel else None,
        assignee=query.assignee,
        priority=query.priority,
        topic=query.topic,
        language=query.language,
        public_risk=query.public_risk,
    )
    items, next_cursor = await database.read(
        lambda c: posts.queue(c, where, after=query.cursor, limit=query.limit, order=query.order)
    )
    return Response(posts.page_json(items, next_cursor), media_type="application/json")


@router.get("/{post_id}", response_model=PostPublic)
def get_post(post_id: ResourceId, _caller: Anyone, session: ReadSession) -> PostPublic:
    return posts.to_public(posts.get(session, post_id))


@router.post("/{post_id}/follow-up", response_model=PostPublic)
def allow_follow_up(post_id: ResourceId, caller: Supervisor, session: WriteSession) -> PostPublic:
    """Allow one more public reply to a post that has its reply (a supervisor's explicit
    decision, audited): an agent may then draft a follow-up."""
    return posts.to_public(posts.allow_follow_up(session, post_id, actor=caller.username))


@router.post("/{post_id}/dismiss", response_model=PostPublic)
def dismiss_post(
    post_id: ResourceId, body: PostDismiss, caller: Assigner, session: WriteSession
) -> PostPublic:
    """The post needs no reply, for `reason` (audited): an agent dismisses a post that is
    theirs or no one's, a supervisor any; never one with an open draft."""
    dismissals.dismiss(
        session.connection(), post_id, body.reason, body.note, actor=caller.username,
        supervising=caller.has_any(Role.supervisor),
    )  # fmt: skip
    session.expire_all()
    return posts.to_public(posts.get(session, post_id))


@router.post("/{post_id}/restore", response_model=PostPublic)
def restore_post(post_id: ResourceId, caller: Supervisor, session: WriteSession) -> PostPublic:
    """A dismissed post waits for a reply again (a supervisor's decision, audited)."""
    dismissals.restore(session.connection(), post_id, actor=caller.username)
    session.expire_all()
    return posts.to_public(posts.get(session, post_id))


@router.post("/{post_id}/assign", response_model=PostPublic)
async def assign_post(
    post_id: ResourceId,
    caller: Assigner,
    database: DatabaseDep,
    settings: SettingsDep,
    request: Request,
    body: PostAssign | None = None,
) -> PostPublic:
    """Take a post (agent), or assign it to an agent (supervisor), who is notified."""

    def assign() -> tuple[PostPublic, list[int]]:
        with database.write_session() as session:
            post, deliveries = posts.assign(
                session,
                post_id,
                body.assignee if body else None,
                actor=caller.username,
                actor_roles=caller.roles,
                outbound=outbound_channels(settings),
            )
            return posts.to_public(post), deliveries

    public, deliveries = await run_in_threadpool(assign)
    if deliveries:
        lifecycle: Lifecycle = request.app.state.lifecycle
        await lifecycle.deliver(deliveries)
    return public

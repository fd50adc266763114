"""Customers and conversations (issue 22): who the customer is across channels, what they
said and what we answered; agents and supervisors link and unlink identities and keep
notes. Reviewers read them too: legal may need to know there is an open complaint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from starlette.concurrency import run_in_threadpool

from api.deps import (
    DatabaseDep,
    Principal,
    ReadSession,
    SettingsDep,
    WriteSession,
    require_roles,
)
from api.schemas import Page, ResourceId
from connectors import crm
from lifecycle.words import Role
from records import conversations, customers, history
from records.conversations import ConversationPublic
from records.customer_models import CustomerLink, CustomerPublic, NoteCreate, NotePublic
from records.history import HistoryItem

router = APIRouter(tags=["customers"])
# Everyone who works on a reply sees whom it answers; auditors read the trail instead.
Reader = Annotated[
    Principal,
    Depends(require_roles(Role.agent, Role.supervisor, Role.comms, Role.legal, Role.publisher)),
]
Keeper = Annotated[Principal, Depends(require_roles(Role.agent, Role.supervisor))]


def _role(caller: Principal) -> str:
    return (Role.supervisor if caller.has_any(Role.supervisor) else Role.agent).value


@router.get("/customers/{customer_id}", response_model=CustomerPublic)
async def get_customer(
    customer_id: ResourceId,
    _caller: Reader,
    settings: SettingsDep,
    database: DatabaseDep,
    request: Request,
) -> CustomerPublic:
    """The customer (or the one it was linked into): identities, notes, CRM tier. A CRM
    answer older than the cache allows is asked for on the side, never awaited here (the
    pages call this API in process: a request's own background work would hold them up)."""

    def read() -> CustomerPublic:
        with database.read_session() as session:
            return customers.view(session, customer_id)

    view = await run_in_threadpool(read)
    if crm.due(settings, view.crm_checked_at):
        _look_up_later(request, view.id, lambda: crm.refresh(settings, database, view.id))
    return view


def _look_up_later(request: Request, customer_id: int, work: Callable[[], object]) -> None:
    """Run `work` on the CRM's own threads without waiting; one at a time per customer.
    The futures are held on the app (one nobody holds may be collected before it ends)."""
    pending: dict[int, asyncio.Future[object]] = request.app.state.crm_lookups
    if customer_id in pending:
        return
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(loop.run_in_executor(crm.THREADS, work))
    pending[customer_id] = task
    task.add_done_callback(lambda _done: pending.pop(customer_id, None))


@router.get("/customers/{customer_id}/history", response_model=Page[HistoryItem])
def customer_history(
    customer_id: ResourceId,
    _caller: Reader,
    session: ReadSession,
    cursor: Annotated[
        str | None,
        Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+=*$", description="next_cursor of a page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[HistoryItem]:
    """Every post of the customer's, on any channel, newest first: its conversation, our
    published replies and how long the first took, the drafts still open on it."""
    items, next_cursor = history.page(session, customer_id, after=cursor, limit=limit)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/customers/{customer_id}/link", response_model=CustomerPublic)
def link_customer(
    customer_id: ResourceId, body: CustomerLink, caller: Keeper, session: WriteSession
) -> CustomerPublic:
    """Another customer is this same person: its identities, posts and conversations
    become this one's. Audited."""
    into = customers.link(
        session, customer_id, body.customer_id, actor=caller.username, role=_role(caller)
    )
    assert into.id is not None
    return customers.view(session, into.id)


@router.post(
    "/customers/{customer_id}/identities/{identity_id}/unlink", response_model=CustomerPublic
)
def unlink_identity(
    customer_id: ResourceId, identity_id: ResourceId, caller: Keeper, session: WriteSession
) -> CustomerPublic:
    """The identity is someone else: it becomes a customer of its own (which is answered),
    with its posts. Audited."""
    alone = customers.unlink(
        session, customer_id, identity_id, actor=caller.username, role=_role(caller)
    )
    assert alone.id is not None
    return customers.view(session, alone.id)


@router.post(
    "/customers/{customer_id}/notes",
    response_model=NotePublic,
    status_code=status.HTTP_201_CREATED,
)
def add_note(
    customer_id: ResourceId, body: NoteCreate, caller: Keeper, session: WriteSession
) -> NotePublic:
    note = customers.add_note(
        session, customer_id, body.text, actor=caller.username, role=_role(caller)
    )
    return NotePublic.model_validate(note, from_attributes=True)


@router.get("/conversations/{conversation_id}", response_model=ConversationPublic)
def get_conversation(
    conversation_id: ResourceId, _caller: Reader, session: ReadSession
) -> ConversationPublic:
    """The customer's posts and our published replies, in the order they happened."""
    return conversations.view(session, conversation_id)

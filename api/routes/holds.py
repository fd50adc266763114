"""Legal holds, a customer's erasure request, and the retention purge on demand
(`records.retention`; the worker also purges on a schedule)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep, Principal, SettingsDep, require_roles
from api.schemas import Page, ResourceId
from lifecycle.words import Role
from records import erasure, retention
from records.audit_models import HoldCreate, HoldLift, HoldPublic
from records.fields import NO_NUL

router = APIRouter(tags=["retention"])
Keeper = Annotated[Principal, Depends(require_roles(Role.auditor, Role.admin))]
Reader = Annotated[Principal, Depends(require_roles(Role.auditor, Role.admin, Role.supervisor))]
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


class ErasureRequest(BaseModel):
    model_config = {"extra": "forbid"}
    author: str = Field(min_length=1, max_length=200, pattern=NO_NUL, description="their handle")


class ErasedPublic(BaseModel):
    posts: int
    versions: int
    events: int
    withdrawn: list[int] = Field(description="the ids of the customer's open drafts, withdrawn")
    dismissed: int = Field(description="the customer's posts still waiting, dismissed")


def _role(caller: Principal) -> str:
    return Role.auditor.value if Role.auditor in caller.roles else Role.admin.value


@router.post("/holds", response_model=HoldPublic, status_code=status.HTTP_201_CREATED)
async def place_hold(body: HoldCreate, caller: Keeper, database: DatabaseDep) -> HoldPublic:
    """Keep a draft, a post, a customer's records or a time range from erasure (audited)."""

    def place() -> HoldPublic:
        with database.write() as connection:
            return retention.place(connection, body, actor=caller.username, role=_role(caller))

    return await run_in_threadpool(place)


@router.get("/holds", response_model=Page[HoldPublic])
async def list_holds(_caller: Reader, database: DatabaseDep) -> Page[HoldPublic]:
    items = await database.read(retention.listing)
    return Page(items=items, next_cursor=None)


@router.post("/holds/{hold_id}/lift", response_model=HoldPublic)
async def lift_hold(
    hold_id: ResourceId, body: HoldLift, caller: Keeper, database: DatabaseDep
) -> HoldPublic:
    """End a hold, saying why (audited); what it kept may be erased from then on."""

    def lift() -> HoldPublic:
        with database.write() as connection:
            return retention.lift(
                connection, hold_id, body.reason, actor=caller.username, role=_role(caller)
            )

    return await run_in_threadpool(lift)


@router.post("/customers/erase", response_model=ErasedPublic)
async def erase_customer(
    body: ErasureRequest,
    caller: Admin,
    database: DatabaseDep,
    request: Request,
    background: BackgroundTasks,
) -> ErasedPublic:
    """A customer's erasure request: their posts, the replies to them and those drafts'
    audit payloads lose their content; hashes and the proof stay. Their open drafts are
    withdrawn, so nothing more is said to them, and their workflows are told. 409 under a
    hold."""

    def erase() -> retention.Erased:
        with database.write() as connection:
            return erasure.erase_customer(
                connection, body.author, actor=caller.username, role=Role.admin.value
            )

    erased = await run_in_threadpool(erase)
    background.add_task(request.app.state.lifecycle.look_again, erased.withdrawn)
    return ErasedPublic(**dataclasses.asdict(erased))


@router.post("/retention/purge", response_model=ErasedPublic)
async def purge_now(caller: Admin, database: DatabaseDep, settings: SettingsDep) -> ErasedPublic:
    """Erase what has outlived its retention period now (the worker does it daily)."""
    days = retention.retention_days(settings.retention_days)

    def purge() -> retention.Erased:
        with database.write() as connection:
            return retention.purge(connection, days)

    return ErasedPublic(**dataclasses.asdict(await run_in_threadpool(purge)))

"""Channel accounts (admins): where posts come from and replies go. Credentials are
write-only: answers name the ones set, never their values."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep, Principal, require_roles
from api.lifecycle import Lifecycle
from api.schemas import Page
from connectors import egress, inbound
from connectors.pollers import READERS
from lifecycle.words import Role
from records import channels
from records.account_models import ChannelAccountCreate, ChannelAccountPublic
from records.errors import Invalid

router = APIRouter(prefix="/channels", tags=["channels"])
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


@router.post("", response_model=ChannelAccountPublic, status_code=status.HTTP_201_CREATED)
async def create_channel(
    body: ChannelAccountCreate, admin: Admin, database: DatabaseDep, request: Request
) -> ChannelAccountPublic:
    """A channel account. A Mastodon or X account with `settings.poll_seconds` has its
    mentions (and, for X, posts with its `listen_terms`) polled into posts from now on."""
    if body.source is not None and body.source not in inbound.sources():
        raise Invalid(
            f"no inbound source {body.source!r}; the sources are {inbound.sources()}",
            field="source",
        )
    poll = _poll_seconds(body)
    await run_in_threadpool(_check_urls, body)

    def create() -> ChannelAccountPublic:
        with database.write() as connection:
            return channels.create(connection, body, actor=admin.username)

    created = await run_in_threadpool(create)
    if poll is not None:
        lifecycle: Lifecycle = request.app.state.lifecycle
        await lifecycle.start_poller(created.id, poll)
    return created


def _check_urls(body: ChannelAccountCreate) -> None:
    """Each URL the worker will call may be called (`connectors.egress`; checked again at
    every connection)."""
    for key in egress.URL_SETTINGS:
        if key in body.settings:
            try:
                egress.check_url(body.settings[key], what=f"settings.{key}")
            except egress.EgressRefused as exc:
                raise Invalid(str(exc), field=f"settings.{key}") from None


def _poll_seconds(body: ChannelAccountCreate) -> float | None:
    value = body.settings.get("poll_seconds")
    if value is None:
        return None
    if body.channel.value not in READERS:
        raise Invalid(
            f"only {', '.join(sorted(READERS))} accounts are polled", field="settings.poll_seconds"
        )
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 1 <= seconds <= 3600:
        raise Invalid("poll_seconds must be a number from 1 to 3600", field="settings.poll_seconds")
    return seconds


@router.get("", response_model=Page[ChannelAccountPublic])
def list_channels(_admin: Admin, database: DatabaseDep) -> Page[ChannelAccountPublic]:
    with database.engine.connect() as connection:
        return Page(items=channels.listing(connection), next_cursor=None)

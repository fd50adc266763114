"""Deliveries from the platforms: `POST /inbound/{account}` (and Meta's `GET` handshake).

No bearer token here: each delivery is signed with the channel account's secret, checked by
its source's adapter (`connectors.inbound`). A bad signature is 401 and stores nothing; a
signed body of the wrong shape is 422; a delivery sent again gives the same posts (a post is
known by its channel and external id). An account that does not exist, or takes no
deliveries, answers exactly as a bad signature does: the open internet learns no account
names (why a delivery was refused goes to the log)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep
from api.policy import PoliciesDep
from connectors import inbound
from records import channels, ingest
from records.channels import Account
from records.errors import Invalid, NotFound, Unauthenticated
from records.post_models import PostCreate

router = APIRouter(prefix="/inbound", tags=["inbound"])
log = logging.getLogger("countersign.inbound")
REFUSED = "the delivery's signature does not verify"


def _refused(why: str) -> Unauthenticated:
    log.info("inbound delivery refused: %s", why)
    return Unauthenticated(REFUSED)


class Stored(BaseModel):
    id: int
    channel: str
    external_id: str
    created: bool


class Received(BaseModel):
    posts: list[Stored]


def _account(database: DatabaseDep, name: str) -> tuple[Account, inbound.InboundAdapter]:
    try:
        with database.engine.connect() as connection:
            account = channels.by_name(connection, name)
    except NotFound as exc:
        raise _refused(f"no channel account {name!r}") from exc
    if account.source is None:
        raise _refused(f"channel account {name!r} takes no inbound deliveries")
    return account, inbound.adapter(account.source)


@router.get("/{account_name}", response_class=PlainTextResponse)
def handshake(account_name: str, request: Request, database: DatabaseDep) -> str:
    """Meta's subscription check: answers `hub.challenge` when `hub.verify_token` matches."""
    account, adapter = _account(database, account_name)
    answer = getattr(adapter, "handshake", None)
    if answer is None:
        raise _refused(f"the {account.source} source has no verification handshake")
    try:
        challenge: str = answer(dict(request.query_params), account.credentials)
    except inbound.BadSignature as exc:
        raise _refused(str(exc)) from exc
    except inbound.Malformed as exc:
        raise Invalid(str(exc)) from exc
    return challenge


@router.post("/{account_name}", response_model=Received)
async def receive(
    account_name: str,
    request: Request,
    database: DatabaseDep,
    policies: PoliciesDep,
    background: BackgroundTasks,
) -> Received:
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}

    def store() -> Received:
        account, adapter = _account(database, account_name)
        try:
            adapter.verify(headers, body, account.credentials)
            found = adapter.parse(body, account.channel, account.settings)
        except inbound.BadSignature as exc:
            raise _refused(str(exc)) from exc
        except inbound.Malformed as exc:
            raise Invalid(str(exc)) from exc
        try:
            checked = [PostCreate.model_validate(vars(p)) for p in found]
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise Invalid(f"a post in the delivery is not valid: {where}: {first['msg']}") from exc
        with database.write_session() as session:
            done = ingest.store_from(session, checked, account, via="inbound", rules=policies.book)
        return Received(
            posts=[
                Stored(
                    id=s.post_id, channel=p.channel, external_id=p.external_id, created=s.created
                )
                for p, s in zip(checked, done, strict=True)
            ]
        )

    received = await run_in_threadpool(store)
    if any(post.created for post in received.posts):  # the router offers them now
        background.add_task(request.app.state.lifecycle.nudge_router)
    return received

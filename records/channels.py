"""Channel accounts: an account on a platform (or a signed webhook source) with the
settings and credentials its connectors need. Credentials are stored here sealed
(`records.vault`: AES-256-GCM, bound to the account's name) and opened only for the
connectors: the API shows which are set, never their values, and nothing logs them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from records import audit, vault
from records.account_models import ChannelAccountCreate, ChannelAccountPublic
from records.errors import Conflict, NotFound
from records.tables import CHANNEL_ACCOUNTS
from records.types import utcnow


@dataclass(frozen=True, repr=False)
class Account:
    """An account as the connectors see it (`repr` leaves the credentials out)."""

    id: int
    name: str
    channel: str
    source: str | None
    settings: dict[str, str]
    credentials: dict[str, str]

    def __repr__(self) -> str:
        return f"Account(name={self.name!r}, channel={self.channel!r}, source={self.source!r})"


def create(
    connection: Connection, data: ChannelAccountCreate, *, actor: str
) -> ChannelAccountPublic:
    row = {
        "name": data.name,
        "channel": data.channel.value,
        "source": data.source,
        "settings": data.settings,
        "sealed_credentials": vault.current().seal_json(
            data.credentials, credentials_place(data.name, data.channel.value, data.settings)
        ),
        "created_by": actor,
        "created_at": utcnow(),
    }
    try:
        with connection.begin_nested():
            account_id = connection.execute(
                CHANNEL_ACCOUNTS.insert().returning(CHANNEL_ACCOUNTS.c.id), row
            ).scalar_one()
    except IntegrityError as exc:
        raise Conflict(f"a channel account named {data.name!r} exists", field="name") from exc
    audit.append(
        connection,
        audit.NewEvent(
            actor=actor,
            role="admin",
            action="channel.created",
            # Which credentials were set, never their values.
            payload={
                "name": data.name,
                "channel": data.channel.value,
                "source": data.source,
                "credentials": sorted(data.credentials),
            },
        ),
    )
    return public(connection, account_id)


def public(connection: Connection, account_id: int) -> ChannelAccountPublic:
    row = connection.execute(
        select(CHANNEL_ACCOUNTS).where(CHANNEL_ACCOUNTS.c.id == account_id)
    ).first()
    if row is None:
        raise NotFound(f"no channel account {account_id}")
    return _public(row)


def listing(connection: Connection) -> list[ChannelAccountPublic]:
    rows = connection.execute(select(CHANNEL_ACCOUNTS).order_by(CHANNEL_ACCOUNTS.c.name))
    return [_public(r) for r in rows]


def by_name(connection: Connection, name: str) -> Account:
    return _account(connection, CHANNEL_ACCOUNTS.c.name == name, f"named {name!r}")


def by_id(connection: Connection, account_id: int) -> Account:
    return _account(connection, CHANNEL_ACCOUNTS.c.id == account_id, str(account_id))


def _account(connection: Connection, which: Any, described: str) -> Account:
    row = connection.execute(select(CHANNEL_ACCOUNTS).where(which)).first()
    if row is None:
        raise NotFound(f"no channel account {described}")
    return Account(
        id=row.id,
        name=row.name,
        channel=row.channel,
        source=row.source,
        settings=dict(row.settings),
        credentials=_credentials(row),
    )


def credentials_place(name: str, channel: str, settings: dict[str, str]) -> str:
    """What a channel account's sealed credentials are bound to (`records.vault`): the
    account, its channel and its settings. Someone who can write the database and points
    `reply_url` or `api_base` somewhere else finds the credentials no longer open, rather
    than sent there."""
    shape = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(shape.encode()).hexdigest()
    return f"channel_accounts.sealed_credentials:{name}:{channel}:{digest}"


def _credentials(row: Any) -> dict[str, str]:
    opened = vault.current().open_json(row.sealed_credentials, _place(row))
    if not isinstance(opened, dict):
        raise vault.SealError(f"the credentials of {row.name!r} are not a mapping")
    return {str(k): str(v) for k, v in opened.items()}


def reseal(connection: Connection) -> int:
    """Seal every account's credentials under the current key (`countersign keys
    rotate`); those already under it are left alone. How many were re-sealed."""
    keeper = vault.current()
    count = 0
    for row in connection.execute(select(CHANNEL_ACCOUNTS)).all():
        if keeper.is_current(row.sealed_credentials):
            continue
        sealed = keeper.seal_json(_credentials(row), _place(row))
        connection.execute(
            CHANNEL_ACCOUNTS.update()
            .where(CHANNEL_ACCOUNTS.c.id == row.id)
            .values(sealed_credentials=sealed)
        )
        count += 1
    return count


def _place(row: Any) -> str:
    return credentials_place(row.name, str(row.channel), dict(row.settings))


def _public(row: object) -> ChannelAccountPublic:
    mapping = dict(row._mapping)  # type: ignore[attr-defined]
    mapping.pop("sealed_credentials")
    return ChannelAccountPublic(**mapping, credential_names=sorted(_credentials(row)))

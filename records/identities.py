"""People who sign in through an identity provider: an account of their own, provisioned on
their first request.

A provider's subject is its own namespace: `agent` at the provider is not the local
account `agent`. The account is found by (issuer, subject), never by name; its username
is made from the provider's name claims with a short hash of the issuer and subject, under
a prefix no local account may take (`idp.`), so it can never collide with one. Admins see
these accounts beside the local ones and can disable them or sign them out everywhere;
their roles come from the provider's claim on each token (copied to the account whenever
they change, and audited), so a role granted or removed at the provider applies at once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from lifecycle.words import SYSTEM_ACTOR, SYSTEM_ACTORS, SYSTEM_ROLE, Role
from records import account_changes, audit
from records.errors import Conflict, Invalid
from records.tables import USER_ROLES, USERS
from records.types import utcnow

PREFIX = "idp."
_NOT_IN_NAME = re.compile(r"[^a-z0-9._@-]+")


def refuse_reserved(username: str) -> None:
    """Local accounts may not take the identity providers' namespace, nor the name of one
    who acts without a person (`SYSTEM_ACTORS`)."""
    if username in SYSTEM_ACTORS:
        raise Invalid(
            f"{username!r} is the name the record gives to what Countersign does by itself",
            field="username",
        )
    if username.startswith(PREFIX):
        raise Invalid(
            f"usernames starting {PREFIX!r} are kept for identity-provider accounts",
            field="username",
        )


def username_for(issuer: str, subject: str, names: Mapping[str, str], digits: int = 8) -> str:
    """`idp.<name>.<hash>`: readable, within the username pattern, unique per identity."""
    digest = hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()[:digits]
    wanted = next(iter(names.values()), subject)
    slug = _NOT_IN_NAME.sub("-", wanted.casefold()).strip("-._@")[:40] or "person"
    return f"{PREFIX}{slug}.{digest}"


def display_name(subject: str, names: Mapping[str, str]) -> str:
    name = names.get("name") or next(iter(names.values()), subject)
    return "".join(c for c in name if c.isprintable())[:120] or subject[:120]


def provision(
    connection: Connection,
    *,
    issuer: str,
    subject: str,
    names: Mapping[str, str],
    roles: frozenset[Role],
) -> str:
    """The account for this identity, made now if it is new (audited); its username. If
    the name it would take is taken (by an account made before the prefix was reserved),
    a longer hash makes another."""
    now = utcnow()
    for digits in (8, 16, 32):
        username = username_for(issuer, subject, names, digits)
        try:
            with connection.begin_nested():
                user_id = connection.execute(
                    insert(USERS)
                    .values(
                        username=username,
                        display_name=display_name(subject, names),
                        password_hash=None,
                        disabled=False,
                        issuer=issuer,
                        subject=subject,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(USERS.c.id)
                ).scalar_one()
            break
        except IntegrityError:
            existing = connection.execute(
                select(USERS.c.username).where(USERS.c.issuer == issuer, USERS.c.subject == subject)
            ).scalar()
            if existing is not None:  # provisioned meanwhile by another request
                return str(existing)
    else:
        raise Conflict(f"no free username for {subject!r} of {issuer!r}")
    account_changes.mark(connection)
    _write_roles(connection, user_id, roles)
    _audit(connection, "user.provisioned", username=username, issuer=issuer, roles=_names(roles))
    return username


def sync_roles(connection: Connection, username: str, roles: frozenset[Role]) -> None:
    """The provider's roles, copied to the account (they changed at the provider)."""
    user_id = connection.execute(
        select(USERS.c.id).where(USERS.c.username == username)
    ).scalar_one()
    connection.execute(delete(USER_ROLES).where(USER_ROLES.c.user_id == user_id))
    account_changes.mark(connection)
    _write_roles(connection, user_id, roles)
    _audit(connection, "user.roles_changed", username=username, roles=_names(roles), **FROM_IDP)


FROM_IDP = {"from": "identity provider"}


def _audit(connection: Connection, action: str, **payload: object) -> None:
    """What Countersign did by itself for a provider's person (actor `countersign`)."""
    audit.append(
        connection,
        audit.NewEvent(actor=SYSTEM_ACTOR, role=SYSTEM_ROLE, action=action, payload=payload),
    )


def _write_roles(connection: Connection, user_id: int, roles: frozenset[Role]) -> None:
    if roles:
        connection.execute(
            insert(USER_ROLES), [{"user_id": user_id, "role": r.value} for r in _sorted(roles)]
        )


def _sorted(roles: frozenset[Role]) -> list[Role]:
    return sorted(roles, key=list(Role).index)


def _names(roles: frozenset[Role]) -> list[str]:
    return [r.value for r in _sorted(roles)]

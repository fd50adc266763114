"""Who is calling, read on every request, and the ways a session ends before its token
expires.

A token is a session. Signing out revokes that one token (its `jti`, kept in
`revoked_tokens` until it would have expired); an admin signs a person out everywhere by
setting `users.sessions_revoked_at`, after which every token issued up to that second is
refused; disabling an account does both at once, in effect. All of it is one prepared query: the
account, its roles and whether this token was revoked. An API reads it for a request, or
keeps it from an earlier one while no account changes (`api.standings`), so a change
applies at once too: every function here and in `records.users` and `records.identities`
that changes what it holds marks its transaction (`records.account_changes`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement, Select

from lifecycle.words import Role
from records import account_changes, audit
from records.access_tables import RevokedToken
from records.errors import NotFound
from records.tables import USER_ROLES, USERS
from records.types import utcnow

REVOKED = RevokedToken.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Standing:
    """What a request needs to know about its caller's account and token."""

    username: str
    disabled: bool
    roles: frozenset[Role]
    token_revoked: bool  # this token was signed out, or all sessions were revoked since

    @property
    def refused(self) -> str | None:
        if self.disabled:
            return "this account is disabled"
        if self.token_revoked:
            return "this session has ended (signed out or revoked); sign in again"
        return None


def _standing_query(*where: ColumnElement[bool]) -> Select[Any]:
    revoked = exists().where(REVOKED.c.jti == bindparam("jti"))
    return (
        core_select(
            USERS.c.username,
            USERS.c.disabled,
            USERS.c.sessions_revoked_at,
            USER_ROLES.c.role,
            revoked.label("token_revoked"),
        )
        .outerjoin(USER_ROLES, USER_ROLES.c.user_id == USERS.c.id)
        .where(*where)
    )


_LOCAL = _standing_query(USERS.c.username == bindparam("username"), USERS.c.issuer.is_(None))
_EXTERNAL = _standing_query(
    USERS.c.issuer == bindparam("issuer"), USERS.c.subject == bindparam("subject")
)


def token_key(issuer: str, jti: str | None) -> str:
    """What a revoked token is kept as: its issuer and id, hashed (a provider's ids may be
    long, and two issuers' ids may coincide)."""
    return hashlib.sha256(f"{issuer}\x00{jti or ''}".encode()).hexdigest()


def local(connection: Connection, username: str, token: str, issued_at: float) -> Standing | None:
    """A local account (password sign-in), or None if there is none of that name.
    `token` is the token's `token_key`."""
    if "\x00" in username:
        return None
    rows = connection.execute(_LOCAL, {"username": username, "jti": token}).all()
    return _standing(rows, issued_at)


def external(
    connection: Connection, issuer: str, subject: str, token: str, issued_at: float
) -> Standing | None:
    """An identity provider's account, by issuer and subject, or None if not provisioned."""
    if "\x00" in issuer + subject:
        return None
    found = {"issuer": issuer, "subject": subject, "jti": token}
    rows = connection.execute(_EXTERNAL, found).all()
    return _standing(rows, issued_at)


def _standing(rows: Sequence[Row[Any]], issued_at: float) -> Standing | None:
    if not rows:
        return None
    first = rows[0]
    revoked = bool(first.token_revoked)
    if first.sessions_revoked_at is not None:
        # Our tokens' `iat` has milliseconds; a provider's whole seconds, so a provider's
        # token issued in the second of the revocation is refused too.
        revoked = revoked or issued_at <= _aware(first.sessions_revoked_at).timestamp()
    return Standing(
        username=str(first.username),
        disabled=bool(first.disabled),
        roles=frozenset(Role(r.role) for r in rows if r.role is not None),
        token_revoked=revoked,
    )


def revoke_token(connection: Connection, username: str, token: str, expires_at: int) -> None:
    """Sign one token (its `token_key`) out; asking twice, or twice at once, is the same.
    Expired revocations are dropped."""
    now = utcnow()
    connection.execute(delete(REVOKED).where(REVOKED.c.expires_at <= now))
    account_changes.mark(connection)
    with contextlib.suppress(IntegrityError), connection.begin_nested():
        connection.execute(
            insert(REVOKED).values(
                jti=token,
                username=username,
                expires_at=datetime.fromtimestamp(expires_at, UTC),
                revoked_at=now,
            )
        )


def revoke_all(connection: Connection, username: str, *, actor: str, actor_role: str) -> None:
    """End every session `username` has now (an admin's "sign out everywhere"); audited."""
    changed = connection.execute(
        update(USERS).where(USERS.c.username == username).values(sessions_revoked_at=utcnow())
    )
    if not changed.rowcount:
        raise NotFound(f"no user {username!r}")
    account_changes.mark(connection)
    audit.append(
        connection,
        audit.NewEvent(
            actor=actor,
            role=actor_role,
            action="user.sessions_revoked",
            payload={"username": username},
        ),
    )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)

"""Users and their roles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from lifecycle.words import Role
from records import account_changes, audit, identities
from records.errors import Conflict, NotFound
from records.passwords import hash_password
from records.tables import USER_ROLES, USERS
from records.types import utcnow
from records.user_models import User, UserPublic, UserRole


def get_by_username(session: Session, username: str) -> User | None:
    if "\x00" in username:  # e.g. from the sign-in form; no user can have it
        return None
    return session.exec(select(User).where(User.username == username)).first()


def require(session: Session, username: str) -> User:
    user = get_by_username(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


@dataclass(frozen=True)
class Account:
    """What a request needs to know about its caller."""

    disabled: bool
    roles: frozenset[Role]


def account(connection: Connection, username: str) -> Account | None:
    """The caller's standing and roles, in one prepared query (it runs on every request)."""
    if "\x00" in username:
        return None
    rows = connection.execute(_ACCOUNT, {"username": username}).all()
    if not rows:
        return None
    return Account(
        disabled=bool(rows[0][0]), roles=frozenset(Role(r) for _, r in rows if r is not None)
    )


_ACCOUNT = (
    core_select(USERS.c.disabled, USER_ROLES.c.role)
    .outerjoin(USER_ROLES, USER_ROLES.c.user_id == USERS.c.id)
    .where(USERS.c.username == bindparam("username"))
)


def roles_of(session: Session, user_id: int) -> list[Role]:
    rows = session.exec(select(UserRole.role).where(UserRole.user_id == user_id))
    return sorted((Role(r) for r in rows), key=list(Role).index)


def to_public(session: Session, user: User) -> UserPublic:
    assert user.id is not None
    return UserPublic(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=roles_of(session, user.id),
        disabled=user.disabled,
        qualification=user.qualification,
        issuer=user.issuer,
    )


def list_users(session: Session) -> Sequence[User]:
    return session.exec(select(User).order_by(col(User.username))).all()


def create(
    session: Session,
    *,
    username: str,
    roles: Iterable[Role],
    password: str | None,
    display_name: str = "",
    actor: str,
    actor_role: str,
) -> User:
    identities.refuse_reserved(username)
    role_list = sorted(set(roles), key=list(Role).index)
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user named {username!r} already exists", field="username") from exc
    assert user.id is not None
    _write_roles(session, user.id, role_list)
    account_changes.mark(session.connection())
    audit.append(
        session,
        audit.NewEvent(
            actor=actor,
            role=actor_role,
            action="user.created",
            payload={"username": username, "roles": [r.value for r in role_list]},
        ),
    )
    return user


def set_roles(
    session: Session, username: str, roles: Iterable[Role], *, actor: str, actor_role: str
) -> User:
    user = require(session, username)
    assert user.id is not None
    role_list = sorted(set(roles), key=list(Role).index)
    session.exec(delete(UserRole).where(col(UserRole.user_id) == user.id))
    _write_roles(session, user.id, role_list)
    user.updated_at = utcnow()
    session.add(user)
    account_changes.mark(session.connection())
    audit.append(
        session,
        audit.NewEvent(
            actor=actor,
            role=actor_role,
            action="user.roles_changed",
            payload={"username": username, "roles": [r.value for r in role_list]},
        ),
    )
    return user


def disable(session: Session, username: str, *, actor: str, actor_role: str) -> User:
    return set_disabled(session, username, True, actor=actor, actor_role=actor_role)


def set_disabled(
    session: Session, username: str, disabled: bool, *, actor: str, actor_role: str
) -> User:
    """Disable an account (or enable it again); audited only when it changes."""
    user = require(session, username)
    if user.disabled != disabled:
        user.disabled = disabled
        user.updated_at = utcnow()
        if disabled:  # enabled again later, the old sessions stay ended
            user.sessions_revoked_at = user.updated_at
        session.add(user)
        account_changes.mark(session.connection())
        audit.append(
            session,
            audit.NewEvent(
                actor=actor,
                role=actor_role,
                action="user.disabled" if disabled else "user.enabled",
                payload={"username": username},
            ),
        )
    return user


def set_qualification(
    session: Session, username: str, qualification: str, *, actor: str, actor_role: str
) -> User:
    """What qualifies a person to sign off (e.g. a registered-principal id; empty: none).
    Audited; each decision they make from now on carries it."""
    user = require(session, username)
    held = qualification.strip() or None
    if user.qualification != held:
        user.qualification, user.updated_at = held, utcnow()
        session.add(user)
        audit.append(
            session,
            audit.NewEvent(
                actor=actor,
                role=actor_role,
                action="user.qualification_set",
                payload={"username": username, "qualification": held},
            ),
        )
    return user


def _write_roles(session: Session, user_id: int, roles: list[Role]) -> None:
    for role in roles:
        session.add(UserRole(user_id=user_id, role=role.value))
    session.flush()

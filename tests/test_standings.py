"""The callers' standing kept between requests (api.standings) and forgotten whenever an
account changes (records.account_changes): on PostgreSQL a signed-in caller's account is
read once, not on every request; a change by this process applies at the next request,
one by another process as soon as PostgreSQL's notification arrives; nothing is kept
while the listener cannot hear; a standing read while a change was made is not kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.engine import make_url
from sqlmodel import Session

from api.standings import Standings
from api.tokens import TokenService
from lifecycle.words import Role
from records import account_changes, identities, sessions, users
from records.db import Database
from records.settings import Settings
from records.tables import USER_ROLES, USERS
from tests.helpers import account_reads, statements_sent

Headers = dict[str, str]
POSTS = "/api/v1/posts"  # readable by an agent; refused to a person with no role
APPLIED_WITHIN = 0.25  # seconds: a notification's way here is milliseconds (heartbeat: 0.5)


def postgresql_only(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite keeps no standing: it has no notifications (api.standings)")


@pytest.fixture
def other_process(database_url: str) -> Iterator[Database]:
    """The same database as another process reaches it (the CLI, another API, the worker):
    its commits tell this process's callbacks nothing."""
    other = Database(database_url)
    yield other
    other.dispose()


@pytest.fixture
def standings(app_client: TestClient, app: FastAPI, database: Database) -> Standings:
    """The running app's (its client started it), on PostgreSQL, where they are kept."""
    postgresql_only(database)
    kept: Standings = app.state.standings
    return kept


def refused_within(client: TestClient, headers: Headers, seconds: float) -> float:
    """How long until a request is refused (401 or 403), asking every few milliseconds."""
    started = time.monotonic()
    while client.get(POSTS, headers=headers).status_code == 200:
        assert time.monotonic() - started < seconds, "the change did not apply"
        time.sleep(0.005)
    return time.monotonic() - started


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.01)


def test_a_signed_in_caller_is_read_once_while_no_account_changes(
    app_client: TestClient,
    database: Database,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
) -> None:
    make_user("ann", Role.agent)
    ann = login("ann")
    with statements_sent(database) as sent:
        for _ in range(5):
            assert app_client.get(POSTS, headers=ann).status_code == 200
    if database.dialect == "postgresql":
        assert account_reads(sent) == 1, sent
    else:  # every request reads; one that ran past its budget on the event loop was sent
        assert account_reads(sent) >= 5, sent  # again on a thread (Database.read)


@pytest.mark.parametrize("change", ["role taken away", "account disabled", "signed out"])
def test_a_change_by_another_process_applies_when_its_notification_arrives(
    app_client: TestClient,
    database: Database,
    other_process: Database,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
    change: str,
) -> None:
    postgresql_only(database)
    make_user("ann", Role.agent)
    ann = login("ann")
    assert app_client.get(POSTS, headers=ann).status_code == 200  # kept from here on
    with other_process.write() as connection:
        if change == "role taken away":
            ann_id = select(USERS.c.id).where(USERS.c.username == "ann").scalar_subquery()
            connection.execute(delete(USER_ROLES).where(USER_ROLES.c.user_id == ann_id))
        elif change == "account disabled":
            connection.execute(update(USERS).where(USERS.c.username == "ann").values(disabled=True))
        else:
            sessions.revoke_all(connection, "ann", actor="root", actor_role=Role.admin)
    assert refused_within(app_client, ann, APPLIED_WITHIN) < APPLIED_WITHIN


def test_a_change_by_this_process_forgets_before_its_transaction_returns(
    database: Database, make_user: Callable[..., str]
) -> None:
    """Every function that changes what a standing holds tells this process's callbacks
    when its transaction commits (not the listener, which may hear it later), and not at
    all if it rolls back."""
    calls: list[int] = []
    database.on_account_change(lambda: calls.append(1))

    def changes(write: Callable[[], object]) -> int:
        before = len(calls)
        write()
        return len(calls) - before

    def in_session(job: Callable[..., object]) -> Callable[[], None]:
        def run() -> None:
            with database.write_session() as session:
                job(session)

        return run

    def in_connection(job: Callable[..., object]) -> Callable[[], None]:
        def run() -> None:
            with database.write() as connection:
                job(connection)

        return run

    admin = {"actor": "root", "actor_role": Role.admin}
    assert changes(lambda: make_user("ann", Role.agent)) == 1
    assert changes(in_session(lambda s: users.set_roles(s, "ann", [Role.comms], **admin))) == 1
    assert changes(in_session(lambda s: users.set_disabled(s, "ann", True, **admin))) == 1
    assert changes(in_connection(lambda c: sessions.revoke_all(c, "ann", **admin))) == 1
    token = sessions.token_key("countersign", "a-token-id")
    revoke = in_connection(lambda c: sessions.revoke_token(c, "ann", token, 2_000_000_000))
    assert changes(revoke) == 1
    roles = frozenset({Role.agent})
    provision = in_connection(
        lambda c: identities.provision(c, issuer="https://idp", subject="s1", names={}, roles=roles)
    )
    assert changes(provision) == 1
    username = identities.username_for("https://idp", "s1", {}, 8)
    sync = in_connection(lambda c: identities.sync_roles(c, username, frozenset({Role.legal})))
    assert changes(sync) == 1

    class Undone(Exception):
        pass

    def rolled_back() -> None:
        with pytest.raises(Undone), database.write_session() as session:
            users.set_roles(session, "ann", [Role.admin], **admin)
            raise Undone

    assert changes(rolled_back) == 0

    def then_a_savepoint(session: Session) -> None:
        users.set_roles(session, "ann", [Role.agent], **admin)
        with session.begin_nested():
            users.require(session, "ann")

    assert changes(in_session(then_a_savepoint)) == 1
    assert changes(in_session(lambda s: users.require(s, "ann"))) == 0  # nor does a read


def test_every_account_table_notifies_when_a_change_commits_and_not_when_it_rolls_back(
    database: Database, database_url: str, make_user: Callable[..., str]
) -> None:
    postgresql_only(database)
    make_user("ann", Role.agent)
    url = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {account_changes.CHANNEL}")
        heard = lambda: len(list(listener.notifies(timeout=0.2)))  # noqa: E731
        with database.write() as connection:
            sessions.revoke_token(connection, "ann", "t" * 64, 2_000_000_000)
        assert heard() == 1  # revoked_tokens (its clean-up DELETE too: one a transaction)
        with database.write_session() as session:
            users.set_roles(session, "ann", [Role.comms], actor="root", actor_role=Role.admin)
        assert heard() == 1  # user_roles and users, folded into one
        with pytest.raises(ZeroDivisionError), database.write() as connection:
            connection.execute(update(USERS).values(disabled=True))
            1 / 0  # noqa: B018
        assert heard() == 0


def test_nothing_is_kept_while_the_listener_cannot_hear(
    app_client: TestClient,
    standings: Standings,
    database: Database,
    other_process: Database,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
) -> None:
    """Its connection ended by the server: until it listens again every request reads, and
    a change made meanwhile (which it could not hear) applies at once; listening again,
    it keeps again."""
    make_user("ann", Role.agent, Role.comms)
    make_user("bob", Role.agent)
    ann, bob = login("ann"), login("bob")
    assert app_client.get(POSTS, headers=ann).status_code == 200
    assert standings.keeping
    with other_process.engine.begin() as connection:
        connection.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = '{account_changes.APPLICATION_NAME}' "
            "AND datname = current_database()"
        )
    wait_for(lambda: not standings.keeping)
    with statements_sent(database) as sent:
        assert app_client.get(POSTS, headers=bob).status_code == 200
        assert app_client.get(POSTS, headers=bob).status_code == 200
    assert account_reads(sent) == 2  # not listening: nothing kept
    with other_process.write_session() as session:  # unheard: the listener is away
        users.set_roles(session, "ann", [], actor="root", actor_role=Role.admin)
    assert app_client.get(POSTS, headers=ann).status_code == 403  # at once all the same
    wait_for(lambda: standings.keeping)
    with statements_sent(database) as sent:
        for _ in range(3):
            assert app_client.get(POSTS, headers=bob).status_code == 200
    assert account_reads(sent) == 1


def test_a_standing_read_while_an_account_changed_is_not_kept(
    database: Database,
    make_user: Callable[..., str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A change that commits while the read runs (its notification arrives before the read
    ends): what the read saw may be from before it, so it is not kept."""
    postgresql_only(database)
    make_user("ann", Role.agent)
    verified = TokenService(settings).verify(TokenService(settings).issue("ann").access_token)
    standings = Standings(database)
    standings.start()
    reads = 0
    read = database.read

    async def read_while_changing(query, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        answer = await read(query, **kwargs)
        standings.forget()  # the change's notification, heard before the read ended
        return answer

    monkeypatch.setattr(database, "read", read_while_changing)
    try:
        for _ in range(3):
            standing = asyncio.run(standings.of(verified))
            assert standing is not None and standing.roles == {Role.agent}
    finally:
        standings.stop()
    assert reads == 3


def test_this_process_forgets_its_own_changes_without_the_listener(
    app_client: TestClient,
    standings: Standings,
    database: Database,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
) -> None:
    """A listener that hears nothing, though its connection works: an admin disabling an
    account and a sign-out, through this API, apply at the very next request all the same."""
    assert standings._listener is not None
    standings._listener._changed = lambda: None  # deaf from here on
    make_user("root", Role.admin)
    make_user("ann", Role.agent)
    make_user("bob", Role.agent)
    root, ann, bob = login("root"), login("ann"), login("bob")
    for headers in (ann, bob):
        assert app_client.get(POSTS, headers=headers).status_code == 200  # kept
    assert standings.keeping
    changed = app_client.patch("/api/v1/users/ann", json={"disabled": True}, headers=root)
    assert changed.status_code == 200, changed.text
    assert app_client.get(POSTS, headers=ann).status_code == 401
    assert app_client.post("/api/v1/auth/logout", headers=bob).status_code == 204
    assert app_client.get(POSTS, headers=bob).status_code == 401


def test_a_disabled_trigger_stops_the_keeping(
    app_client: TestClient,
    standings: Standings,
    database: Database,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
) -> None:
    """The heartbeat asks whether a change would be heard: with an account table's trigger
    disabled (by an administrator, or a schema before migration 0031) nothing is kept."""
    make_user("ann", Role.agent)
    ann = login("ann")
    assert standings.keeping
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE user_roles DISABLE TRIGGER user_roles_changed")
    try:
        wait_for(lambda: not standings.keeping)
        with statements_sent(database) as sent:
            for _ in range(2):
                assert app_client.get(POSTS, headers=ann).status_code == 200
        assert account_reads(sent) == 2
    finally:
        with database.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE user_roles ENABLE TRIGGER user_roles_changed")
    wait_for(lambda: standings.keeping)

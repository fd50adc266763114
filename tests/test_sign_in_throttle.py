"""Sign-in under attack (issue 20, item 5): failed sign-ins are throttled per username and
per client address, in the database (so every API process sees them), with a wait that
grows; password hashing runs a bounded number at once. Both databases."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from lifecycle.words import Role
from records import passwords
from records.db import Database
from records.settings import Settings
from records.throttle import COUNTERS
from tests.conftest import PASSWORD
from tests.test_web import csrf_of

TOKEN = "/api/v1/auth/token"


def attempt(client: TestClient, username: str, password: str = "wrong password!") -> int:
    answer = client.post(TOKEN, data={"username": username, "password": password})
    return answer.status_code


@pytest.fixture
def person(make_user: Callable[..., str]) -> str:
    return make_user("dana", Role.agent)


def test_the_right_password_after_five_wrong_ones_waits(
    app_client: TestClient, person: str
) -> None:
    """The finding: 15 wrong passwords, then the right one, was a 200."""
    assert [attempt(app_client, person) for _ in range(5)] == [401] * 5
    refused = app_client.post(TOKEN, data={"username": person, "password": PASSWORD})
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60 and refused.json()["retry_after"] == wait
    assert "too many failed sign-ins for this username" in refused.json()["detail"]
    # Someone else, from the same address, is not held up by it.
    assert attempt(app_client, "someone-else") == 401


def test_the_wait_grows_while_the_failures_go_on(
    app_client: TestClient, person: str, database: Database
) -> None:
    for _ in range(5):
        attempt(app_client, person)
    first = int(
        app_client.post(TOKEN, data={"username": person, "password": PASSWORD}).headers[
            "Retry-After"
        ]
    )
    for _ in range(2):  # the minute passes (its window ends), the attacker goes on
        with database.write() as connection:
            connection.execute(
                update(COUNTERS)
                .where(COUNTERS.c.key.like("LIMITER/%/5/1/minute"))
                .values(expires_at=time.time() - 1)
            )
        for _ in range(5):
            attempt(app_client, person)
    answer = app_client.post(TOKEN, data={"username": person, "password": PASSWORD})
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) > max(first, 60)  # the 15-minute window


def test_a_success_clears_the_username_count(app_client: TestClient, person: str) -> None:
    for _ in range(4):
        attempt(app_client, person)
    assert attempt(app_client, person, PASSWORD) == 200
    assert [attempt(app_client, person) for _ in range(4)] == [401] * 4
    assert attempt(app_client, person, PASSWORD) == 200


def test_one_address_trying_many_usernames_is_throttled(app: FastAPI) -> None:
    with (
        TestClient(app, client=("203.0.113.7", 4000)) as sprayer,
        TestClient(app, client=("198.51.100.2", 4000)) as neighbour,
    ):
        codes = [attempt(sprayer, f"guess{n}") for n in range(31)]
        assert codes[:30] == [401] * 30 and codes[30] == 429
        assert (
            "for this address"
            in sprayer.post(TOKEN, data={"username": "new", "password": "x"}).json()["detail"]
        )
        assert attempt(neighbour, "guess1") == 401


def test_the_count_holds_across_api_processes(
    settings: Settings, database: Database, person: str
) -> None:
    """Two API instances share nothing but the database: failures on one count on the
    other (the counter is not in a process's memory)."""
    one, other = create_app(settings, database=database), create_app(settings, database=database)
    with TestClient(one) as first, TestClient(other) as second:
        for client in (first, second, first, second, first):
            assert attempt(client, person) == 401
        assert attempt(second, person, PASSWORD) == 429


def test_the_sign_in_page_says_to_wait(app_client: TestClient, person: str) -> None:
    for _ in range(5):
        attempt(app_client, person)
    form = app_client.get("/login")
    page = app_client.post(
        "/login",
        data={"username": person, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert page.status_code == 429 and "Retry-After" in page.headers
    assert "too many failed sign-ins for this username; try again in" in page.text


@pytest.fixture
def counted_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The hasher's verify, slowed and watched: how many run at once."""
    running, peaks = [0], []
    lock = threading.Lock()
    real = passwords._hasher

    class Watched:
        def hash(self, password: str) -> str:
            return real.hash(password)

        def verify(self, hash_: str, password: str) -> bool:
            with lock:
                running[0] += 1
                peaks.append(running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return real.verify(hash_, password)

    monkeypatch.setattr(passwords, "_hasher", Watched())
    yield peaks


def test_password_hashing_runs_a_bounded_number_at_once(counted_hashing: list[int]) -> None:
    hashed = passwords.hash_password(PASSWORD)
    threads = [
        threading.Thread(target=passwords.verify_password, args=(hashed, PASSWORD))
        for _ in range(4 * passwords.AT_ONCE + 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(counted_hashing) == passwords.AT_ONCE


def test_a_sign_in_that_cannot_get_a_turn_is_told_to_come_back(
    app_client: TestClient, person: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(passwords, "WAIT_SECONDS", 0.05)
    taken = [passwords._turns.acquire() for _ in range(passwords.AT_ONCE)]
    try:
        answer = app_client.post(TOKEN, data={"username": person, "password": PASSWORD})
    finally:
        for _ in taken:
            passwords._turns.release()
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
    assert attempt(app_client, person, PASSWORD) == 200


def test_an_attacker_cannot_lock_the_owner_out_from_the_owners_own_desk(
    app: FastAPI, person: str
) -> None:
    """The strict windows count a username at one address: the attacker's failures on
    `dana` from one address leave dana signing in from hers."""
    with (
        TestClient(app, client=("203.0.113.9", 4000)) as attacker,
        TestClient(app, client=("198.51.100.20", 4000)) as desk,
    ):
        assert [attempt(attacker, person) for _ in range(6)] == [401] * 5 + [429]
        assert attempt(desk, person, PASSWORD) == 200


async def test_wrong_passwords_sent_at_once_are_each_counted(
    app: FastAPI, app_client: TestClient, person: str
) -> None:
    """Each attempt is counted before its password is checked: of twenty sent together,
    five are checked (and fail), the rest wait, however the hashing is scheduled.
    (`app_client` has started the app.)"""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.50", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answers = await asyncio.gather(
            *(
                client.post(TOKEN, data={"username": person, "password": f"guess {n}"})
                for n in range(20)
            )
        )
    codes = sorted(a.status_code for a in answers)
    assert codes == [401] * 5 + [429] * 15


def test_an_ipv6_client_is_counted_by_its_64(app: FastAPI) -> None:
    """Rotating through the addresses of one /64 gets no fresh counter."""
    codes = []
    for n in range(31):
        with TestClient(app, client=(f"2001:db8:1:2::{n + 1:x}", 4000)) as client:
            codes.append(attempt(client, f"guess{n}"))
    assert codes[:30] == [401] * 30 and codes[30] == 429

"""Navigation is the rulebook's (issue 21, item 6): every link a person's menu offers
answers 200 for them, and every page their role is documented to use (README's roles
table) is in their menu. A walk of every menu link for every role. Both databases."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from lifecycle.words import Role
from records import drafts
from records.db import Database
from records.tables import DRAFTS
from tests.helpers import insert_post
from tests.test_web import sign_in

MENU = re.compile(r'<nav aria-label="Main">(.*?)</nav>', re.DOTALL)
LINK = re.compile(r'href="([^"]+)"')
# What each role is documented to use (README: Roles), as pages.
DOCUMENTED = {
    Role.agent: {"/inbox", "/drafts"},
    Role.comms: {"/reviews"},
    Role.legal: {"/reviews"},
    Role.publisher: {"/publishing"},
    Role.supervisor: {"/inbox", "/reviews", "/kpis"},
    Role.auditor: {"/audit", "/kpis"},
    Role.admin: {"/admin/users", "/admin/channels", "/admin/rules"},
}


def menu_of(client: TestClient) -> list[str]:
    page = client.get("/", follow_redirects=True)
    assert page.status_code == 200, page.text
    [nav] = MENU.findall(page.text)
    return LINK.findall(nav)


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_every_menu_link_answers_and_every_documented_page_is_in_the_menu(
    app_client: TestClient, make_user: Callable[..., str], database: Database, role: Role
) -> None:
    with database.write() as connection:
        insert_post(connection)  # something in the queues
    make_user("someone", role)
    sign_in(app_client, "someone")
    links = menu_of(app_client)
    for link in links:
        answer = app_client.get(link, follow_redirects=False)
        assert answer.status_code == 200, f"{role}: {link} answers {answer.status_code}"
    assert DOCUMENTED[role] <= set(links), f"{role}: missing {DOCUMENTED[role] - set(links)}"


def test_a_supervisor_sees_every_review_queue_and_decides_none_of_it(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., dict[str, str]],
    database: Database,
) -> None:
    """README: a supervisor sees every queue. Seeing is not deciding: the rulebook still
    gives the stage to its role (or to its backup, once overdue)."""
    with database.write() as connection:
        post_id = insert_post(connection)
        draft_id = drafts.create(connection, post_id=post_id, author="ann", body="Hi").draft_id
        connection.execute(
            update(DRAFTS)
            .where(DRAFTS.c.id == draft_id)
            .values(status="in_review", stage="comms", route=["comms"], review_round=1)
        )
    make_user("sue", Role.supervisor)
    sue = login("sue")
    queue = app_client.get("/api/v1/reviews", headers=sue)
    assert queue.status_code == 200 and [d["id"] for d in queue.json()["items"]] == [draft_id]
    decided = app_client.post(
        f"/api/v1/drafts/{draft_id}/decisions",
        headers=sue,
        json={"stage": "comms", "decision": "approve", "version": 1},
    )
    assert decided.status_code == 403

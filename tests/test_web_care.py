"""The contact center's pages (issue 23, item 7) without a browser: a supervisor sets up a
team, a queue with its rules and targets, and an agent's skills in forms (a refusal shows
why and keeps what was typed); an agent becomes available from the inbox and a matching
post comes to them; the board and the inbox order; only supervisors see the board."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from lifecycle.words import Role
from records import routing
from records.db import Database
from tests.test_web import csrf_of, sign_in


def post_form(client: TestClient, page: str, action: str, data: dict[str, object]) -> object:
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **data}, follow_redirects=True)


def test_a_supervisor_sets_up_routing_in_forms_and_an_available_agent_gets_a_post(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., dict[str, str]],
    database: Database,
) -> None:
    make_user("boss", Role.supervisor)
    make_user("ana", Role.agent)
    boss, ana = login("boss"), login("ana")
    sign_in(app_client, "boss")
    page = post_form(app_client, "/routing", "/routing/teams", {"name": "Care"})
    assert "Team Care added." in page.text  # type: ignore[attr-defined]
    team_id = app_client.get("/api/v1/teams", headers=boss).json()[0]["id"]
    # A target that is not a number: refused, with the reason, and the form keeps the name.
    refused = post_form(app_client, "/routing", "/routing/queues", {
        "name": "Español", "team_id": team_id, "languages": "es", "target_urgent": "soon",
    })  # fmt: skip
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "response_minutes" in refused.text and 'value="Español"' in refused.text  # type: ignore[attr-defined]
    saved = post_form(app_client, "/routing", "/routing/queues", {
        "name": "Español", "team_id": team_id, "languages": "es, PT", "target_urgent": "15",
        "priorities": ["urgent", "high"], "position": "1",
    })  # fmt: skip
    assert "Queue Español saved." in saved.text  # type: ignore[attr-defined]
    [queue] = app_client.get("/api/v1/queues", headers=boss).json()
    assert queue["languages"] == ["es", "pt"] and queue["priorities"] == ["urgent", "high"]
    assert queue["response_minutes"] == {"urgent": 15} and queue["team_id"] == team_id
    changed = post_form(app_client, "/routing", "/routing/queues", {
        "queue_id": queue["id"], "name": "Español", "languages": "es", "team_id": team_id,
    })  # fmt: skip
    assert "Queue Español saved." in changed.text  # type: ignore[attr-defined]
    # A change refused: that queue's form comes back open, with what was typed in it.
    wrong = post_form(app_client, "/routing", "/routing/queues", {
        "queue_id": queue["id"], "name": "Spanish", "languages": "es", "target_high": "soon",
    })  # fmt: skip
    assert wrong.status_code == 422  # type: ignore[attr-defined]
    assert 'value="Spanish"' in wrong.text and 'value="soon"' in wrong.text  # type: ignore[attr-defined]
    assert "<details open><summary>Change</summary>" in wrong.text  # type: ignore[attr-defined]
    assert app_client.get("/api/v1/queues", headers=boss).json()[0]["priorities"] == []
    skills = post_form(app_client, "/routing", "/routing/agents/ana", {
        "action": "skills", "team_id": team_id, "languages": "es", "capacity": "2",
    })  # fmt: skip
    assert "ana saved." in skills.text  # type: ignore[attr-defined]
    # A digit that is not a number (a superscript) is refused with its reason, not a crash.
    odd = post_form(
        app_client, "/routing", "/routing/agents/ana", {"action": "skills", "capacity": "²"}
    )
    assert odd.status_code == 422 and "capacity" in odd.text  # type: ignore[attr-defined]
    # The agent, in the inbox: offline, then available; a Spanish urgent post comes to her.
    sign_in(app_client, "ana")
    inbox = app_client.get("/inbox")
    assert '<strong class="chip presence-offline">offline</strong>' in inbox.text
    became = post_form(app_client, "/inbox", "/presence", {"presence": "available"})
    assert "You are available." in became.text  # type: ignore[attr-defined]
    assert '<strong class="chip presence-available">available</strong>' in became.text  # type: ignore[attr-defined]
    assert "(0 of 2 open)" in became.text  # type: ignore[attr-defined]
    body = {
        "channel": "x", "external_id": "es-1", "author": "@cliente", "url": "https://x.example/1",
        "text": "@AcmeBank alguien usó mi tarjeta, no hice estos pagos, es un fraude",
        "received_at": "2026-11-30T09:00:00Z",
    }  # fmt: skip
    created = app_client.post("/api/v1/posts", json=body, headers=ana)
    assert created.status_code == 201 and created.json()["queue_id"] == queue["id"], created.text
    with database.write() as connection:
        assert routing.route(connection, queue["id"]) == [(created.json()["id"], "ana")]
    assert app_client.get("/api/v1/posts", params={"assignee": "ana"}, headers=ana).json()["items"]
    # Agents do not see the board nor the set-up.
    assert app_client.get("/board").status_code == 403
    assert app_client.get("/routing").status_code == 403
    assert "Queue board" not in app_client.get("/inbox").text


def test_the_board_counts_each_queue_and_lists_the_most_urgent_first(
    app_client: TestClient, make_user: Callable[..., str], login: Callable[..., dict[str, str]]
) -> None:
    make_user("boss", Role.supervisor)
    make_user("ana", Role.agent)
    ana = login("ana")
    sign_in(app_client, "boss")
    post_form(app_client, "/routing", "/routing/queues", {"name": "All"})
    sign_in(app_client, "ana")
    now = datetime.now(UTC)
    for n, (text, minutes_ago) in enumerate([
        ("@AcmeBank how do I order a chequebook?", 60),  # normal: due in 7 hours
        ("@AcmeBank someone used my card, I did not make these payments", 45),  # urgent: late
    ]):  # fmt: skip
        at = (now - timedelta(minutes=minutes_ago)).isoformat()
        body = {"channel": "x", "external_id": f"b-{n}", "author": f"@c{n}", "text": text,
                "url": "https://x.example/1", "received_at": at}  # fmt: skip
        assert app_client.post("/api/v1/posts", json=body, headers=ana).status_code == 201
    inbox = app_client.get("/inbox").text
    assert inbox.index("someone used my card") < inbox.index("chequebook")  # most urgent first
    by_arrival = app_client.get("/inbox", params={"order": "arrival"}).text
    assert by_arrival.index("chequebook") < by_arrival.index("someone used my card")
    sign_in(app_client, "boss")
    board = app_client.get("/board").text
    assert 'hx-trigger="every 10s"' in board
    assert "<td><strong>All</strong></td>\n    <td>2</td>" in board
    urgent, normal = board.split("someone used my card")[1], board.split("chequebook")[1]
    assert board.index("someone used my card") < board.index("chequebook")
    assert re.search(r'^[^<]*</span>.*?<span class="late">1[45] min overdue</span>', urgent, re.S)
    line = normal.split("</li>")[0]
    assert "overdue" not in line and re.search(r'class="muted">due in (6 h 5\d|7 h 00) min', line)

"""First-response targets, the live queue board and the contact center's KPIs (issue 23,
items 4 and 6), on both databases: a post is due by its queue's target for its priority
(or the rule set's); the inbox can list the most urgent first by that due time; the board
counts, per queue, what waits, what agents hold, the oldest wait, what is overdue and who
is available; the KPIs give the response rate, the share within target per queue and
priority, the trends and the public-risk posts' answer times, each checked against a
hand-worked answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from lifecycle.words import Role
from policies import triage_rules
from policies.engine import RuleSet, RuleSetError
from policies.staffing import Target, agents_needed
from records import service_kpis, transitions
from records.db import Database
from records.report_sql import Window
from records.tables import DRAFTS, POSTS, QUEUES, STAGE_REVIEWS
from tests.helpers import insert_post

Headers = dict[str, str]


@pytest.fixture
def people(make_user: Callable[..., str], login: Callable[..., Headers]) -> dict[str, Headers]:
    for name in ("ana", "ben"):
        make_user(name, Role.agent)
    make_user("sue", Role.supervisor)
    return {name: login(name) for name in ("ana", "ben", "sue")}


def ok(answer: Any, code: int = 200) -> Any:
    assert answer.status_code == code, answer.text
    return answer.json()


def post(client: TestClient, who: Headers, n: int, text: str, minutes_ago: int) -> dict[str, Any]:
    body = {
        "channel": "x", "external_id": f"s-{n}", "author": f"@c{n}", "text": text,
        "url": f"https://x.example/{n}",
        "received_at": (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(),
    }  # fmt: skip
    answer: dict[str, Any] = ok(client.post("/api/v1/posts", json=body, headers=who), 201)
    return answer


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


FRAUD = "@AcmeBank someone used my card, I did not make these payments"
QUESTION = "@AcmeBank what time does the Leeds branch open?"


def test_a_post_is_due_by_its_queues_target_for_its_priority_or_else_the_rule_sets(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    sue = people["sue"]
    body = {"name": "fraud", "topics": ["fraud"], "response_minutes": {"urgent": 10}}
    ok(app_client.post("/api/v1/queues", json=body, headers=sue), 201)
    fraud = post(app_client, people["ana"], 1, FRAUD, minutes_ago=5)
    other = post(app_client, people["ana"], 2, QUESTION, minutes_ago=5)
    assert fraud["priority"] == "urgent" and fraud["queue_id"] is not None
    assert at(fraud["respond_by"]) - at(fraud["received_at"]) == timedelta(minutes=10)
    assert other["queue_id"] is None  # the rule set's target for its priority
    due = triage_rules.RESPONSE_MINUTES[other["priority"]]
    assert at(other["respond_by"]) - at(other["received_at"]) == timedelta(minutes=due)


@pytest.mark.parametrize(
    ("targets", "problem"),
    [({"urgent": 0}, "greater than or equal to 1"), ({"soon": 5}, "urgent"),
     ({"urgent": "ten"}, "integer")],
)  # fmt: skip
def test_a_queue_refuses_a_target_that_is_not_minutes_of_a_priority(
    app_client: TestClient, people: dict[str, Headers], targets: Any, problem: str
) -> None:
    body = {"name": "q", "response_minutes": targets}
    answer = app_client.post("/api/v1/queues", json=body, headers=people["sue"])
    assert answer.status_code == 422 and problem in answer.text


@pytest.mark.parametrize(
    ("section", "problem"),
    [("{urgent: 0}", "must be 1 to 43200 minutes"), ("{soon: 5}", "soon is not a known setting"),
     ("{high: -3}", "0 or more"), ("[30]", "must be a mapping"),
     ("{low: 10000000000}", "must be 1 to 43200 minutes")],
)  # fmt: skip
def test_the_rule_sets_targets_are_checked_as_they_are_read(section: str, problem: str) -> None:
    base = "name: t\nroutes:\n  base: [comms]\ntriage:\n"
    with pytest.raises(RuleSetError) as refused:
        RuleSet(f"{base}  response_minutes: {section}\n")
    assert problem in refused.value.problem and refused.value.line == 5
    read = RuleSet(f"{base}  response_minutes: {{high: 45}}\n").triage
    assert read.response_minutes == {**triage_rules.RESPONSE_MINUTES, "high": 45}


def test_the_inbox_lists_the_most_urgent_first_by_when_each_reply_is_due(
    app_client: TestClient, people: dict[str, Headers]
) -> None:
    ana = people["ana"]
    waited = [post(app_client, ana, n, f"{QUESTION} ({n})", minutes_ago=120 - n) for n in range(4)]
    urgent = post(app_client, ana, 9, FRAUD, minutes_ago=1)  # the newest, and due first
    arrival = ok(app_client.get("/api/v1/posts", params={"status": "new"}, headers=ana))
    assert [p["id"] for p in arrival["items"]] == [*(p["id"] for p in waited), urgent["id"]]
    due = ok(app_client.get("/api/v1/posts", params={"status": "new", "order": "due"}, headers=ana))
    assert [p["id"] for p in due["items"]] == [urgent["id"], *(p["id"] for p in waited)]
    # Page by page (keyset on the due time), the same order, each post once.
    seen, cursor = [], None
    while True:
        params = {
            "status": "new",
            "order": "due",
            "limit": 2,
            **({"cursor": cursor} if cursor else {}),
        }
        page = ok(app_client.get("/api/v1/posts", params=params, headers=ana))
        seen += [p["id"] for p in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [p["id"] for p in due["items"]]
    # A cursor of one order is refused by the other, not read as a time of another column.
    due_cursor = ok(app_client.get("/api/v1/posts", params={"order": "due", "limit": 1},
                                   headers=ana))["next_cursor"]  # fmt: skip
    arrival_cursor = ok(app_client.get("/api/v1/posts", params={"limit": 1}, headers=ana))[
        "next_cursor"
    ]
    for order, wrong in (("arrival", due_cursor), ("due", arrival_cursor)):
        mixed = app_client.get(
            "/api/v1/posts", params={"order": order, "cursor": wrong}, headers=ana
        )
        assert mixed.status_code == 422 and "cursor" in mixed.text
    refused = app_client.get("/api/v1/posts", params={"order": "loudest"}, headers=ana)
    assert refused.status_code == 422


def test_the_board_shows_each_queue_now(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    sue, ana = people["sue"], people["ana"]
    team = ok(app_client.post("/api/v1/teams", json={"name": "care"}, headers=sue), 201)["id"]
    body = {"name": "fraud", "team_id": team, "topics": ["fraud"], "position": 1,
            "response_minutes": {"urgent": 10}}  # fmt: skip
    fraud_q = ok(app_client.post("/api/v1/queues", json=body, headers=sue), 201)["id"]
    rest_q = ok(app_client.post("/api/v1/queues", json={"name": "rest"}, headers=sue), 201)["id"]
    ok(app_client.put("/api/v1/agents/ana/skills", json={"team_id": team}, headers=sue))
    ok(app_client.put("/api/v1/agents/ana/presence", json={"presence": "available"}, headers=ana))
    ok(
        app_client.put(
            "/api/v1/agents/ben/presence", json={"presence": "away"}, headers=people["ben"]
        )
    )
    late = post(app_client, ana, 1, FRAUD, minutes_ago=30)  # past its 10 minutes
    fresh = post(app_client, ana, 2, f"{FRAUD} again", minutes_ago=2)
    post(app_client, ana, 3, QUESTION, minutes_ago=50)
    ok(app_client.post(f"/api/v1/posts/{fresh['id']}/assign", headers=ana))
    rows = {r["queue"]: r for r in ok(app_client.get("/api/v1/queues/board", headers=sue))}
    assert list(rows) == ["fraud", "rest"]  # no post is outside a queue: no row for them
    fraud, rest = rows["fraud"], rows["rest"]
    assert (fraud["queue_id"], rest["queue_id"]) == (fraud_q, rest_q)
    assert (fraud["waiting"], fraud["with_agents"], fraud["overdue"]) == (1, 1, 1)
    assert 30 * 60 - 5 <= fraud["oldest_wait_seconds"] <= 30 * 60 + 60
    assert fraud["agents_available"] == 1  # ana, of its team; ben is away
    assert (rest["waiting"], rest["with_agents"], rest["overdue"]) == (1, 0, 0)
    assert rest["agents_available"] == 1  # a queue of no team: any available agent
    # Today's outcomes: the late post missed (past due, no reply); the fresh one is pending.
    today = at(late["received_at"]).date() == datetime.now(UTC).date()
    assert (fraud["within_target_today"], fraud["with_outcome_today"]) == (
        (0.0, 1) if today else (None, 0)
    )
    # Agents see their own inbox, not the board.
    assert app_client.get("/api/v1/queues/board", headers=ana).status_code == 403


def _served(database: Database) -> dict[str, int]:
    """Six posts received on Nov 3 in two queues, with first replies at hand-picked times
    (`posts.first_replied_at`, as publishing keeps it: see the test below)."""
    day = datetime(2026, 11, 3, 9, tzinfo=UTC)
    ids: dict[str, int] = {}
    with database.write() as c:
        fraud = c.execute(QUEUES.insert().returning(QUEUES.c.id), {
            "name": "fraud", "position": 1, "strategy": "longest_idle", "channels": [],
            "languages": [], "topics": ["fraud"], "priorities": [], "origins": [],
            "response_minutes": {"urgent": 10}, "created_at": day, "updated_at": day,
        }).scalar_one()  # fmt: skip
        for name, queue, priority, status, due_minutes, reply_minutes, risk, topic, mood in [
            ("met", fraud, "urgent", "answered", 10, 8, True, "fraud", -0.8),
            ("missed", fraud, "urgent", "answered", 10, 25, True, "fraud", -0.6),
            ("late_no_reply", fraud, "urgent", "assigned", 10, None, False, "fraud", -0.4),
            ("normal_met", None, "normal", "answered", 480, 60, False, "billing", 0.0),
            ("dismissed", None, "low", "dismissed", 1440, None, False, None, 0.5),
            ("pending", None, "normal", "new", 10**7, None, False, "billing", None),
        ]:
            ids[name] = c.execute(POSTS.insert().returning(POSTS.c.id), {
                "channel": "x", "external_id": name, "author": "@c", "text": name,
                "url": "https://x.example/1", "received_at": day, "priority": priority,
                "respond_by": day + timedelta(minutes=due_minutes), "status": status,
                "queue_id": queue, "public_risk": risk, "topic": topic, "sentiment": mood,
                "dismissed_reason": "spam" if status == "dismissed" else None,
                "first_replied_at": (
                    None if reply_minutes is None else day + timedelta(minutes=reply_minutes)
                ),
            }).scalar_one()  # fmt: skip
    return ids


def test_a_posts_first_reply_is_kept_when_a_later_one_goes_out(database: Database) -> None:
    with database.write() as c:
        post_id = insert_post(c)
        first, second = (
            datetime(2026, 11, 3, 9, 5, tzinfo=UTC),
            datetime(2026, 11, 3, 11, tzinfo=UTC),
        )
        transitions.answer_post(c, post_id, first)
        transitions.answer_post(c, post_id, second)  # a second reply, by an allowance
        row = c.execute(
            select(POSTS.c.status, POSTS.c.first_replied_at).where(POSTS.c.id == post_id)
        ).one()
    assert (row.status, row.first_replied_at) == ("answered", first)


def test_the_kpis_give_response_rate_targets_trends_and_public_risk(database: Database) -> None:
    _served(database)
    with database.engine.connect() as c:
        report = service_kpis.service(c, Window(), datetime(2026, 11, 4, tzinfo=UTC))
        outside = service_kpis.service(
            c, Window(since=datetime(2026, 11, 4, tzinfo=UTC)), datetime(2026, 11, 4, tzinfo=UTC)
        )
    targets = report["targets"]
    # 6 received, 1 dismissed: 5 needed a reply, 3 were answered.
    assert (targets["received"], targets["needing_reply"], targets["answered"]) == (6, 5, 3)
    assert targets["response_rate"] == 0.6
    # met: met, normal_met; missed: missed (late reply), late_no_reply (due passed).
    assert targets["within_target"] == 0.5
    cells = {(c["queue"], c["priority"]): c for c in targets["per_queue"]}
    assert cells["fraud", "urgent"] == {
        "queue": "fraud", "priority": "urgent", "received": 3, "met": 1, "missed": 2,
        "pending": 0, "dismissed": 0, "within_target": round(1 / 3, 4),
    }  # fmt: skip
    assert (cells["no queue", "normal"]["met"], cells["no queue", "normal"]["pending"]) == (1, 1)
    assert cells["no queue", "normal"]["within_target"] == 1.0
    assert cells["no queue", "low"]["dismissed"] == 1
    assert cells["no queue", "low"]["within_target"] is None
    [day] = report["trends"]
    assert day["day"] == "2026-11-03" and day["posts"] == 6
    assert day["topics"] == {"fraud": 3, "billing": 2, "(no topic)": 1}
    assert day["scored"] == 5 and day["sentiment"] == round((-0.8 - 0.6 - 0.4 + 0 + 0.5) / 5, 3)
    risk = report["public_risk"]
    assert (risk["flagged"], risk["answered"]) == (2, 2)
    assert (risk["p50_seconds"], risk["p90_seconds"]) == (8 * 60, 25 * 60)
    assert risk["within_target"] == 0.5
    assert outside["targets"]["received"] == 0 and outside["targets"]["response_rate"] is None
    assert outside["trends"] == [] and outside["public_risk"]["flagged"] == 0


def test_the_kpi_report_and_its_csv_carry_the_new_figures(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    _served(database)
    report = ok(app_client.get("/api/v1/reports/kpis", headers=people["sue"]))
    assert report["targets"]["answered"] == 3 and report["public_risk"]["flagged"] == 2
    text = app_client.get("/api/v1/reports/kpis", params={"format": "csv"}, headers=people["sue"])
    lines = text.text.splitlines()
    assert "response,all,response_rate,0.6" in lines
    assert "target,fraud urgent,missed,2" in lines
    assert "trend,2026-11-03,topic fraud,3" in lines
    assert "public_risk,all,p90_seconds,1500.0" in lines


def test_the_staffing_forecast_reads_the_weeks_arrivals_and_the_handle_time(
    app_client: TestClient, people: dict[str, Headers], database: Database
) -> None:
    sue = people["sue"]
    team = ok(app_client.post("/api/v1/teams", json={"name": "care"}, headers=sue), 201)["id"]
    body = {"name": "billing", "team_id": team, "response_minutes": {"normal": 120}}
    queue_id = ok(app_client.post("/api/v1/queues", json=body, headers=sue), 201)["id"]
    for name, capacity in (("ana", 2), ("ben", 4)):  # the team works 3 posts at once
        skills = {"team_id": team, "capacity": capacity}
        ok(app_client.put(f"/api/v1/agents/{name}/skills", json=skills, headers=sue))
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    with database.write() as c:
        n = 0
        for weeks_ago, count in ((1, 2), (2, 4)):  # the same hour a week and two weeks ago
            for k in range(count):
                n += 1
                received = hour - timedelta(weeks=weeks_ago) + timedelta(minutes=k)
                post_id = c.execute(POSTS.insert().returning(POSTS.c.id), {
                    "channel": "x", "external_id": f"h-{n}", "author": "@c", "text": "hi",
                    "url": "https://x.example/1", "received_at": received, "priority": "normal",
                    "respond_by": received + timedelta(hours=2), "status": "answered",
                    "queue_id": queue_id, "assigned_at": received + timedelta(minutes=1),
                }).scalar_one()  # fmt: skip
                draft = c.execute(DRAFTS.insert().returning(DRAFTS.c.id), {
                    "post_id": post_id, "author": "ana", "status": "published", "route": [],
                }).scalar_one()  # fmt: skip
                # Submitted 10 and 14 minutes after assignment: 12 on average.
                c.execute(STAGE_REVIEWS.insert(), {
                    "draft_id": draft, "review_round": 1, "stage": "comms", "version": 1,
                    "opened_at": received + timedelta(minutes=11 if n % 2 else 15),
                })  # fmt: skip
        # The queue was there before the history began.
        c.execute(update(QUEUES).where(QUEUES.c.id == queue_id)
                  .values(created_at=hour - timedelta(weeks=3)))  # fmt: skip
    plan = ok(app_client.get("/api/v1/reports/staffing", headers=sue))
    [billing] = plan
    assert (billing["queue"], billing["handle_minutes"], billing["handle_from"]) == (
        "billing", 12.0, "queue",
    )  # fmt: skip
    assert billing["staffed_for"] == "normal"  # the only priority it took
    assert billing["concurrency"] == 3 and billing["wait_minutes"] == 120 - 12
    hours = {at(h["hour"]): h for h in billing["hours"]}
    assert len(hours) == 168
    assert hours[hour]["arrivals"] == 3.0  # (2 + 4) / 2: the two weeks the history covers
    wanted = Target(wait_minutes=108, concurrency=3)
    assert hours[hour]["agents"] == agents_needed(3.0, 12.0, wanted) > 0
    assert hours[hour + timedelta(hours=1)]["agents"] == 0
    text = app_client.get("/api/v1/reports/staffing", params={"format": "csv"}, headers=sue)
    rows = text.text.splitlines()
    assert (
        rows[0] == "queue,hour_utc,arrivals,agents,handle_minutes,concurrency" and len(rows) == 169
    )
    assert f"billing,{hour.isoformat()},3.0,{hours[hour]['agents']},12.0,3" in rows
    lenient = {"service_level": 0.5, "shrinkage": 0}
    cheaper = ok(app_client.get("/api/v1/reports/staffing", params=lenient, headers=sue))
    assert {at(h["hour"]): h for h in cheaper[0]["hours"]}[hour]["agents"] <= hours[hour]["agents"]
    # Targets that mean nothing or cost without bound (the schema fuzzer's 1e-300 occupancy
    # asked for 1e300 positions and the request never ended) are refused.
    for wrong in ({"service_level": 2}, {"service_level": 0.05}, {"max_occupancy": 1e-300},
                  {"shrinkage": 0.999999}):  # fmt: skip
        refused = app_client.get("/api/v1/reports/staffing", params=wrong, headers=sue)
        assert refused.status_code == 422, wrong
    assert app_client.get("/api/v1/reports/staffing", headers=people["ana"]).status_code == 403
    # Made between the two weeks, the queue's forecast reads the week it existed alone.
    with database.write() as c:
        c.execute(update(QUEUES).where(QUEUES.c.id == queue_id)
                  .values(created_at=hour - timedelta(weeks=1, days=2)))  # fmt: skip
    younger = ok(app_client.get("/api/v1/reports/staffing", headers=sue))[0]["hours"]
    assert {at(h["hour"]): h for h in younger}[hour]["arrivals"] == 2.0

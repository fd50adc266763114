"""KPIs on a fixture whose answers are worked out by hand, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from lifecycle.words import Role
from records import audit, reports
from records.db import Database
from records.tables import DECISIONS, DRAFTS, POSTS, PUBLICATIONS, STAGE_REVIEWS, VERSIONS

NOV1 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
NOV2 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CARD = {"rule_id": "pii.card", "severity": "block"}


def minutes(at: datetime, n: float) -> datetime:
    return at + timedelta(minutes=n)


@pytest.fixture
def history(database: Database) -> dict[str, int]:
    """Six drafts on four posts:

    d1 (x, Nov 1 10:00): comms 10 min, published at 10:30 (first response 30 min)
    d2 (x, Nov 1 10:00): comms 40 min (breached), legal 18 min, published at 11:00 (60 min)
    d3 (facebook, Nov 2 09:00): comms 5 min, published at 09:10 (10 min)
    d4 (x, Nov 2 12:00): comms open since 12:05, breached; no reply
    d5, d6 (on d4's post): changes requested, rejected; both blocked once before
    """
    posts = [("x", NOV1), ("x", NOV1), ("facebook", NOV2), ("x", minutes(NOV2, 180))]
    ids: dict[str, int] = {}
    with database.write() as c:
        post_ids = [
            c.execute(
                POSTS.insert().returning(POSTS.c.id),
                {
                    "channel": channel,
                    "external_id": f"kpi-{n}",
                    "author": "@customer",
                    "text": "Help",
                    "url": "https://example.com/p",
                    "received_at": at,
                    "respond_by": minutes(at, 8 * 60),
                    "priority": "normal",
                    "status": "answered",
                },
            ).scalar_one()
            for n, (channel, at) in enumerate(posts)
        ]
        # One open draft per post (d4); d5 was withdrawn after its changes were asked for.
        statuses = ["published", "published", "published", "in_review", "withdrawn", "rejected"]
        for n, post in enumerate([0, 1, 2, 3, 3, 3], 1):
            ids[f"d{n}"] = c.execute(
                DRAFTS.insert().returning(DRAFTS.c.id),
                {
                    "post_id": post_ids[post],
                    "author": "agent",
                    "status": statuses[n - 1],
                    "route": [],
                },
            ).scalar_one()
            c.execute(
                VERSIONS.insert(),
                {
                    "draft_id": ids[f"d{n}"],
                    "version": 1,
                    "body": "text",
                    "content_sha256": "0" * 64,
                    "findings": (
                        [CARD, {"rule_id": "lexicon.legal.fault", "severity": "warn"}]
                        if n == 5
                        else [CARD, {"rule_id": "lexicon.profanity.damn", "severity": "block"}]
                        if n == 6
                        else []
                    ),
                    "route": ["comms"],
                    "created_by": "agent",
                },
            )
        for draft, stage, opened, closed, breached in [
            ("d1", "comms", minutes(NOV1, 1), minutes(NOV1, 11), False),
            ("d2", "comms", minutes(NOV1, 1), minutes(NOV1, 41), True),
            ("d2", "legal", minutes(NOV1, 41), minutes(NOV1, 59), False),
            ("d3", "comms", minutes(NOV2, 1), minutes(NOV2, 6), False),
            ("d4", "comms", minutes(NOV2, 185), None, True),
        ]:
            c.execute(
                STAGE_REVIEWS.insert(),
                {
                    "draft_id": ids[draft],
                    "review_round": 1,
                    "stage": stage,
                    "version": 1,
                    "opened_at": opened,
                    "due_at": minutes(opened, 30),
                    "breached_at": minutes(opened, 30) if breached else None,
                    "closed_at": closed,
                    "outcome": "approve" if closed else None,
                },
            )
        for draft, stage, decision, at in [
            ("d1", "comms", "approve", minutes(NOV1, 11)),
            ("d2", "comms", "approve", minutes(NOV1, 41)),
            ("d2", "legal", "approve", minutes(NOV1, 59)),
            ("d3", "comms", "approve", minutes(NOV2, 6)),
            ("d5", "comms", "request_changes", minutes(NOV2, 200)),
            ("d6", "comms", "reject", minutes(NOV2, 210)),
        ]:
            c.execute(
                DECISIONS.insert(),
                {
                    "draft_id": ids[draft],
                    "version": 1,
                    "review_round": 1,
                    "stage": stage,
                    "decision": decision,
                    "reviewer": f"r-{stage}",
                    "comment": None,
                    "at": at,
                },
            )
        for draft, channel, at in [
            ("d1", "x", minutes(NOV1, 30)),
            ("d2", "x", minutes(NOV1, 60)),
            ("d3", "facebook", minutes(NOV2, 10)),
        ]:
            c.execute(
                PUBLICATIONS.insert(),
                {
                    "draft_id": ids[draft],
                    "version": 1,
                    "channel": channel,
                    "status": "confirmed",
                    "requested_by": "pub",
                    "attempts": 1,
                    "created_at": at,
                    "updated_at": at,
                },
            )
        for draft in ("d5", "d6"):
            audit.append(
                c,
                audit.NewEvent(
                    actor="agent",
                    role="agent",
                    action="draft.blocked",
                    draft_id=ids[draft],
                    version=1,
                ),
            )
    return ids


def test_every_kpi_matches_the_hand_worked_answer(
    database: Database, history: dict[str, int]
) -> None:
    with database.engine.connect() as c:
        report = reports.kpis(c, reports.Window())

    # First response: 10, 30, 60 minutes; nearest rank p50 is the 2nd, p90 the 3rd.
    assert report["first_response"] == {"count": 3, "p50_seconds": 1800.0, "p90_seconds": 3600.0}
    comms, legal = report["stages"]
    assert comms == {
        "stage": "comms",
        "reviews": 4,
        "closed": 3,
        "p50_seconds": 600.0,  # of 5, 10 and 40 minutes
        "p90_seconds": 2400.0,
        "sla_breaches": 2,
        "breach_rate": 0.5,
    }
    assert legal == {
        "stage": "legal",
        "reviews": 1,
        "closed": 1,
        "p50_seconds": 1080.0,
        "p90_seconds": 1080.0,
        "sla_breaches": 0,
        "breach_rate": 0.0,
    }
    assert report["decisions"] == {
        "total": 6,
        "counts": {"approve": 4, "request_changes": 1, "reject": 1},
        "rates": {"approve": 0.6667, "request_changes": 0.1667, "reject": 0.1667},
    }
    assert report["top_blocking_rules"] == [
        {"rule_id": "pii.card", "blocked": 2},
        {"rule_id": "lexicon.profanity.damn", "blocked": 1},
    ]
    assert report["volumes"] == [
        {"channel": "x", "day": "2026-11-01", "received": 2, "published": 2},
        {"channel": "facebook", "day": "2026-11-02", "received": 1, "published": 1},
        {"channel": "x", "day": "2026-11-02", "received": 1, "published": 0},
    ]


def test_a_window_and_a_channel_narrow_every_figure(
    database: Database, history: dict[str, int]
) -> None:
    with database.engine.connect() as c:
        nov2 = reports.kpis(c, reports.Window(since=NOV2, until=minutes(NOV2, 24 * 60)))
        x_only = reports.kpis(c, reports.Window(channel="x"))
    assert nov2["first_response"] == {"count": 1, "p50_seconds": 600.0, "p90_seconds": 600.0}
    assert [(s["stage"], s["reviews"], s["sla_breaches"]) for s in nov2["stages"]] == [
        ("comms", 2, 1)
    ]
    assert nov2["decisions"]["counts"] == {"approve": 1, "request_changes": 1, "reject": 1}
    assert [v["day"] for v in nov2["volumes"]] == ["2026-11-02", "2026-11-02"]

    assert x_only["first_response"]["count"] == 2
    assert {v["channel"] for v in x_only["volumes"]} == {"x"}
    assert x_only["decisions"]["total"] == 5


def test_the_kpi_report_over_http_for_supervisors_and_auditors_only(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., dict[str, str]],
    history: dict[str, int],
) -> None:
    make_user("boss", Role.supervisor)
    make_user("agent", Role.agent)
    boss, agent = login("boss"), login("agent")
    url = "/api/v1/reports/kpis"
    assert app_client.get(url, headers=agent).status_code == 403

    answer = app_client.get(url, headers=boss, params={"channel": "facebook"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["first_response"]["p50_seconds"] == 600.0

    as_csv = app_client.get(url, headers=boss, params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["section", "key", "metric", "value"]
    assert ["stage", "comms", "breach_rate", "0.5"] in rows
    assert ["blocking_rule", "pii.card", "blocked", "2"] in rows

    bad = app_client.get(
        url, headers=boss, params={"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}
    )
    assert bad.status_code == 422 and "since" in bad.text
    naive = app_client.get(url, headers=boss, params={"since": "2026-11-02T00:00:00"})
    assert naive.status_code == 422

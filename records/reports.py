"""KPIs for supervisors and auditors, computed in SQL that runs on SQLite and PostgreSQL.

Durations, days and percentiles (nearest rank) come from `records.report_sql`; the
figures of the contact center (response rate, first-response targets met per queue and
priority, trends, public risk) from `records.service_kpis`.

What each figure reads:
- first response: a post's `received_at` to its reply's confirmed publication;
- time in stage, SLA breaches: `stage_reviews` (opened, closed, breached);
- decisions and their rates: `decisions`; the rules that blocked submissions: the blocking
  findings of the versions whose submission was blocked (`draft.blocked` audit events);
- volumes: posts received and replies published, per channel and UTC day.
A window (`since`, `until`) selects by when the thing happened: received, opened, decided,
blocked, published.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, and_, column, func, literal_column, select, true
from sqlalchemy.engine import Connection

from lifecycle.words import TRIAGE_ACTOR, DismissReason, PostStatus
from records import service_kpis
from records.report_sql import Window, percentiles, rounded, seconds_between, utc_day
from records.tables import DECISIONS, DRAFTS, EVENTS, POSTS, PUBLICATIONS, STAGE_REVIEWS, VERSIONS
from records.types import utcnow

TOP_RULES = 10


def first_response(connection: Connection, window: Window) -> dict[str, Any]:
    published: Any = (
        select(
            seconds_between(POSTS.c.received_at, PUBLICATIONS.c.updated_at).label("seconds"),
            literal_column("1").label("all_"),
        )
        .select_from(
            PUBLICATIONS.join(DRAFTS, DRAFTS.c.id == PUBLICATIONS.c.draft_id).join(
                POSTS, POSTS.c.id == DRAFTS.c.post_id
            )
        )
        .where(
            PUBLICATIONS.c.status == "confirmed",
            *window.of(PUBLICATIONS.c.updated_at),
            *window.on_channel(),
        )
    )
    row = connection.execute(percentiles(published, "all_")).first()
    if row is None:
        return {"count": 0, "p50_seconds": None, "p90_seconds": None}
    return {"count": row.count, "p50_seconds": rounded(row.p50), "p90_seconds": rounded(row.p90)}


def stages(connection: Connection, window: Window) -> list[dict[str, Any]]:
    """Per stage: reviews opened, time in stage of the closed ones, SLA breaches and rate."""
    scope = and_(true(), *window.of(STAGE_REVIEWS.c.opened_at), *window.on_channel())
    joined = STAGE_REVIEWS.join(DRAFTS, DRAFTS.c.id == STAGE_REVIEWS.c.draft_id).join(
        POSTS, POSTS.c.id == DRAFTS.c.post_id
    )
    opened = connection.execute(
        select(
            STAGE_REVIEWS.c.stage,
            func.count().label("opened"),
            func.count(STAGE_REVIEWS.c.breached_at).label("breaches"),
        )
        .select_from(joined)
        .where(scope)
        .group_by(STAGE_REVIEWS.c.stage)
    ).all()
    durations = (
        select(
            STAGE_REVIEWS.c.stage,
            seconds_between(STAGE_REVIEWS.c.opened_at, STAGE_REVIEWS.c.closed_at).label("seconds"),
        )
        .select_from(joined)
        .where(scope, STAGE_REVIEWS.c.closed_at.is_not(None))
    )
    timing = {r.stage: r for r in connection.execute(percentiles(durations, "stage"))}
    result = []
    for row in sorted(opened, key=lambda r: r.stage):
        times = timing.get(row.stage)
        result.append(
            {
                "stage": row.stage,
                "reviews": row.opened,
                "closed": times.count if times else 0,
                "p50_seconds": rounded(times.p50) if times else None,
                "p90_seconds": rounded(times.p90) if times else None,
                "sla_breaches": row.breaches,
                "breach_rate": round(row.breaches / row.opened, 4) if row.opened else 0.0,
            }
        )
    return result


def decisions(connection: Connection, window: Window) -> dict[str, Any]:
    rows = connection.execute(
        select(DECISIONS.c.decision, func.count().label("n"))
        .select_from(
            DECISIONS.join(DRAFTS, DRAFTS.c.id == DECISIONS.c.draft_id).join(
                POSTS, POSTS.c.id == DRAFTS.c.post_id
            )
        )
        .where(*window.of(DECISIONS.c.at), *window.on_channel())
        .group_by(DECISIONS.c.decision)
    ).all()
    counts = {r.decision: r.n for r in rows}
    total = sum(counts.values())
    kinds = ("approve", "request_changes", "reject")
    return {
        "total": total,
        "counts": {k: counts.get(k, 0) for k in kinds},
        "rates": {k: round(counts.get(k, 0) / total, 4) if total else 0.0 for k in kinds},
    }


def blocking_rules(connection: Connection, window: Window) -> list[dict[str, Any]]:
    """The rules that blocked submissions most often (a rule counted once per blocked
    submission): the blocking findings of the versions whose submission was blocked, taken
    apart by the database's own JSON array function (`json_each` on SQLite,
    `json_array_elements` on PostgreSQL)."""
    explode = func.json_each if connection.dialect.name == "sqlite" else func.json_array_elements
    finding = explode(VERSIONS.c.findings).table_valued(column("value", JSON)).alias("finding")
    rule = finding.c.value["rule_id"].as_string()
    blocked = func.count(func.distinct(EVENTS.c.seq))
    rows = connection.execute(
        select(rule.label("rule_id"), blocked.label("blocked"))
        .select_from(
            EVENTS.join(
                VERSIONS,
                and_(
                    VERSIONS.c.draft_id == EVENTS.c.draft_id,
                    VERSIONS.c.version == EVENTS.c.version,
                ),
            )
            .join(DRAFTS, DRAFTS.c.id == EVENTS.c.draft_id)
            .join(POSTS, POSTS.c.id == DRAFTS.c.post_id)
            .join(finding, true())
        )
        .where(
            EVENTS.c.action == "draft.blocked",
            finding.c.value["severity"].as_string() == "block",
            *window.of(EVENTS.c.at),
            *window.on_channel(),
        )
        .group_by(rule)
        .order_by(blocked.desc(), rule)
        .limit(TOP_RULES)
    )
    return [{"rule_id": r.rule_id, "blocked": r.blocked} for r in rows]


def volumes(connection: Connection, window: Window) -> list[dict[str, Any]]:
    """Posts received and replies published per channel and UTC day."""
    received = connection.execute(
        select(POSTS.c.channel, utc_day(POSTS.c.received_at).label("day"), func.count().label("n"))
        .where(*window.of(POSTS.c.received_at), *window.on_channel())
        .group_by(POSTS.c.channel, literal_column("day"))
    ).all()
    published = connection.execute(
        select(
            PUBLICATIONS.c.channel,
            utc_day(PUBLICATIONS.c.updated_at).label("day"),
            func.count().label("n"),
        )
        .select_from(
            PUBLICATIONS.join(DRAFTS, DRAFTS.c.id == PUBLICATIONS.c.draft_id).join(
                POSTS, POSTS.c.id == DRAFTS.c.post_id
            )
        )
        .where(
            PUBLICATIONS.c.status == "confirmed",
            *window.of(PUBLICATIONS.c.updated_at),
            *window.on_channel(),
        )
        .group_by(PUBLICATIONS.c.channel, literal_column("day"))
    ).all()
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, rows in (("received", received), ("published", published)):
        for row in rows:
            key = (str(row.channel), str(row.day))
            entry = table.setdefault(
                key, {"channel": key[0], "day": key[1], "received": 0, "published": 0}
            )
            entry[kind] = row.n
    return [table[k] for k in sorted(table, key=lambda k: (k[1], k[0]))]


def dismissals(connection: Connection, window: Window) -> dict[str, Any]:
    """Posts dismissed in the window (and not restored since), by reason, and how many of
    them triage dismissed as they arrived."""
    rows = connection.execute(
        select(POSTS.c.dismissed_reason, POSTS.c.dismissed_by == TRIAGE_ACTOR, func.count())
        .where(
            POSTS.c.status == PostStatus.dismissed.value,
            *window.of(POSTS.c.dismissed_at), *window.on_channel(),
        )
        .group_by(POSTS.c.dismissed_reason, POSTS.c.dismissed_by)
    ).all()  # fmt: skip
    by_reason = {reason.value: 0 for reason in DismissReason}
    for reason, _by_triage, n in rows:
        by_reason[reason] = by_reason.get(reason, 0) + n
    return {
        "total": sum(n for *_, n in rows),
        "by_reason": by_reason,
        "by_triage": sum(n for _, by_triage, n in rows if by_triage),
    }


def kpis(connection: Connection, window: Window) -> dict[str, Any]:
    return {
        "since": window.since,
        "until": window.until,
        "channel": window.channel,
        "first_response": first_response(connection, window),
        "stages": stages(connection, window),
        "decisions": decisions(connection, window),
        "top_blocking_rules": blocking_rules(connection, window),
        "volumes": volumes(connection, window),
        "dismissals": dismissals(connection, window),
        **service_kpis.service(connection, window, utcnow()),
    }


def csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The report flattened to `section, key, metric, value` rows for a spreadsheet."""
    rows: list[list[Any]] = [["section", "key", "metric", "value"]]
    for metric, value in report["first_response"].items():
        rows.append(["first_response", "all", metric, value])
    for stage in report["stages"]:
        for metric, value in stage.items():
            if metric != "stage":
                rows.append(["stage", stage["stage"], metric, value])
    for metric in ("counts", "rates"):
        for decision, value in report["decisions"][metric].items():
            rows.append(["decisions", decision, metric.rstrip("s"), value])
    for rule in report["top_blocking_rules"]:
        rows.append(["blocking_rule", rule["rule_id"], "blocked", rule["blocked"]])
    for entry in report["volumes"]:
        key = f"{entry['day']} {entry['channel']}"
        rows.append(["volume", key, "received", entry["received"]])
        rows.append(["volume", key, "published", entry["published"]])
    for reason, n in report["dismissals"]["by_reason"].items():
        rows.append(["dismissals", reason, "dismissed", n])
    rows.append(["dismissals", "all", "by_triage", report["dismissals"]["by_triage"]])
    targets = report["targets"]
    for metric in ("received", "needing_reply", "answered", "response_rate", "within_target"):
        rows.append(["response", "all", metric, targets[metric]])
    for cell in targets["per_queue"]:
        key = f"{cell['queue']} {cell['priority']}"
        for metric, value in cell.items():
            if metric not in ("queue", "priority"):
                rows.append(["target", key, metric, value])
    for day in report["trends"]:
        rows.append(["trend", day["day"], "sentiment", day.get("sentiment")])
        for topic, n in sorted(day["topics"].items()):
            rows.append(["trend", day["day"], f"topic {topic}", n])
    for metric, value in report["public_risk"].items():
        rows.append(["public_risk", "all", metric, value])
    return rows

"""The activity that records a durable timer going off: a stage's reminder, its escalation
(the stage is overdue: marked, and the supervisors and its backup role told) or the post's
deadline (the draft expires), unless the draft moved on meanwhile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import activity

from lifecycle.words import SYSTEM_ACTOR, SYSTEM_ROLE, AlarmKind, DraftStatus, Role
from policies.sla import ServiceLevels
from records import audit, notifications, reviews, transitions
from records.db import Database
from records.types import utcnow
from workflows.contracts import APPLIED, ActivityName, Alarm, Recorded
from workflows.recording import begin


class AlarmActivities:
    def __init__(
        self, database: Database, levels: ServiceLevels | None = None, outbound: Sequence[str] = ()
    ) -> None:
        self.database = database
        self.levels = levels or ServiceLevels()
        self.outbound = tuple(outbound)

    @activity.defn(name=ActivityName.record_alarm)
    def record_alarm(self, alarm: Alarm) -> Recorded:
        with self.database.write() as connection:
            now = utcnow()
            values: dict[str, Any] = {}
            if alarm.kind == AlarmKind.escalate:
                values = {"sla_breached": True}
            elif alarm.kind == AlarmKind.expire:
                values = {
                    "status": DraftStatus.expired,
                    "stage": None,
                    **transitions.NO_REVIEW_TIME,
                }
                # The post before the draft, as every writer of both takes them.
                transitions.lock_post_of(connection, alarm.draft_id)
            found = begin(connection, alarm, **values)
            if found is not None:
                return found
            row = transitions.version_row(
                connection, transitions.CONTENT, alarm.draft_id, alarm.version
            )
            common = {
                "event_key": alarm.event_key,
                "draft_id": alarm.draft_id,
                "post_id": row.post_id,
                "outbound": self.outbound,
            }
            draft, stage = f"Draft {alarm.draft_id}", alarm.stage
            if alarm.kind == AlarmKind.remind:
                reviews.mark_stage(
                    connection, alarm.draft_id, alarm.review_round, stage, now, breached=False
                )
                action = "draft.sla_reminder"
                deliveries = notifications.notify(
                    connection,
                    event="reminder",
                    recipients=reviews.reviewers(
                        connection, alarm.draft_id, row.author, stage or ""
                    ),
                    message=f"Reminder: {draft.lower()} still waits for its {stage} review.",
                    **common,
                )
            elif alarm.kind == AlarmKind.escalate:
                reviews.mark_stage(
                    connection, alarm.draft_id, alarm.review_round, stage, now, breached=True
                )
                action = "draft.sla_breached"
                backup = self.levels.backup_roles.get(stage or "")
                told = notifications.holders(connection, Role.supervisor, *filter(None, [backup]))
                deliveries = notifications.notify(
                    connection,
                    event="escalated",
                    recipients=[p for p in told if p != row.author],
                    message=f"{draft} is past its {stage} review time"
                    + (f"; {backup} may now decide it." if backup else "."),
                    **common,
                )
            else:
                reviews.close_stage(connection, alarm.draft_id, DraftStatus.expired)
                transitions.expire_post(connection, row.post_id, now)
                action = "draft.expired"
                deliveries = notifications.notify(
                    connection,
                    event="expired",
                    recipients=[row.author, *notifications.holders(connection, Role.supervisor)],
                    message=f"{draft} expired: the post's reply deadline passed.",
                    **common,
                )
            audit.append(
                connection,
                audit.NewEvent(
                    actor=SYSTEM_ACTOR,
                    role=SYSTEM_ROLE,
                    action=action,
                    payload={"stage": stage} if stage else {},
                    draft_id=alarm.draft_id,
                    version=alarm.version,
                    content_sha256=row.content_sha256,
                    event_key=alarm.event_key,
                ),
            )
        return Recorded(status=APPLIED, deliveries=deliveries)

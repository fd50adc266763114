"""Review SLAs and post deadlines: how long each stage may take and when a post's replies
expire, by the post's priority. Pure arithmetic; the settings give the figures
(`COUNTERSIGN_SLA_*`, `COUNTERSIGN_POST_DEADLINE_MINUTES`), the workflow keeps the time.

A stage's clock starts when the stage opens. At `reminder_fraction` of its time the
stage's reviewers are reminded; at its due time the draft is escalated to the
supervisors, marked `sla_breached` for that stage, and stays in review; if the stage has a
backup role, holders of that role may decide it from then on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol


class SlaSettings(Protocol):
    """The settings this reads (`records.settings.Settings`)."""

    @property
    def sla_minutes(self) -> Mapping[str, float]: ...
    @property
    def sla_priority_factors(self) -> Mapping[str, float]: ...
    @property
    def sla_reminder_fraction(self) -> float: ...
    @property
    def sla_backup_roles(self) -> Mapping[str, str]: ...
    @property
    def post_deadline_minutes(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class ServiceLevels:
    stage_minutes: Mapping[str, float] = field(default_factory=dict)
    priority_factors: Mapping[str, float] = field(default_factory=dict)
    reminder_fraction: float = 0.5
    backup_roles: Mapping[str, str] = field(default_factory=dict)
    post_deadline_minutes: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: SlaSettings) -> ServiceLevels:
        return cls(
            stage_minutes=dict(settings.sla_minutes),
            priority_factors=dict(settings.sla_priority_factors),
            reminder_fraction=settings.sla_reminder_fraction,
            backup_roles=dict(settings.sla_backup_roles),
            post_deadline_minutes=dict(settings.post_deadline_minutes),
        )

    def stage_seconds(self, route: list[str], priority: str) -> dict[str, float]:
        """Each stage's time on `route` for a post of `priority`; stages with no SLA are
        left out (no timer)."""
        factor = self.priority_factors.get(priority, 1.0)
        return {
            stage: self.stage_minutes[stage] * 60 * factor
            for stage in route
            if self.stage_minutes.get(stage, 0) > 0
        }

    def post_deadline(self, received_at: datetime, priority: str) -> datetime | None:
        """When replies to a post received at `received_at` expire (None: never)."""
        minutes = self.post_deadline_minutes.get(priority, 0)
        return received_at + timedelta(minutes=minutes) if minutes > 0 else None

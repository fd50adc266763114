"""Activities: the only workflow-side code that touches the database or the outside world.

Built as methods of a class holding what they need (the database), as in temporalio's
samples, so the worker constructs them once.
"""

from __future__ import annotations

from temporalio import activity

from records import audit
from records.db import Database
from records.errors import NotFound
from records.models import Draft
from records.types import utcnow
from workflows.contracts import Transition, TransitionResult


class RecordActivities:
    def __init__(self, database: Database) -> None:
        self.database = database

    @activity.defn(name="record_transition")
    def record_transition(self, transition: Transition) -> TransitionResult:
        """Apply a draft's new status and stage and append its audit event, in one transaction."""
        with self.database.write_session() as session:
            existing = audit.recorded(session, transition.event_key)
            if existing is not None:
                return TransitionResult(seq=existing.seq, applied=False)
            draft = session.get(Draft, transition.draft_id)
            if draft is None:
                raise NotFound(f"no draft with id {transition.draft_id}")
            now = utcnow()
            if draft.stage != transition.stage:
                draft.stage_entered_at = now if transition.stage else None
            draft.status, draft.stage, draft.updated_at = transition.status, transition.stage, now
            session.add(draft)
            event = audit.append(
                session,
                audit.NewEvent(
                    actor=transition.actor,
                    role=transition.role,
                    action=transition.action,
                    payload=transition.payload,
                    draft_id=transition.draft_id,
                    version=transition.version,
                    content_sha256=transition.content_sha256,
                    event_key=transition.event_key,
                ),
            )
            return TransitionResult(seq=event.seq, applied=True)

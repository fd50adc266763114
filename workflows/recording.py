"""What every activity that records a transition of a draft shares: opening the
transition with a compare-and-set, and the answer when it is not written now.

An activity's write compares the draft's transition count with the one its workflow
expects (`records.transitions.update_draft`). The two differ only when a workflow task
that ran a local activity was lost after the activity's write committed; the workflow then
replays without knowing of that write, and adopts the `standing` this answers with.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Connection
from temporalio.exceptions import ApplicationError

from lifecycle.words import ErrorKind
from records import audit, notifications, transitions
from workflows.contracts import RECORDED, STALE, Recorded, Recording, Standing


def begin(connection: Connection, recording: Recording, **values: object) -> Recorded | None:
    """Open a transition: None when the caller goes on to write it, else the answer.

    The draft row changes first, with a compare-and-set on its transition count, so a write
    based on an out-of-date view of the draft changes nothing (`stale`), and neither does a
    retry of one an earlier attempt recorded (`recorded`). Both answers carry the database's
    standing for the workflow to adopt.
    """
    expected = recording.expected
    if expected is not None and transitions.update_draft(
        connection, recording.draft_id, expected=expected, **values
    ):
        return None  # the common case: one statement, and the event key cannot be taken
    return not_now(connection, recording)


def not_now(connection: Connection, recording: Recording) -> Recorded:
    """Why a transition's compare-and-set failed: every recorded transition moved the count
    on, so either this one was recorded by an earlier attempt, or another one was."""
    found = audit.recorded(connection, recording.event_key) is not None
    return Recorded(
        status=RECORDED if found else STALE,
        standing=Standing(**transitions.standing(connection, recording.draft_id)),
        deliveries=notifications.pending_deliveries(connection, recording.event_key)
        if found
        else [],
    )


def due(now: datetime, seconds: float | None) -> datetime | None:
    """When a stage of `seconds` opened `now` is due (None: it has no review time)."""
    return now + timedelta(seconds=seconds) if seconds else None


def not_found(message: str) -> ApplicationError:
    """A missing draft, version or delivery: retrying will not make it appear."""
    return ApplicationError(message, type=ErrorKind.not_found, non_retryable=True)

"""Dismissing a post that needs no reply, with a reason, and restoring it (issue 23).

An agent dismisses a post that is theirs or no one's, a supervisor any post; a post with an
open draft is not dismissed (the draft is withdrawn first), nor one answered or expired.
Triage dismisses what the rule set says to (`records.ingest`: spam) as the post arrives.
Only a supervisor restores a dismissed post: it is new again (or its assignee's). A
customer's erasure dismisses their posts still waiting, for a reason of its own that no
person gives and no restore undoes. Each is an audit event. The post's row is locked for
the check, as a new draft locks it (`records.drafts`): a dismissal and a draft at the same
moment cannot both win.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from lifecycle.words import ERASURE_ACTOR, DismissReason, PostStatus, Role
from records import audit, drafts
from records.errors import Conflict, Forbidden, NotFound
from records.tables import POSTS
from records.types import utcnow


def dismiss(
    connection: Connection,
    post_id: int,
    reason: DismissReason,
    note: str | None,
    *,
    actor: str,
    supervising: bool,
) -> None:
    post = _locked(connection, post_id)
    if post.status == PostStatus.dismissed:
        raise Conflict(f"post {post_id} is already dismissed ({post.dismissed_reason})")
    if post.status in (PostStatus.answered, PostStatus.expired):
        raise Conflict(f"post {post_id} is {post.status}; there is nothing to dismiss")
    if not supervising and post.assignee not in (None, actor):
        raise Forbidden(
            f"post {post_id} is assigned to {post.assignee}; a supervisor may dismiss it"
        )
    draft = connection.execute(drafts.OPEN_DRAFT, {"id": post_id}).first()
    if draft is not None:
        raise Conflict(
            f"post {post_id} has an open draft (draft {draft.id} by {draft.author}); "
            "withdraw it first"
        )
    now = utcnow()
    connection.execute(
        update(POSTS).where(POSTS.c.id == post_id).values(
            status=PostStatus.dismissed.value, dismissed_reason=reason.value,
            dismissed_note=note, dismissed_by=actor, dismissed_at=now, updated_at=now,
        )
    )  # fmt: skip
    role = (Role.supervisor if supervising else Role.agent).value
    audit.append(connection, dismissed_event(post_id, reason, note, actor=actor, role=role))


def restore(connection: Connection, post_id: int, *, actor: str) -> None:
    """A supervisor's: the dismissed post waits for a reply again."""
    post = _locked(connection, post_id)
    if post.status != PostStatus.dismissed:
        raise Conflict(f"post {post_id} is {post.status}, not dismissed")
    if post.dismissed_reason == DismissReason.erased:
        raise Conflict(f"post {post_id} was erased; it takes no reply")
    status = PostStatus.assigned if post.assignee else PostStatus.new
    connection.execute(
        update(POSTS).where(POSTS.c.id == post_id).values(
            status=status.value, dismissed_reason=None, dismissed_note=None,
            dismissed_by=None, dismissed_at=None, updated_at=utcnow(),
        )
    )  # fmt: skip
    audit.append(
        connection,
        audit.NewEvent(
            actor=actor, role=Role.supervisor.value, action="post.restored",
            payload={"post_id": post_id, "was": post.dismissed_reason, "status": status.value},
        ),
    )  # fmt: skip


def dismiss_erased(
    connection: Connection, post_ids: list[int], *, actor: str, role: str
) -> list[audit.NewEvent]:
    """An erased author's posts still waiting for a reply need none now (nobody is left to
    answer): dismissed for the erasure, unless a draft is still open on one (a reply the
    publisher has claimed); their events, for the erasure to append with its own."""
    return _dismissed_for_erasure(connection, POSTS.c.id.in_(post_ids), actor=actor, role=role)


def dismiss_if_erased(connection: Connection, post_id: int, *, role: str) -> list[audit.NewEvent]:
    """The post, if it was erased while a reply to it was left open (one the publisher had
    claimed when its author was erased, `records.erasure`; or the purge's, at the end of
    its retention), once no draft is open on it: nobody can answer it, and it is dismissed
    for the erasure then, by `ERASURE_ACTOR`. Called where a draft closes without a reply (a
    withdrawal), the post's row locked first; its event, for the caller to append."""
    where = (POSTS.c.id == post_id) & POSTS.c.erased.is_(True)
    return _dismissed_for_erasure(connection, where, actor=ERASURE_ACTOR, role=role)


def _dismissed_for_erasure(
    connection: Connection, where: Any, *, actor: str, role: str
) -> list[audit.NewEvent]:
    now, reason = utcnow(), DismissReason.erased.value
    dismissed = connection.execute(
        update(POSTS)
        .where(where, POSTS.c.status.in_(_WAITING), ~drafts.HAS_OPEN_DRAFT)
        .values(status=PostStatus.dismissed.value, dismissed_reason=reason,
                dismissed_note=None, dismissed_by=actor, dismissed_at=now, updated_at=now)
        .returning(POSTS.c.id)
    ).scalars()  # fmt: skip
    return [
        dismissed_event(post_id, DismissReason.erased, None, actor=actor, role=role)
        for post_id in sorted(dismissed)
    ]


def dismissed_event(
    post_id: int, reason: DismissReason, note: str | None, *, actor: str, role: str
) -> audit.NewEvent:
    """The audit event of a post dismissed: by a person, an erasure, or the triage at
    ingest (`records.ingest`)."""
    return audit.NewEvent(
        actor=actor, role=role, action="post.dismissed",
        payload={"post_id": post_id, "reason": reason.value, "note": note},
    )  # fmt: skip


_WAITING = (PostStatus.new.value, PostStatus.assigned.value)


def _locked(connection: Connection, post_id: int) -> Any:
    post = connection.execute(
        select(POSTS.c.status, POSTS.c.assignee, POSTS.c.dismissed_reason)
        .where(POSTS.c.id == post_id)
        .with_for_update()
    ).first()
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    return post

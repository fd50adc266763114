"""Posting a reply, at most once, and only what the record shows approved.

The publication row (UNIQUE draft and version) is written and marked sent before the
channel is called; a later attempt whose outcome is unknown looks the reply up on the
channel before posting again. Before any call, in the transaction that claims the
publication, the record itself is checked again (`lifecycle.rulebook.unapproved`): every
stage of the version's route approved this version's exact text, by people who are not its
author and fill one stage each, and the post has no other reply out or on its way. The
workflow's word is not enough: whoever reaches Temporal could have told it anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection
from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.answers import AnswerRefused
from connectors.base import Publisher, PublishRefused, RateLimited, Reply, publisher_class
from connectors.http import RemoteFailure
from countersign import tracing
from lifecycle.rulebook import Person, unapproved
from lifecycle.words import PUBLISHABLE, DraftStatus, Role
from records import audit, channels, notifications, reviews, transitions, users
from records.db import Database
from records.drafts import content_sha256
from records.fields import PublicationStatus
from records.tables import PUBLICATIONS
from records.types import utcnow
from workflows import heartbeats
from workflows.contracts import APPLIED, ActivityName, PublishJob, Recorded
from workflows.recording import not_now

log = logging.getLogger("countersign.publish")

# The draft statuses a publication may start from (a scheduled one when its time comes).
_MAY_LEAVE = PUBLISHABLE | {DraftStatus.scheduled}
_MAY_BE_OUT = (
    "; an earlier attempt's request had left, so the reply may be on the platform: "
    "look there before anything else"
)


def _gone(job: PublishJob, row: Any) -> str | None:
    """Why the text about to leave is not the approved text, or None if it is: what is
    approved is a hash, and what leaves must be the text it was taken of (an erasure
    since, or someone with write access to the database, may have changed it)."""
    erased = _erased(job, row, post_erased=row.post_erased, version_erased=row.erased)
    if erased is None and content_sha256(row.body) != row.content_sha256:
        return _said(f"version {job.version}'s text is not the text that was approved", row)
    return erased


def _erased(job: PublishJob, row: Any, *, post_erased: bool, version_erased: bool) -> str | None:
    """Why the reply may not leave since an erasure, or None."""
    if post_erased:
        reason = f"post {row.post_id} was erased (its retention period ended, or its author asked)"
    elif version_erased:
        reason = f"version {job.version}'s text was erased since its approval"
    else:
        return None
    return _said(reason, row)


def _said(reason: str, row: Any) -> str:
    """A refusal's reason, and what it means: a request that left before may have been
    taken, which the record must not hide."""
    return reason + (_MAY_BE_OUT if row.attempts else "; nothing is posted")


# How long a publish keeps trying a platform that does not take the reply (429s, 5xx,
# timeouts) before it is `publish_failed`. The draft is held meanwhile (a withdrawal
# waits for the outcome), so not for ever (THREATS: no input stalls the service).
GIVE_UP_AFTER = timedelta(hours=1)


def _tried_too_long() -> bool:
    """Whether this activity was first scheduled `GIVE_UP_AFTER` ago or more (its
    attempts' retries included)."""
    if not activity.in_activity():
        return False
    return utcnow() - activity.info().scheduled_time >= GIVE_UP_AFTER


def _failure(failure: Exception) -> str:
    """What failed, in our own words: a platform's status and short reason where a
    connector gave one, else the kind of failure (a library's message may quote a URL)."""
    if isinstance(failure, (RemoteFailure, AnswerRefused)):
        return str(failure)
    return type(failure).__name__


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


class PublishActivities:
    """Posting a reply at most once (see the module's docstring)."""

    def __init__(
        self,
        database: Database,
        publishers: dict[str, Publisher],
        outbound: Sequence[str] = (),
    ) -> None:
        self.database = database
        self.publishers = publishers
        self.outbound = tuple(outbound)

    def _publisher(self, channel: str, account_id: int | None) -> Publisher:
        """The post's channel account's publisher (its channel's registered class, built
        with the account); one given to the worker for the channel; else the local outbox."""
        if account_id is not None:
            with self.database.engine.connect() as connection:
                account = channels.by_id(connection, account_id)
            found = publisher_class(account.channel)
            if found is not None:
                publisher: Publisher = found(account)
                return publisher
        return self.publishers.get(channel) or self.publishers["outbox"]

    @activity.defn(name=ActivityName.publish_reply)
    def publish_reply(self, job: PublishJob) -> Recorded:
        """Re-check the record and claim the publication (`pending`), mark it `sent` as the
        request leaves, then `confirmed` with the platform's id, or `failed` with its reason.
        `attempts` counts the requests that left: when one did and its outcome is unknown,
        the reply is looked for on the platform before it is posted again."""
        key = f"draft-{job.draft_id}-v{job.version}"
        which = {"b_draft_id": job.draft_id, "b_version": job.version}
        with self.database.write() as connection:
            row = transitions.version_row(
                connection, transitions.PUBLISHING, job.draft_id, job.version
            )
            if row.transitions != job.expected:
                # Published by an earlier attempt, or the draft moved on (say, a withdrawal
                # the workflow has not heard of yet): nothing is posted.
                return not_now(connection, job)
            refusal = self._recheck(connection, job, row)
            if refusal is not None:
                return self._failed(
                    connection, job, row, refusal, action="draft.publish_refused", claim=True
                )
            requested_at = row.requested_at
            if row.attempts is None:
                now = requested_at = utcnow()
                connection.execute(
                    _CLAIM,
                    {
                        "draft_id": job.draft_id,
                        "version": job.version,
                        "channel": str(row.channel),
                        "status": PublicationStatus.pending,
                        "requested_by": job.actor,
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
        reply = Reply(
            key=key,
            channel=str(row.channel),
            in_reply_to=row.external_id,
            body=row.body,
            requested_at=requested_at,
        )
        publisher = self._publisher(reply.channel, row.account_id)
        with self.database.write() as connection:
            # An erasure committed since the claim (which left a claimed draft open) stops
            # it here; one that comes now waits until the request is marked sent (the lock).
            flags = transitions.version_row(
                connection, transitions.ERASED_SINCE, job.draft_id, job.version
            )
            erased = _erased(job, row, post_erased=flags.post_erased, version_erased=flags.erased)
            if erased is not None:
                return self._failed(connection, job, row, erased, action="draft.publish_refused")
            connection.execute(_SENDING, {**which, "now": utcnow()})
        try:
            with (
                heartbeats.during(),
                tracing.span(
                    f"publish {reply.channel}",
                    **{"countersign.draft_id": job.draft_id, "countersign.channel": reply.channel},
                ),
            ):
                posted = (publisher.lookup(reply) if row.attempts else None) or publisher.post(
                    reply
                )
        except PublishRefused as refused:
            log.warning("%s refused the reply", reply.channel)  # its reason is in the record
            with self.database.write() as connection:
                return self._failed(
                    connection, job, row, str(refused), action="draft.publish_failed"
                )
        except RateLimited as limited:
            if _tried_too_long():  # each answer said it was not taken
                return self._gave_up(job, row, str(limited), "; nothing is posted")
            raise ApplicationError(
                f"{limited}; trying again in {limited.retry_after}",
                type="RateLimited",
                next_retry_delay=limited.retry_after,
            ) from limited
        except Exception as failure:  # the outcome is not known: retried, after a look-up
            if _tried_too_long():
                return self._gave_up(job, row, _failure(failure), _MAY_BE_OUT)
            raise
        with self.database.write() as connection:
            now = utcnow()
            connection.execute(
                _CONFIRM,
                {**which, "now": now, "external_id": posted.external_id, "url": posted.url},
            )
            # The post before the draft, as every writer of both takes them (`records.erasure`).
            transitions.answer_post(connection, row.post_id, now)
            # No compare here: the check above claimed the draft for this publication (the
            # workflow holds its lock until this activity ends), and the post is out.
            transitions.update_draft(
                connection, job.draft_id, status=DraftStatus.published, stage=None
            )
            audit.append(
                connection,
                audit.NewEvent(
                    actor=job.actor,
                    role=Role.publisher,
                    action="draft.published",
                    payload={"channel": reply.channel, "external_id": posted.external_id},
                    draft_id=job.draft_id,
                    version=job.version,
                    content_sha256=row.content_sha256,
                    event_key=job.event_key,
                ),
            )
            deliveries = notifications.notify(
                connection,
                event="published",
                recipients=[row.author],
                message=f"Your reply (draft {job.draft_id}) is posted on {reply.channel}.",
                event_key=job.event_key,
                draft_id=job.draft_id,
                post_id=row.post_id,
                outbound=self.outbound,
            )
        log.info("reply published on %s", reply.channel)  # the draft and actor: log_context
        return Recorded(status=APPLIED, deliveries=deliveries)

    def _gave_up(self, job: PublishJob, row: Any, last: str, outcome: str) -> Recorded:
        """`publish_failed` after `GIVE_UP_AFTER` of trying, saying why and whether the
        reply may be out: a publisher retries it (after a look-up) or abandons it."""
        reason = f"not taken in {_span(GIVE_UP_AFTER)} of trying (last: {last}){outcome}"
        log.warning("%s did not take the reply in time", row.channel)
        with self.database.write() as connection:
            return self._failed(connection, job, row, reason, action="draft.publish_failed")

    def _recheck(self, connection: Connection, job: PublishJob, row: Any) -> str | None:
        """Why the record does not let this version leave, or None if it does."""
        if row.status not in _MAY_LEAVE:
            return f"the record shows the draft {row.status}, not approved"
        gone = _gone(job, row)
        if gone is not None:
            return gone
        account = users.account(connection, job.actor)
        missing = unapproved(
            author=row.author,
            publisher=job.actor,
            publisher_now=None
            if account is None or account.disabled
            else Person.of(job.actor, account.roles),
            route=list(row.route),
            version=job.version,
            content_sha256=row.content_sha256,
            review_round=row.review_round,
            decisions=reviews.decisions(connection, job.draft_id),
        )
        if missing is not None:
            return missing
        if transitions.other_replies(connection, row.post_id, job.draft_id) >= row.replies_allowed:
            return f"post {row.post_id} already has its public reply"
        return None

    def _failed(
        self,
        connection: Connection,
        job: PublishJob,
        row: Any,
        reason: str,
        *,
        action: str,
        claim: bool = False,
    ) -> Recorded:
        """The reply did not leave: refused by the record's re-check (`claim`: no request
        went out, so the publication is written failed now) or by the channel. The draft is
        `publish_failed` with the reason, and its author and the publishers are told."""
        now = utcnow()
        if claim and row.attempts is None:
            connection.execute(
                _CLAIM,
                {
                    "draft_id": job.draft_id,
                    "version": job.version,
                    "channel": str(row.channel),
                    "status": PublicationStatus.failed,
                    "requested_by": job.actor,
                    "attempts": 0,
                    "error": reason,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        else:
            connection.execute(
                _FAILED,
                {"b_draft_id": job.draft_id, "b_version": job.version, "now": now, "error": reason},
            )
        transitions.update_draft(
            connection, job.draft_id, status=DraftStatus.publish_failed, stage=None
        )
        audit.append(
            connection,
            audit.NewEvent(
                actor=job.actor,
                role=Role.publisher,
                action=action,
                payload={"channel": str(row.channel), "reason": reason},
                draft_id=job.draft_id,
                version=job.version,
                content_sha256=row.content_sha256,
                event_key=job.event_key,
            ),
        )
        publishers = notifications.holders(connection, Role.publisher)
        deliveries = notifications.notify(
            connection,
            event="publish_failed",
            recipients=[row.author, *(p for p in publishers if p != row.author)],
            message=f"Draft {job.draft_id} could not be posted on {row.channel}: {reason}",
            event_key=job.event_key,
            draft_id=job.draft_id,
            post_id=row.post_id,
            outbound=self.outbound,
        )
        return Recorded(status=APPLIED, deliveries=deliveries, failure=reason)


# The publication's statements, built once: claim, send, confirm or fail, answer the post.
_PUBLICATION = (
    PUBLICATIONS.c.draft_id == bindparam("b_draft_id"),
    PUBLICATIONS.c.version == bindparam("b_version"),
)
_CLAIM = PUBLICATIONS.insert()
_SENDING = (
    update(PUBLICATIONS)
    .where(*_PUBLICATION)
    .values(status="sent", attempts=PUBLICATIONS.c.attempts + 1, updated_at=bindparam("now"))
)
_FAILED = (
    update(PUBLICATIONS)
    .where(*_PUBLICATION)
    .values(status="failed", error=bindparam("error"), updated_at=bindparam("now"))
)
_CONFIRM = (
    update(PUBLICATIONS)
    .where(*_PUBLICATION)
    .values(
        status="confirmed",
        external_id=bindparam("external_id"),
        external_url=bindparam("url"),
        updated_at=bindparam("now"),
    )
)

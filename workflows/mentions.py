"""The activity that brings a Mastodon account's mentions in as posts (`workflows.polling`
runs it on a durable timer)."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from temporalio import activity

from connectors import mastodon
from records import channels, posts
from records.db import Database
from records.models import PostCreate
from workflows.contracts import ActivityName, Polled, PollJob

log = logging.getLogger("countersign.activities")


class PollActivities:
    """Bringing a Mastodon account's mentions in as posts (`workflows.polling`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @activity.defn(name=ActivityName.poll_mentions)
    def poll_mentions(self, job: PollJob) -> Polled:
        """Store the mentions after `since_id`, a page at a time, and say how far it got.
        Retried from the same `since_id`, it finds the posts it stored already known."""
        with self.database.engine.connect() as connection:
            account = channels.by_id(connection, job.account_id)
        since, stored = job.since_id, 0
        for found, last in mastodon.mentions(account, job.since_id):
            with self.database.write_session() as session:
                for post in found:
                    try:
                        data = PostCreate.model_validate(vars(post))
                    except ValidationError as exc:
                        log.warning(
                            "mention %s is not a post we can take: %s", post.external_id, exc
                        )
                        continue
                    _, created = posts.ingest_from(session, data, account, via="poller")
                    stored += created
            since = last
        return Polled(since_id=since, stored=stored)

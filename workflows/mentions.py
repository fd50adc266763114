"""The activity that brings a channel account's posts in (`workflows.polling` runs it on
a durable timer): Mastodon's mentions, X's mentions and brand-term search. Each connector
pages from an opaque position of its own and says, with each batch, the position to keep
once the batch is stored."""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import ValidationError
from temporalio import activity

from connectors.base import RateLimited
from connectors.inbound import InboundPost
from connectors.pollers import READERS
from policies.versions import RuleBook
from records import channels, ingest
from records.db import Database
from records.post_models import PostCreate
from workflows.background_contracts import Polled, PollJob
from workflows.contracts import ActivityName

log = logging.getLogger("countersign.activities")
# A round stops reading after this long and says how far it got (well inside the
# activity's 30 s timeout, after which its progress would be lost with it).
ROUND_SECONDS = 15.0


class PollActivities:
    """Bringing a channel account's posts in (`workflows.polling`)."""

    def __init__(
        self, database: Database, rules: RuleBook, round_seconds: float = ROUND_SECONDS
    ) -> None:
        self.database = database
        self.rules = rules  # the rule sets: the one in force triages what comes in
        self.round_seconds = round_seconds

    @activity.defn(name=ActivityName.poll_mentions)
    def poll_mentions(self, job: PollJob) -> Polled:
        """Store the posts after the position `since_id`, a batch at a time, and say how
        far it got. Retried from the same position, it finds the posts it stored already
        known. When the platform says to wait, the round ends there: what was stored
        counts, and the next round waits as long as asked."""
        with self.database.engine.connect() as connection:
            account = channels.by_id(connection, job.account_id)
        since, stored, started = job.since_id, 0, time.monotonic()
        try:
            for found, last in READERS[account.channel](account, job.since_id):
                stored += self._store(account, found)
                since = last
                if time.monotonic() - started > self.round_seconds:
                    break  # the rest next round, from here: a round never outlives its timeout
        except RateLimited as limited:
            log.info("%s: %s; the next round waits %s", account.name, limited, limited.retry_after)
            wait = limited.retry_after.total_seconds()
            return Polled(since_id=since, stored=stored, wait_seconds=wait)
        return Polled(since_id=since, stored=stored)

    def _store(self, account: Any, found: list[InboundPost]) -> int:
        """One batch in one transaction: the new posts stored (a known one is skipped)."""
        valid = []
        for post in found:
            try:
                valid.append(PostCreate.model_validate(vars(post)))
            except ValidationError as exc:
                log.warning("post %s is not one we can take: %s", post.external_id, exc)
        with self.database.write_session() as session:
            stored = ingest.store_from(session, valid, account, via="poller", rules=self.rules)
        return sum(s.created for s in stored)

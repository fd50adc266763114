"""`MastodonPoller`: one long-running workflow per Mastodon channel account
(`poll-<account id>`) that brings its mentions in as posts.

Each round runs `poll_mentions` from the newest mention stored so far, then sleeps on a
durable timer. The position lives in the workflow: it moves on only when a round's posts
are stored, so a worker or server restart resumes where it was, losing nothing; a round
retried after it stored some posts finds them already known (a post is its channel and
external id), duplicating nothing. The run continues as new every so many rounds to keep
its history short.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.approval import ACTIVITY_RETRY, ACTIVITY_TIMEOUT
    from workflows.contracts import Polled, PollJob, PollStart
    from workflows.mentions import PollActivities

ROUNDS_PER_RUN = 500


@workflow.defn(name="MastodonPoller")
class MastodonPoller:
    @workflow.run
    async def run(self, start: PollStart) -> None:
        since = start.since_id
        for _ in range(ROUNDS_PER_RUN):
            polled: Polled = await workflow.execute_activity_method(
                PollActivities.poll_mentions,
                PollJob(account_id=start.account_id, since_id=since),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            since = polled.since_id
            await workflow.sleep(timedelta(seconds=start.interval_seconds))
        workflow.continue_as_new(
            PollStart(
                account_id=start.account_id,
                since_id=since,
                interval_seconds=start.interval_seconds,
            )
        )

"""`MastodonPoller` (its name from when it polled Mastodon only; kept so that running
pollers go on): one long-running workflow per polled channel account (`poll-<account
id>`: Mastodon, X) that brings its posts in.

Each round runs `poll_mentions` from the reader's position, then sleeps on a durable timer
(longer when the platform asked us to wait). The position lives in the workflow: it moves
on only when a round's posts are stored, so a worker or server restart resumes where it
was, losing nothing; a round retried after it stored some posts finds them already known
(a post is its channel and external id), duplicating nothing. A round that stored new
posts nudges the queues' router (the one of the poller's own deployment: its id has the
same prefix), so they are offered to agents at once. The run continues as new every so
many rounds to keep its history short.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import CancelledError

with workflow.unsafe.imports_passed_through():
    from workflows.activity_options import ACTIVITY_RETRY, ACTIVITY_TIMEOUT
    from workflows.background_contracts import (
        NUDGE,
        Polled,
        PollJob,
        PollStart,
        poller_id,
        router_workflow_id,
    )
    from workflows.mentions import PollActivities

ROUNDS_PER_RUN = 500
NUDGES_ROUTER = "poller-nudges-router"  # the patch that added the nudge


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
            # Pollers started before the nudge existed take it from their next run on (a
            # patch's answer holds for the run); the marker keeps their history replaying.
            if polled.stored and workflow.patched(NUDGES_ROUTER):
                await _nudge(_router_of(start.account_id))
            pause = max(start.interval_seconds, polled.wait_seconds)
            await workflow.sleep(timedelta(seconds=pause))
        workflow.continue_as_new(replace(start, since_id=since))


def _router_of(account_id: int) -> str:
    """The router of this poller's deployment: its workflow id is `<prefix>poll-<id>`."""
    own, suffix = workflow.info().workflow_id, poller_id(account_id)
    return router_workflow_id(own[: -len(suffix)] if own.endswith(suffix) else "")


async def _nudge(router_id: str) -> None:
    """Tell the router posts arrived. A router not running (not started yet, or stopped)
    is no reason to stop polling: its next run places and offers the posts anyway."""
    try:
        await workflow.get_external_workflow_handle(router_id).signal(NUDGE)
    except CancelledError:
        raise  # the poller itself is being cancelled: not a router's failure to swallow
    except Exception as exc:  # the failure is in the history: replays take the same branch
        workflow.logger.info("router %s not nudged: %s", router_id, exc)

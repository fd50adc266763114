"""`QueueRouter` (`queue-router`): the one long-running workflow that gives waiting posts
to agents (issue 23), started by the worker like the audit log's schedules.

Each round runs `route_queues` (the overflow of posts that waited too long, then a round
of every queue's router: `records.routing`), then waits on a durable timer until the next,
or until nudged (`nudge`: a post arrived, an agent became available). A round is safe to
run twice (a retry, a restart): a post goes to an agent only while it is still no one's,
so a restart loses nothing and doubles nothing. It continues as new every so many rounds
to keep its history short.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from records import routing
    from records.db import Database
    from workflows.activity_options import ACTIVITY_RETRY, ACTIVITY_TIMEOUT
    from workflows.background_contracts import NUDGE, RoutedRound, RouterJob, RouterStart
    from workflows.contracts import ActivityName

ROUNDS_PER_RUN = 500


class RouterActivities:
    def __init__(self, database: Database) -> None:
        self.database = database

    @activity.defn(name=ActivityName.route_queues)
    def route_queues(self, _job: RouterJob) -> RoutedRound:
        """Waiting posts in no queue placed, the overflow, then a round of each queue, each
        in a transaction of its own."""
        # Each writes several posts in id order, in its own transaction: in one, the
        # placing's posts and then the overflow's would be two orders (a deadlock with an
        # ingest marking posts, `records.ingest`).
        with self.database.write() as connection:
            routing.place_waiting(connection)
        with self.database.write() as connection:
            overflowed = len(routing.overflow(connection))
            queues = [queue.id for queue in routing.queues(connection)]
        assigned = 0
        for queue_id in queues:
            with self.database.write() as connection:
                assigned += len(routing.route(connection, queue_id))
        return RoutedRound(assigned=assigned, overflowed=overflowed)


@workflow.defn(name="QueueRouter")
class QueueRouter:
    def __init__(self) -> None:
        self.nudged = False

    @workflow.signal(name=NUDGE)
    def nudge(self) -> None:
        """Something changed (a post arrived, an agent is available): a round now."""
        self.nudged = True

    @workflow.run
    async def run(self, start: RouterStart) -> None:
        for _ in range(ROUNDS_PER_RUN):
            self.nudged = False
            await workflow.execute_activity_method(
                RouterActivities.route_queues,
                RouterJob(),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            # Until nudged, or the timer: a round anyway.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self.nudged, timeout=timedelta(seconds=start.every_seconds)
                )
        workflow.continue_as_new(start)

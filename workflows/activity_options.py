"""How the workflows call their activities: the time limits and retry policies every
workflow here uses (`ResponseApproval`, the router, the pollers, the audit log's schedules,
notifications), defined once so that they all retry alike. Data only: workflows import it
passed through the sandbox."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# The publish activity heartbeats while the platform answers: a dead worker's attempt is
# retried after this, not after ACTIVITY_TIMEOUT.
PUBLISH_HEARTBEAT = timedelta(seconds=5)
ACTIVITY_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=10), non_retryable_error_types=["NotFound"]
)
# Outbound notifications: retried with backoff for about a day, then marked failed.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(hours=1),
    maximum_attempts=30,
)

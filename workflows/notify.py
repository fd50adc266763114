"""`NotificationDelivery`: sends one outbound notification raised outside a draft's
workflow (a post assigned by a supervisor), with the same activity and retries as the
drafts' own (`workflows.approval_recording`). One workflow per delivery (`notify-<id>`), so a
request retried by its caller starts it once."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.activity_options import ACTIVITY_TIMEOUT, DELIVERY_RETRY
    from workflows.contracts import DeliveryJob
    from workflows.outbound import NotifyActivities


@workflow.defn(name="NotificationDelivery")
class NotificationDelivery:
    @workflow.run
    async def run(self, job: DeliveryJob) -> str:
        result: str = await workflow.execute_activity_method(
            NotifyActivities.deliver_notification,
            job,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=DELIVERY_RETRY,
        )
        return result

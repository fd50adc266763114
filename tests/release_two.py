"""The next release's approval workflow, for `tests/test_rolling_deploy.py`: every
submission gains a step, behind `workflow.patched` as the README's Operations section
says. Its own module, importing only what workflow code may (the sandbox imports it)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

from lifecycle.words import Action
from workflows.approval import ResponseApproval
from workflows.contracts import Acted, DraftStart, SubmitRequest, Submitted

NEW_STEP: list[int] = []  # the drafts whose submission ran release two's step


@activity.defn(name="release_two_step")
def release_two_step(draft_id: int) -> None:
    NEW_STEP.append(draft_id)


@workflow.defn(name="ResponseApproval")
class ReleaseTwo(ResponseApproval):
    @workflow.run
    async def run(self, start: DraftStart) -> Acted:
        return await super().run(start)

    @workflow.update(name=Action.submit)
    async def submit(self, request: SubmitRequest) -> Submitted:
        if workflow.patched("release-two-submit-step"):
            await workflow.execute_activity(
                release_two_step, self.state.draft_id, start_to_close_timeout=timedelta(seconds=10)
            )
        return await super().submit(request)

    @submit.validator
    def _validate_submit_two(self, request: SubmitRequest) -> None:
        self._validate_submit(request)

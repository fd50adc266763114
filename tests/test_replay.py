"""Replay the recorded histories in tests/histories/ against today's workflow code: a change
that breaks determinism (and so breaks every draft in flight) fails here."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.approval import ResponseApproval
from workflows.contracts import Acted, DraftStart, SubmitRequest, Submitted

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def test_there_are_recorded_histories() -> None:
    assert {p.stem for p in HISTORIES} >= {
        "full_story",
        "rejected",
        "scheduled_then_published",
        "scheduled_then_withdrawn",
        "escalated_then_approved",
        "expired",
        "looked_again_then_scheduled",
        "erased_in_review",
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    await Replayer(workflows=[ResponseApproval]).replay_workflow(load(path))


@workflow.defn(name="ResponseApproval")
class ChangedSubmit(ResponseApproval):
    """A careless change: submit now runs an extra activity first."""

    @workflow.run
    async def run(self, start: DraftStart) -> Acted:
        return await super().run(start)

    @workflow.update
    async def submit(self, request: SubmitRequest) -> Submitted:
        await workflow.execute_activity(
            "record_transition", "extra", start_to_close_timeout=timedelta(seconds=5)
        )
        return await super().submit(request)


async def test_a_non_deterministic_change_fails_replay() -> None:
    full_story = next(p for p in HISTORIES if p.stem == "full_story")
    result = await Replayer(workflows=[ChangedSubmit]).replay_workflow(
        load(full_story), raise_on_replay_failure=False
    )
    assert isinstance(result.replay_failure, workflow.NondeterminismError)


@workflow.defn(name="ResponseApproval")
class PatchedSubmit(ResponseApproval):
    """The same change made safely, as the README's Operations section says: behind
    `workflow.patched`, so a draft whose submission is already in its history replays the
    old way, and only a submission made after the change runs the new step."""

    @workflow.run
    async def run(self, start: DraftStart) -> Acted:
        return await super().run(start)

    @workflow.update
    async def submit(self, request: SubmitRequest) -> Submitted:
        if workflow.patched("submit-extra-activity"):
            await workflow.execute_activity(
                "record_transition", "extra", start_to_close_timeout=timedelta(seconds=5)
            )
        return await super().submit(request)


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_the_same_change_behind_a_patch_replays_every_recorded_draft(path: Path) -> None:
    await Replayer(workflows=[PatchedSubmit]).replay_workflow(load(path))

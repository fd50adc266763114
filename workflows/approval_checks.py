"""What `ResponseApproval` asks before it acts: whether the API sealed the action for this
draft, and what the rulebook (`lifecycle.rulebook`) says of it, asked of the draft as the
workflow knows it; and how a refusal becomes the update's failure. The update validators
(`workflows.approval`) and their handlers, under the lock, ask the same checks. Kept apart
from the workflow so that it holds the handlers and what they change.

Workflow code: imports only the contracts, the rulebook and temporalio (determinism).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from lifecycle import rulebook
    from lifecycle.rulebook import Person, Refusal
    from lifecycle.words import ErrorKind
    from workflows.contracts import (
        Actor,
        DecisionRequest,
        DraftState,
        EditRequest,
        PublishRequest,
        SubmitRequest,
        WithdrawRequest,
    )

# Any of the requests an update carries (each has the acting person and the API's seal).
Request = SubmitRequest | EditRequest | DecisionRequest | PublishRequest | WithdrawRequest


def refuse(kind: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def enforce(refusal: Refusal | None) -> None:
    """Raise the rulebook's refusal, if any, as the update's failure."""
    if refusal is not None:
        raise refuse(refusal.kind, refusal.reason)


def person_of(actor: Actor) -> Person:
    return Person.of(actor.username, actor.roles)


class ApprovalChecks:
    """The checks of `ResponseApproval`'s actions, on its state."""

    state: DraftState

    # --- the rulebook, asked of this draft as the workflow knows it ------------------------

    def _draft(self) -> rulebook.Draft:
        state = self.state
        return rulebook.Draft(
            author=state.author,
            status=state.status,
            stage=state.stage,
            version=state.version,
            route=tuple(state.route),
            reviewers=state.reviewers,
            sla_breached=state.sla_breached,
            backup_roles=state.clock.backup_roles if state.clock else {},
        )

    def _vouched(self, request: Request) -> None:
        """The API sealed this action for this draft's author. (The worker's interceptor
        has already checked the seal itself: `workflows.interceptors`.)"""
        seal = request.seal
        if seal is None or seal.author != self.state.author:
            raise refuse(ErrorKind.forbidden, "the action was not sealed for this draft")

    # --- each action's check -----------------------------------------------------------

    def _check_submit(self, request: SubmitRequest) -> None:
        person = person_of(request.actor)
        enforce(rulebook.may_submit(self._draft(), person, version=request.version))

    def _check_edit(self, request: EditRequest) -> None:
        expected = request.expected_version
        enforce(
            rulebook.may_edit(self._draft(), person_of(request.actor), expected_version=expected)
        )

    def _check_decision(self, request: DecisionRequest) -> None:
        refusal = rulebook.may_decide(
            self._draft(),
            person_of(request.actor),
            stage=request.stage,
            decision=request.decision,
            version=request.version,
            comment=request.comment,
        )
        enforce(refusal)

    def _check_publish(self, request: PublishRequest) -> None:
        later = request.at is not None and request.at > workflow.now()
        refusal = rulebook.may_publish(
            self._draft(), person_of(request.actor), later=later, version=request.version
        )
        enforce(refusal)

    def _check_withdraw(self, request: WithdrawRequest) -> None:
        enforce(rulebook.may_withdraw(self._draft(), person_of(request.actor)))

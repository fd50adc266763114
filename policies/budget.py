"""How long one policy check may take, and the error when it takes longer.

Every engine a check uses is linear in the text (the lexicon's automaton, RE2 for the rule
set's patterns, bounded patterns for the built-in detectors) and texts are bounded (10,000
characters for a reply, 20,000 for a post), so a check takes milliseconds. The budget is the
promise behind that: a check that still runs past it stops at the next step and says so,
so a pattern or detector that turns out slow on some text is a clear error in the API and
the worker, never a stalled request or a stuck submission.
"""

from __future__ import annotations

import time

__all__ = ["CHECK_BUDGET_SECONDS", "CheckOverBudget", "Deadline"]

# Far above the worst measured check (`bench/policies.py --pathological`: about 20 ms on
# this 2-core machine), so that a garbage-collection pause or a busy machine never turns a
# sound check into a refusal (at 0.5 s, the full test suite's large process saw both), and
# far below the stalls it exists to stop (24 and 68 s before issue 20).
CHECK_BUDGET_SECONDS = 2.0


class CheckOverBudget(RuntimeError):
    """The check of one text ran past its budget; nothing was decided on it."""

    def __init__(self, step: str, budget: float) -> None:
        self.step = step
        self.budget = budget
        super().__init__(
            f"the policy check ran over its budget of {budget * 1000:.0f} ms (at {step}); "
            "the text was not checked: shorten it, or ask an admin to review the rule set"
        )


class Deadline:
    """The end of one check's budget; `passed(step)` raises once the budget is spent."""

    __slots__ = ("_end", "budget")

    def __init__(self, budget: float | None = None) -> None:
        self.budget = CHECK_BUDGET_SECONDS if budget is None else budget
        self._end = time.monotonic() + self.budget

    def passed(self, step: str) -> None:
        if time.monotonic() >= self._end:
            raise CheckOverBudget(step, self.budget)

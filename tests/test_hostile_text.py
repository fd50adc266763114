# ruff: noqa: RUF001  (look-alike letters are the point)
"""Text written to stall the service (issue 20, item 1): rule-set patterns run in RE2 or are
refused on upload; every check has a budget and says so when it runs over; the API checks
off its event loop. The time each hostile text takes is measured by
`bench/policies.py --pathological`; here, none may run over the budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.words import Role
from policies import budget
from policies.budget import CheckOverBudget
from policies.engine import RuleSet, RuleSetError
from tests.hostile_text import HOSTILE, LONGEST

Headers = dict[str, str]
SHIPPED = RuleSet.load()
MINIMAL = "name: t\nroutes: {base: [comms]}\n"
CHANNELS = ("x", "mastodon", "bluesky", "facebook")


def with_patterns(*patterns: str) -> str:
    lines = [
        f"    - {{id: p{n}, label: number {n}, pattern: '{p}'}}" for n, p in enumerate(patterns)
    ]
    return MINIMAL + "pii:\n  patterns:\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_no_hostile_text_runs_over_the_budget(name: str) -> None:
    """Before issue 20, `account` + 2,000 spaces + `x1` took 24 s in the shipped patterns."""
    text = HOSTILE[name]
    assert len(text) <= LONGEST
    for channel in CHANNELS:  # the customer's post may be twice as long as a reply
        SHIPPED.check(text, channel, post_text=(text * 2)[: 2 * LONGEST])


def test_the_shipped_patterns_still_find_account_and_order_numbers() -> None:
    found = {
        text: [f.rule_id for f in SHIPPED.check(text, "x").findings]
        for text in (
            "account 12345678",
            "Acct. no: 12345678",
            "account number\t#12345678",
            "order no. AB-1234567",
            "ORDER # 1234567",
            "account \uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width digits
            "account\u00a012345678",  # a no-break space
        )
    }
    assert all(ids and ids[0].startswith("pii.") for ids in found.values()), found
    assert (
        SHIPPED.check("account" + " " * 800 + "x1", "x").findings[0].rule_id.startswith("channel.")
    )


def test_an_uploaded_exponential_pattern_runs_in_linear_time() -> None:
    """`(\\d+)+x` backtracks exponentially in Python's `re`; RE2 runs it in one pass."""
    rules = RuleSet(with_patterns(r"(\d+)+x"))
    assert rules.check("1" * 9_999 + "y", "facebook").findings == []
    [finding] = rules.check("call 123x", "facebook").findings
    assert (finding.rule_id, finding.start, finding.end) == ("pii.p0", 5, 9)


def test_each_pattern_keeps_its_own_id_whatever_groups_it_has() -> None:
    rules = RuleSet(with_patterns(r"(?P<p1>a)(b)?\d{3}", r"(c)(?:d)\d{3}", r"e\d{3}"))
    found = rules.check("ab123 cd456 e789", "facebook").findings
    assert [(f.rule_id, f.start) for f in found] == [("pii.p0", 0), ("pii.p1", 6), ("pii.p2", 12)]


@pytest.mark.parametrize(
    "pattern, reason",
    [
        (r"(?<![\d-])\d{6}", "look-around"),
        (r"(?=\d{6})\d+", "look-around"),
        (r"(\d)\1{5}", "back-references"),
        (r"\d{1001}", "repetition size"),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_with_its_line_and_reason(
    pattern: str, reason: str
) -> None:
    with pytest.raises(RuleSetError, match=reason) as refused:
        RuleSet(with_patterns(r"\d{8}", pattern))
    assert refused.value.line == 6


def test_a_check_over_its_budget_is_an_error_that_names_it() -> None:
    with pytest.raises(CheckOverBudget, match=r"budget of 0 ms \(at the lexicon\)"):
        SHIPPED.check("Thanks for waiting.", "x", budget=0)
    assert SHIPPED.check("Thanks for waiting.", "x", budget=1).findings == []


def test_the_api_answers_a_check_over_budget_with_a_problem(
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_user("agent", Role.agent)
    agent = login("agent")
    monkeypatch.setattr(budget, "CHECK_BUDGET_SECONDS", 0.0)
    response = app_client.post(
        "/api/v1/policies/check", headers=agent, json={"body": "Thanks!", "channel": "x"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Policy check over budget"
    assert response.json()["budget_ms"] == 0


async def test_a_long_check_does_not_hold_up_other_requests(
    app: FastAPI,
    app_client: TestClient,
    make_user: Callable[..., str],
    login: Callable[..., Headers],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check runs on a worker thread: /healthz answers while it is still running."""
    make_user("agent", Role.agent)
    agent = login("agent")
    checking = RuleSet.check

    def slow_check(self: RuleSet, *args: object, **kwargs: object) -> object:
        time.sleep(1.0)  # a check that takes its time, as a hostile text once did
        return checking(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(RuleSet, "check", slow_check)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        check = asyncio.create_task(
            client.post(
                "/api/v1/policies/check", headers=agent, json={"body": "Hi", "channel": "x"}
            )
        )
        await asyncio.sleep(0.1)  # the check has started
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert not check.done()
        assert (await check).status_code == 200


PIECES = [
    *" .-@#/:()+1234567890acdhikmnorstuwx\t\n\u00a0\u200b\u200f\u202e\u0301",
    *"ѕһіｓ１👍🏽\u200d\ufe0f\u20e3",
    "http://", "www.", "account ", "GB82 ", ".com/", "shit", "our fault",
]  # fmt: skip
HOSTILE_TEXT = st.lists(st.sampled_from(PIECES), max_size=1_500).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=HOSTILE_TEXT, channel=st.sampled_from(CHANNELS))
def test_no_adversarial_text_breaks_or_stalls_a_check(body: str, channel: str) -> None:
    """Hypothesis mixes the evasions, separators, digits and scripts the hand-written
    texts above use; no check fails or runs over its budget, and findings lie in the text."""
    result = SHIPPED.check(body, channel, post_text=body)
    for finding in result.findings:
        assert 0 <= finding.start <= finding.end <= len(body)
    assert result.route and result.route[0] == "comms"

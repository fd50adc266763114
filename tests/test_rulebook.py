"""The rulebook alone (no Temporal, no database): every state x action x kind of person,
against a table written out by hand from DESIGN's rules, plus the decisions' outcomes, the
acting roles, the alarms and the publish-time re-check of the record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from lifecycle.rulebook import (
    Draft,
    Person,
    RecordedDecision,
    after_decision,
    allowed_actions,
    deciding_role,
    judge,
    may_decide,
    may_edit,
    may_publish,
    next_alarm,
    unapproved,
    withdrawing_role,
)
from lifecycle.words import Action, AlarmKind, DraftStatus, ErrorKind

AUTHOR = "amy"
PEOPLE = {
    "author": Person.of(AUTHOR, ["agent"]),
    "author-publisher": Person.of(AUTHOR, ["agent", "publisher"]),
    "other agent": Person.of("bob", ["agent"]),
    "comms": Person.of("cara", ["comms"]),
    "legal": Person.of("lee", ["legal"]),
    # holds both stage roles and already filled comms on this draft
    "comms+legal, filled comms": Person.of("bo", ["comms", "legal"]),
    "comms+legal, fresh": Person.of("flo", ["comms", "legal"]),
    "supervisor (legal backup)": Person.of("sue", ["supervisor"]),
    "publisher": Person.of("pat", ["publisher"]),
    "auditor": Person.of("aud", ["auditor"]),
}
S, E, D, P, W = Action.submit, Action.edit, Action.decide, Action.publish, Action.withdraw
NONE: set[Action] = set()

# state -> (status, stage, overdue) and, per kind of person, what they may do there.
STATES = {
    "draft": (DraftStatus.draft, None, False),
    "in review, comms": (DraftStatus.in_review, "comms", False),
    "in review, legal": (DraftStatus.in_review, "legal", False),
    "in review, legal, overdue": (DraftStatus.in_review, "legal", True),
    "changes requested": (DraftStatus.changes_requested, None, False),
    "approved": (DraftStatus.approved, None, False),
    "scheduled": (DraftStatus.scheduled, None, False),
    "publish failed": (DraftStatus.publish_failed, None, False),
    "published": (DraftStatus.published, None, False),
    "rejected": (DraftStatus.rejected, None, False),
    "withdrawn": (DraftStatus.withdrawn, None, False),
    "expired": (DraftStatus.expired, None, False),
}
EXPECTED: dict[str, dict[str, set[Action]]] = {
    "draft": {"author": {S, E, W}, "author-publisher": {S, E, W}, "supervisor (legal backup)": {W}},
    "in review, comms": {
        "author": {W},
        "author-publisher": {W},
        "comms": {D},
        "comms+legal, filled comms": {D},
        "comms+legal, fresh": {D},
        "supervisor (legal backup)": {W},
        "publisher": {P},  # a later time only, kept until the approval
    },
    "in review, legal": {
        "author": {W},
        "author-publisher": {W},
        "legal": {D},
        "comms+legal, fresh": {D},
        "supervisor (legal backup)": {W},
        "publisher": {P},
    },
    "in review, legal, overdue": {
        "author": {W},
        "author-publisher": {W},
        "legal": {D},
        "comms+legal, fresh": {D},
        "supervisor (legal backup)": {D, W},
        "publisher": {P},
    },
    "changes requested": {
        "author": {S, E, W},
        "author-publisher": {S, E, W},
        "supervisor (legal backup)": {W},
    },
    "approved": {
        "author": {W},
        "author-publisher": {W},
        "supervisor (legal backup)": {W},
        "publisher": {P},
    },
    "scheduled": {"author": {W}, "author-publisher": {W}, "supervisor (legal backup)": {W}},
    "publish failed": {
        "author": {W},
        "author-publisher": {W},
        "supervisor (legal backup)": {W},
        "publisher": {P, W},
    },
    "published": {},
    "rejected": {},
    "withdrawn": {},
    "expired": {},
}


def draft_in(state: str) -> Draft:
    status, stage, overdue = STATES[state]
    return Draft(
        author=AUTHOR,
        status=status,
        stage=stage,
        version=2,
        route=("comms", "legal"),
        reviewers={"bo": "comms"},
        sla_breached=overdue,
        backup_roles={"legal": "supervisor"},
    )


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("who", PEOPLE)
def test_every_state_and_person_may_do_exactly_what_the_table_says(state: str, who: str) -> None:
    draft, person = draft_in(state), PEOPLE[who]
    assert set(allowed_actions(draft, person)) == EXPECTED[state].get(who, NONE)
    # Every refusal says why, with a kind the API maps to a status.
    for action, refusal in judge(draft, person).items():
        if action not in EXPECTED[state].get(who, NONE):
            assert refusal is not None and refusal.reason, (state, who, action)
            assert refusal.kind in (ErrorKind.forbidden, ErrorKind.conflict)


def test_the_order_of_allowed_actions_follows_a_replys_life() -> None:
    person = PEOPLE["author"]
    assert allowed_actions(draft_in("draft"), person) == [S, E, W]


def test_refusals_name_the_rule_broken() -> None:
    legal, overdue = draft_in("in review, legal"), draft_in("in review, legal, overdue")
    bo, sue = PEOPLE["comms+legal, filled comms"], PEOPLE["supervisor (legal backup)"]
    refusal = may_decide(legal, bo, stage="legal", version=2)
    assert refusal is not None and refusal.kind is ErrorKind.forbidden
    assert "already decided the comms stage" in refusal.reason
    refusal = may_decide(legal, sue, stage="legal", version=2)
    assert refusal is not None and "needs the legal role" in refusal.reason
    assert may_decide(overdue, sue, stage="legal", version=2) is None
    # The backup role covers only the overdue stage it backs up.
    refusal = may_decide(overdue, sue, stage="comms", version=2)
    assert refusal is not None and refusal.kind is ErrorKind.forbidden
    stale = may_decide(legal, PEOPLE["legal"], stage="legal", version=1)
    assert stale is not None and stale.kind is ErrorKind.conflict and "version 1" in stale.reason
    no_comment = may_decide(legal, PEOPLE["legal"], stage="legal", version=2, decision="reject")
    assert no_comment is not None and no_comment.kind is ErrorKind.invalid
    odd = may_decide(legal, PEOPLE["legal"], stage="legal", version=2, decision="maybe")
    assert odd is not None and odd.kind is ErrorKind.invalid
    stale_edit = may_edit(draft_in("draft"), PEOPLE["author"], expected_version=1)
    assert stale_edit is not None and stale_edit.kind is ErrorKind.conflict
    # A publisher publishes what they saw: another version is a conflict.
    seen = may_publish(draft_in("approved"), PEOPLE["publisher"], version=1)
    assert seen is not None and seen.kind is ErrorKind.conflict
    assert may_publish(draft_in("in review, comms"), PEOPLE["publisher"]) is not None
    assert may_publish(draft_in("in review, comms"), PEOPLE["publisher"], later=True) is None
    assert may_publish(draft_in("publish failed"), PEOPLE["publisher"], later=True) is not None


def test_the_role_a_person_acts_in() -> None:
    overdue = draft_in("in review, legal, overdue")
    assert deciding_role(overdue, PEOPLE["supervisor (legal backup)"], "legal") == "supervisor"
    assert deciding_role(overdue, PEOPLE["legal"], "legal") == "legal"
    assert deciding_role(overdue, PEOPLE["comms+legal, fresh"], "legal") == "legal"
    approved = draft_in("approved")
    assert withdrawing_role(approved, PEOPLE["author-publisher"]) == "agent"
    assert withdrawing_role(approved, PEOPLE["supervisor (legal backup)"]) == "supervisor"
    assert withdrawing_role(draft_in("publish failed"), PEOPLE["publisher"]) == "publisher"


@pytest.mark.parametrize(
    ("stage", "decision", "after"),
    [
        ("comms", "approve", ("in_review", "legal")),
        ("legal", "approve", ("approved", None)),
        ("comms", "reject", ("rejected", None)),
        ("legal", "request_changes", ("changes_requested", None)),
    ],
)
def test_the_state_after_a_decision(
    stage: str, decision: str, after: tuple[str, str | None]
) -> None:
    assert after_decision(("comms", "legal"), stage, decision) == after


T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def timed(**fields: object) -> SimpleNamespace:
    base = {
        "draft_id": 7,
        "status": "in_review",
        "stage": "comms",
        "review_round": 1,
        "stage_opened_at": T0,
        "expires_at": None,
    }
    return SimpleNamespace(**{**base, **fields})


def test_the_next_alarm_is_the_reminder_then_the_escalation_then_none() -> None:
    clock = {"stage_seconds": {"comms": 600.0}, "remind_fraction": 0.5}
    first = next_alarm(timed(), **clock, fired=())
    assert first is not None and (first.kind, first.at) == (
        AlarmKind.remind,
        T0 + timedelta(seconds=300),
    )
    assert first.key == "draft-7/sla/comms/r1/remind"
    second = next_alarm(timed(), **clock, fired=(first.key,))
    assert second is not None and second.kind is AlarmKind.escalate
    assert second.at == T0 + timedelta(seconds=600)
    assert next_alarm(timed(), **clock, fired=(first.key, second.key)) is None
    # The post's deadline comes first when it is earlier; it stays after the review.
    soon = T0 + timedelta(seconds=60)
    deadline = next_alarm(timed(expires_at=soon), **clock, fired=())
    assert deadline is not None and (deadline.kind, deadline.key) == (
        AlarmKind.expire,
        "draft-7/expire",
    )
    # A scheduled or published draft has no deadline: it does not expire.
    for status in ("scheduled", "published"):
        assert (
            next_alarm(timed(status=status, stage=None, expires_at=soon), **clock, fired=()) is None
        )


def approval(stage: str, reviewer: str, **fields: object) -> RecordedDecision:
    base: dict[str, object] = {
        "stage": stage,
        "decision": "approve",
        "reviewer": reviewer,
        "version": 3,
        "review_round": 2,
        "content_sha256": "abc",
    }
    return RecordedDecision(**{**base, **fields})  # type: ignore[arg-type]


def why_not(
    *decisions: RecordedDecision,
    publisher: str = "pat",
    roles: frozenset[str] | None = frozenset({"publisher"}),
) -> str | None:
    return unapproved(
        author=AUTHOR,
        publisher=publisher,
        publisher_now=None if roles is None else Person(publisher, roles),
        route=("comms", "legal"),
        version=3,
        content_sha256="abc",
        review_round=2,
        decisions=decisions,
    )


def test_the_record_allows_a_reply_only_with_every_approval_bound_to_its_text() -> None:
    assert why_not(approval("comms", "cara"), approval("legal", "lee")) is None
    assert "no legal approval" in (why_not(approval("comms", "cara")) or "")
    other_text = approval("legal", "lee", content_sha256="def")
    assert "other text" in (why_not(approval("comms", "cara"), other_text) or "")
    old_version = approval("legal", "lee", version=2)
    assert "no legal approval" in (why_not(approval("comms", "cara"), old_version) or "")
    old_round = approval("legal", "lee", review_round=1)
    assert "no legal approval" in (why_not(approval("comms", "cara"), old_round) or "")
    rejected = approval("legal", "lee", decision="reject")
    assert "no legal approval" in (why_not(approval("comms", "cara"), rejected) or "")
    by_author = approval("legal", AUTHOR)
    assert "author" in (why_not(approval("comms", "cara"), by_author) or "")
    two_stages = why_not(approval("comms", "bo"), approval("legal", "bo"))
    assert "two stages" in (two_stages or "")
    # A decision on another stage in an earlier round still counts against the reviewer.
    earlier = approval("comms", "lee", review_round=1, decision="request_changes")
    assert "two stages" in (
        why_not(approval("comms", "cara"), approval("legal", "lee"), earlier) or ""
    )
    mine = why_not(approval("comms", "cara"), approval("legal", "lee"), publisher=AUTHOR)
    assert "may not publish" in (mine or "")
    # The person who asked may no longer publish: disabled or gone, or the role taken away.
    both = (approval("comms", "cara"), approval("legal", "lee"))
    assert "account is disabled or gone" in (why_not(*both, roles=None) or "")
    assert "no longer hold the publisher role" in (why_not(*both, roles=frozenset({"agent"})) or "")
    never_submitted = unapproved(
        author=AUTHOR,
        publisher="pat",
        publisher_now=Person("pat", frozenset({"publisher"})),
        route=(),
        version=1,
        content_sha256="abc",
        review_round=0,
        decisions=(),
    )
    assert never_submitted is not None

"""Who is asked to review a stage of a draft (`records.reviews.reviewers`): the enabled
holders of the stage's role, less the draft's author and anyone who filled another stage
of it (separation of duties), in name order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select

from lifecycle.words import Role
from records import drafts, reviews, users
from records.db import Database
from records.tables import DECISIONS
from tests.helpers import REPLY, insert_post


def test_the_stage_s_holders_less_its_author_the_disabled_and_other_stages_reviewers(
    database: Database, make_user: Callable[..., str]
) -> None:
    make_user("agent", Role.agent, Role.legal)  # the author, who also holds legal
    make_user("cam", Role.comms, Role.legal)  # fills comms: not asked for legal
    make_user("lee", Role.legal)
    make_user("abe", Role.legal, Role.supervisor)
    make_user("gone", Role.legal)
    make_user("pat", Role.publisher)
    with database.write_session() as session:
        users.set_disabled(session, "gone", True, actor="test", actor_role="admin")
    with database.write() as c:
        draft_id = drafts.create(c, post_id=insert_post(c), author="agent", body=REPLY).draft_id
        other = drafts.create(c, post_id=insert_post(c), author="lee", body=REPLY).draft_id
        c.execute(
            DECISIONS.insert(),
            {
                "draft_id": draft_id, "version": 1, "review_round": 1, "stage": "comms",
                "decision": "approved", "reviewer": "cam", "role": "comms",
                "at": datetime(2026, 11, 2, tzinfo=UTC),
            },
        )  # fmt: skip

    with database.write() as c:
        assert reviews.reviewers(c, draft_id, "agent", "legal") == ["abe", "lee"]
        # The stage's own reviewer stays one (a later round asks them again).
        assert reviews.reviewers(c, draft_id, "agent", "comms") == ["cam"]
        # Another draft's decisions do not count here.
        assert reviews.reviewers(c, other, "lee", "legal") == ["abe", "agent", "cam"]


def test_a_decision_keeps_the_reviewer_s_qualification_as_held_when_it_is_recorded(
    database: Database, make_user: Callable[..., str]
) -> None:
    make_user("lee", Role.legal)
    make_user("cam", Role.comms)
    with database.write_session() as session:
        users.set_qualification(session, "lee", "FINRA CRD 1234567", actor="t", actor_role="admin")
    with database.write() as c:
        draft_id = drafts.create(c, post_id=insert_post(c), author="agent", body=REPLY).draft_id
        for stage, reviewer in (("comms", "cam"), ("legal", "lee")):
            reviews.record_decision(
                c, draft_id=draft_id, version=1, review_round=1, stage=stage,
                decision="approved", reviewer=reviewer, role=stage, content_sha256="c" * 64,
                comment=None, at=datetime(2026, 11, 2, tzinfo=UTC),
            )  # fmt: skip
    with database.write_session() as session:  # a later change is not the record's
        users.set_qualification(session, "lee", "none now", actor="t", actor_role="admin")
    with database.engine.connect() as c:
        held = dict(c.execute(select(DECISIONS.c.reviewer, DECISIONS.c.qualification)).all())
    assert held == {"cam": None, "lee": "FINRA CRD 1234567"}

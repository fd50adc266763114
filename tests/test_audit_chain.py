"""The audit chain: `verify` detects an edited, deleted, inserted or reordered event and
names the first bad one. Tampering goes around the application (and, on PostgreSQL, around
the append-only trigger, as a database superuser could)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, text

from records import audit
from records.db import Database
from tests.helpers import around_the_trigger


@pytest.fixture
def chain(database: Database) -> Iterator[Database]:
    with database.write_session() as session:
        for n in range(1, 11):
            audit.append(
                session,
                audit.NewEvent(
                    actor=f"user{n}", role="agent", action="post.received", payload={"n": n}
                ),
            )
    with database.read_session() as session:
        assert audit.verify(session) == audit.Verification(True, 10, None)
    yield database


def tamper(database: Database, change: Callable[[Connection], None]) -> audit.Verification:
    with around_the_trigger(database) as conn:
        change(conn)
    with database.read_session() as session:
        whole = audit.verify(session)
        # Read in batches of three, the tampered rows fall on and across batch boundaries.
        assert audit.verify(session, batch_size=3) == whole
    return whole


def swap(conn: Connection) -> None:
    rows = {
        r.seq: r
        for r in conn.execute(
            text("SELECT seq, actor, payload FROM audit_events WHERE seq IN (4, 5)")
        )
    }
    for seq, other in ((4, 5), (5, 4)):
        conn.execute(
            text("UPDATE audit_events SET actor = :a, payload = :p WHERE seq = :s"),
            {"a": rows[other].actor, "p": rows[other].payload, "s": seq},
        )


def insert_copy(conn: Connection) -> None:
    conn.execute(text("UPDATE audit_events SET seq = seq + 100 WHERE seq > 6"))
    conn.execute(text("UPDATE audit_events SET seq = seq - 99 WHERE seq > 100"))
    conn.execute(
        text(
            "INSERT INTO audit_events (seq, at, actor, role, action, draft_id, version, "
            "content_sha256, payload, prev_hash, hash, event_key) "
            "SELECT 7, at, 'mallory', role, action, draft_id, version, content_sha256, "
            "payload, hash, hash, NULL FROM audit_events WHERE seq = 6"
        )
    )


@pytest.mark.parametrize(
    "change, first_bad",
    [
        pytest.param(
            lambda c: c.execute(
                text("UPDATE audit_events SET payload = replace(payload, '3', '4') WHERE seq = 3")
            ),
            3,
            id="one-byte-of-a-payload",
        ),
        pytest.param(
            lambda c: c.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 8")),
            8,
            id="the-actor",
        ),
        pytest.param(
            lambda c: c.execute(text("DELETE FROM audit_events WHERE seq = 6")), 7, id="delete"
        ),
        pytest.param(swap, 4, id="swap-two-rows"),
        pytest.param(insert_copy, 7, id="insert"),
        pytest.param(
            lambda c: c.execute(text("DELETE FROM audit_events WHERE seq = 10")),
            None,
            id="truncate-the-tail",
        ),
    ],
)
def test_verify_names_the_first_bad_event(
    chain: Database, change: Callable[[Connection], None], first_bad: int | None
) -> None:
    result = tamper(chain, change)
    if first_bad is None:
        # Dropping the newest events leaves a valid shorter chain: the count shows it.
        assert result.ok and result.events_checked == 9
    else:
        assert not result.ok
        assert result.first_bad_seq == first_bad


# Any text (quotes, backslashes, controls, emoji; no lone surrogates, which UTF-8 cannot
# hold), within the columns: NUL fits no PostgreSQL text column, and the role column holds 20.
ANY = st.characters(exclude_categories=["Cs"])
SAFE_INT = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    actor=TEXT,
    role=TEXT,
    action=TEXT,
    draft_id=st.none() | st.integers(min_value=1, max_value=2**62),
    version=st.none() | st.integers(min_value=1, max_value=2**31 - 1),
    content=st.none() | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    # Payload numbers are I-JSON's (RFC 8785): integers a double holds exactly.
    payload=st.dictionaries(st.text(ANY), st.text(ANY) | SAFE_INT | st.none(), max_size=4),
)
def test_verify_hashes_any_event_as_append_did(
    database: Database,
    actor: str,
    role: str,
    action: str,
    draft_id: int | None,
    version: int | None,
    content: str | None,
    payload: dict[str, object],
) -> None:
    """`verify` writes each row's hashed bytes out itself (for speed): for any fields, they
    are the bytes `append` hashed (`audit.hash_input`)."""
    with database.write_session() as session:
        appended = audit.append(
            session,
            audit.NewEvent(
                actor=actor,
                role=role,
                action=action,
                payload=payload,
                draft_id=draft_id,
                version=version,
                content_sha256=content,
            ),
        )
    with database.read_session() as session:
        assert audit.verify(session) == audit.Verification(True, appended.seq, None)


def test_a_payload_number_outside_i_json_is_refused_not_rounded(database: Database) -> None:
    """RFC 8785 has no exact form for integers past 2^53: such a payload is an error at
    append, never a silently different number in the record."""
    big = audit.NewEvent(actor="a", role="admin", action="t", payload={"n": 2**53 + 1})
    with pytest.raises(ValueError), database.write_session() as session:
        audit.append(session, big)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | SAFE_INT | st.text(ANY),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(ANY, max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(value=JSON_VALUES)
@example(value={"b": 1, "\uff61": 2, "\U0001f600": 3, "a": [{"\u00e9": None, "e": 0}]})
def test_payloads_are_canonical_as_the_rfc_8785_reference_writes_them(value: object) -> None:
    assert audit.canonical_json(value).encode() == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value", [1.5, {"n": 2**53}, {1: "a"}, "\ud800", {"x": "\ud800"}, {"x": object()}]
)
def test_what_rfc_8785_cannot_write_exactly_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        audit.canonical_json(value)

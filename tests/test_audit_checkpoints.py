"""Signed checkpoints against someone with the database: every tamper case of issue 19 is
detected and named, on SQLite and PostgreSQL, even when the attacker recomputes the hash
chain and the tree, and even when they truncate the checkpoints too (the folder outside
the database keeps them)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from temporalio.testing import WorkflowEnvironment

from countersign import offline_verifier
from records import audit, audit_reads, checkpoints, merkle
from records.db import Database
from records.settings import DEV_AUDIT_KEY, Settings, load_settings
from records.tables import CHECKPOINTS, EVENTS, NODES
from tests.helpers import around_the_trigger, eventually
from workflows.worker import ACTIVITY_THREADS, build_worker, start_checkpoints

SIGNER = checkpoints.Signer("countersign.test/audit", DEV_AUDIT_KEY)
OTHER_KEY = base64.b64encode(bytes(range(32))).decode()
OTHER = checkpoints.Signer("countersign.test/audit", OTHER_KEY)


def append(database: Database, count: int) -> None:
    with database.write_session() as session:
        for n in range(count):
            event = audit.NewEvent(actor=f"user{n}", role="agent", action="t", payload={"n": n})
            audit.append(session, event)


def sign(database: Database, sinks: list[Path]) -> checkpoints.Checkpoint:
    with database.write() as connection:
        found = checkpoints.issue(connection, SIGNER, sinks=sinks)
    assert found is not None
    return found


@pytest.fixture
def sink(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints"


@pytest.fixture
def signed_log(database: Database, sink: Path) -> Iterator[Database]:
    """15 events, checkpoints at 10 and at 15, in the database and in the sink."""
    append(database, 10)
    sign(database, [sink])
    append(database, 5)
    sign(database, [sink])
    yield database


def verify(database: Database, sinks: list[Path]) -> audit.Verification:
    with database.read_session() as session:
        held = checkpoints.held(session.connection(), SIGNER, sinks)
        assert held.problem is None, held.problem
        return audit.verify(session, checkpoints=held.signed)


def rebuild(conn: Connection) -> None:
    """What an attacker with the database does after changing events: the chain and the
    tree recomputed from the events as they now are."""
    rows = conn.execute(select(EVENTS).order_by(EVENTS.c.seq)).all()
    conn.execute(delete(NODES))
    prev, stored = audit.GENESIS_HASH, {}
    for index, row in enumerate(rows):
        fields = audit.hashed_fields(row)
        digest = hashlib.sha256(row.payload.encode()).hexdigest()
        chained = audit.event_hash(prev, row.seq, fields)
        conn.execute(
            update(EVENTS)
            .where(EVENTS.c.seq == row.seq)
            .values(prev_hash=prev, hash=chained, payload_sha256=digest)
        )
        prev = chained
        leaf = merkle.leaf_hash(audit.leaf_bytes(row.seq, fields, digest))
        for level, at, node in merkle.completed(index, leaf, lambda w: [stored[k] for k in w]):
            stored[(level, at)] = node
            conn.execute(NODES.insert().values(level=level, idx=at, hash=node.hex()))


def test_an_untouched_log_verifies_against_its_latest_checkpoint(
    signed_log: Database, sink: Path
) -> None:
    result = verify(signed_log, [sink])
    assert (result.ok, result.events_checked, result.checkpoint_size) == (True, 15, 15)
    assert sorted(p.name for p in sink.iterdir()) == [
        "checkpoint-00000001.txt",
        "checkpoint-00000002.txt",
        "latest.txt",
    ]


@pytest.mark.parametrize("removed", [1, 6])
def test_a_truncated_tail_is_named(signed_log: Database, sink: Path, removed: int) -> None:
    with around_the_trigger(signed_log) as conn:
        conn.execute(delete(EVENTS).where(EVENTS.c.seq > 15 - removed))
        rebuild(conn)
    result = verify(signed_log, [sink])
    assert not result.ok and result.first_bad_seq == 16 - removed
    assert f"the log ends at event {15 - removed}" in (result.problem or "")
    assert "15 events" in (result.problem or "")


def test_a_rewritten_event_with_the_chain_recomputed_is_named(
    signed_log: Database, sink: Path
) -> None:
    """Changing an approver and recomputing every hash: the chain holds, the checkpoint
    does not; the first signed range that differs is named."""
    with around_the_trigger(signed_log) as conn:
        conn.execute(update(EVENTS).where(EVENTS.c.seq == 12).values(actor="mallory"))
        rebuild(conn)
    result = verify(signed_log, [sink])
    assert not result.ok and result.first_bad_seq == 11 and result.checkpoint_size == 10
    assert "events 11 to 15" in (result.problem or "")


def test_a_deleted_middle_event_renumbered_and_recomputed_is_named(
    signed_log: Database, sink: Path
) -> None:
    with around_the_trigger(signed_log) as conn:
        conn.execute(delete(EVENTS).where(EVENTS.c.seq == 4))
        for seq in range(5, 16):
            conn.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(seq=seq - 1))
        rebuild(conn)
    result = verify(signed_log, [sink])
    assert not result.ok and result.first_bad_seq == 1
    assert "events 1 to 10" in (result.problem or "")


def test_truncating_events_and_checkpoints_is_caught_by_the_folder_outside(
    signed_log: Database, sink: Path
) -> None:
    with around_the_trigger(signed_log) as conn:
        if signed_log.dialect == "postgresql":
            conn.execute(text("TRUNCATE audit_events, audit_nodes, audit_checkpoints"))
        else:
            for table in (EVENTS, NODES, CHECKPOINTS):
                conn.execute(delete(table))
    assert verify(signed_log, []).ok  # the database alone now proves nothing
    result = verify(signed_log, [sink])
    assert not result.ok and result.events_checked == 0 and result.first_bad_seq == 1
    assert "the log ends at event 0" in (result.problem or "")


def test_a_replaced_checkpoint_is_named(signed_log: Database, sink: Path) -> None:
    """A checkpoint signed by another key, or edited, does not hold; two that disagree on
    the same size, or a larger one dated before a smaller one, do not extend each other."""
    forged = OTHER.sign(10, bytes(32), audit.utcnow())
    with around_the_trigger(signed_log) as conn:
        conn.execute(update(CHECKPOINTS).where(CHECKPOINTS.c.id == 1).values(note=forged.note))
    with signed_log.read_session() as session:
        held = checkpoints.held(session.connection(), SIGNER)
    assert held.problem and "does not hold" in held.problem
    rewritten = SIGNER.sign(10, bytes(32), audit.utcnow())  # someone with the key
    with around_the_trigger(signed_log) as conn:
        conn.execute(update(CHECKPOINTS).where(CHECKPOINTS.c.id == 1).values(note=rewritten.note))
    with signed_log.read_session() as session:
        held = checkpoints.held(session.connection(), SIGNER, [sink])
    assert held.problem and "two checkpoints of 10 events disagree" in held.problem


def test_a_note_is_refused_unless_its_signature_and_shape_hold() -> None:
    good = SIGNER.sign(3, b"\x01" * 32, audit.utcnow())
    opened = checkpoints.open_note(good.note, name=SIGNER.name, public_key=SIGNER.public_key)
    assert (opened.size, opened.root) == (3, b"\x01" * 32)
    lines = good.note.split("\n")
    assert lines[0] == SIGNER.name and lines[1] == "3" and lines[3].startswith("time ")
    assert lines[5].startswith("\u2014 countersign.test/audit ")
    for bad in (
        good.note.replace("\n3\n", "\n4\n"),  # the size changed
        good.note.replace(SIGNER.name + "\n", "other.log\n", 1),  # another log's
        good.note.split("\n\n")[0],  # no signature
        OTHER.sign(3, b"\x01" * 32, audit.utcnow()).note,  # another key of the same name
    ):
        with pytest.raises(checkpoints.CheckpointError):
            checkpoints.open_note(bad, name=SIGNER.name, public_key=SIGNER.public_key)
    assert SIGNER.verifier_key.startswith("countersign.test/audit+")


def signed_sizes(database: Database) -> list[int]:
    with database.engine.connect() as c:
        return list(c.execute(select(CHECKPOINTS.c.tree_size).order_by(CHECKPOINTS.c.id)).scalars())


@pytest.mark.temporal
async def test_the_schedule_signs_while_events_arrive_and_only_then(
    temporal_env: WorkflowEnvironment, database: Database, settings: Settings, sink: Path
) -> None:
    """A durable Temporal timer (not a cron job) signs the log every interval, but only
    when it grew; each checkpoint lands in the database and in the folder outside it."""
    queue = f"checkpoints-{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(
        update={
            "audit_checkpoint_minutes": 0.005,  # 0.3 s
            "audit_checkpoint_dir": sink,
            "task_queue": queue,
            "workflow_id_prefix": f"{queue}-",
        }
    )
    append(database, 3)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(temporal_env.client, queue, database, executor, settings=settings)
        async with worker:
            await start_checkpoints(temporal_env.client, settings)
            await start_checkpoints(temporal_env.client, settings)  # a second worker's: no-op
            try:
                assert await eventually(lambda: signed_sizes(database) == [3])
                append(database, 2)
                assert await eventually(lambda: signed_sizes(database) == [3, 5])
                await asyncio.sleep(1.5)  # rounds with nothing new sign nothing
                assert signed_sizes(database) == [3, 5]
                assert len(list(sink.glob("checkpoint-*.txt"))) == 2
            finally:
                handle = temporal_env.client.get_workflow_handle(f"{queue}-audit-checkpoints")
                await handle.terminate("test over")


def test_erased_content_keeps_the_proof_and_the_guard_allows_nothing_else(
    signed_log: Database, sink: Path, tmp_path: Path
) -> None:
    """Erasing events' payloads (retention, a customer's request) leaves the log verifying
    against its checkpoints, online and offline; the database lets exactly that change
    through, and refuses an 'erasure' that changes anything else."""
    with signed_log.write() as connection:
        assert audit.erase(connection, [3, 5]) == 2
        assert audit.erase(connection, [3]) == 0  # already erased
    result = verify(signed_log, [sink])
    assert result.ok and result.checkpoint_size == 15
    with signed_log.read_session() as session:
        lines = list(audit_reads.export_lines(session, audit_reads.AuditFilter(), "jsonl"))
    third = json.loads(lines[2])
    assert third["erased"] is True and third["payload"] is None and third["payload_sha256"]
    export = tmp_path / "audit.jsonl"
    export.write_text("".join(lines))
    argv = ["--export", str(export), "--key", SIGNER.verifier_key, "--checkpoints", str(sink)]
    assert offline_verifier.main(argv) == 0
    for values in (
        {"erased": True, "payload": "{}", "actor": "mallory"},
        {"erased": True, "payload": '{"n": 99}'},
        {"erased": False, "payload": '{"n": 99}'},
    ):
        with pytest.raises(DBAPIError, match="append-only"), signed_log.engine.begin() as c:
            c.execute(update(EVENTS).where(EVENTS.c.seq == 7).values(**values))


def test_the_command_line_finds_the_dev_stacks_key_and_folder(tmp_path: Path) -> None:
    """`countersign dev` keeps its audit key and checkpoint folder under DATA_DIR; without a
    key configured, the command line (and the API) use those, so they agree with it."""
    assert checkpoints.signer_of(load_settings(data_dir=tmp_path)).public_key == SIGNER.public_key
    assert checkpoints.sinks_of(load_settings(data_dir=tmp_path)) == []
    key = checkpoints.new_key()
    (tmp_path / checkpoints.KEY_FILE).write_text(key + "\n")
    (tmp_path / checkpoints.SINK_DIR).mkdir()
    settings = load_settings(data_dir=tmp_path)
    assert checkpoints.signer_of(settings).public_key == checkpoints.Signer("x", key).public_key
    assert checkpoints.sinks_of(settings) == [tmp_path / checkpoints.SINK_DIR]
    configured = load_settings(data_dir=tmp_path, audit_signing_key=OTHER_KEY)
    assert checkpoints.signer_of(configured).public_key == OTHER.public_key  # settings win

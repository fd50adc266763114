"""Verifying the audit log: the hash chain within it, and the Merkle tree it forms against
every signed checkpoint (`records.checkpoints`). Split from `records.audit`, which appends
and reads; verify walks the whole log and is where its speed matters
(`bench/audit_verify.py`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlmodel import Session

from records import merkle
from records.audit import GENESIS_HASH, HASHED_FIELDS, _quote, format_time


@dataclass(frozen=True)
class Verification:
    ok: bool
    events_checked: int
    first_bad_seq: int | None
    # What is wrong, in words (None when ok), and the largest signed size the log matched.
    problem: str | None = None
    checkpoint_size: int | None = None


@dataclass(frozen=True)
class Signed:
    """A checkpoint to hold the log to: its tree size and root, and when it was signed."""

    size: int
    root: bytes
    at: str


class _Tree:
    """The Merkle tree's right edge while events stream past, in O(log n) memory: the
    roots of the perfect subtrees so far, the largest first."""

    def __init__(self) -> None:
        self.size, self.edge = 0, list[bytes]()

    def add(self, leaf: bytes) -> None:
        self.edge.append(leaf)
        carries = (self.size ^ (self.size + 1)).bit_length() - 1
        for _ in range(carries):
            right = self.edge.pop()
            self.edge[-1] = merkle.node_hash(self.edge[-1], right)
        self.size += 1

    def root(self) -> bytes:
        if not self.edge:
            return merkle.EMPTY_ROOT
        acc = self.edge[-1]
        for left in reversed(self.edge[:-1]):
            acc = merkle.node_hash(left, acc)
        return acc


def verify(
    session: Session, *, checkpoints: Sequence[Signed] = (), batch_size: int = 20_000
) -> Verification:
    """Walk the log in `seq` order; name the first event that does not hold, and hold the
    log to every signed checkpoint (oldest first).

    Inside the log, an event is bad when its `seq` is not the next one (a deletion or
    insertion), its `prev_hash` is not the previous event's hash (reordering), its hash
    does not match its fields (an edit) or its payload does not match its digest. Someone
    who rewrites the chain too is caught by the checkpoints: the tree of the first `size`
    events must have the signed root, and a log shorter than a signed size was truncated.

    Rows come straight from the driver in keyset batches (`seq` after the last one seen), so
    memory stays flat at any length on either database. Each row's hashed bytes are written
    out here rather than through `hash_input` and `leaf_bytes` (the same bytes;
    `tests/test_audit_chain.py` checks them for arbitrary fields): the calls cost about a
    quarter of the time.
    """
    connection = session.connection()
    expected_seq, prev_hash, checked, after = 1, GENESIS_HASH, 0, 0
    q, sha256, parse = _quote, hashlib.sha256, datetime.fromisoformat
    tree, pending = _Tree(), sorted(checkpoints, key=lambda c: c.size)
    edge = tree.edge
    matched: int | None = None
    while True:
        cursor = connection.execute(_VERIFY_BATCH, {"after": after, "size": batch_size}).cursor
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        for row in rows:
            seq, linked, stored, payload_sha, erased = row[:5]
            at, actor, role, action, draft, version, sha, payload = row[5:]
            checked += 1
            if at.__class__ is str and len(at) == 26 and at[10] == " ":
                # SQLite's stored 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): format_time's bytes
                # without building a datetime.
                when = f"{at[:10]}T{at[11:]}+00:00"
            else:
                when = format_time(parse(at) if isinstance(at, str) else at)
            d, v = (
                "null" if draft is None else int(draft),
                "null" if version is None else int(version),
            )
            c = "null" if sha is None else q(sha)
            # Each field quoted once, for the chain's document and the leaf's alike.
            qw, qa, qr, qx = q(when), q(actor), q(role), q(action)
            hashed = f"{prev_hash}|{seq}|[{qw},{qa},{qr},{qx},{d},{v},{c},{q(payload)}]"
            # An erased event's content is gone: its place in the chain and its digest,
            # which the tree's leaf commits to, are what remain to check.
            if (
                seq != expected_seq
                or linked != prev_hash
                or (
                    not erased
                    and (
                        stored != sha256(hashed.encode()).hexdigest()
                        or payload_sha != sha256(payload.encode()).hexdigest()
                    )
                )
            ):
                return Verification(
                    ok=False,
                    events_checked=checked,
                    first_bad_seq=seq,
                    problem=f"event {seq} is not the one the chain recorded (edited, "
                    "inserted, deleted or moved)",
                    checkpoint_size=matched,
                )
            leaf = (
                f'\x00{{"action":{qx},"actor":{qa},"at":{qw},'
                f'"content_sha256":{c},"draft_id":{d},"payload_sha256":"{payload_sha}",'
                f'"role":{qr},"seq":{seq},"version":{v}}}'
            )
            # The tree's right edge, inline (`_Tree.add`): this runs once an event.
            node = sha256(leaf.encode()).digest()
            size = tree.size
            while size & 1:  # each trailing one completes a subtree
                node = sha256(b"\x01" + edge.pop() + node).digest()
                size >>= 1
            edge.append(node)
            tree.size += 1
            while pending and pending[0].size == tree.size:
                signed = pending.pop(0)
                if tree.root() != signed.root:
                    first = (matched or 0) + 1
                    return Verification(
                        ok=False,
                        events_checked=checked,
                        first_bad_seq=first,
                        problem=f"events {first} to {signed.size} are not what the checkpoint "
                        f"signed at {signed.at} committed to (rewritten, with the chain "
                        "recomputed)",
                        checkpoint_size=matched,
                    )
                matched = signed.size
            expected_seq, prev_hash = seq + 1, stored
        if len(rows) < batch_size:
            break
        after = rows[-1][0]
    while pending and pending[0].size == 0:
        matched = pending.pop(0).size
    if pending:
        signed = pending[-1]
        return Verification(
            ok=False,
            events_checked=checked,
            first_bad_seq=checked + 1,
            problem=f"the log ends at event {checked}, but the checkpoint signed at {signed.at} "
            f"holds {signed.size} events: events {checked + 1} to {signed.size} were removed",
            checkpoint_size=matched,
        )
    return Verification(
        ok=True, events_checked=checked, first_bad_seq=None, checkpoint_size=matched
    )


_VERIFY_COLUMNS = ", ".join(
    ("seq", "prev_hash", "hash", "payload_sha256", "erased", *HASHED_FIELDS)
)
_VERIFY_BATCH = text(
    f"SELECT {_VERIFY_COLUMNS} FROM audit_events "  # noqa: S608 - constant column names
    "WHERE seq > :after ORDER BY seq LIMIT :size"
)

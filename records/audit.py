"""The audit trail: append-only, gapless `seq`, hash-chained.

Each event's `hash` is sha256 over `prev_hash`, `seq` and the canonical JSON of every field
an auditor is shown (time, actor, role, action, draft, version, content hash, payload), so
editing, deleting, inserting or reordering any event breaks the chain from that event on.
Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by
the write lock every write session already holds (see `records.db`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import CursorResult, bindparam, text, update
from sqlalchemy import select as select_core
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from records import bulk, merkle
from records.tables import EVENTS, NODES
from records.types import utcnow

GENESIS_HASH = "0" * 64
_ADVISORY_LOCK_ID = 0x436F756E74  # "Count": any constant shared by every writer


SAFE_INTEGER = 2**53 - 1  # the largest integer RFC 8785 (I-JSON) writes exactly


def canonical_json(value: Any) -> str:
    """RFC 8785 canonical JSON of a payload (docs/audit-format.md): objects with their
    members sorted by the names' UTF-16 code units, no white space, strings as JSON writes
    them with only the required escapes. Payloads hold no fractional numbers, and integers
    only within I-JSON's exact range: anything else is refused, never rounded.
    (`tests/test_audit_chain.py` holds this to the `rfc8785` reference for any value.)"""
    if _flat(value):  # most payloads: orjson writes them as RFC 8785 does, in C
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError as error:  # a lone surrogate is not Unicode text
            raise ValueError(str(error)) from error
    out: list[str] = []
    _canonical(value, out)
    return "".join(out)


def _flat(value: Any) -> bool:
    """An object of ASCII names (sorted alike in UTF-16 and in UTF-8, as orjson sorts)
    whose values are strings, nulls, booleans or integers within I-JSON's range. (orjson
    escapes as RFC 8785 does and refuses a lone surrogate.)"""
    return type(value) is dict and all(
        type(name) is str
        and name.isascii()
        and (
            item is None
            or type(item) in (str, bool)
            or (type(item) is int and -SAFE_INTEGER <= item <= SAFE_INTEGER)
        )
        for name, item in value.items()
    )


def _canonical(value: Any, out: list[str]) -> None:
    """Writes `value` onto `out` (a list of pieces, not a generator: an event is written
    on every post received and every action, and this is most of its cost)."""
    if value is None or value is True or value is False:
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, str):
        value.encode()  # a lone surrogate is not Unicode text: refused here
        out.append(_quote(value))
    elif isinstance(value, int):
        if abs(value) > SAFE_INTEGER:
            raise ValueError(f"{value} is outside the integers RFC 8785 writes exactly")
        out.append(str(int(value)))
    elif isinstance(value, dict):
        if not all(isinstance(name, str) for name in value):
            bad = next(name for name in value if not isinstance(name, str))
            raise ValueError(f"a payload's member names are strings, not {bad!r}")
        out.append("{")
        ascii_names = all(name.isascii() for name in value)  # then UTF-16 order is str order
        for n, name in enumerate(sorted(value, key=None if ascii_names else _utf16)):
            out.append(f"{',' if n else ''}{_quote(name)}:")
            _canonical(value[name], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _canonical(item, out)
        out.append("]")
    else:
        raise ValueError(f"an audit payload holds no {type(value).__name__} ({value!r})")


def _utf16(name: str) -> bytes:
    """RFC 8785 orders names by their UTF-16 code units."""
    return name.encode("utf-16-be")


def format_time(at: datetime) -> str:
    if at.tzinfo is None:  # SQLite hands back UTC without a zone
        return at.isoformat(timespec="microseconds") + "+00:00"
    return at.astimezone(UTC).isoformat(timespec="microseconds")


# The hashed document: every field an auditor is shown, as a JSON array in this fixed order
# (canonical without sorting keys, which keeps verification fast).
HASHED_FIELDS: tuple[str, ...] = (
    "at",
    "actor",
    "role",
    "action",
    "draft_id",
    "version",
    "content_sha256",
    "payload",
)
_quote = json.encoder.encode_basestring  # C-accelerated JSON string quoting


def _document(
    at: str,
    actor: str,
    role: str,
    action: str,
    draft_id: int | None,
    version: int | None,
    content_sha256: str | None,
    payload: str,
) -> str:
    """The hashed document, byte for byte `json.dumps([...], separators=(",", ":"),
    ensure_ascii=False)` of the fields in `HASHED_FIELDS` order, written out for speed."""
    q = _quote
    return (
        f"[{q(at)},{q(actor)},{q(role)},{q(action)},"
        f"{'null' if draft_id is None else int(draft_id)},"
        f"{'null' if version is None else int(version)},"
        f"{'null' if content_sha256 is None else q(content_sha256)},{q(payload)}]"
    )


def hash_input(prev_hash: str, seq: int, fields: tuple[Any, ...]) -> bytes:
    """The exact bytes an event's hash covers: previous hash, seq, the hashed document."""
    return f"{prev_hash}|{seq}|{_document(*fields)}".encode()


def event_hash(prev_hash: str, seq: int, fields: tuple[Any, ...]) -> str:
    return hashlib.sha256(hash_input(prev_hash, seq, fields)).hexdigest()


def leaf_bytes(seq: int, fields: tuple[Any, ...], payload_sha256: str) -> bytes:
    """An event's leaf in the Merkle tree (docs/audit-format.md): the RFC 8785 canonical
    JSON of every field shown to an auditor, the payload by its digest. With ASCII keys and
    only strings, integers and nulls as values, sorted `json.dumps` is exactly RFC 8785
    (`tests/test_audit_tree.py` holds it to the `rfc8785` package for any values)."""
    at, actor, role, action, draft_id, version, content_sha256, _payload = fields
    q = _quote
    return (
        f'{{"action":{q(action)},"actor":{q(actor)},"at":{q(at)},'
        f'"content_sha256":{"null" if content_sha256 is None else q(content_sha256)},'
        f'"draft_id":{"null" if draft_id is None else int(draft_id)},'
        f'"payload_sha256":{q(payload_sha256)},"role":{q(role)},"seq":{int(seq)},'
        f'"version":{"null" if version is None else int(version)}}}'
    ).encode()


def hashed_fields(event: Any) -> tuple[Any, ...]:
    """Every field shown to an auditor, in `HASHED_FIELDS` order, as it is hashed (of an
    `AuditEvent` or a row of its table)."""
    return (
        format_time(event.at),
        event.actor,
        event.role,
        event.action,
        event.draft_id,
        event.version,
        event.content_sha256,
        event.payload,
    )


@dataclass(frozen=True, kw_only=True)
class NewEvent:
    actor: str
    role: str
    action: str
    payload: dict[str, Any] = field(default_factory=dict)
    draft_id: int | None = None
    version: int | None = None
    content_sha256: str | None = None
    event_key: str | None = None


@dataclass(frozen=True)
class Appended:
    seq: int
    hash: str


# Core statements on the table, compiled once: appends happen on every transition.
_HEAD = select(EVENTS.c.seq, EVENTS.c.hash).order_by(EVENTS.c.seq.desc()).limit(1)
_NODE = select_core(NODES.c.hash).where(
    NODES.c.level == bindparam("level"), NODES.c.idx == bindparam("idx")
)
_BY_KEY = select(EVENTS.c.seq).where(EVENTS.c.event_key == bindparam("key"))
_LOCKED_HEAD = text(
    "SELECT head_seq AS seq, head_hash AS hash, node_level AS level, node_idx AS idx,"
    " node_hash AS node FROM audit_chain_head(:key, :seq, :hash)"
)

# A transaction to append in: an ORM session, or a Core connection (the activities).
Writer = Session | Connection


def head_seq(session: Writer) -> int:
    """The `seq` of the newest event (0 when the record is empty): the size of the tree."""
    head = session.execute(_HEAD).first()
    return 0 if head is None else int(head.seq)


def recorded(session: Writer, event_key: str) -> int | None:
    """The `seq` of the event written under `event_key`, if an earlier attempt wrote it."""
    seq = session.execute(_BY_KEY, {"key": event_key}).scalar_one_or_none()
    return None if seq is None else int(seq)


def append(session: Writer, new: NewEvent) -> Appended:
    """Add one event to the caller's transaction; the caller commits it with the change.

    An `event_key` is unique: a caller that may be retried checks `recorded` first (it has
    to, to skip its own change too); a duplicate that slips through fails the transaction.
    """
    return append_many(session, [new])[0]


def append_many(session: Writer, events: list[NewEvent]) -> list[Appended]:
    """`append` for several events in one go (a batch of inbound posts): the chain and the
    tree grow exactly as by one `append` after another, with one lock, one read of the
    head, one of the tree nodes the new leaves pair with (none when this process wrote
    them, `_Edge`), and the inserts of the events and their nodes (on PostgreSQL the lock,
    the head and the nodes are one round trip, `_locked_head`, and the inserts one
    statement)."""
    if not events:
        return []
    seq, prev_hash, read_edge = _locked_head(session)
    # The tree's right edge, which the new leaves pair with: as this process last left it,
    # unless another appended since (or this one has not yet), then as stored.
    tree = _edge.at(seq, prev_hash)
    if tree is None:
        tree = read_edge if read_edge is not None else _stored_edge(session, seq)
    added_nodes: dict[tuple[int, int], bytes] = {}

    def siblings(wanted: list[tuple[int, int]]) -> list[bytes]:
        return [tree[key] for key in wanted]

    rows, appended = [], []
    for new in events:
        seq += 1
        at, payload = utcnow(), canonical_json(new.payload)
        fields = (
            format_time(at), new.actor, new.role, new.action, new.draft_id, new.version,
            new.content_sha256, payload,
        )  # fmt: skip
        digest = event_hash(prev_hash, seq, fields)
        payload_sha256 = hashlib.sha256(payload.encode()).hexdigest()
        leaf = merkle.leaf_hash(leaf_bytes(seq, fields, payload_sha256))
        for level, index, node in merkle.completed(seq - 1, leaf, siblings):
            tree[(level, index)] = added_nodes[(level, index)] = node
        rows.append({
            "seq": seq, "at": at, "actor": new.actor, "role": new.role, "action": new.action,
            "draft_id": new.draft_id, "version": new.version,
            "content_sha256": new.content_sha256, "payload": payload,
            "payload_sha256": payload_sha256, "prev_hash": prev_hash, "hash": digest,
            "event_key": new.event_key, "erased": False,
        })  # fmt: skip
        appended.append(Appended(seq=seq, hash=digest))
        prev_hash = digest
    connection = session.connection() if isinstance(session, Session) else session
    new_nodes = [{"level": lv, "idx": ix, "hash": h.hex()} for (lv, ix), h in added_nodes.items()]
    bulk.insert_each(connection, [(NODES, new_nodes), (EVENTS, rows)])
    _edge.remember(seq, prev_hash, tree)
    return appended


class _Edge:
    """The tree's right edge as this process last wrote it: the roots of its perfect
    subtrees (one per bit of its size), which the next appends pair with, under the head
    they belong to.

    Every append read those nodes back from the table, a query per transition (a sixth of
    the worker's time in appends, issue 24). They are what this process itself wrote last,
    unless another process appended since; the head (`seq` and `hash`), which every append
    reads under the chain's lock anyway, tells which. A head that does not match (another
    process appended, or the transaction that wrote these rolled back) reads them from the
    table. One snapshot, replaced whole: threads read it without a lock."""

    def __init__(self) -> None:
        self._snapshot: tuple[tuple[int, str], dict[tuple[int, int], bytes]] | None = None

    def at(self, seq: int, head_hash: str) -> dict[tuple[int, int], bytes] | None:
        """The edge of the tree whose head is event `seq` with `head_hash`, if it is the
        one this process last wrote (a copy: the caller grows it)."""
        snapshot = self._snapshot
        if snapshot is None or snapshot[0] != (seq, head_hash):
            return None
        return dict(snapshot[1])

    def head(self) -> tuple[int, str]:
        """The head this process last wrote (none yet: one no record has)."""
        snapshot = self._snapshot
        return (-1, "") if snapshot is None else snapshot[0]

    def remember(self, seq: int, head_hash: str, tree: dict[tuple[int, int], bytes]) -> None:
        """`tree` (the old edge and every node added) after appending up to event `seq`."""
        edge = {key: tree[key] for key in merkle.perfect_subtrees(0, seq)}
        self._snapshot = ((seq, head_hash), edge)


_edge = _Edge()


def _stored_edge(session: Writer, size: int) -> dict[tuple[int, int], bytes]:
    """The right edge of the tree of `size` leaves, as stored."""
    edge = merkle.perfect_subtrees(0, size)
    return dict(zip(edge, _stored_nodes(session, edge), strict=True)) if edge else {}


def _stored_nodes(session: Writer, wanted: list[tuple[int, int]]) -> list[bytes]:
    """The stored hashes of `wanted` nodes (level, index), in that order. One statement,
    built once: its two lists, the levels and the indexes, are answered by the primary key
    probing each pair, and the few other nodes they pair into are left here. (A clause per
    level was built and compiled on every read, most of its cost; a list of row values is
    a scan of the whole table on SQLite.)"""
    rows = session.execute(
        _NODES_AMONG,
        {"levels": sorted({level for level, _ in wanted}),
         "indexes": sorted({index for _, index in wanted})},
    )  # fmt: skip
    found = {(row.level, row.idx): bytes.fromhex(row.hash) for row in rows}
    return [found[key] for key in wanted]


_NODES_AMONG = select_core(NODES.c.level, NODES.c.idx, NODES.c.hash).where(
    NODES.c.level.in_(bindparam("levels", expanding=True)),
    NODES.c.idx.in_(bindparam("indexes", expanding=True)),
)


def erase(connection: Connection, seqs: list[int]) -> int:
    """Erase the payloads of events `seqs` (retention, a customer's request): the content
    goes, `payload_sha256` and the proof stay (docs/audit-format.md). The database's guard
    lets this change through and no other. How many were erased now."""
    if not seqs:
        return 0
    done: CursorResult[Any] = connection.execute(
        update(EVENTS)
        .where(EVENTS.c.seq.in_(seqs), EVENTS.c.erased.is_(False))
        .values(payload="{}", erased=True)
    )
    return int(done.rowcount)


def tree_nodes(session: Writer) -> merkle.Nodes:
    """Reads stored tree nodes one at a time (proofs need O(log n) of them)."""

    def node(level: int, index: int) -> bytes:
        value = session.execute(_NODE, {"level": level, "idx": index}).scalar_one()
        return bytes.fromhex(value)

    return node


def _locked_head(session: Writer) -> tuple[int, str, dict[tuple[int, int], bytes] | None]:
    """The newest event's `seq` and hash (0 and the genesis hash for an empty record), read
    once this transaction holds the chain, and the tree's right edge if it was read with
    them (else None: `append_many` has it from `_Edge`, or reads it).

    On PostgreSQL `audit_chain_head` (migration 0029) takes the advisory lock, then reads
    with a snapshot taken after the lock was granted, in one round trip; it is told the
    head this process last wrote, and answers the edge's nodes too when the head is
    another's. On SQLite the write lock, which every write holds from its first statement,
    serialises, and a read in the process costs no round trip."""
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name != "postgresql":
        head = session.execute(_HEAD).first()
        return (0, GENESIS_HASH, None) if head is None else (int(head.seq), str(head.hash), None)
    known_seq, known_hash = _edge.head()
    rows = session.execute(
        _LOCKED_HEAD, {"key": _ADVISORY_LOCK_ID, "seq": known_seq, "hash": known_hash}
    ).all()
    if not rows:
        return 0, GENESIS_HASH, {}
    seq, head_hash = int(rows[0].seq), str(rows[0].hash)
    if (seq, head_hash) == (known_seq, known_hash):
        return seq, head_hash, None
    return seq, head_hash, {(r.level, r.idx): bytes.fromhex(r.node) for r in rows}


# Verification lives in records.audit_verify; these names stay reachable from here.
from records.audit_verify import Signed as Signed  # noqa: E402
from records.audit_verify import Verification as Verification  # noqa: E402
from records.audit_verify import _Tree as _Tree  # noqa: E402
from records.audit_verify import verify as verify  # noqa: E402

"""Verification offline: an export and its checkpoints checked by the standalone verifier
(run in an isolated interpreter, where it can import nothing of Countersign) and by a
verifier this test writes from docs/audit-format.md alone. On every tamper case the three
(the service on its database, the standalone verifier, the one written here) agree."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, update
from sqlalchemy.engine import Connection

from records import audit, audit_reads, checkpoints
from records.db import Database
from records.tables import EVENTS
from tests.helpers import around_the_trigger
from tests.test_audit_checkpoints import SIGNER, append, rebuild, sign

VERIFIER = Path(__file__).resolve().parent.parent / "countersign" / "offline_verifier.py"


# --- a verifier written from docs/audit-format.md alone ------------------------------------


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962's Merkle Tree Hash, written as the RFC states it (recursively)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def jcs(value: object) -> str:
    """RFC 8785 for what the format allows (strings, integers, booleans, null)."""
    if isinstance(value, dict):
        names = sorted(value, key=lambda n: n.encode("utf-16-be"))
        return (
            "{"
            + ",".join(json.dumps(n, ensure_ascii=False) + ":" + jcs(value[n]) for n in names)
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def doc_verifier(lines: list[str], notes: list[str]) -> tuple[bool, int | None]:
    """(ok, first bad seq) from the format document, the signed-note spec and RFC 6962."""
    name, public = SIGNER.name, SIGNER.public_key
    key = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    signed: dict[int, bytes] = {}
    for note in notes:
        text, _, signature = note.partition("\n\n")
        raw = base64.b64decode(signature.split(" ")[2])
        assert raw[:4] == key
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], (text + "\n").encode())
        except InvalidSignature:
            return False, None
        _, size, root, *_ = text.split("\n")
        signed[int(size)] = base64.b64decode(root)
    events = [json.loads(line) for line in lines]
    prev, leaves = "0" * 64, []
    for number, event in enumerate(events, 1):
        payload = jcs(event["payload"])
        fields = [event[k] for k in ("at", "actor", "role", "action", "draft_id", "version")]
        document = json.dumps(
            [*fields, event["content_sha256"], payload], separators=(",", ":"), ensure_ascii=False
        )
        chain = hashlib.sha256(f"{prev}|{event['seq']}|{document}".encode()).hexdigest()
        digest = hashlib.sha256(payload.encode()).hexdigest()
        if event["seq"] != number or event["prev_hash"] != prev or event["hash"] != chain:
            return False, number
        if event["payload_sha256"] != digest:
            return False, number
        prev = event["hash"]
        names = ("action", "actor", "at", "content_sha256", "draft_id", "payload_sha256")
        leaf = {k: event[k] for k in (*names, "role", "seq", "version")}
        leaves.append(hashlib.sha256(b"\x00" + jcs(leaf).encode()).digest())
    matched = 0
    for size in sorted(signed):
        if size > len(leaves):
            return False, len(leaves) + 1
        if mth(leaves[:size]) != signed[size]:
            return False, matched + 1
        matched = size
    return True, None


# --- the cases ------------------------------------------------------------------------------


def exported(database: Database, folder: Path) -> Path:
    target = folder / "audit.jsonl"
    with database.read_session() as session:
        target.write_text(
            "".join(audit_reads.export_lines(session, audit_reads.AuditFilter(), "jsonl"))
        )
    return target


def standalone(export: Path, sink: Path) -> subprocess.CompletedProcess[str]:
    """The one-file verifier in an isolated interpreter: no project path, no environment."""
    command = [sys.executable, "-I", str(VERIFIER), "--export", str(export)]
    command += ["--key", SIGNER.verifier_key, "--checkpoints", str(sink)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")


def truncate(n: int) -> Callable[[Connection], None]:
    def tamper(conn: Connection) -> None:
        conn.execute(delete(EVENTS).where(EVENTS.c.seq > 15 - n))
        rebuild(conn)

    return tamper


def rewrite(conn: Connection) -> None:
    conn.execute(update(EVENTS).where(EVENTS.c.seq == 12).values(actor="mallory"))
    rebuild(conn)


def renumber(conn: Connection) -> None:
    conn.execute(delete(EVENTS).where(EVENTS.c.seq == 4))
    for seq in range(5, 16):
        conn.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(seq=seq - 1))
    rebuild(conn)


def edit_only(conn: Connection) -> None:
    conn.execute(update(EVENTS).where(EVENTS.c.seq == 7).values(role="admin"))


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        pytest.param(None, None, id="untouched"),
        pytest.param(truncate(1), 15, id="tail-truncated-by-1"),
        pytest.param(truncate(6), 10, id="tail-truncated-by-6"),
        pytest.param(rewrite, 11, id="rewritten-chain-recomputed"),
        pytest.param(renumber, 1, id="deleted-renumbered-recomputed"),
        pytest.param(edit_only, 7, id="edited"),
    ],
)
def test_the_service_the_standalone_verifier_and_the_documents_agree(
    database: Database,
    tmp_path: Path,
    tamper: Callable[[Connection], None] | None,
    first_bad: int | None,
) -> None:
    sink = tmp_path / "checkpoints"
    append(database, 10)
    sign(database, [sink])
    append(database, 5)
    sign(database, [sink])
    if tamper is not None:
        with around_the_trigger(database) as conn:
            tamper(conn)
    with database.read_session() as session:
        held = checkpoints.held(session.connection(), SIGNER, [sink])
        service = audit.verify(session, checkpoints=held.signed)
    export = exported(database, tmp_path)
    offline = standalone(export, sink)
    mine = doc_verifier(export.read_text().splitlines(), checkpoints.from_sink(sink))
    assert (service.ok, service.first_bad_seq) == (first_bad is None, first_bad)
    assert mine == (first_bad is None, first_bad)
    assert offline.returncode == (0 if first_bad is None else 1), offline.stdout + offline.stderr
    if first_bad is None:
        assert offline.stdout.startswith("ok: 15 events, as signed at 15 events")
    else:
        assert offline.stdout.startswith("NOT OK:") and service.problem


def test_one_changed_byte_of_an_export_is_found_offline(database: Database, tmp_path: Path) -> None:
    sink = tmp_path / "checkpoints"
    append(database, 6)
    sign(database, [sink])
    export = exported(database, tmp_path)
    assert standalone(export, sink).returncode == 0
    data = bytearray(export.read_bytes())
    where = data.index(b'"user3"') + 2
    data[where] ^= 0x01  # one bit of one actor's name
    export.write_bytes(bytes(data))
    found = standalone(export, sink)
    assert found.returncode == 1 and "event 4" in found.stdout

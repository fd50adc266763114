"""The audit trail for auditors (and supervisors): search, verify, export."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import (
    DatabaseDep,
    Principal,
    ReadSession,
    SettingsDep,
    WriteSession,
    require_roles,
)
from api.schemas import Page, UtcDatetime
from lifecycle.words import Role
from records import audit, audit_reads, checkpoints, cursor, merkle
from records.errors import Invalid
from records.fields import USERNAME_PATTERN

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[Principal, Depends(require_roles(Role.auditor))]
AuditReader = Annotated[Principal, Depends(require_roles(Role.auditor, Role.supervisor))]


class AuditEventPublic(BaseModel):
    seq: int
    at: str
    actor: str
    role: str
    action: str
    draft_id: int | None
    version: int | None
    content_sha256: str | None
    payload: dict[str, Any] | None  # None once erased
    payload_sha256: str | None
    erased: bool = False
    prev_hash: str
    hash: str


class VerifyResult(BaseModel):
    ok: bool
    events_checked: int
    first_bad_seq: int | None
    problem: str | None = None  # what is wrong, in words
    checkpoint_size: int | None = None  # the largest signed checkpoint the log matched


class CheckpointPublic(BaseModel):
    tree_size: int
    root_hash: str
    signed_at: str
    note: str  # the signed note, verbatim (C2SP tlog-checkpoint)


class CheckpointList(BaseModel):
    items: list[CheckpointPublic]
    log: str  # the log's name: each checkpoint's origin and its signature's key name
    verifier_key: str  # <name>+<key ID>+<base64(0x01 || Ed25519 public key)>


def audit_filter(
    draft_id: Annotated[int | None, Query(ge=1, le=cursor.MAX_ID)] = None,
    actor: Annotated[str | None, Query(max_length=64, pattern=USERNAME_PATTERN)] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")] = None,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
) -> audit_reads.AuditFilter:
    return audit_reads.AuditFilter(
        draft_id=draft_id, actor=actor, action=action, since=since, until=until
    )


Filter = Annotated[audit_reads.AuditFilter, Depends(audit_filter)]


@router.get("", response_model=Page[AuditEventPublic])
def search(
    _caller: AuditReader,
    session: ReadSession,
    where: Filter,
    cursor_: Annotated[
        str | None, Query(alias="cursor", max_length=512, pattern=r"^[A-Za-z0-9_-]+=*$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[AuditEventPublic]:
    after = None
    if cursor_ is not None:
        (after,) = cursor.decode(cursor_, 1)
        if not isinstance(after, int) or not 0 <= after <= cursor.MAX_ID:
            raise Invalid("cursor is not one this API issued", field="cursor")
    rows, last = audit_reads.search(session, where, after_seq=after, limit=limit)
    return Page(
        items=[AuditEventPublic(**audit_reads.as_record(e)) for e in rows],
        next_cursor=cursor.encode([last]) if last is not None else None,
    )


@router.get("/verify", response_model=VerifyResult)
def verify(_caller: Auditor, session: ReadSession, settings: SettingsDep) -> VerifyResult:
    """The log checked within itself and against every signed checkpoint, in the database
    and in the folder outside it."""
    signer = checkpoints.signer_of(settings)
    held = checkpoints.held(session.connection(), signer, checkpoints.sinks_of(settings))
    if held.problem is not None:
        return VerifyResult(ok=False, events_checked=0, first_bad_seq=None, problem=held.problem)
    result = audit.verify(session, checkpoints=held.signed)
    return VerifyResult(**dataclasses.asdict(result))


@router.get("/checkpoints", response_model=CheckpointList)
def list_checkpoints(
    _caller: AuditReader, session: ReadSession, settings: SettingsDep
) -> CheckpointList:
    """Every signed checkpoint, oldest first, with the key that verifies them."""
    signer = checkpoints.signer_of(settings)
    items = []
    for note in checkpoints.stored(session.connection()):
        found = checkpoints.open_note(note, name=signer.name, public_key=signer.public_key)
        items.append(
            CheckpointPublic(
                tree_size=found.size, root_hash=found.root.hex(), signed_at=found.at, note=note
            )
        )
    return CheckpointList(items=items, log=signer.name, verifier_key=signer.verifier_key)


class Proof(BaseModel):
    kind: Literal["inclusion", "consistency"]
    tree_size: int
    leaf_index: int | None = None  # inclusion: the event's seq - 1
    old_size: int | None = None  # consistency: the smaller tree
    hashes: list[str]  # base64, in RFC 6962's order


def _tree_size(session: ReadSession) -> int:
    return int(
        session.connection()
        .execute(text("SELECT COALESCE(MAX(seq), 0) FROM audit_events"))
        .scalar_one()
    )


@router.get("/proofs/inclusion", response_model=Proof)
def inclusion_proof(
    _caller: AuditReader,
    session: ReadSession,
    seq: Annotated[int, Query(ge=1, le=cursor.MAX_ID)],
    tree_size: Annotated[int, Query(ge=1, le=cursor.MAX_ID)],
) -> Proof:
    """That event `seq` is in the tree of `tree_size` events (RFC 6962 PATH), to check
    against a checkpoint of that size."""
    if seq > tree_size or tree_size > _tree_size(session):
        raise Invalid(f"no event {seq} in a tree of {tree_size} this log has", field="seq")
    nodes = audit.tree_nodes(session.connection())
    found = merkle.inclusion_proof(seq - 1, tree_size, nodes)
    return Proof(
        kind="inclusion",
        tree_size=tree_size,
        leaf_index=seq - 1,
        hashes=[base64.b64encode(h).decode() for h in found],
    )


@router.get("/proofs/consistency", response_model=Proof)
def consistency_proof(
    _caller: AuditReader,
    session: ReadSession,
    old_size: Annotated[int, Query(ge=1, le=cursor.MAX_ID)],
    tree_size: Annotated[int, Query(ge=1, le=cursor.MAX_ID)],
) -> Proof:
    """That the tree of `tree_size` events extends the tree of `old_size` (RFC 6962
    PROOF): what shows one checkpoint extends an earlier one."""
    if old_size > tree_size or tree_size > _tree_size(session):
        raise Invalid(
            f"no consistency from {old_size} to {tree_size} in this log", field="old_size"
        )
    nodes = audit.tree_nodes(session.connection())
    found = merkle.consistency_proof(old_size, tree_size, nodes)
    return Proof(
        kind="consistency",
        tree_size=tree_size,
        old_size=old_size,
        hashes=[base64.b64encode(h).decode() for h in found],
    )


@router.post("/checkpoints", response_model=CheckpointPublic, status_code=201)
def sign_checkpoint(
    _caller: Annotated[Principal, Depends(require_roles(Role.auditor, Role.admin))],
    session: WriteSession,
    settings: SettingsDep,
) -> CheckpointPublic:
    """Sign the tree as it stands now (the schedule also does, every few minutes)."""
    signer = checkpoints.signer_of(settings)
    found = checkpoints.issue(
        session.connection(), signer, sinks=checkpoints.sinks_of(settings), force=True
    )
    assert found is not None
    return CheckpointPublic(
        tree_size=found.size, root_hash=found.root.hex(), signed_at=found.at, note=found.note
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
def export(
    _caller: Auditor,
    database: DatabaseDep,
    where: Filter,
    format: Literal["csv", "jsonl"] = "jsonl",
) -> StreamingResponse:
    """Every matching event, streamed in batches: memory stays flat whatever the size."""

    def lines() -> Iterator[str]:
        with database.read_session() as session:
            yield from audit_reads.export_lines(session, where, format)

    media = "text/csv" if format == "csv" else "application/x-ndjson"
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    disposition = f'attachment; filename="audit-{stamp}.{format}"'
    return StreamingResponse(
        lines(), media_type=media, headers={"Content-Disposition": disposition}
    )

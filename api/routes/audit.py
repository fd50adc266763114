"""The audit trail for auditors (and supervisors): search, verify, export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel

from api.deps import DatabaseDep, Principal, ReadSession, require_roles
from api.schemas import Page
from records import audit, cursor
from records.errors import Invalid
from records.models import USERNAME_PATTERN, Role

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
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class VerifyResult(BaseModel):
    ok: bool
    events_checked: int
    first_bad_seq: int | None


def audit_filter(
    draft_id: Annotated[int | None, Query(ge=1, le=cursor.MAX_ID)] = None,
    actor: Annotated[str | None, Query(max_length=64, pattern=USERNAME_PATTERN)] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> audit.AuditFilter:
    return audit.AuditFilter(
        draft_id=draft_id, actor=actor, action=action, since=since, until=until
    )


Filter = Annotated[audit.AuditFilter, Depends(audit_filter)]


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
    rows, last = audit.search(session, where, after_seq=after, limit=limit)
    return Page(
        items=[AuditEventPublic(**audit.as_record(e)) for e in rows],
        next_cursor=cursor.encode([last]) if last is not None else None,
    )


@router.get("/verify", response_model=VerifyResult)
def verify(_caller: Auditor, session: ReadSession) -> VerifyResult:
    result = audit.verify(session)
    return VerifyResult(
        ok=result.ok, events_checked=result.events_checked, first_bad_seq=result.first_bad_seq
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
            yield from audit.export_lines(session, where, format)

    media = "text/csv" if format == "csv" else "application/x-ndjson"
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    disposition = f'attachment; filename="audit-{stamp}.{format}"'
    return StreamingResponse(
        lines(), media_type=media, headers={"Content-Disposition": disposition}
    )

"""Reading the audit trail: a page of it by filter (the API's and the audit page's), every
matching event streamed in constant memory, an event as an auditor is shown it, and the
export (JSON lines or CSV) built from those. Appending and the hashing are `records.audit`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from records.audit import HASHED_FIELDS, canonical_json, format_time
from records.audit_models import AuditEvent


@dataclass(frozen=True, kw_only=True)
class AuditFilter:
    draft_id: int | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(where: AuditFilter) -> Any:
    query = select(AuditEvent)
    if where.draft_id is not None:
        query = query.where(AuditEvent.draft_id == where.draft_id)
    if where.actor is not None:
        query = query.where(AuditEvent.actor == where.actor)
    if where.action is not None:
        query = query.where(AuditEvent.action == where.action)
    if where.since is not None:
        query = query.where(col(AuditEvent.at) >= where.since)
    if where.until is not None:
        query = query.where(col(AuditEvent.at) < where.until)
    return query


def search(
    session: Session, where: AuditFilter, *, after_seq: int | None, limit: int
) -> tuple[list[AuditEvent], int | None]:
    """Oldest first by seq; returns the page and the seq to continue after, if any."""
    query = _filtered(where)
    if after_seq is not None:
        query = query.where(col(AuditEvent.seq) > after_seq)
    rows = list(session.exec(query.order_by(col(AuditEvent.seq)).limit(limit + 1)).all())
    return rows[:limit], (rows[limit - 1].seq if len(rows) > limit else None)


def stream(session: Session, where: AuditFilter, *, batch_size: int = 2000) -> Iterator[AuditEvent]:
    """Every matching event in seq order, fetched in batches: constant memory at any size."""
    after = 0
    while True:
        batch = session.exec(
            _filtered(where)
            .where(col(AuditEvent.seq) > after)
            .order_by(col(AuditEvent.seq))
            .limit(batch_size)
        ).all()
        yield from batch
        if len(batch) < batch_size:
            return
        after = batch[-1].seq
        session.expunge_all()


def as_record(event: Any) -> dict[str, Any]:
    """The auditor's view of an event (an `AuditEvent`, or a row of its table), the payload
    parsed from its canonical JSON."""
    return {
        "seq": event.seq,
        "at": format_time(event.at),
        "actor": event.actor,
        "role": event.role,
        "action": event.action,
        "draft_id": event.draft_id,
        "version": event.version,
        "content_sha256": event.content_sha256,
        "payload": None if event.erased else json.loads(event.payload),
        "payload_sha256": event.payload_sha256,
        "erased": bool(event.erased),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


EXPORT_COLUMNS = ("seq", *HASHED_FIELDS, "payload_sha256", "erased", "prev_hash", "hash")


def export_lines(session: Session, where: AuditFilter, fmt: str) -> Iterator[str]:
    """The export, line by line (`jsonl`, or `csv` with a header row), streamed."""

    def csv_line(values: Any) -> str:
        buffer = io.StringIO()
        csv.writer(buffer).writerow(["" if v is None else v for v in values])
        return buffer.getvalue()

    if fmt == "csv":
        yield csv_line(EXPORT_COLUMNS)
    for event in stream(session, where):
        record = as_record(event)
        if fmt == "csv":
            payload = record["payload"]
            record["payload"] = "" if payload is None else canonical_json(payload)
            yield csv_line(record[c] for c in EXPORT_COLUMNS)
        else:
            yield json.dumps(record, sort_keys=True) + "\n"

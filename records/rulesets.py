"""Uploaded rule sets: which one is active, its source, and activating one (audited).

The rule set itself is compiled by `policies.engine`; this module only stores texts. The
active version is read per check (one indexed row), the source only when a process meets a
version it has not compiled yet (`policies.engine.RuleBook`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.engine import Connection

from records import audit
from records.tables import RULE_SETS
from records.types import utcnow


def _latest(*columns: Any) -> Any:
    """`columns` of the rule set activated last."""
    return select(*columns).order_by(RULE_SETS.c.activation.desc()).limit(1)


_ACTIVE = _latest(RULE_SETS.c.version)


@dataclass(frozen=True)
class Activation:
    version: str
    name: str
    uploaded_by: str
    uploaded_at: datetime


def active_version(connection: Connection) -> str | None:
    """The active uploaded version, or None while the shipped rule set is in force."""
    return connection.execute(_ACTIVE).scalar()


def source_of(connection: Connection, version: str) -> str:
    source = connection.execute(
        select(RULE_SETS.c.source).where(RULE_SETS.c.version == version)
    ).scalar()
    if source is None:
        raise LookupError(f"no rule set has version {version}")
    return str(source)


def active(connection: Connection) -> Activation | None:
    columns = (RULE_SETS.c.version, RULE_SETS.c.name, RULE_SETS.c.uploaded_by)
    row = connection.execute(_latest(*columns, RULE_SETS.c.uploaded_at)).first()
    return Activation(*row) if row is not None else None


def activate(
    connection: Connection, *, version: str, name: str, source: str, actor: str
) -> dict[str, Any]:
    """Make `version` the active rule set (storing it if new), with its audit event, in the
    caller's transaction. Uploading a version used before makes it active again."""
    latest = connection.execute(_latest(RULE_SETS.c.version, RULE_SETS.c.activation)).first()
    previous = latest.version if latest else None
    payload = {"name": name, "version": version, "previous_version": previous}
    if previous == version:
        return payload  # already in force: nothing changes, nothing to record
    activation = (latest.activation if latest else 0) + 1
    moved: CursorResult[Any] = connection.execute(
        update(RULE_SETS).where(RULE_SETS.c.version == version).values(activation=activation)
    )
    if moved.rowcount == 0:  # a new version
        connection.execute(
            RULE_SETS.insert().values(
                version=version,
                name=name,
                source=source,
                uploaded_by=actor,
                uploaded_at=utcnow(),
                activation=activation,
            )
        )
    audit.append(
        connection,
        audit.NewEvent(actor=actor, role="admin", action="policy.activated", payload=payload),
    )
    return payload

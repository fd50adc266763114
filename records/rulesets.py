"""Uploaded rule sets: which one is active, its source, and activating one (audited).

The rule set itself is compiled by `policies.engine`; this module only stores texts. The
active version is read per check (one indexed row), the source only when a process meets a
version it has not compiled yet (`policies.engine.RuleBook`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from records import audit
from records.tables import RULE_SETS
from records.types import utcnow

_ACTIVE = select(RULE_SETS.c.version).order_by(RULE_SETS.c.activation.desc()).limit(1)


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
    row = connection.execute(
        select(
            RULE_SETS.c.version, RULE_SETS.c.name, RULE_SETS.c.uploaded_by, RULE_SETS.c.uploaded_at
        )
        .order_by(RULE_SETS.c.activation.desc())
        .limit(1)
    ).first()
    return Activation(*row) if row is not None else None


def activate(
    connection: Connection, *, version: str, name: str, source: str, actor: str
) -> dict[str, Any]:
    """Make `version` the active rule set (storing it if new), with its audit event, in the
    caller's transaction. Uploading a version used before makes it active again."""
    previous = active_version(connection)
    activation = (connection.execute(select(func.max(RULE_SETS.c.activation))).scalar() or 0) + 1
    now = utcnow()
    known = connection.execute(
        select(RULE_SETS.c.version).where(RULE_SETS.c.version == version)
    ).scalar()
    if known is None:
        connection.execute(
            RULE_SETS.insert().values(
                version=version,
                name=name,
                source=source,
                uploaded_by=actor,
                uploaded_at=now,
                activation=activation,
            )
        )
    elif previous != version:
        connection.execute(
            update(RULE_SETS).where(RULE_SETS.c.version == version).values(activation=activation)
        )
    payload = {"name": name, "version": version, "previous_version": previous}
    if previous != version:
        audit.append(
            connection,
            audit.NewEvent(actor=actor, role="admin", action="policy.activated", payload=payload),
        )
    return payload

"""What every model shares: the channels, priorities and origins of posts, the statuses
of a publication, the patterns text from outside must match, and the `created_at`
column. The tables and API shapes are in a module per entity (`records.user_models`,
`post_models`, `draft_models` and `draft_shapes`, `customer_models`, `account_models`,
`notification_models`, `audit_models`, `access_tables`); `records.tables` gathers the
tables. `XBase` holds the fields a client may set, `XCreate` is the request body (unknown
fields refused), `XPublic` the response, and `X(XBase, table=True)` the table. The schema
itself is created only by the Alembic migrations in `alembic/versions/`.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Field
from sqlmodel.main import SQLModelConfig

from records.types import UTCDateTime, utcnow

FORBID_EXTRA = SQLModelConfig(extra="forbid")
FUTURE_SKEW = timedelta(minutes=5)  # how far ahead a platform's clock may be


class Channel(StrEnum):
    x = "x"
    facebook = "facebook"
    instagram = "instagram"
    mastodon = "mastodon"
    bluesky = "bluesky"
    webhook = "webhook"
    outbox = "outbox"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class Origin(StrEnum):
    """How a post came to us: talking *to* us (a mention, a reply in a thread), *about* us
    (found by listening for the brand's terms), or delivered by a webhook."""

    mention = "mention"
    reply = "reply"
    listening = "listening"
    webhook = "webhook"


MAX_RESPONSE_MINUTES = 30 * 24 * 60  # the longest first-response target (30 days)


class PublicationStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    confirmed = "confirmed"
    failed = "failed"


def created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{1,63}$"
# Text from outside never carries NUL (PostgreSQL cannot store it) nor, on one-line fields,
# other control characters.
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"
URL_PATTERN = r"^https?://[^\s\x00-\x1f\x7f]+$"

"""The optional CRM look-up (issue 22, item 6): who the customer is in the company's CRM.

Countersign POSTs the customer's identities and the time it asks (`sent_at`, so a replay
can be refused), as JSON signed like its notification webhook
(`X-Countersign-Signature: sha256=` + HMAC-SHA256 of the body under `crm_secret`), to
`crm_url`, and keeps the answer's `id`, `tier` and `value` on the customer with the time it
asked. It asks after a page showed the customer, when nothing is cached or the cache is
older than `crm_cache_hours`; the page shows what was cached, so a slow or absent CRM
never holds a page up, and ingest never asks. The look-ups run on two threads of their
own, not the API's pool. A CRM that fails or answers nonsense leaves the cache as it was
(logged), and no look-up is made for `BACK_OFF` after a failure.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from connectors import egress
from connectors.inbound import sign
from records.db import Database
from records.retention import ERASED
from records.settings import Settings
from records.tables import CUSTOMERS, IDENTITIES
from records.types import utcnow

log = logging.getLogger("countersign.crm")
SIGNATURE_HEADER = "X-Countersign-Signature"
BACK_OFF = timedelta(minutes=1)
THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="crm")
_failed_at: list[datetime] = []  # when the last look-up failed (none: it did not)


@dataclass(frozen=True)
class CrmAnswer:
    id: str | None
    tier: str | None
    value: str | None


def due(settings: Settings, checked_at: datetime | None) -> bool:
    """Whether a customer last looked up at `checked_at` (None: never) is to be asked for."""
    if not settings.crm_url or (_failed_at and utcnow() - _failed_at[-1] < BACK_OFF):
        return False
    return checked_at is None or utcnow() - checked_at > timedelta(hours=settings.crm_cache_hours)


def refresh(settings: Settings, database: Database, customer_id: int) -> CrmAnswer | None:
    """Ask the CRM about the customer and cache the answer (None: nothing was cached)."""
    with database.engine.connect() as connection:
        identities = [
            {"channel": r.channel, "author_id": r.author_id, "handle": r.handle}
            for r in connection.execute(
                select(IDENTITIES.c.channel, IDENTITIES.c.author_id, IDENTITIES.c.handle)
                .where(IDENTITIES.c.customer_id == customer_id)
                .order_by(IDENTITIES.c.id)
            )
        ]
    # `sent_at` inside the signed body: a CRM can refuse a request replayed later.
    sent_at = utcnow().isoformat()
    body = json.dumps(
        {"customer_id": customer_id, "identities": identities, "sent_at": sent_at}
    ).encode()
    try:
        answer = egress.request(
            "POST", settings.crm_url, content=body, timeout=settings.crm_timeout_seconds,
            headers={"Content-Type": "application/json",
                     SIGNATURE_HEADER: sign(settings.crm_secret, body)},
        )  # fmt: skip
        answer.raise_for_status()
        found = _answer(answer.json())
    except Exception as exc:
        log.warning("CRM look-up for customer %s failed: %s", customer_id, type(exc).__name__)
        return None
    with database.write() as connection:
        # Not onto a customer erased while the CRM was asked (`records.erasure`).
        connection.execute(
            update(CUSTOMERS).where(CUSTOMERS.c.id == customer_id,
                                    CUSTOMERS.c.display_name != ERASED).values(
                crm_id=found.id, crm_tier=found.tier, crm_value=found.value,
                crm_checked_at=utcnow(),
            )
        )  # fmt: skip
    return found


def _answer(data: object) -> CrmAnswer:
    """The CRM's answer, each field a short string or absent; anything else is refused."""
    if not isinstance(data, dict):
        raise ValueError("the CRM's answer is not a JSON object")
    fields = {}
    for name, most in (("id", 200), ("tier", 64), ("value", 64)):
        value = data.get(name)
        if value is not None and not isinstance(value, str | int | float):
            raise ValueError(f"the CRM's {name} is not a string or a number")
        text = None if value is None else str(value)
        if text is not None and (len(text) > most or not text.isprintable()):
            raise ValueError(f"the CRM's {name} is longer than {most} or not printable")
        fields[name] = text
    return CrmAnswer(**fields)

"""The activity that sends a notification outside the app: a signed JSON webhook or an
e-mail (`workflows.notify` runs one per delivery, and the approval workflow starts them
without waiting)."""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage
from typing import Any

from sqlalchemy import bindparam, select, update
from temporalio import activity

from connectors import egress
from connectors.base import remote_reason
from connectors.inbound import sign
from records.db import Database
from records.notifications import EMAIL, WEBHOOK
from records.tables import DELIVERIES, NOTIFICATIONS, USERS
from records.types import utcnow
from workflows.contracts import ActivityName, DeliveryJob
from workflows.recording import not_found


class NotifyActivities:
    """Sends notifications outside the app: a JSON webhook signed with HMAC-SHA256
    (`X-Countersign-Signature: sha256=<hex>` over the body) and e-mail over SMTP.

    A delivery is marked sent once the receiver accepted it, so a retry after that sends
    nothing; each carries its id (`X-Countersign-Delivery`, the e-mail's Message-ID) for a
    receiver to drop the rare repeat of a send whose answer was lost. Failures raise, and
    Temporal retries with backoff; the last attempt marks the delivery failed."""

    def __init__(
        self,
        database: Database,
        *,
        webhook_url: str = "",
        webhook_secret: str = "",
        smtp_host: str = "",
        smtp_port: int = 25,
        smtp_from: str = "countersign@localhost",
    ) -> None:
        self.database = database
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.smtp_host, self.smtp_port, self.smtp_from = smtp_host, smtp_port, smtp_from

    @activity.defn(name=ActivityName.deliver_notification)
    def deliver_notification(self, job: DeliveryJob) -> str:
        with self.database.engine.connect() as connection:
            row = connection.execute(_DELIVERY, {"id": job.delivery_id}).first()
        if row is None:
            raise not_found(f"no notification delivery {job.delivery_id}")
        if row.status != "pending":
            return str(row.status)
        try:
            if row.channel == WEBHOOK:
                self._post(row)
            elif row.channel == EMAIL:
                self._mail(row)
            else:
                raise ValueError(f"no such notification channel {row.channel!r}")
        except egress.EgressRefused as exc:  # the address will not change by asking again
            self._mark(job.delivery_id, "failed", error=str(exc)[:500])
            return "failed"
        except Exception as exc:
            info = activity.info()
            last = (
                info.retry_policy is not None
                and info.attempt >= info.retry_policy.maximum_attempts > 0
            )
            self._mark(job.delivery_id, "failed" if last else "pending", error=str(exc)[:500])
            if last:
                return "failed"
            raise
        self._mark(job.delivery_id, "sent")
        return "sent"

    def _mark(self, delivery_id: int, status: str, error: str | None = None) -> None:
        with self.database.write() as connection:
            connection.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == "pending")
                .values(
                    status=status,
                    attempts=DELIVERIES.c.attempts + 1,
                    last_error=error,
                    sent_at=utcnow() if status == "sent" else None,
                )
            )

    def _post(self, row: Any) -> None:
        if not self.webhook_url:
            raise ValueError("no webhook URL is configured (COUNTERSIGN_NOTIFY_WEBHOOK_URL)")
        body = json.dumps(
            {
                "delivery_id": row.id,
                "event": row.event,
                "recipient": row.recipient,
                "draft_id": row.draft_id,
                "post_id": row.post_id,
                "message": row.message,
                "at": row.created_at.isoformat(),
            },
            separators=(",", ":"),
        ).encode()
        answer = egress.request(
            "POST",
            egress.check_url(self.webhook_url, what="COUNTERSIGN_NOTIFY_WEBHOOK_URL"),
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Countersign-Event": row.event,
                "X-Countersign-Delivery": str(row.id),
                "X-Countersign-Signature": sign(self.webhook_secret, body),
            },
            timeout=10,
        )
        if not answer.is_success:  # the status and a short reason; never the URL
            raise RuntimeError(
                f"the webhook answered {answer.status_code} {remote_reason(answer.reason_phrase)}"
            )

    def _mail(self, row: Any) -> None:
        if not row.email:
            raise ValueError(f"{row.recipient} has no e-mail address")
        message = EmailMessage()
        message["From"], message["To"] = self.smtp_from, row.email
        message["Subject"] = f"Countersign: {row.event.replace('_', ' ')}"
        message["Message-ID"] = f"<notification-{row.id}@countersign>"
        message.set_content(row.message)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=10) as smtp:
            smtp.send_message(message)


_DELIVERY = (
    select(
        DELIVERIES.c.id,
        DELIVERIES.c.channel,
        DELIVERIES.c.status,
        NOTIFICATIONS.c.event,
        NOTIFICATIONS.c.recipient,
        NOTIFICATIONS.c.draft_id,
        NOTIFICATIONS.c.post_id,
        NOTIFICATIONS.c.message,
        NOTIFICATIONS.c.created_at,
        USERS.c.email,
    )
    .join(NOTIFICATIONS, NOTIFICATIONS.c.id == DELIVERIES.c.notification_id)
    .outerjoin(USERS, USERS.c.username == NOTIFICATIONS.c.recipient)
    .where(DELIVERIES.c.id == bindparam("id"))
)

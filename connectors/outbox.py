"""The local `outbox` channel: "posts" by recording the reply in its own table. It serves
development and tests, and stands in for every channel until its connector exists."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from connectors.base import Posted, Reply
from records.db import Database
from records.models import OutboxMessage


class OutboxPublisher:
    channel = "outbox"

    def __init__(self, database: Database) -> None:
        self.database = database

    def post(self, reply: Reply) -> Posted:
        try:
            with self.database.write_session() as session:
                message = OutboxMessage(
                    publication_key=reply.key,
                    channel=reply.channel,
                    in_reply_to=reply.in_reply_to,
                    body=reply.body,
                )
                session.add(message)
                session.flush()
                return _posted(message)
        except IntegrityError:
            # Already posted under this key: the platform would not take it twice either.
            found = self.lookup(reply.key)
            assert found is not None
            return found

    def lookup(self, key: str) -> Posted | None:
        with self.database.read_session() as session:
            message = session.exec(
                select(OutboxMessage).where(OutboxMessage.publication_key == key)
            ).first()
            return _posted(message) if message else None


def _posted(message: OutboxMessage) -> Posted:
    return Posted(external_id=f"outbox-{message.id}", url=f"outbox://{message.id}")

"""The local `outbox` channel: "posts" by recording the reply in its own table. It serves
development and tests, and stands in for every channel until its connector exists."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from connectors.base import Posted, Reply
from records.db import Database
from records.tables import OUTBOX
from records.types import utcnow


class OutboxPublisher:
    channel = "outbox"

    def __init__(self, database: Database) -> None:
        self.database = database

    def post(self, reply: Reply) -> Posted:
        try:
            with self.database.write() as connection:
                message_id = connection.execute(
                    _INSERT,
                    {
                        "publication_key": reply.key,
                        "channel": reply.channel,
                        "in_reply_to": reply.in_reply_to,
                        "body": reply.body,
                        "posted_at": utcnow(),
                    },
                ).scalar_one()
                return _posted(message_id)
        except IntegrityError:
            # Already posted under this key: the platform would not take it twice either.
            found = self.lookup(reply)
            assert found is not None
            return found

    def lookup(self, reply: Reply) -> Posted | None:
        with self.database.engine.connect() as connection:
            message_id = connection.execute(_BY_KEY, {"key": reply.key}).scalar()
            return _posted(message_id) if message_id is not None else None

    def delete(self, external_id: str) -> None:
        with self.database.write() as connection:
            connection.execute(_DELETE, {"id": int(external_id.removeprefix("outbox-"))})


def _posted(message_id: int) -> Posted:
    return Posted(external_id=f"outbox-{message_id}", url=f"outbox://{message_id}")


_INSERT = OUTBOX.insert().returning(OUTBOX.c.id)
_DELETE = OUTBOX.delete().where(OUTBOX.c.id == bindparam("id"))
_BY_KEY = select(OUTBOX.c.id).where(OUTBOX.c.publication_key == bindparam("key"))

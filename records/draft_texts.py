"""What people write about a draft, sealed for its way through Temporal, so an erasure
reaches it there too.

An edit's text and a reviewer's comment go from the API to the draft's workflow as an
update's input, and Temporal keeps every input in the workflow's history, for as long as
the workflow is open and the namespace's retention after. The database's copy is erased
with the draft (`records.retention.erase_drafts`); the history's cannot be: it is
Temporal's, append-only. So the API seals each text under a key of the draft's own
(`drafts.text_key`, made with the draft), the worker opens it where it writes the text
to the database, and erasing the draft's words forgets the key: what the history keeps
can no longer be read by anyone (crypto-shredding).

The key sits in the database beside the text it protects, which someone with the
database can read anyway while the draft is kept; what it adds is that the history,
once the key is gone, holds nothing readable. AES-256-GCM (`cryptography`), bound to
the draft (a text sealed for one draft does not open for another). A text that is not
sealed (sent before this existed, by a draft in flight across the upgrade) is taken as
it is; a blank one is not sealed, so the workflow still tells a missing comment.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from records.errors import Conflict
from records.tables import DRAFTS

PREFIX = "dt1."
KEY_BYTES = 32
NONCE_BYTES = 12


class TextSealError(ValueError):
    """A sealed text that cannot be opened: its draft's words were erased (the key is
    gone), or it was altered or sealed for another draft."""


def new_key() -> str:
    """A draft's key, as `drafts.text_key` keeps it (hex)."""
    return os.urandom(KEY_BYTES).hex()


def key_of(connection: Connection, draft_id: int) -> str | None:
    """The draft's key (None once its words were erased)."""
    return connection.execute(_KEY, {"id": draft_id}).scalar_one_or_none()


def seal(key: str | None, draft_id: int, text: str | None) -> str | None:
    """`text` sealed for the draft under its `key`. None, an empty or a blank text goes as
    it is: the workflow refuses a decision without a comment by reading it, and a sealed
    text is never blank."""
    if not text or not text.strip():
        return text
    if key is None:
        raise Conflict(f"draft {draft_id}'s words were erased; it takes no new text")
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(bytes.fromhex(key)).encrypt(nonce, text.encode(), _bound(draft_id))
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def opened(key: str | None, draft_id: int, text: str | None) -> str | None:
    """The text `seal` sealed for the draft (one never sealed: as it is)."""
    if not text or not text.startswith(PREFIX):
        return text
    if key is None:
        raise TextSealError(f"draft {draft_id}'s words were erased; its sealed text is gone")
    body = text[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plain = AESGCM(bytes.fromhex(key)).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _bound(draft_id)
        )
    except (InvalidTag, ValueError, binascii.Error):
        raise TextSealError(
            f"a text for draft {draft_id} was altered or sealed for another"
        ) from None
    return plain.decode()


def fingerprint(key: str | None, draft_id: int, text: str) -> str:
    """The text as a retried request's update id may derive from it (`api.lifecycle`): an
    HMAC under the draft's key, so the id, which the history keeps too, tells nothing of
    the text once the key is forgotten (a plain hash of a short comment can be guessed)."""
    if key is None:
        raise Conflict(f"draft {draft_id}'s words were erased; it takes no new text")
    return hmac.new(bytes.fromhex(key), _bound(draft_id) + text.encode(), "sha256").hexdigest()


def opened_from(connection: Connection, draft_id: int, text: str | None) -> str | None:
    """`opened`, the key read from the draft's row only for a sealed text."""
    if not text or not text.startswith(PREFIX):
        return text
    return opened(key_of(connection, draft_id), draft_id, text)


def _bound(draft_id: int) -> bytes:
    return f"{PREFIX}draft {int(draft_id)}".encode()


_KEY = select(DRAFTS.c.text_key).where(DRAFTS.c.id == bindparam("id"))

"""What people write about a draft, sealed for its way through Temporal, so an erasure
reaches it there too.

An edit's text and a reviewer's comment go from the API to the draft's workflow as an
update's input, and Temporal keeps every input in the workflow's history, for as long as
the workflow is open and the namespace's retention after. The database's copy is erased
with the draft (`records.retention.erase_drafts`); the history's cannot be: it is
Temporal's, append-only. So the API seals each text under a key of the draft's own
(`drafts.text_key`), the worker opens it where it writes the text to the database, and
erasing the draft's words forgets the key: what the history keeps can no longer be read
by anyone (crypto-shredding). What the checks found in a text stays out of the history
too: a blocked submission's findings are read from the record (`api.routes.drafts`).

A draft gets its key with its first sealed text (`key_for`), unless its words were erased
(every version erased): a draft made before keys existed, or by an API of the release
before during an upgrade, gets one then as well. The key sits in the database beside the
text it protects, which someone with the database can read anyway while the draft is
kept; what it adds is that the history, once the key is gone, holds nothing readable.

AES-256-GCM (`cryptography`) under a key derived from the draft's for sealing, another
for fingerprints (HKDF); each text is bound to its draft and to what it is (an edit's
text does not open as a comment, nor one draft's as another's). Its bytes are written in
base64's URL-safe alphabet; any other character is refused. A text that is not sealed
(sent before this existed, by a draft in flight across the upgrade) is taken as it is; a
blank one is not sealed, so the workflow still tells a missing comment.
"""

from __future__ import annotations

import base64
import hmac
import os
from enum import StrEnum
from typing import TypeGuard

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.engine import Connection

from records.errors import Conflict
from records.tables import DRAFTS, VERSIONS

PREFIX = "dt1."
KEY_BYTES = 32
NONCE_BYTES = 12


class TextField(StrEnum):
    """What a sealed text is, by the field of the request that carries it (bound into its
    seal; `api.desk` seals these fields)."""

    edit = "body"  # an edit's text
    comment = "comment"  # a reviewer's comment on a decision


class TextSealError(ValueError):
    """A sealed text that cannot be opened: altered, or sealed for another draft or field."""


class TextErased(TextSealError):
    """A sealed text whose draft's words were erased since: the key is gone."""


def key_for(connection: Connection, draft_id: int) -> str:
    """The draft's key, given to it now if it has none; Conflict once its words were
    erased (every version erased: it takes no new text). In a write transaction.

    The draft's row is locked first: an erasure holding it is waited for, and what follows
    reads what it left (at READ COMMITTED an UPDATE that waits for a row checks the row
    again, but not its subquery, which would still see the versions unerased)."""
    key = connection.execute(_KEY.with_for_update(), {"id": draft_id}).scalar_one_or_none()
    if key is None:  # given now, unless its words were erased (no row updated)
        given = {"b_id": draft_id, "b_key": os.urandom(KEY_BYTES).hex()}
        key = connection.execute(_GIVE_KEY, given).scalar_one_or_none()
    if key is None:
        raise Conflict(f"draft {draft_id}'s words were erased; it takes no new text")
    return str(key)


def key_of(connection: Connection, draft_id: int) -> str | None:
    """The draft's key, if it has one (None: erased, or no text sealed for it yet)."""
    return connection.execute(_KEY, {"id": draft_id}).scalar_one_or_none()


def seal(key: str, draft_id: int, field: TextField, text: str | None) -> str | None:
    """`text` sealed for the draft under its `key`. None, an empty or a blank text goes as
    it is: the workflow refuses a decision without a comment by reading it, and a sealed
    text is never blank."""
    if not text or not text.strip():
        return text
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_derived(key, _SEALING)).encrypt(nonce, text.encode(), _bound(draft_id, field))
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def is_sealed(text: str | None) -> TypeGuard[str]:
    """Whether `text` is one `seal` sealed (not one sent as it is)."""
    return text is not None and text.startswith(PREFIX)


def opened(key: str | None, draft_id: int, field: TextField, text: str | None) -> str | None:
    """The text `seal` sealed for the draft (one never sealed: as it is)."""
    if not is_sealed(text):
        return text
    if key is None:
        raise TextErased(f"draft {draft_id}'s words were erased; its sealed text is gone")
    body = text[len(PREFIX) :]
    try:  # only the URL-safe alphabet; a character outside it is refused, not skipped
        raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        plain = AESGCM(_derived(key, _SEALING)).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _bound(draft_id, field)
        )
    except (InvalidTag, ValueError):  # binascii.Error is one; so is a nonce cut short
        raise TextSealError(
            f"a text for draft {draft_id} was altered or sealed for another draft or field"
        ) from None
    return plain.decode()


def opened_from(
    connection: Connection, draft_id: int, field: TextField, text: str | None
) -> str | None:
    """`opened`, the key read from the draft's row only for a sealed text."""
    if not is_sealed(text):
        return text
    return opened(key_of(connection, draft_id), draft_id, field, text)


def fingerprint(key: str, draft_id: int, field: TextField, text: str) -> str:
    """The text as a retried request's update id may derive from it (`api.lifecycle`): an
    HMAC under the draft's key, so the id, which the history keeps too, tells nothing of
    the text once the key is forgotten (a plain hash of a short comment can be guessed)."""
    mac = hmac.new(_derived(key, _FINGERPRINTS), _bound(draft_id, field), "sha256")
    mac.update(text.encode())
    return mac.hexdigest()


_SEALING, _FINGERPRINTS = b"countersign draft text sealing", b"countersign draft text fingerprints"


def _derived(key: str, purpose: bytes) -> bytes:
    """A key of its own for each use of the draft's (RFC 5869). Not cached: a key the
    draft forgets is not kept in a process either."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        bytes.fromhex(key)
    )


def _bound(draft_id: int, field: TextField) -> bytes:
    return f"{PREFIX}draft {int(draft_id)}|{field.value}|".encode()


_KEY = select(DRAFTS.c.text_key).where(DRAFTS.c.id == bindparam("id"))
# Only to a draft whose words are still there: an erased one never takes a key again.
_GIVE_KEY = (
    update(DRAFTS)
    .where(
        DRAFTS.c.id == bindparam("b_id"),
        DRAFTS.c.text_key.is_(None),
        exists().where(VERSIONS.c.draft_id == DRAFTS.c.id, VERSIONS.c.erased.is_(False)),
    )
    .values(text_key=bindparam("b_key"))
    .returning(DRAFTS.c.text_key)
)

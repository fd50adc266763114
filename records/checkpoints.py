"""Signed checkpoints of the audit tree: what proves the log to someone who trusts neither
the service nor its database.

A checkpoint is C2SP's `tlog-checkpoint`, a signed note (c2sp.org/signed-note) whose text is
the log's origin, its size and its root (base64), and one extension line with the time:

    countersign.example/audit
    1042
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
    time 2026-11-30T09:05:00.000000+00:00

    — countersign.example/audit <base64(key ID || Ed25519 signature of the text)>

The key ID is the first four bytes of SHA-256(key name || 0x0A || 0x01 || public key).
Checkpoints are stored in the database and written to sinks outside it (a directory), so
rewriting the database cannot rewrite what was already signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import os
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.engine import Connection

from records import audit, merkle
from records.settings import DEV_AUDIT_KEY
from records.tables import CHECKPOINTS
from records.types import utcnow

ED25519 = b"\x01"  # the signed-note signature type of Ed25519
DASH = "\u2014"


class CheckpointError(ValueError):
    """A note that is not a checkpoint of this log signed by this key."""


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes
    at: str  # the time line's ISO text, as signed
    note: str


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


class Signer:
    """The log's signing key (an Ed25519 seed, base64, from settings) and its name, which
    is also the checkpoints' origin line."""

    def __init__(self, name: str, seed_b64: str) -> None:
        if not name or any(c.isspace() or c == "+" for c in name):
            raise ValueError(f"{name!r} is not a signed-note key name (no spaces, no '+')")
        try:
            seed = base64.b64decode(seed_b64, validate=True)
        except binascii.Error as exc:
            raise ValueError("the audit signing key is not base64") from exc
        if len(seed) != 32:
            raise ValueError("the audit signing key is a 32-byte Ed25519 seed, base64")
        self.name = name
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def verifier_key(self) -> str:
        """The public key as verifiers are given it: `<name>+<key ID hex>+<base64(0x01 ||
        key)>`, the form Go's sumdb/note and C2SP tools read."""
        encoded = base64.b64encode(ED25519 + self.public_key).decode()
        return f"{self.name}+{key_id(self.name, self.public_key).hex()}+{encoded}"

    def sign(self, size: int, root: bytes, at: datetime) -> Checkpoint:
        when = audit.format_time(at)
        text = f"{self.name}\n{size}\n{base64.b64encode(root).decode()}\ntime {when}\n"
        return Checkpoint(size, root, when, self.sign_text(text))

    def sign_text(self, text: str) -> str:
        """`text` (lines, each ending in a newline) as a signed note by this key."""
        signature = self._key.sign(text.encode())
        line = base64.b64encode(key_id(self.name, self.public_key) + signature).decode()
        return f"{text}\n{DASH} {self.name} {line}\n"


def open_note(note: str, *, name: str, public_key: bytes) -> Checkpoint:
    """The checkpoint in `note`, if a signature by this key (name and ID) verifies over
    its text and the text is a checkpoint of the log `name`; else CheckpointError."""
    text, sep, signatures = note.partition("\n\n")
    if not sep or not text:
        raise CheckpointError("not a signed note: no blank line between text and signatures")
    text += "\n"
    wanted = key_id(name, public_key)
    verifier = Ed25519PublicKey.from_public_bytes(public_key)
    signed = False
    for line in signatures.splitlines():
        dash, _, rest = line.partition(" ")
        signer, _, encoded = rest.partition(" ")
        if dash != DASH or signer != name:
            continue
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise CheckpointError("a signature line is not base64") from exc
        if raw[:4] != wanted:
            continue  # another key of the same name: ignored, as the format says
        try:
            verifier.verify(raw[4:], text.encode())
        except InvalidSignature as exc:
            raise CheckpointError("the checkpoint's signature does not verify") from exc
        signed = True
    if not signed:
        raise CheckpointError(f"no signature by {name} (key {wanted.hex()}) on the note")
    lines = text.splitlines()
    if len(lines) < 3 or lines[0] != name:
        raise CheckpointError(f"the note is not a checkpoint of the log {name}")
    try:
        size, root = int(lines[1]), base64.b64decode(lines[2], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise CheckpointError("the checkpoint's size or root is malformed") from exc
    at = next((line[5:] for line in lines[3:] if line.startswith("time ")), "")
    return Checkpoint(size, root, at, note)


# --- issuing -------------------------------------------------------------------------------


def issue(
    connection: Connection, signer: Signer, *, sinks: Iterable[Path] = (), force: bool = False
) -> Checkpoint | None:
    """Sign the tree as it stands, store the checkpoint and write it to every sink. None
    when nothing was appended since the last checkpoint (unless `force`)."""
    size = audit.head_seq(connection)
    last = connection.execute(
        select(CHECKPOINTS.c.tree_size).order_by(CHECKPOINTS.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    if last is not None and last == size and not force:
        return None
    root = merkle.root(size, audit.tree_nodes(connection))
    checkpoint = signer.sign(size, root, utcnow())
    number = connection.execute(
        CHECKPOINTS.insert().returning(CHECKPOINTS.c.id),
        {
            "tree_size": size,
            "root_hash": root.hex(),
            "signed_at": datetime.fromisoformat(checkpoint.at),
            "note": checkpoint.note,
        },
    ).scalar_one()
    for sink in sinks:
        write(sink, int(number), checkpoint)
    return checkpoint


def write(folder: Path, number: int, checkpoint: Checkpoint) -> None:
    """Into a sink folder: `checkpoint-<number>.txt`, never overwritten, and `latest.txt`
    (each readable by the service's user only, like every file it makes)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = folder / f"checkpoint-{number:08d}.txt"
    if not target.exists():
        # Whole or not at all: a process killed mid-write leaves a stray temporary file,
        # never a truncated checkpoint that `audit verify` would find broken. Linked into
        # place, which fails rather than overwrite one another process wrote meanwhile.
        partial = folder / f".checkpoint-{number:08d}.{os.getpid()}.tmp"
        _write_private(partial, checkpoint.note)
        with suppress(FileExistsError):
            os.link(partial, target)
        partial.unlink()
    latest = folder / f".latest.{os.getpid()}.tmp"
    _write_private(latest, checkpoint.note)
    latest.replace(folder / "latest.txt")


def _write_private(path: Path, text: str) -> None:
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(text)


def stored(connection: Connection) -> list[str]:
    """Every stored checkpoint's note, oldest first."""
    rows = connection.execute(select(CHECKPOINTS.c.note).order_by(CHECKPOINTS.c.id))
    return [row.note for row in rows]


def from_sink(folder: Path) -> list[str]:
    """The notes a sink folder keeps, oldest first."""
    return [p.read_text(encoding="utf-8") for p in sorted(folder.glob("checkpoint-*.txt"))]


# --- from settings, and what verify holds the log to ----------------------------------------


class CheckpointSettings(Protocol):
    @property
    def data_dir(self) -> Path: ...
    @property
    def audit_log_name(self) -> str: ...
    @property
    def audit_signing_key(self) -> str: ...
    @property
    def audit_checkpoint_dir(self) -> Path | None: ...


KEY_FILE, SINK_DIR = "audit-signing.key", "checkpoints"  # what `countersign dev` keeps


def signer_of(settings: CheckpointSettings) -> Signer:
    """The log's signer: the configured key; with none configured, the one `countersign
    dev` keeps under DATA_DIR, so the command line agrees with the running dev stack."""
    key = settings.audit_signing_key
    kept = settings.data_dir / KEY_FILE
    if key == DEV_AUDIT_KEY and kept.exists():
        key = kept.read_text().strip()
    return Signer(settings.audit_log_name, key)


def sinks_of(settings: CheckpointSettings) -> list[Path]:
    """The folders outside the database that keep checkpoints: the configured one, else
    the one `countersign dev` keeps under DATA_DIR, if there is one."""
    if settings.audit_checkpoint_dir is not None:
        return [settings.audit_checkpoint_dir]
    kept = settings.data_dir / SINK_DIR
    return [kept] if kept.is_dir() else []


@dataclass(frozen=True)
class Held:
    """The checkpoints that verify (oldest first), or what is wrong with them."""

    signed: list[audit.Signed]
    problem: str | None = None


def held(connection: Connection, signer: Signer, sinks: Iterable[Path] = ()) -> Held:
    """Every checkpoint the database and the sinks keep, each checked against the log's
    public key, and each against the one before: a checkpoint that does not verify, or one
    that holds fewer events than an earlier one, is named."""
    notes = [("the database", note) for note in stored(connection)]
    for sink in sinks:
        notes += [(str(sink), note) for note in from_sink(sink)]
    opened: dict[tuple[int, bytes], audit.Signed] = {}
    for where, note in notes:
        try:
            found = open_note(note, name=signer.name, public_key=signer.public_key)
        except CheckpointError as exc:
            return Held([], f"a checkpoint kept in {where} does not hold: {exc}")
        opened[(found.size, found.root)] = audit.Signed(found.size, found.root, found.at)
    signed = sorted(opened.values(), key=lambda c: (c.size, c.at))
    for before, after in itertools.pairwise(signed):
        if after.size == before.size and after.root != before.root:
            return Held(
                signed,
                f"two checkpoints of {after.size} events disagree (signed at {before.at} "
                f"and {after.at}): the log was rewritten between them",
            )
        if after.size > before.size and after.at < before.at:
            return Held(
                signed,
                f"the checkpoint of {before.size} events (signed at {before.at}) came after "
                f"one of {after.size}: it does not extend its predecessor",
            )
    return Held(signed)


def new_key() -> str:
    """A fresh signing key: a random 32-byte Ed25519 seed, base64."""
    return base64.b64encode(os.urandom(32)).decode()

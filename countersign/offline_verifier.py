#!/usr/bin/env python3
"""Verify a Countersign audit export on its own: no service, no database, no trust.

One file, the Python standard library and `cryptography` only; it imports nothing of
Countersign, so an auditor can copy it anywhere. It follows docs/audit-format.md:

    python offline_verifier.py --export audit.jsonl --key '<name>+<id>+<base64 key>' \
        --checkpoints checkpoints/            # a folder of notes, note files, or the JSON
                                              # of GET /api/v1/audit/checkpoints
    python offline_verifier.py --evidence reply-42.zip --key '<name>+<id>+<base64 key>'

It checks, in order, and names the first thing that does not hold:
- every checkpoint is a C2SP tlog-checkpoint of this log, signed by this Ed25519 key, and
  each extends the one before (no two disagree on a size; sizes grow with time);
- every event follows the one before (seq, the hash chain) and its payload has the digest
  the log committed to (unless the payload was erased);
- the RFC 6962 tree of the first n events has the root each checkpoint of size n signed;
- the export is not shorter than the largest checkpoint (truncation).
Exit status 0 when everything holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import itertools
import json
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
DASH = "\u2014"


class Broken(Exception):
    """What does not hold, in words."""


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes
    at: str


# --- canonical JSON (RFC 8785, for payloads of strings, integers, booleans, null) ----------


def canonical(value: Any) -> str:
    if value is None or value is True or value is False:
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        names = sorted(value, key=lambda n: n.encode("utf-16-be"))
        members = (json.dumps(n, ensure_ascii=False) + ":" + canonical(value[n]) for n in names)
        return "{" + ",".join(members) + "}"
    raise Broken(f"a payload holds a {type(value).__name__}, which the format does not allow")


# --- the key and the checkpoints ----------------------------------------------------------


def parse_key(text: str) -> tuple[str, bytes]:
    """`<name>+<key ID hex>+<base64(0x01 || public key)>` -> (name, public key)."""
    try:
        name, key_hex, encoded = text.strip().split("+", 2)  # base64 may hold "+"
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise Broken("the key is not <name>+<id>+<base64 key>") from exc
    if raw[:1] != b"\x01" or len(raw) != 33:
        raise Broken("the key is not an Ed25519 signed-note key")
    if key_id(name, raw[1:]).hex() != key_hex:
        raise Broken("the key's ID does not match its name and key")
    return name, raw[1:]


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]


def open_checkpoint(note: str, name: str, public: bytes) -> Checkpoint:
    text, sep, signatures = note.partition("\n\n")
    if not sep:
        raise Broken("a checkpoint is not a signed note")
    text += "\n"
    verified = False
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH or parts[1] != name:
            continue
        raw = base64.b64decode(parts[2])
        if raw[:4] != key_id(name, public):
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())
        except InvalidSignature as exc:
            raise Broken("a checkpoint's signature does not verify") from exc
        verified = True
    lines = text.splitlines()
    if not verified or len(lines) < 3 or lines[0] != name:
        raise Broken(f"a checkpoint is not signed by {name} for its log")
    at = next((line[5:] for line in lines[3:] if line.startswith("time ")), "")
    return Checkpoint(int(lines[1]), base64.b64decode(lines[2]), at)


def read_notes(paths: Iterable[Path]) -> Iterator[str]:
    for path in paths:
        if path.is_dir():
            yield from read_notes(sorted(path.glob("checkpoint-*.txt")))
        elif path.suffix == ".json":
            yield from (item["note"] for item in json.loads(path.read_text())["items"])
        else:
            yield path.read_text(encoding="utf-8")


def checkpoints(notes: Iterable[str], name: str, public: bytes) -> list[Checkpoint]:
    found = {(c.size, c.root): c for c in (open_checkpoint(n, name, public) for n in notes)}
    ordered = sorted(found.values(), key=lambda c: (c.size, c.at))
    for before, after in itertools.pairwise(ordered):
        if before.size == after.size:
            raise Broken(f"two checkpoints of {after.size} events disagree")
        if after.at < before.at:
            raise Broken(f"the checkpoint of {before.size} events does not extend its predecessor")
    return ordered


# --- the events ---------------------------------------------------------------------------


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class Tree:
    """The right edge of the RFC 6962 tree: the perfect subtrees so far, largest first."""

    def __init__(self) -> None:
        self.size, self.edge = 0, list[tuple[int, bytes]]()

    def add(self, leaf: bytes) -> None:
        entry = (1, leaf)
        while self.edge and self.edge[-1][0] == entry[0]:
            width, left = self.edge.pop()
            entry = (width * 2, node(left, entry[1]))
        self.edge.append(entry)
        self.size += 1

    def root(self) -> bytes:
        if not self.edge:
            return hashlib.sha256(b"").digest()
        acc = self.edge[-1][1]
        for _, left in reversed(self.edge[:-1]):
            acc = node(left, acc)
        return acc


def chained(prev: str, event: dict[str, Any], payload: str) -> str:
    document = json.dumps(
        [
            event["at"],
            event["actor"],
            event["role"],
            event["action"],
            event["draft_id"],
            event["version"],
            event["content_sha256"],
            payload,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev}|{event['seq']}|{document}".encode()).hexdigest()


def leaf(event: dict[str, Any]) -> bytes:
    document = {k: event[k] for k in ("action", "actor", "at", "content_sha256", "draft_id")}
    document |= {k: event[k] for k in ("payload_sha256", "role", "seq", "version")}
    return hashlib.sha256(b"\x00" + canonical(document).encode()).digest()


def verify(lines: Iterable[str], signed: list[Checkpoint]) -> tuple[int, int | None]:
    """(events checked, the largest checkpoint size they matched); Broken if not."""
    tree, pending, prev, matched = Tree(), list(signed), GENESIS, None
    for number, line in enumerate(lines, 1):
        event = json.loads(line)
        seq = event["seq"]
        if seq != number:
            raise Broken(f"event {number} is missing (the export has {seq} there)")
        if event.get("erased"):
            payload = None
        else:
            payload = canonical(event["payload"])
            if hashlib.sha256(payload.encode()).hexdigest() != event["payload_sha256"]:
                raise Broken(f"event {seq}'s payload is not what the log committed to")
        if event["prev_hash"] != prev or (
            payload is not None and chained(prev, event, payload) != event["hash"]
        ):
            raise Broken(f"event {seq} is not the one the chain recorded")
        prev = event["hash"]
        tree.add(leaf(event))
        while pending and pending[0].size == tree.size:
            checkpoint = pending.pop(0)
            if tree.root() != checkpoint.root:
                first = (matched or 0) + 1
                raise Broken(
                    f"events {first} to {checkpoint.size} are not what the checkpoint signed at "
                    f"{checkpoint.at} committed to"
                )
            matched = checkpoint.size
    for checkpoint in [c for c in pending if c.size == 0]:  # an empty log's (no events)
        if checkpoint.root != tree.root():
            raise Broken("a checkpoint of the empty log has a root no empty log has")
        matched = 0
    if any(c.size > tree.size for c in pending):
        largest = max(c.size for c in pending)
        raise Broken(
            f"the export ends at event {tree.size}, but a checkpoint holds {largest} events: "
            f"events {tree.size + 1} to {largest} were removed"
        )
    return tree.size, matched


# --- one reply's evidence package ------------------------------------------------------------


def open_note(note: str, name: str, public: bytes) -> str:
    """The text of a signed note by this key (any text, not only a checkpoint's)."""
    text, sep, signatures = note.partition("\n\n")
    for line in signatures.splitlines() if sep else []:
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == DASH and parts[1] == name:
            raw = base64.b64decode(parts[2])
            if raw[:4] == key_id(name, public):
                try:
                    Ed25519PublicKey.from_public_bytes(public).verify(
                        raw[4:], (text + "\n").encode()
                    )
                except InvalidSignature as exc:
                    raise Broken("the manifest's signature does not verify") from exc
                return text + "\n"
    raise Broken(f"the manifest is not signed by {name}")


def verify_evidence(path: Path, name: str, public: bytes) -> str:
    """What the package proves, in a line; Broken if any byte of it does not hold."""
    with zipfile.ZipFile(path) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    manifest_bytes = files.pop("manifest.json", None)
    signature = files.pop("manifest.sig", None)
    if manifest_bytes is None or signature is None:
        raise Broken("the package has no signed manifest")
    manifest = json.loads(manifest_bytes)
    signed = open_note(signature.decode(), name, public).splitlines()
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    if signed[1:] != [f"evidence draft {manifest['draft_id']}", digest]:
        raise Broken("the signed manifest is not this manifest")
    if set(files) != set(manifest["files"]):
        raise Broken("the package's files are not the manifest's")
    for file, data in files.items():
        if hashlib.sha256(data).hexdigest() != manifest["files"][file]:
            raise Broken(f"{file} is not the file the manifest signed")
    checkpoint = open_checkpoint(files["checkpoint.txt"].decode(), name, public)
    proofs = json.loads(files["proofs.json"])
    if proofs["tree_size"] != checkpoint.size:
        raise Broken("the proofs are not against the package's checkpoint")
    events = [json.loads(line) for line in files["events.jsonl"].decode().splitlines()]
    for event in events:
        erased_event = event.get("erased")
        if not erased_event and canonical_digest(event["payload"]) != event["payload_sha256"]:
            raise Broken(f"event {event['seq']}'s payload is not what the log committed to")
        path_ = [base64.b64decode(h) for h in proofs["inclusion"][str(event["seq"])]]
        if not included(leaf(event), event["seq"] - 1, checkpoint.size, path_, checkpoint.root):
            raise Broken(f"event {event['seq']} is not in the signed log")
    hashes = {e["version"]: e["content_sha256"] for e in events if e["action"] in CREATING}
    erased = {v["version"] for v in json.loads(files["versions.json"]) if v.get("erased")}
    for version, digest in hashes.items():
        if version in erased:
            continue  # erased under retention or a customer's request: the hash is what stays
        text = files.get(f"versions/v{version}.txt")
        if text is None or hashlib.sha256(text).hexdigest() != digest:
            raise Broken(f"version {version}'s text is not the text the log recorded")
    approvals = {
        (e["actor"], e["version"], e["content_sha256"])
        for e in events
        if e["action"] == "draft.approve"
    }
    for decision in json.loads(files["decisions.json"]):
        if (
            decision["decision"] == "approve"
            and (decision["reviewer"], decision["version"], decision["content_sha256"])
            not in approvals
        ):
            raise Broken(f"{decision['reviewer']}'s approval is not in the signed log")
    return (
        f"ok: draft {manifest['draft_id']}, {len(events)} events in the log signed at "
        f"{checkpoint.size} events by {name}, {len(hashes)} version(s) and every file intact"
    )


CREATING = ("draft.created", "draft.edited")


def canonical_digest(payload: Any) -> str:
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


def included(leaf_hash: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, help="the JSONL export")
    parser.add_argument("--evidence", type=Path, help="one reply's evidence package (ZIP)")
    parser.add_argument("--key", required=True, help="the log's verifier key")
    parser.add_argument("--checkpoints", nargs="+", type=Path, default=[], help="notes")
    args = parser.parse_args(argv)
    if (args.export is None) == (args.evidence is None):
        parser.error("give --export or --evidence")
    try:
        name, public = parse_key(args.key)
        if args.evidence is not None:
            try:
                print(verify_evidence(args.evidence, name, public))
            except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError) as exc:
                raise Broken(f"the package is damaged ({type(exc).__name__}: {exc})") from exc
            return 0
        signed = checkpoints(read_notes(args.checkpoints), name, public)
        if not signed:
            raise Broken("no checkpoint to hold the export to")
        with args.export.open(encoding="utf-8") as lines:
            checked, matched = verify(lines, signed)
    except Broken as exc:
        print(f"NOT OK: {exc}")
        return 1
    print(f"ok: {checked} events, as signed at {matched} events by {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One reply's evidence package: everything a regulator asks about one public reply, in one
ZIP file that verifies offline (`countersign/offline_verifier.py --evidence`).

Inside: the inbound post; every version of the text with its SHA-256 and the redline from
the one before; the findings with the rule-set version and that rule set's text; each
decision with the reviewer's name, role, qualification and time; the publication; the
draft's audit events with inclusion proofs against a signed checkpoint; a PDF of the same
for people; and a manifest of every file's SHA-256, signed with the audit log's key. One
changed byte anywhere fails the check: a file against the manifest, the manifest against
its signature, the events against the checkpoint, the versions' text against the hashes
the events committed to.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import io
import itertools
import json
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from records import audit, audit_reads, checkpoints, merkle
from records.errors import NotFound
from records.tables import (
    CHECKPOINTS,
    DECISIONS,
    DRAFTS,
    EVENTS,
    POSTS,
    PUBLICATIONS,
    VERSIONS,
)
from records.types import utcnow

FORMAT = "countersign-evidence/1"


def _json(value: Any) -> bytes:
    return (
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=_plain) + "\n"
    ).encode()


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return audit.format_time(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _rows(connection: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in connection.execute(query)]


def package(
    connection: Connection,
    draft_id: int,
    signer: checkpoints.Signer,
    *,
    render_pdf: Callable[[dict[str, Any]], bytes],
    ruleset_text: Callable[[str], str | None],
    sinks: tuple[Any, ...] = (),
) -> bytes:
    """The ZIP of draft `draft_id`'s evidence. `render_pdf` draws the summary for people;
    `ruleset_text` gives a rule-set version's text (the shipped one is not in the
    database). Signs a checkpoint first when none yet covers the draft's last event."""
    draft = connection.execute(select(DRAFTS).where(DRAFTS.c.id == draft_id)).first()
    if draft is None:
        raise NotFound(f"no draft with id {draft_id}")
    post = connection.execute(select(POSTS).where(POSTS.c.id == draft.post_id)).one()
    versions = _rows(
        connection,
        select(VERSIONS).where(VERSIONS.c.draft_id == draft_id).order_by(VERSIONS.c.version),
    )
    decisions = _rows(
        connection,
        select(DECISIONS).where(DECISIONS.c.draft_id == draft_id).order_by(DECISIONS.c.id),
    )
    publications = _rows(
        connection,
        select(PUBLICATIONS).where(PUBLICATIONS.c.draft_id == draft_id).order_by(PUBLICATIONS.c.id),
    )
    events = connection.execute(
        select(EVENTS).where(EVENTS.c.draft_id == draft_id).order_by(EVENTS.c.seq)
    ).all()
    checkpoint = _covering(connection, signer, max((e.seq for e in events), default=0), sinks)
    nodes = _cached(audit.tree_nodes(connection))
    proofs = {
        str(e.seq): [
            base64.b64encode(h).decode()
            for h in merkle.inclusion_proof(e.seq - 1, checkpoint.size, nodes)
        ]
        for e in events
    }
    files: dict[str, bytes] = {
        "post.json": _json(
            {
                k: post._mapping[k]
                for k in ("id", "channel", "external_id", "author", "text", "url", "received_at")
            }
        ),
        "versions.json": _json(
            [
                {
                    k: v[k]
                    for k in (
                        "version",
                        "content_sha256",
                        "created_by",
                        "created_at",
                        "route",
                        "ruleset_version",
                        "erased",
                    )
                }
                for v in versions
            ]
        ),
        "findings.json": _json(
            [
                {
                    "version": v["version"],
                    "ruleset_version": v["ruleset_version"],
                    "findings": v["findings"],
                }
                for v in versions
            ]
        ),
        "decisions.json": _json(
            [
                {
                    k: d.get(k)
                    for k in (
                        "stage",
                        "decision",
                        "reviewer",
                        "role",
                        "qualification",
                        "version",
                        "content_sha256",
                        "review_round",
                        "comment",
                        "at",
                    )
                }
                for d in decisions
            ]
        ),
        "publication.json": _json(
            [
                {
                    "status": p["status"],
                    "channel": p["channel"],
                    "version": p["version"],
                    "external_id": p["external_id"],
                    "external_url": p["external_url"],
                    "first_published_at": p["updated_at"] if p["status"] == "confirmed" else None,
                    "taken_down_at": None,
                }
                for p in publications
            ]
        ),
        "events.jsonl": "".join(
            json.dumps(audit_reads.as_record(e), sort_keys=True) + "\n" for e in events
        ).encode(),
        "proofs.json": _json(
            {
                "tree_size": checkpoint.size,
                "root": base64.b64encode(checkpoint.root).decode(),
                "inclusion": proofs,
            }
        ),
        "checkpoint.txt": checkpoint.note.encode(),
    }
    for v in versions:
        if not v["erased"]:  # an erased version's hash stays in the events; its text is gone
            files[f"versions/v{v['version']}.txt"] = v["body"].encode()
    for before, after in itertools.pairwise(versions):
        diff = difflib.unified_diff(
            before["body"].splitlines(keepends=True),
            after["body"].splitlines(keepends=True),
            f"v{before['version']}",
            f"v{after['version']}",
        )
        files[f"redlines/v{before['version']}-v{after['version']}.diff"] = "".join(diff).encode()
    for version in sorted({v["ruleset_version"] for v in versions if v["ruleset_version"]}):
        text = ruleset_text(version) or f"# rule set {version}: its text is no longer kept\n"
        files[f"rulesets/{version}.yaml"] = text.encode()
    summary = {
        "draft": {k: draft._mapping[k] for k in ("id", "author", "status", "version", "route")},
        "post": json.loads(files["post.json"]),
        "versions": [
            {**json.loads(files["versions.json"])[i], "body": v["body"]}
            for i, v in enumerate(versions)
        ],
        "decisions": json.loads(files["decisions.json"]),
        "publication": json.loads(files["publication.json"]),
        "events": [audit_reads.as_record(e) for e in events],
        "checkpoint": {"size": checkpoint.size, "at": checkpoint.at},
    }
    files["evidence.pdf"] = render_pdf(summary)
    manifest = {
        "format": FORMAT,
        "draft_id": draft_id,
        "generated_at": audit.format_time(utcnow()),
        "log": signer.name,
        "verifier_key": signer.verifier_key,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    manifest_bytes = _json(manifest)
    signature = signer.sign_text(
        f"{signer.name}\nevidence draft {draft_id}\n{hashlib.sha256(manifest_bytes).hexdigest()}\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*sorted(files.items()), ("manifest.json", manifest_bytes)]:
            archive.writestr(name, data)
        archive.writestr("manifest.sig", signature)
    return buffer.getvalue()


def _cached(nodes: merkle.Nodes) -> merkle.Nodes:
    seen: dict[tuple[int, int], bytes] = {}

    def node(level: int, index: int) -> bytes:
        key = (level, index)
        if key not in seen:
            seen[key] = nodes(level, index)
        return seen[key]

    return node


def _covering(
    connection: Connection, signer: checkpoints.Signer, last_seq: int, sinks: tuple[Any, ...]
) -> checkpoints.Checkpoint:
    """The latest checkpoint, if it covers `last_seq`; else one signed now."""
    row = connection.execute(
        select(CHECKPOINTS.c.note).order_by(CHECKPOINTS.c.id.desc()).limit(1)
    ).first()
    if row is not None:
        latest = checkpoints.open_note(row.note, name=signer.name, public_key=signer.public_key)
        if latest.size >= last_seq:
            return latest
    signed = checkpoints.issue(connection, signer, sinks=sinks, force=True)
    assert signed is not None
    return signed

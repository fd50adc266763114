"""Text shown in pages: findings marked in a reply, a redline between two versions, and
times as people read them. Pure functions, tested on their own."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True)
class Piece:
    """A run of text, plain (`kind` ""), marked by a finding ("block", "warn", "route"),
    or in a redline removed ("del") or added ("ins")."""

    text: str
    kind: str = ""
    note: str = ""


def marked(body: str, findings: list[dict[str, Any]]) -> list[Piece]:
    """`body` cut into pieces at its findings' spans (overlaps: the first one wins)."""
    pieces: list[Piece] = []
    at = 0
    for finding in sorted(findings, key=lambda f: (f["start"], -f["end"])):
        start, end = max(finding["start"], at), finding["end"]
        if end <= start:
            continue
        if start > at:
            pieces.append(Piece(body[at:start]))
        severity = str(finding["severity"])
        kind = "route" if severity.startswith("route:") else severity
        pieces.append(Piece(body[start:end], kind, str(finding["message"])))
        at = end
    if at < len(body):
        pieces.append(Piece(body[at:]))
    return pieces


def redline(before: str, after: str) -> list[Piece]:
    """Word by word: what `after` removed from `before` and what it added."""
    old, new = _TOKENS.findall(before), _TOKENS.findall(after)
    pieces: list[Piece] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(Piece("".join(old[a1:a2])))
            continue
        if op in ("delete", "replace"):
            pieces.append(Piece("".join(old[a1:a2]), "del"))
        if op in ("insert", "replace"):
            pieces.append(Piece("".join(new[b1:b2]), "ins"))
    return pieces


def as_time(when: datetime | str) -> datetime:
    """A time as the API gives it (ISO 8601, perhaps with a "Z"), or one already read."""
    return (
        when if isinstance(when, datetime) else datetime.fromisoformat(when.replace("Z", "+00:00"))
    )


def relative(when: datetime | str | None, now: datetime) -> str:
    """ "in 12 min", "3 h ago"... for a time near `now`."""
    if when is None:
        return ""
    seconds = int((as_time(when) - now).total_seconds())
    amount = duration(abs(seconds))
    return f"in {amount}" if seconds >= 0 else f"{amount} ago"


def due(when: datetime | str | None, now: datetime) -> str:
    """A reply's due time as a person says it: "due in 25 min", "12 min overdue"."""
    if when is None:
        return ""
    seconds = int((as_time(when) - now).total_seconds())
    return f"due in {duration(seconds)}" if seconds >= 0 else f"{duration(-seconds)} overdue"


def duration(seconds: float) -> str:
    """A span as a person says it: "40 s", "12 min", "3 h 05 min", "29 days"."""
    span = int(seconds)
    if span < 60:
        return f"{span} s"
    if span < 3600:
        return f"{span // 60} min"
    if span < 86400 * 2:
        return f"{span // 3600} h {span % 3600 // 60:02d} min"
    return f"{span // 86400} days"

"""What pages show of text: findings marked, redlines, relative times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from web.text import Piece, due, marked, redline, relative


def finding(start: int, end: int, severity: str) -> dict[str, object]:
    return {"start": start, "end": end, "severity": severity, "message": "m"}


def test_findings_are_marked_in_order_and_overlaps_do_not_repeat_text() -> None:
    body = "Calm down, you idiot."
    pieces = marked(
        body, [finding(15, 20, "block"), finding(0, 9, "warn"), finding(16, 18, "route:legal")]
    )
    assert "".join(p.text for p in pieces) == body
    assert [(p.text, p.kind) for p in pieces if p.kind] == [
        ("Calm down", "warn"),
        ("idiot", "block"),
    ]
    assert marked("", []) == [] and marked("plain", []) == [Piece("plain")]


def test_a_redline_shows_words_removed_and_added() -> None:
    pieces = redline("we will reimburse you.", "we will refund the fees.")
    assert [(p.text, p.kind) for p in pieces if p.kind] == [
        ("reimburse", "del"),
        ("refund", "ins"),
        ("you", "del"),
        ("the fees", "ins"),
    ]
    assert "".join(p.text for p in pieces if p.kind != "del") == "we will refund the fees."
    assert "".join(p.text for p in pieces if p.kind != "ins") == "we will reimburse you."


def test_times_read_as_people_say_them() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert relative(now + timedelta(minutes=12), now) == "in 12 min"
    assert relative(now - timedelta(seconds=30), now) == "30 s ago"
    assert relative(now - timedelta(hours=3, minutes=5), now) == "3 h 05 min ago"
    assert relative("2026-11-19T12:00:00Z", now) == "3 days ago"
    assert relative(None, now) == ""
    assert due(now + timedelta(minutes=25), now) == "due in 25 min"
    assert due("2026-11-22T11:48:00Z", now) == "12 min overdue"
    assert due(None, now) == ""

# ruff: noqa: RUF001  (look-alike letters are the point)
"""Texts written to make a policy check slow: the longest body a reply may have (10,000
characters) filled with what a backtracking pattern, a quadratic loop or a Unicode corner
of the lexicon's folding would choke on. Shared by `tests/test_hostile_text.py` (no check
runs over its budget) and `bench/policies.py --pathological` (the worst time, measured).
"""

from __future__ import annotations

LONGEST = 10_000  # records.draft_shapes.BODY_FIELD


def _fill(unit: str, *, head: str = "", tail: str = "") -> str:
    room = LONGEST - len(head) - len(tail)
    return head + (unit * (room // len(unit) + 1))[:room] + tail


EVASIONS = (
    "s.h.i.t f u c k ＦＵＣＫ ѕһіt d\u200ba\u200bm\u200bn d̶a̶m̶n̶ "  # dots, spaces, width, look-alikes
    "acct ４１１１ 1111 1111 1111 @a@b.c #x http://a.b/%20 www.x.y "  # digits, links, tags
    "\u202eevil.ru\u202c 1️⃣ 👍🏽 👨‍👩‍👧 GB82 WEST 1234 5698 7654 32 "  # direction, emoji, IBAN
)

HOSTILE: dict[str, str] = {
    "spaces": " " * LONGEST,
    "account, spaces, digit": _fill(" ", head="account", tail="x1"),
    "order, spaces, hash": _fill(" ", head="order", tail="#1"),
    "account, tabs and newlines": _fill("\t\n", head="acct no", tail=": 1"),
    "look-alike letters": _fill("ѕһіt "),
    "full-width letters": _fill("ｓｈｉｔ "),
    "spelt out": _fill("s h i t "),
    "dotted": _fill("d.a.m.n."),
    "zero-width": _fill("d\u200ba\u200bm\u200bn\u200b"),
    "combining marks": _fill("\u0301", head="a"),
    "one long word": "a" * LONGEST,
    "digits and spaces": _fill("1 "),
    "digits and dashes": _fill("1-"),
    "digits in brackets": _fill("(1)"),
    "phone prefixes": _fill("+1 ("),
    "one long number": "4" * LONGEST,
    "iban heads": _fill("GB82 "),
    "iban run": _fill("GB82WEST"),
    "at signs": "@" * LONGEST,
    "local parts": _fill("a@"),
    "dotted local part": _fill("a.", tail="@"),
    "domains without end": _fill("a@b."),
    "long address": _fill("x", tail="@b.co"),
    "schemes": _fill("http://"),
    "bare links": _fill("a.com/"),
    "dashed labels": _fill("a-", tail=".x"),
    "dashed labels, one long": _fill("a-", tail=".com"),
    "long labels": _fill("a" * 70 + "."),
    "dashes and dots": _fill("a-.", tail="com"),
    "www": _fill("www."),
    # One run of domain characters, as twitter-text's link expression meets them.
    "ideographs and dots": _fill("中.", tail="com"),
    "letters and dots": _fill("a.", tail="com"),
    "ideographs, one dot": _fill("中", tail=".com"),
    "a scheme and one long host": _fill("a", head="https://", tail=".com/x"),
    "brackets in a path": _fill("(a)", head="acme.com/"),
    "queries": _fill("?a", head="acme.com/x"),
    "lines of links": _fill("a.com\n"),
    "mentions": _fill("@a "),
    "hashtags": _fill("#a "),
    "emoji with skin tones": _fill("👍🏽"),
    "families": _fill("👨‍👩‍👧‍👦"),
    "keycaps": _fill("1️⃣"),
    "direction marks": _fill("\u200f\u202e"),
    "every evasion at once": _fill(EVASIONS),
}

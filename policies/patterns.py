"""Rule-set patterns in a linear-time engine.

An admin's pattern (`pii.patterns` in a rule set) runs over every reply and, through the
worker's submit checks, on every draft. Python's `re` backtracks: `(\\d+)+x` or adjacent
`\\s*` runs take seconds on a few thousand characters, holding the interpreter while they do.
RE2 (through `google-re2`) matches in time linear in the text whatever the pattern, and
refuses what it cannot do in linear time (look-behind, back-references) at compile time, so
an upload with such a pattern is refused with its line and RE2's reason.

RE2's `\\d`, `\\s` and `\\w` are ASCII. `ascii_view` maps every Unicode decimal digit and
space one-for-one to its ASCII twin before a scan, so an account number in full-width
digits is found as Python's `re` would have found it, and offsets stay the text's own.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import re2

__all__ = ["LinearPattern", "PatternError", "ascii_view", "compile_linear"]

# What `compile_linear` returns (google-re2 keeps its class private).
LinearPattern = Any

# RE2 refuses patterns above this much memory; a rule set's few patterns need far less.
_MAX_MEMORY = 8 << 20


class PatternError(ValueError):
    """A pattern RE2 cannot compile; the message is RE2's reason, in words."""


def compile_linear(pattern: str) -> LinearPattern:
    """`pattern`, case-insensitive, compiled by RE2; PatternError with the reason if not."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = _MAX_MEMORY
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise PatternError(_reason(exc)) from None


def _reason(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    detail = str(detail)
    if "invalid perl operator: (?<" in detail or "(?=" in detail or "(?!" in detail:
        return f"{detail} (look-around cannot run in linear time; match the text itself)"
    if "invalid escape sequence: \\" in detail and any(d in detail for d in "123456789"):
        return f"{detail} (back-references cannot run in linear time)"
    return detail


class _AsciiTable(dict[int, int]):
    """`str.translate` table: a Unicode digit to its ASCII digit, a Unicode space to ' '."""

    def __missing__(self, code: int) -> int:
        char = chr(code)
        value = code
        if code > 127:
            digit = unicodedata.decimal(char, None)
            if digit is not None:
                value = 48 + digit
            elif char.isspace():
                value = 32
        self[code] = value
        return value


_ASCII = _AsciiTable()


def ascii_view(text: str) -> str:
    """`text` with Unicode digits and spaces as ASCII, the same length (offsets hold)."""
    if text.isascii():
        return text
    return text.translate(_ASCII)

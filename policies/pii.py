"""Personal data that must not appear in a public reply: card numbers, IBANs, US social
security numbers, phone numbers, e-mail addresses and the rule set's own account or order
number patterns.

Each detection carries a masked excerpt and a suggested redaction, never the whole number:
a finding is shown to reviewers and kept in the audit trail, which must not become the
leak it reports. Numbers are confirmed before they are reported (a card passes Luhn, an
IBAN mod 97, a phone number is valid for its region), so an order total or a date is not
flagged.

Detectors look for candidates with a few compiled patterns and confirm them in Python, so a
reply without digits or an `@` costs a couple of regex scans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

import phonenumbers
from stdnum import iban

from policies.patterns import ascii_view, compile_linear

# Digit runs that may be a card, an SSN or a phone number: digits with single spaces,
# dots, dashes or brackets between them, at least 7 digits in all.
_NUMBER = re.compile(r"(?<![\w+])\+?\(?\d(?:[ .\-()]{0,2}\d){6,22}(?!\w)")
# Where an IBAN may start: a country code and check digits, then its characters, grouped
# by single spaces or dashes or not at all; which of them belong to it is decided by the
# registry's length for the country (`_ibans`), so a word after it is never taken in.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){8,32}")
_SSN = re.compile(r"(?<![\d-])(\d{3})[- ](\d{2})[- ](\d{4})(?![\d-])")
# Nine digits are an SSN only where the text says so (say, "SSN 123456789").
_SSN_SAID = re.compile(
    r"(?i)\b(?:ssn|social security(?: number| no\.?| #)?)\W{0,3}"
    r"(\d{3})[- ]?(\d{2})[- ]?(\d{4})(?!\d)"
)
_EMAIL = re.compile(r"(?<![\w@.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def _iban_lengths() -> dict[str, int]:
    """Each country's IBAN length, from the SWIFT registry python-stdnum ships
    (`iban.dat`: `CC country="…" bban="4!n4!n12!c"`): 4, and the BBAN's parts."""
    lengths = {}
    registry = resources.files("stdnum").joinpath("iban.dat").read_text(encoding="utf-8")
    for line in registry.splitlines():
        found = re.match(r'([A-Z]{2}) .*bban="([^"]*)"', line)
        if found:
            parts = re.findall(r"(\d+)!", found[2])
            lengths[found[1]] = 4 + sum(int(n) for n in parts)
    return lengths


IBAN_LENGTHS = _iban_lengths()

# The only 12-digit cards: Maestro's (IIN 50, 56 to 69).
MAESTRO_12 = frozenset({"50", *(str(n) for n in range(56, 70))})


@dataclass(frozen=True)
class Detection:
    kind: str  # card, iban, ssn, phone, email, or a rule-set pattern's id
    label: str  # what to call it in a message
    start: int
    end: int
    masked: str  # the excerpt with all but a few characters hidden
    redaction: str  # what to put in its place


@dataclass(frozen=True)
class Pattern:
    """An account or order number pattern from the rule set (RE2 syntax, see
    `policies.patterns`)."""

    id: str
    label: str
    source: str


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """A valid IBAN of any country in the SWIFT registry (python-stdnum): its length for
    the country, its structure and its mod-97 check digits."""
    return bool(iban.is_valid(candidate))


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """Structurally possible (SSA rules): no 000, 666 or 9xx area, no 00 group, no 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def mask(text: str, keep: int = 4) -> str:
    """Hide every letter and digit but the last `keep`, keeping the separators."""
    seen, out = 0, []
    total = sum(c.isalnum() for c in text)
    for char in text:
        if char.isalnum():
            seen += 1
            out.append(char if seen > total - keep else "\u2022")
        else:
            out.append(char)
    return "".join(out)


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    host, _, tld = domain.rpartition(".")
    return f"{local[0]}\u2022\u2022\u2022@{host[0]}\u2022\u2022\u2022.{tld}"


_DIGIT = re.compile(r"\d")


def _has_digit(text: str) -> bool:
    if text.isascii():  # ten substring scans in C beat one Unicode-aware regex
        return any(map(text.__contains__, "0123456789"))
    return _DIGIT.search(text) is not None


KINDS = ("card", "iban", "ssn", "phone", "email")


class Detectors:
    """The detectors named in `kinds` (see `KINDS`), plus the rule set's `patterns`."""

    def __init__(
        self,
        *,
        kinds: Iterable[str] = KINDS,
        phone_regions: Iterable[str] = ("US",),
        patterns: Iterable[Pattern] = (),
    ):
        self.kinds = frozenset(kinds)
        self.phone_regions = tuple(phone_regions)
        self.patterns = tuple(patterns)
        # The rule set's patterns in one scan, each in a group of its own (a pattern's own
        # groups, named or not, follow it, so `_outer` holds each pattern's group number).
        # They describe account and order numbers, so run only on a reply with a digit.
        self._patterns = None
        self._outer: list[int] = []
        if self.patterns:
            group = 1
            for pattern in self.patterns:
                self._outer.append(group)
                group += 1 + compile_linear(pattern.source).groups
            self._patterns = compile_linear("|".join(f"({p.source})" for p in self.patterns))

    def find(self, text: str) -> list[Detection]:
        found: list[Detection] = []
        if "email" in self.kinds and "@" in text:
            found.extend(self._emails(text))
        if not _has_digit(text):
            return _without_overlaps(found)  # account and order numbers have digits too
        if self._patterns is not None:
            found.extend(self._pattern_matches(text))
        if "iban" in self.kinds:
            found.extend(self._ibans(text))
        if "ssn" in self.kinds:
            found.extend(self._ssns(text))
        if self.kinds & {"card", "phone"}:
            found.extend(self._numbers(text))
        return _without_overlaps(found)

    @staticmethod
    def _emails(text: str) -> Iterator[Detection]:
        for match in _EMAIL.finditer(text):
            yield Detection(
                "email", "e-mail address", *match.span(), mask_email(match[0]), "[e-mail address]"
            )

    def _pattern_matches(self, text: str) -> Iterator[Detection]:
        assert self._patterns is not None
        for match in self._patterns.finditer(ascii_view(text)):
            which = next(n for n, group in enumerate(self._outer) if match.start(group) >= 0)
            pattern = self.patterns[which]
            start, end = match.span()
            yield Detection(
                pattern.id, pattern.label, start, end, mask(text[start:end], 2),
                f"[{pattern.label}]",
            )  # fmt: skip

    @staticmethod
    def _ibans(text: str) -> Iterator[Detection]:
        """Each candidate's first characters, as many as the registry says its country's
        IBANs have, if they make a valid IBAN (one validation per candidate)."""
        for match in _IBAN.finditer(text):
            start, candidate = match.start(), match[0]
            length = IBAN_LENGTHS.get(candidate[:2])
            ends = [i + 1 for i, c in enumerate(candidate) if c.isalnum()]  # after n chars
            if length is None or len(ends) < length:
                continue
            written = candidate[: ends[length - 1]]
            if iban_ok(written.upper()):
                masked = written[:2] + mask(written[2:], 4)
                yield Detection(
                    "iban", "IBAN", start, start + len(written), masked, "[bank account]"
                )

    @staticmethod
    def _ssns(text: str) -> Iterator[Detection]:
        for pattern in (_SSN, _SSN_SAID):
            for match in pattern.finditer(text):
                if ssn_ok(*match.groups()):
                    start, end = match.span(1)[0], match.end()
                    yield Detection(
                        "ssn", "social security number", start, end, mask(text[start:end]), "[SSN]"
                    )

    def _numbers(self, text: str) -> Iterator[Detection]:
        """Card numbers (13 to 19 digits passing Luhn), else phone numbers."""
        for match in _NUMBER.finditer(text):
            candidate = match[0]
            digits = "".join(c for c in candidate if c.isdigit())
            card = (
                12 <= len(digits) <= 19
                and not candidate.startswith("+")  # a card is never written with a +
                and "(" not in candidate
                and luhn_ok(digits)
                and (len(digits) >= 13 or digits[:2] in MAESTRO_12)
            )
            if card and "card" in self.kinds:
                yield Detection(
                    "card", "payment card number", *match.span(), mask(candidate), "[card number]"
                )
            elif (
                not card
                and "phone" in self.kinds
                and (len(digits) <= 12 or candidate.startswith("+"))
                and self._is_phone(candidate)
            ):
                # 13 digits or more without a `+` read as a card or a reference, not a phone
                yield Detection(
                    "phone", "phone number", *match.span(), mask(candidate, 2), "[phone number]"
                )

    def _is_phone(self, candidate: str) -> bool:
        if candidate.startswith("+"):  # international form: any country
            try:
                return bool(phonenumbers.is_valid_number(phonenumbers.parse(candidate, None)))
            except phonenumbers.NumberParseException:
                return False
        for region in self.phone_regions:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                return True
        return False


def _without_overlaps(found: list[Detection]) -> list[Detection]:
    """One detection per span of text: the first found (the most specific) wins."""
    kept: list[Detection] = []
    for detection in found:
        if not any(d.start < detection.end and detection.start < d.end for d in kept):
            kept.append(detection)
    return sorted(kept, key=lambda d: d.start)

"""Lexicon matching that sees through the usual evasions, in one pass over the text.

A reply is folded to a stream of plain letters: Unicode NFKC, case folding, diacritics
dropped, common leetspeak and look-alike characters mapped to the letter they imitate
(`r3fünd`, or `refund` spelt with a Cyrillic `\u0435`: see `LOOK_ALIKES`), and everything that
is not a letter or digit left out. Each folded character remembers where it came from, so
a finding points at the original text.

Every term is folded the same way and put in one Aho-Corasick automaton (pyahocorasick),
so the cost is one scan of the text whatever the number of terms. A hit in the folded
stream is then checked against the original text:

- it starts and ends at a word boundary (`dam` does not match inside `Amsterdam`);
- within each word, the gaps between its letters are either all empty (`refund`,
  `ref\u200bund`) or all non-empty (`r e f u n d`, `r.e.f.u.n.d`); the term's own word
  breaks must be gaps (`class action`) and its own punctuation may be (`pre-approved`,
  `preapproved`); so `are fund` is not `refund`;
- a spaced-out hit is not the tail or head of a longer spaced-out word (`s h i t` in
  `b u l l s h i t`);
- it is not inside an allow-listed phrase (`Scunthorpe`).
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

# Characters that stand in for letters: leetspeak and look-alikes from other scripts.
LOOK_ALIKES = {
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "8": "b",
    "@": "a",
    "$": "s",
    "\u20ac": "e",  # euro sign
    "\u00a3": "l",  # pound sign
    # Cyrillic
    "\u0430": "a",  # cyrillic small letter a
    "\u0432": "b",  # cyrillic small letter ve
    "\u0435": "e",  # cyrillic small letter ie
    "\u0451": "e",  # cyrillic small letter io
    "\u0456": "i",  # cyrillic small letter byelorussian-ukrainian i
    "\u0458": "j",  # cyrillic small letter je
    "\u043a": "k",  # cyrillic small letter ka
    "\u043c": "m",  # cyrillic small letter em
    "\u043d": "h",  # cyrillic small letter en
    "\u043e": "o",  # cyrillic small letter o
    "\u0440": "p",  # cyrillic small letter er
    "\u0441": "c",  # cyrillic small letter es
    "\u0442": "t",  # cyrillic small letter te
    "\u0443": "y",  # cyrillic small letter u
    "\u0445": "x",  # cyrillic small letter ha
    "\u0455": "s",  # cyrillic small letter dze
    # Greek
    "\u03b1": "a",  # greek small letter alpha
    "\u03b2": "b",  # greek small letter beta
    "\u03b5": "e",  # greek small letter epsilon
    "\u03b9": "i",  # greek small letter iota
    "\u03ba": "k",  # greek small letter kappa
    "\u03bd": "v",  # greek small letter nu
    "\u03bf": "o",  # greek small letter omicron
    "\u03c1": "p",  # greek small letter rho
    "\u03c4": "t",  # greek small letter tau
    "\u03c5": "u",  # greek small letter upsilon
    "\u03c7": "x",  # greek small letter chi
}


@functools.lru_cache(maxsize=8192)  # text repeats its characters: fold each once
def fold_char(char: str) -> str:
    """What one character of text counts as: zero, one or more plain letters or digits."""
    if char in LOOK_ALIKES:
        return LOOK_ALIKES[char]
    out = []
    for piece in unicodedata.normalize("NFKC", char).casefold():
        if piece in LOOK_ALIKES:
            out.append(LOOK_ALIKES[piece])
            continue
        for base in unicodedata.normalize("NFD", piece):
            if base.isalnum():  # combining marks (diacritics) and punctuation drop out
                out.append(LOOK_ALIKES.get(base, base))
    return "".join(out)


@dataclass(frozen=True)
class Folded:
    """`text` folded, and for each folded character the index of its original character."""

    text: str
    origin: list[int]


class _FoldTable(dict[int, str]):
    """`str.translate` table that folds each character the first time it is seen."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = fold_char(chr(code))
        return folded


_FOLD_TABLE = _FoldTable()


def fold_text(text: str) -> str:
    """`fold(text).text`, at C speed: what a clean reply costs (origins come only on a hit)."""
    return text.translate(_FOLD_TABLE)


_SLOW = "\x01"  # in the spaced fold: a character the fast filter cannot reason about


class _SpacedTable(dict[int, str]):
    """`str.translate` table for the fast filter: letters and digits fold as in `fold`,
    any other character becomes a space, and the rare character that folds to several
    letters or is invisible (`\u200b`, a combining mark) becomes a marker that sends the
    text down the exact path."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        folded = fold_char(char)
        slow = len(folded) > 1 or (not folded and _invisible(char))
        value = self[code] = _SLOW if slow else (folded or " ")
        return value


_SPACED_TABLE = _SpacedTable()
_SPACES = re.compile(r"  +")
# Two letters in a row that stand alone, as in a word spelt out (`r e f u n d`), in the
# spaced fold padded with a space at each end (a literal first: a fast scan).
_SPELT_OUT = re.compile(r" \w \w ")


def fold(text: str) -> Folded:
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for piece in fold_char(char):
            chars.append(piece)
            origin.append(index)
    return Folded("".join(chars), origin)


def _is_word_char(char: str) -> bool:
    return bool(fold_char(char))


def _invisible(char: str) -> bool:
    """Combining marks and format characters (zero-width space, soft hyphen): no gap."""
    return unicodedata.category(char) in ("Mn", "Me", "Cf")


def _gap(text: str, before: int, after: int) -> bool:
    return any(not _invisible(c) for c in text[before + 1 : after])


@dataclass(frozen=True)
class Hit:
    key: str  # the entry's key, as given to `Lexicon`
    start: int  # in the original text
    end: int


@dataclass(frozen=True)
class _Shape:
    """Where a folded term may or must break: `breaks` start a new word (the text must have
    a gap there), `optional` are the term's own punctuation (`pre-approved`, `we'll`),
    where the text may have a gap or not."""

    breaks: frozenset[int]
    optional: frozenset[int]


def _shape(phrase: str) -> tuple[str, _Shape]:
    folded: list[str] = []
    breaks: set[int] = set()
    optional: set[int] = set()
    for word in phrase.split():
        if folded and fold_text(word):
            breaks.add(len(folded))
        pending = False
        for char in word:
            piece = fold_char(char)
            if not piece:
                pending = bool(folded) and len(folded) not in breaks
                continue
            if pending:
                optional.add(len(folded))
                pending = False
            folded.extend(piece)
    return "".join(folded), _Shape(frozenset(breaks), frozenset(optional))


MAX_OPTIONAL = 6  # punctuation spots in one term (2**6 spellings in the fast filter)


def _spellings(folded: str, shape: _Shape) -> list[str]:
    """How the term reads in the fast filter's spaced fold: words apart, and each of its
    own punctuation spots either written (a space) or not."""
    optional = sorted(shape.optional)
    spellings = []
    for written in itertools.product((False, True), repeat=len(optional)):
        spaced = {at for at, yes in zip(optional, written, strict=True) if yes} | shape.breaks
        spellings.append("".join((" " if i in spaced else "") + c for i, c in enumerate(folded)))
    return spellings


class Lexicon:
    """Entries `(key, phrase)`; `allow` phrases suppress hits that fall inside them."""

    def __init__(self, entries: Iterable[tuple[str, str]], allow: Iterable[str] = ()) -> None:
        self._automaton = ahocorasick.Automaton()
        self._filter = ahocorasick.Automaton()  # terms as whole words of the spaced fold
        found: dict[str, list[tuple[str, _Shape, bool]]] = {}
        for key, phrase in entries:
            self._add(found, key, phrase, allowed=False)
        for phrase in allow:
            self._add(found, f"allow:{phrase}", phrase, allowed=True)
        for folded, owners in found.items():
            self._automaton.add_word(folded, (len(folded), owners))
            for _key, shape, allowed in owners:
                if not allowed:
                    for spelling in _spellings(folded, shape):
                        self._filter.add_word(f" {spelling} ", True)
        if found:
            self._automaton.make_automaton()
        if len(self._filter):
            self._filter.make_automaton()

    @staticmethod
    def _add(
        found: dict[str, list[tuple[str, _Shape, bool]]],
        key: str,
        phrase: str,
        *,
        allowed: bool,
    ) -> None:
        folded, shape = _shape(phrase)
        if not folded:
            raise ValueError(f"{phrase!r} has no letters or digits")
        if len(shape.optional) > MAX_OPTIONAL:
            raise ValueError(f"{phrase!r} has more than {MAX_OPTIONAL} punctuation marks")
        found.setdefault(folded, []).append((key, shape, allowed))

    def find(self, text: str) -> list[Hit]:
        """The hits in `text`, in order, overlapping ones included (the longest first)."""
        if not text or len(self._filter) == 0:
            return []
        spaced = text.translate(_SPACED_TABLE)
        if _SLOW in spaced:
            return self.find_exactly(text)
        if not self._may_match(spaced):
            return []
        # One character in, at most one out: the spaced fold lines up with the text, so the
        # folded text and its origins come from it at C speed.
        origin = list(itertools.compress(range(len(spaced)), map(" ".__ne__, spaced)))
        return self._hits(text, Folded(spaced.replace(" ", ""), origin))

    def find_exactly(self, text: str) -> list[Hit]:
        """`find` without the fast filter (the property tests hold them equal)."""
        return self._hits(text, fold(text))

    def _hits(self, text: str, folded: Folded) -> list[Hit]:
        matches = list(self._automaton.iter(folded.text))
        if not matches:
            return []
        hits: list[Hit] = []
        allowed: list[tuple[int, int]] = []
        for last, (length, owners) in matches:
            first = last - length + 1
            for key, shape, is_allow in owners:
                span = self._span(text, folded, first, last, shape)
                if span is None:
                    continue
                if is_allow:
                    allowed.append(span)
                else:
                    hits.append(Hit(key, *span))
        hits = [h for h in hits if not any(a <= h.start and h.end <= b for a, b in allowed)]
        return sorted(hits, key=lambda h: (h.start, -(h.end - h.start)))

    def _may_match(self, spaced: str) -> bool:
        """The fast filter on the spaced fold, at C speed: False only when `find` would
        find nothing.

        On the spaced fold, a hit written tight is one of the term's spellings between
        spaces. A word spelt out letter by letter could make a hit the spellings do not
        show (`_SPELT_OUT`): such a text may match. (A text with an invisible character or
        one that folds to several letters does not come here: see `_SpacedTable`.)"""
        if "  " in spaced:
            spaced = _SPACES.sub(" ", spaced)
        padded = f" {spaced} "
        if _SPELT_OUT.search(padded):
            return True
        return next(self._filter.iter(padded), None) is not None

    @staticmethod
    def _span(
        text: str, folded: Folded, first: int, last: int, shape: _Shape
    ) -> tuple[int, int] | None:
        """The original span of a folded hit, or None when it is not a real occurrence."""
        start, end = folded.origin[first], folded.origin[last] + 1
        if start > 0 and _is_word_char(text[start - 1]):
            return None
        if end < len(text) and _is_word_char(text[end]):
            return None
        # Several folded characters from one original one share it; count gaps between
        # consecutive folded characters only where the original index moves on. Each word
        # of the term is written either tight or spaced out, not half and half.
        spaced = tight = False
        for offset in range(1, last - first + 1):
            before, after = folded.origin[first + offset - 1], folded.origin[first + offset]
            gap = _gap(text, before, after)
            if offset in shape.breaks:
                if not gap or (spaced and tight):
                    return None
                spaced = tight = False
                continue
            if after == before or offset in shape.optional:
                continue
            spaced, tight = spaced or gap, tight or not gap
        if spaced and tight:
            return None
        if spaced and (_spelt_on(text, start, -1) or _spelt_on(text, end - 1, 1)):
            return None  # part of a longer spaced-out word: `s h i t` in `b u l l s h i t`
        return start, end


def _spelt_on(text: str, at: int, step: int) -> bool:
    """Whether the spaced-out letter at `at` goes on, one gap further in `step`'s direction,
    with another lone letter (`l` in `b u l l s h i t`, seen from the `s`)."""
    gap = at + step
    while 0 <= gap < len(text) and not _is_word_char(text[gap]) and not text[gap].isspace():
        gap += step
    while 0 <= gap < len(text) and text[gap].isspace():
        gap += step
    if not 0 <= gap < len(text) or gap == at + step or not _is_word_char(text[gap]):
        return False
    if fold_char(text[gap]) in ("a", "i"):  # words of one letter: `what a s h i t day`
        return False
    beyond = gap + step
    return not (0 <= beyond < len(text) and _is_word_char(text[beyond]))

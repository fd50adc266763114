# ruff: noqa: RUF001, RUF002  (full-width signs and look-alike letters are the point)
"""X's own counting, ported from twitter-text 3 (the npm package X's web client uses):
`extract_urls` is its `extractUrlsWithIndices` and `weighted_length` its `parseTweet`.

Why a port and not a library: the Python ports on PyPI run twitter-text's regular
expressions on a backtracking engine, and a hostile post (20,000 letters of one script)
stalls them for minutes. Here the same expressions run in RE2, in linear time, and are
kept step for step equal to the reference (tests/test_twitter_text_reference.py runs the
npm package under node on generated mixed-script text and compares):

- JavaScript strings are UTF-16: indices count code units, and a character outside the
  Basic Multilingual Plane is two of them, each of which `[^…]` matches on its own. The
  text is turned into its code units first, each surrogate spelt as a private-use
  character of plane 15 (RE2 reads UTF-8, which has no lone surrogates).
- twitter-text's expressions are case-insensitive the way non-Unicode JavaScript is (a
  character's upper case, unless that leaves ASCII for a non-ASCII letter: `ſ` is not
  `s`). Rather than trust RE2's folding, the text is mapped to that canonical case and the
  expressions are written in it.
- RE2 has no look-ahead; twitter-text has one, after a top-level domain (the next character
  is no letter, digit, `@`, `+` or `-`). What may follow a domain (a port, a path, a query)
  always starts with `:`, `/` or `?`, so the look-ahead is spelt out as "one of those, or
  one more character of the right kind (captured and not part of the link), or the end".

The top-level domains are twitter-text's own list (`data/tld_lib.yml`), emoji are
twemoji-parser's expression (`data/twemoji_regex.txt`), both as the npm package ships them.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from array import array
from dataclasses import dataclass
from pathlib import Path

import re2
import yaml

_DATA = Path(__file__).parent / "data"

URL_WEIGHT = 23  # twitter-text's transformedURLLength
MAX_WEIGHTED_LENGTH = 280
# twitter-text v3 weighs a code unit in these ranges 1 and any other 2 (`_HEAVY_UNIT`).
INVALID_CHARACTERS = frozenset("\ufffe\ufeff\uffff")
_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG_LENGTH = 40
_PLANE_15 = 0xF0000 - 0xD800  # a surrogate code unit u is spelt chr(u + _PLANE_15)


@dataclass(frozen=True)
class Url:
    """A link as twitter-text reports it: `url` and UTF-16 `start`/`end` in the text, and
    the `domain` it was found on (for a link without a scheme, its ASCII part)."""

    start: int
    end: int
    url: str  # its text (for a link without a scheme and with a path, as twitter-text
    # gives it: the ASCII domain and the path, which may be shorter than start to end)
    domain: str
    has_scheme: bool


# --- Case: non-Unicode JavaScript's Canonicalize, over the Basic Multilingual Plane -----


def _canonical(unit: int) -> int:
    upper = chr(unit).upper()
    if len(upper) != 1 or ord(upper) > 0xFFFF:
        return unit
    if unit >= 128 and ord(upper) < 128:
        return unit
    return ord(upper)


@functools.cache
def _to_re2_space() -> dict[int, int]:
    """str.translate table: each code unit to its canonical case; surrogates to plane 15."""
    table = {}
    for unit in range(0x10000):
        if 0xD800 <= unit <= 0xDFFF:
            table[unit] = unit + _PLANE_15
        elif (canon := _canonical(unit)) != unit:
            table[unit] = canon
    return table


def code_units(text: str) -> str:
    """`text` as JavaScript sees it: one character per UTF-16 code unit."""
    if text.isascii() or max(text) <= "\uffff":
        return text
    return "".join(map(chr, array("H", text.encode("utf-16-le", "surrogatepass"))))


def _re2_space(units: str) -> str:
    return units.upper() if units.isascii() else units.translate(_to_re2_space())


# --- The expressions, as twitter-text composes them --------------------------------------


def _chars(spec: str) -> set[int]:
    """The code units of a class body written as JavaScript writes it: characters, `a-b`
    ranges, and `\\x` for a literal x."""
    items: list[tuple[str, bool]] = []  # (character, escaped)
    i = 0
    while i < len(spec):
        escaped = spec[i] == "\\"
        i += escaped
        items.append((spec[i], escaped))
        i += 1
    found: set[int] = set()
    j = 0
    while j < len(items):
        if j + 2 < len(items) and items[j + 1] == ("-", False):
            found.update(range(ord(items[j][0]), ord(items[j + 2][0]) + 1))
            j += 3
        else:
            found.add(ord(items[j][0]))
            j += 1
    return found


def _cls(spec: str, negated: bool = False) -> str:
    """An RE2 class matching, in canonical case, what `[spec]` matches with the `i` flag."""
    units = sorted({_canonical(u) if u <= 0xFFFF else u for u in _chars(spec)})
    # A character that is not its own canonical case never occurs in the mapped text, so a
    # gap made only of such characters may be closed: far fewer ranges for RE2 to compile.
    absent = _to_re2_space()
    ranges: list[list[int]] = []
    for unit in units:
        if ranges and all(u in absent for u in range(ranges[-1][1] + 1, unit)):
            ranges[-1][1] = unit
        else:
            ranges.append([unit, unit])
    body = "".join(rf"\x{{{a:x}}}" if a == b else rf"\x{{{a:x}}}-\x{{{b:x}}}" for a, b in ranges)
    return f"[{'^' if negated else ''}{body}]"


def _literal(text: str) -> str:
    return "".join(re.escape(chr(_canonical(ord(c)))) for c in text)


_LATIN_ACCENTS = (
    "\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
    "\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_CYRILLIC = "\u0400-\u04ff"
_DIRECTIONAL = "\u202a-\u202e\u061c\u200e\u200f\u2066\u2067\u2068\u2069"
_PUNCT = r"!'#%&'()*+,\\\-./:;<=>?@[]^_{|}~$"
_SPACES = "\x09-\x0d\x20\x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_INVALID = "\ufffe\ufeff\uffff"
_PATH_CHARS = rf"a-z{_CYRILLIC}0-9!*';:=+,.$/%#[]\-" "\u2013" rf"_~@|&{_LATIN_ACCENTS}"
_PATH_ENDING_CHARS = rf"+\-a-z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}"
_QUERY_CHARS = r"a-z0-9!?*'@();:&=+$/%#[]\-_.,~|"
_QUERY_ENDING_CHARS = r"a-z0-9\-_&=#/"


_TLD_GROUPS: dict[str, list[str]] = yaml.safe_load(
    (_DATA / "tld_lib.yml").read_text(encoding="utf-8")
)
TLDS = frozenset(tld for group in _TLD_GROUPS.values() for tld in group)


def _tlds(group: str) -> str:
    # Reverse order, as twitter-text generates it: a longer name before its prefix.
    return "|".join(_literal(tld) for tld in sorted(_TLD_GROUPS[group], reverse=True))


_PRECEDING = rf"(?:{_cls('A-Za-z0-9@＠$#＃' + _INVALID, negated=True)}|{_cls(_DIRECTIONAL)}|^)"
_DOMAIN_CHAR = _cls(_PUNCT + _SPACES + _INVALID + _DIRECTIONAL, negated=True)
_SUBDOMAIN = rf"(?:(?:{_DOMAIN_CHAR}(?:[_\-]|{_DOMAIN_CHAR})*)?{_DOMAIN_CHAR}\.)"
_DOMAIN_NAME = rf"(?:(?:{_DOMAIN_CHAR}(?:-|{_DOMAIN_CHAR})*)?{_DOMAIN_CHAR}\.)"
_GTLD = f"(?:{_tlds('generic')})"
_CCTLD = f"(?:{_tlds('country')})"
_PUNYCODE = r"(?:XN--[\-0-9A-Z]+)"
# The look-ahead after a TLD, when nothing follows it in the link: the next character.
_AFTER_TLD = rf"({_cls('0-9a-zA-Z@+-', negated=True)}|$)"
_PATH_CHAR = _cls(_PATH_CHARS)
_PARENS = rf"\((?:{_PATH_CHAR}+|(?:{_PATH_CHAR}*\({_PATH_CHAR}+\){_PATH_CHAR}*))\)"
_PATH_END = rf"(?:{_cls(_PATH_ENDING_CHARS)}|(?:{_PARENS}))"
_PATH = rf"(?:(?:{_PATH_CHAR}*(?:{_PARENS}{_PATH_CHAR}*)*{_PATH_END})|(?:@{_PATH_CHAR}+/))"
_QUERY = rf"\?{_cls(_QUERY_CHARS)}*{_cls(_QUERY_ENDING_CHARS)}"
# After the domain: a port, a path, a query, in twitter-text's order of preference; for a
# TLD with its look-ahead, "none of them" needs the next character to be right.
_REST = rf"(?::(?:[0-9]+))?(/{_PATH}*)?(?:{_QUERY})?"
_REST_AFTER_TLD = (
    rf"(?::(?:[0-9]+)(/{_PATH}*)?(?:{_QUERY})?|(/{_PATH}*)(?:{_QUERY})?|(?:{_QUERY})|{_AFTER_TLD})"
)


def _compiled(pattern: str) -> re2._Regexp:
    """RE2 with room for its automaton: twitter-text's classes are large in UTF-8."""
    options = re2.Options()
    options.max_mem = _RE2_MEMORY
    return re2.compile(pattern, options)


_RE2_MEMORY = 64 << 20
_EXTRACT_URL = _compiled(
    rf"({_PRECEDING})((HTTPS?://)?({_SUBDOMAIN}*{_DOMAIN_NAME})"
    rf"(?:({_GTLD}|{_CCTLD}){_REST_AFTER_TLD}|({_PUNYCODE}){_REST}))"
)
# Groups of _EXTRACT_URL: 1 what comes before, 2 the link, 3 its scheme, 4 the domain up to
# its TLD; then by branch: (TLD, path groups, look-ahead group).
_GTLD_OR_CCTLD = (5, (6, 7), 8)
_PUNYCODE_BRANCH = (9, (10,), None)
_ASCII_DOMAIN = _compiled(
    rf"(?:[\-A-Z0-9{_cls(_LATIN_ACCENTS)[1:-1]}]+\.)+"
    rf"(?:{_GTLD}{_AFTER_TLD}|{_CCTLD}{_AFTER_TLD}|{_PUNYCODE})"
)
_TCO = _compiled(rf"^HTTPS?://T\.CO/([A-Z0-9]+)(?:{_QUERY})?")
_EMOJI = re.compile((_DATA / "twemoji_regex.txt").read_text(encoding="utf-8").strip())
_PLAIN_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_RUN = re.compile(f"[^{_SPACES}]+")
_NON_ASCII = re.compile(r"[^\x20-\x7e]")
_LABEL_DOTS = re.compile("[.\u3002\uff0e\uff61]")


# --- Extraction ---------------------------------------------------------------------------


def extract_urls(text: str) -> list[Url]:
    """twitter-text's `extractUrlsWithIndices(text)`: UTF-16 indices, in text order (a
    check asks for one text's links more than once: the links, X's length, Mastodon's)."""
    return list(_extract_urls(text))


def forget() -> None:
    """Drop the remembered links (a benchmark that checks one text again wants the cost)."""
    _extract_urls.cache_clear()


@functools.lru_cache(maxsize=64)
def _extract_urls(text: str) -> tuple[Url, ...]:
    """No link holds a space (a space may only come before one), so each run of other
    characters that has a dot before its last character is searched on its own, with the
    characters either side: the same matches, in time that grows with the runs, not the
    text."""
    if "." not in text:
        return ()
    units = code_units(text)
    space = _re2_space(units)
    urls: list[Url] = []
    for run in _RUN.finditer(units):
        start, end = run.span()
        if units.find(".", start, end - 1) >= 0:
            # RE2's wrapper copies the string it is given at every call: a slice, whose
            # edges are spaces or the text's own, so `^` and `$` mean what they meant.
            window = slice(max(start - 1, 0), min(end + 1, len(units)))
            urls += _urls_in(units[window], space[window], window.start)
    return tuple(urls)


def _urls_in(units: str, space: str, offset: int) -> list[Url]:
    """The links in a window of the text (`offset` where it starts): JavaScript's
    `while (extractUrl.exec(text))`, each search going on where the last link ended."""
    urls: list[Url] = []
    # The wrapper maps UTF-8 offsets back to characters; ASCII needs no mapping.
    subject: str | bytes = space.encode("ascii") if space.isascii() else space
    at = 0
    while space.find(".", at) >= 0 and (match := _EXTRACT_URL.search(subject, at)) is not None:
        tld_group, paths, after = _GTLD_OR_CCTLD if match.start(5) >= 0 else _PUNYCODE_BRANCH
        start, end = match.start(2), match.end()
        if after is not None and (lookahead := match.start(after)) >= 0:
            end = lookahead  # the character after the TLD is not the link's
        at = end
        domain_start, domain_end = match.start(4), match.end(tld_group)
        domain = units[domain_start:domain_end]
        url = units[start:end]
        scheme = match.span(3)
        protocol = units[scheme[0] : scheme[1]] if scheme[0] >= 0 else "https://"
        if not _valid_url(url, protocol, domain):
            continue
        if scheme[0] < 0:
            if units[start - 1 : start] in ("-", "_", ".", "/"):
                continue  # twitter-text's invalidUrlWithoutProtocolPrecedingChars
            has_path = any(match.start(group) >= 0 for group in paths)
            found = _ascii_domains(units, space, domain_start, domain_end, url, end, has_path)
        else:
            tco = _TCO.search(space[start:end])
            if tco is not None:
                if len(tco[1]) > _MAX_TCO_SLUG_LENGTH:
                    continue
                end = start + tco.end()
                url = units[start:end]
            found = [Url(start, end, url, domain, has_scheme=True)]
        urls += [
            Url(u.start + offset, u.end + offset, _from_units(u.url), u.domain, u.has_scheme)
            for u in found
        ]
    return urls


def _ascii_domains(
    units: str, space: str, start: int, end: int, url: str, url_end: int, has_path: bool
) -> list[Url]:
    """The ASCII domains inside a domain found without a scheme (twitter-text links only
    those); the last one carries the link's path."""
    domain, domain_space = units[start:end], space[start:end]
    if _PLAIN_DOMAIN.fullmatch(domain):  # ASCII labels: the whole domain is what is found
        if has_path:
            return [Url(start, url_end, url, domain, has_scheme=False)]
        return [Url(start, end, domain, domain, has_scheme=False)]
    found: list[Url] = []
    at = ascii_end = 0
    while (match := _ASCII_DOMAIN.search(domain_space, at)) is not None:
        stop = match.start(1) if match.start(1) >= 0 else match.start(2)
        stop = stop if stop >= 0 else match.end()
        at = stop
        ascii_domain = domain[match.start() : stop]
        ascii_start = domain.find(ascii_domain, ascii_end)
        ascii_end = ascii_start + len(ascii_domain)
        found.append(Url(start + ascii_start, start + ascii_end, ascii_domain, ascii_domain, False))
    if found and has_path:
        last = found[-1]
        found[-1] = Url(last.start, url_end, url.replace(domain, last.url, 1), last.domain, False)
    return found


def _valid_url(url: str, protocol: str, domain: str) -> bool:
    """twitter-text's isValidUrl: the domain has an ASCII form (idna.toAscii) and the whole
    link, with that form, is at most 4,096 characters."""
    ascii_form = _to_ascii(domain)
    if ascii_form is None:
        return False
    return len(protocol) + len(url) + len(ascii_form) - len(domain) <= _MAX_URL_LENGTH


def _to_ascii(domain: str) -> str | None:
    if _PLAIN_DOMAIN.fullmatch(domain):
        return domain if all(1 <= len(label) <= 63 for label in domain.split(".")) else None
    if domain[:4] == "xn--" and _ASCII_DOMAIN.search(_re2_space(domain)) is None:
        return None
    for label in domain.split("."):
        encoded = _punycode_to_ascii(label)
        if not 1 <= len(encoded) <= 63:
            return None
    return domain


def _punycode_to_ascii(label: str) -> str:
    """punycode.js 1.4.1's toASCII: a part after an `@` and between any of its four dots is
    encoded when it holds anything outside printable ASCII."""
    head, at_sign, rest = label.partition("@")
    prefix = head + "@" if at_sign else ""
    parts = _LABEL_DOTS.sub(".", rest if at_sign else label).split(".")
    encoded = [
        "xn--" + _from_units(part).encode("punycode").decode("ascii")
        if _NON_ASCII.search(part)
        else part
        for part in parts
    ]
    return prefix + ".".join(encoded)


def _from_units(units: str) -> str:
    """Code units back to code points (punycode.js's ucs2decode: pairs joined, lone
    surrogates kept)."""
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


# --- Length -------------------------------------------------------------------------------


def weighted_length(text: str) -> int:
    """twitter-text's `parseTweet(text).weightedLength` (v3: emoji discounted): each link
    23, each emoji 2, each other character by its code unit's range, 1 or 2 (a character
    outside the Basic Multilingual Plane is weighed by its second unit: 2)."""
    units = code_units(unicodedata.normalize("NFC", text))
    # Each entity by where it starts, a link before an emoji (parseTweet's order).
    entities = {match.start(): match.end() - match.start() for match in _emoji(units)}
    entities.update({url.start: -_utf16_length(url.url) for url in extract_urls(units)})
    total, at = 0, 0
    for start in sorted(entities):
        if start < at:
            continue  # inside the entity before it
        size = entities[start]
        total += _plain_weight(units[at:start]) + (URL_WEIGHT if size < 0 else 2)
        at = start + abs(size)
    return total + _plain_weight(units[at:])


def _utf16_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


def _emoji(units: str) -> list[re.Match[str]]:
    return [] if units.isascii() else list(_EMOJI.finditer(units))


_HEAVY_UNIT = re.compile("[^\u0000-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037]")
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _plain_weight(units: str) -> int:
    """Characters outside links and emoji: a unit in the light ranges 1, any other 2, and a
    surrogate pair 2 in all (parseTweet weighs its second unit only)."""
    if units.isascii():
        return len(units)
    pairs = len(_SURROGATE_PAIR.findall(units))
    return len(units) + len(_HEAVY_UNIT.findall(units)) - 2 * pairs

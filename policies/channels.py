"""What each platform accepts: length counted the platform's way, mentions, hashtags, links.

- X counts weighted characters (twitter-text v3): text is NFC-normalised; code points in
  a few Latin, punctuation and symbol ranges weigh 1, every other one 2, an emoji (with its
  modifiers and joiners) 2 in all, and every URL 23 whatever its length. The limit is 280.
- Mastodon counts characters (grapheme clusters) with every URL that has a scheme as 23
  (bare domains as written) and a mention of a remote account as its local part
  (`@alice@example.social` counts as `@alice`). 500.
- Bluesky counts grapheme clusters of the whole text, links included. 300.
- Instagram (2,200) and Facebook (8,000) count characters.

Links are found the way the platforms autolink them: with a scheme, starting `www.`, or a
bare domain with a common top-level domain. Nothing is fetched.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import regex
import yaml

URL_LENGTH = 23  # what X and Mastodon count for any link
# Every top-level domain twitter-text knows (its conformance `tld_lib.yml`, committed as
# data): a bare domain ending in one is a link on X ("acme.ch/help", "evil-phish.ru/login").
TLDS = frozenset(
    tld.casefold()
    for group in yaml.safe_load(
        (Path(__file__).parent / "data" / "tld_lib.yml").read_text(encoding="utf-8")
    ).values()
    for tld in group
)
# A bare domain's labels are at most 63 characters (RFC 1035), and a match starts only
# where no label could have started earlier (not after a letter, digit, `@`, `.` or `-`):
# each position is then tried once and in bounded time, so a 10,000-character run of
# `a-a-a-…` costs a single pass, not one per dash.
# A bare domain is up to ten labels and a last one; whether that last one (or an earlier
# one, as in "acme.com.notatld") is a top-level domain is decided in `links`.
# What twitter-text lets a path and a query hold, and end with (its
# validGeneralUrlPathChars, validUrlPathEndingChars, validUrlQueryChars and
# validUrlQueryEndingChars): a dash, CJK or an em dash after `/help` is text, not link.
_ACCENTS = (
    "\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
    "\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_PATH = rf"[a-z\u0400-\u04ff0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&(){_ACCENTS}]"
_PATH_END = re.compile(rf"[+\-a-z\u0400-\u04ff0-9=_#/){_ACCENTS}]", re.IGNORECASE)
_QUERY = r"[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
_QUERY_END = re.compile(r"[a-z0-9\-_&=#/]", re.IGNORECASE)
URL = re.compile(
    r"(?<![\w@.-])(?:https?://[^\s/?#<>\"]+|"
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){1,10}[^\W_]{2,63}(?![\w-]))"
    rf"(?:/{_PATH}*)?(?:\?{_QUERY}*)?",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?)]}'\""  # punctuation after a link belongs to the sentence
MENTION = re.compile(r"(?<![\w@/])@(\w{1,30})(@[\w.-]+\w)?")
HASHTAG = re.compile(r"(?<![\w&/#])[#\uff03](\w*[^\W\d_]\w*)")
# twitter-text v3: code point ranges that weigh 1 (the rest weigh 2).
_LIGHT = regex.compile(r"[\u0000-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037]")
_HEAVY = regex.compile(r"[^\u0000-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037]")
# An emoji: a pictograph, a flag's letters, or a keycap (`1⃣`, `#️⃣`), as twitter-text's.
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|^[0-9#*]\ufe0f?\u20e3")
_GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True)
class Link:
    start: int
    end: int
    url: str
    host: str


# Every link has `://` or a dot before a letter (`acmebank.com`); a literal first is a fast
# scan.
_MAYBE_LINK = re.compile(r"\.[A-Za-z]")


def links(text: str) -> list[Link]:
    if "://" not in text and not _MAYBE_LINK.search(text):
        return []  # most replies: their dots end sentences
    found = []
    for match in URL.finditer(text):
        url = _trimmed(_with_a_tld(match[0])).rstrip(_TRAILING)
        if not url or not _valid_host(url):
            continue
        start = match.start()
        full = url if "://" in url else f"https://{url}"
        host = (urlsplit(full).hostname or "").lower().rstrip(".")
        found.append(Link(start, start + len(url), url, host))
    return found


_LABEL = re.compile(r"[a-z0-9_-]{1,63}", re.IGNORECASE)


def _valid_host(url: str) -> bool:
    """Each label of the host at most 63 characters, as punycode for a non-ASCII one
    (twitter-text's rule: a longer label is no domain, so the URL is text)."""
    host = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
    for label in host.split("."):
        if label.isascii():
            if not _LABEL.fullmatch(label):
                return False
        elif len("xn--" + label.encode("punycode").decode("ascii")) > 63:
            return False
    return True


def _trimmed(url: str) -> str:
    """A path or query ends on a character that may end it (twitter-text), and with no
    closing bracket it did not open."""
    cut = url.find("/", url.find("://") + 3 if "://" in url else 0)
    if cut < 0:
        return url
    while len(url) > cut + 1:
        last = url[-1]
        ending = _QUERY_END if "?" in url[cut:] else _PATH_END
        unbalanced = last == ")" and url[cut:].count("(") < url[cut:].count(")")
        if ending.match(last) and not unbalanced:
            break
        url = url[:-1]
    return url


def _with_a_tld(url: str) -> str:
    """`url` as far as its host ends in a top-level domain ("" if none does). A link with
    a scheme is a link whatever its ending; `www.` is no scheme (`www.xy` is text)."""
    if "://" in url[:8]:
        return url
    host, slash, rest = url.partition("/")
    labels = host.split(".")
    for count in range(len(labels), 1, -1):
        if labels[count - 1].casefold() in TLDS:
            kept = ".".join(labels[:count])
            return kept + slash + rest if count == len(labels) else kept
    return ""


def graphemes(text: str) -> int:
    if text.isascii():  # no combining sequences in ASCII but CR LF
        return len(text) - text.count("\r\n")
    return len(_GRAPHEME.findall(text))


def _around_links(text: str, found: list[Link], plain: Callable[[str], int]) -> int:
    """`plain`'s count of the text between links, plus `URL_LENGTH` per link."""
    total, at = 0, 0
    for link in found:
        total += plain(text[at : link.start]) + URL_LENGTH
        at = link.end
    return total + plain(text[at:])


def x_length(text: str, found: list[Link] | None = None) -> int:
    """X's weighted length; `found` are the text's links if already found (and the text
    is NFC already: true of all ASCII)."""
    if found is None or not text.isascii():
        text = unicodedata.normalize("NFC", text)
        found = links(text)
    return _around_links(text, found, _x_weight)


def _x_weight(text: str) -> int:
    if text.isascii() or not _HEAVY.search(text):
        return len(text)
    total = 0
    for cluster in _GRAPHEME.findall(text):
        if len(cluster) == 1:  # most clusters: one code point, its weight known once
            total += _weight_of(cluster)
        elif _EMOJI.search(cluster):
            total += 2
        else:
            total += sum(map(_weight_of, cluster))
    return total


@functools.cache
def _weight_of(char: str) -> int:
    """One code point's X weight: 1 in the light ranges, else 2 (an emoji is a cluster)."""
    return 1 if _LIGHT.match(char) else 2  # `©` alone is text; `©️` is an emoji


# Mastodon's `Account::MENTION_RE`: a local part may hold dots and dashes inside it.
MASTODON_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]*[a-z0-9_])?)(?:@[\w.-]*\w)?", re.IGNORECASE
)


def mastodon_length(text: str, found: list[Link] | None = None) -> int:
    """Mastodon's `StatusLengthValidator`: grapheme clusters, where a link *with a scheme*
    counts as 23 (a bare domain or `www.` link counts as written) and a mention counts as
    its local part (`@alice@example.social` as `@alice`); of overlapping entities, the
    first wins."""
    found = links(text) if found is None else found
    entities = sorted(
        [(link.start, link.end, "x" * URL_LENGTH) for link in found if "://" in link.url]
        + [(m.start(), m.end(), f"@{m[1]}") for m in MASTODON_MENTION.finditer(text)]
    )
    pieces, at = [], 0
    for start, end, placeholder in entities:
        if start < at:
            continue  # overlaps the entity before it
        pieces += [text[at:start], placeholder]
        at = end
    pieces.append(text[at:])
    return graphemes("".join(pieces))


# How each platform counts a text whose links are `found` (see the module's docstring).
COUNTERS: dict[str, Callable[[str, list[Link]], int]] = {
    "x": x_length,
    "mastodon": mastodon_length,
    "bluesky": lambda text, _links: graphemes(text),
    "characters": lambda text, _links: len(text),
}


def mentions(text: str) -> list[re.Match[str]]:
    return list(MENTION.finditer(text)) if "@" in text else []


def hashtags(text: str) -> list[re.Match[str]]:
    return list(HASHTAG.finditer(text)) if "#" in text or "\uff03" in text else []


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """`host` is an allowed domain or one of its subdomains. A name longer than DNS allows
    (253 characters, RFC 1035) is no host: not allowed, and its suffixes are not tried."""
    if len(host) > 253:
        return False
    parts = host.split(".")
    return any(".".join(parts[i:]) in allowed for i in range(len(parts) - 1))

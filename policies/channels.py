"""What each platform accepts: length counted the platform's way, mentions, hashtags, links.

- X counts as twitter-text does (`policies.twitter_text`, a port checked against the npm
  package): weighted characters, emoji 2, every link 23 whatever its length. 280.
- Mastodon counts characters (grapheme clusters) with every link that has a scheme as 23
  (bare domains as written) and a mention of a remote account as its local part
  (`@alice@example.social` counts as `@alice`). 500.
- Bluesky counts grapheme clusters of the whole text, links included. 300.
- Instagram (2,200) and Facebook (8,000) count characters.

`links` finds every link any of the platforms would render, so that the allowed-domains
check sees what a reader could click wherever the reply is shown: twitter-text's links
(bare domains with any of its top-level domains), Bluesky's (its own rule, `bluesky_links`)
and any `scheme://host` (Mastodon links its extra schemes, `gemini://` and the like; Meta
publishes no rule, and links at least these). Nothing is fetched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import regex

from policies import twitter_text

URL_LENGTH = twitter_text.URL_WEIGHT  # what X and Mastodon count for any link
MENTION = re.compile(r"(?<![\w@/])@(\w{1,30})(@[\w.-]+\w)?")
HASHTAG = re.compile(r"(?<![\w&/#])[#\uff03](\w*[^\W\d_]\w*)")
_GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True)
class Link:
    """A link in a text: where it is (code points), as written, and the host it leads to."""

    start: int
    end: int
    url: str
    host: str


def links(text: str) -> list[Link]:
    """Every link any platform would render in `text`, in order; one per place and host."""
    if "." not in text:
        return []  # every link has a dot: in its host, or after its scheme's host
    found = {(link.start, link.host): link for link in x_links(text)}
    for link in (*bluesky_links(text), *scheme_links(text)):
        found.setdefault((link.start, link.host), link)
    return sorted(found.values(), key=lambda link: (link.start, link.end))


def x_links(text: str) -> list[Link]:
    """twitter-text's links, at code-point places in `text`."""
    urls = twitter_text.extract_urls(text)
    places = _code_points(text) if urls and not text.isascii() else None
    return [
        Link(
            places[url.start] if places else url.start,
            places[url.end] if places else url.end,
            url.url,
            url.domain.lower().rstrip("."),
        )
        for url in urls
    ]


def _code_points(text: str) -> list[int]:
    """For each UTF-16 index of `text` (and its end), the code-point index it falls in."""
    places = []
    for index, char in enumerate(text):
        places += [index] * (2 if char > "\uffff" else 1)
    return [*places, len(text)]


# Bluesky's rule (@atproto/api `detectFacets`): after the start of a line, a space or `(`,
# `http(s)://` and all up to a space, or a domain of ASCII letters and digits whose last
# label is a top-level domain of IANA's list (`tlds`, as written: `ACME.COM` is text) and
# all up to a space; then one `.,;:!?` and an unopened `)` are cut. JavaScript's `\s`.
_JS_SPACE = "\t\n\v\f\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_BLUESKY_URL = re.compile(
    rf"(?:^|(?<=[\n\r\u2028\u2029])|[{_JS_SPACE}]|\()"
    rf"([hH][tT][tT][pP][sS]?://[^{_JS_SPACE}]+|([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)+)[^{_JS_SPACE}]*)"
)
IANA_TLDS = frozenset(
    json.loads((Path(__file__).parent / "data" / "tlds_iana.json").read_text("utf-8"))
)


def bluesky_links(text: str) -> list[Link]:
    found = []
    for match in _BLUESKY_URL.finditer(text):
        uri, domain = match[1], match[2]
        if not uri.startswith("http") and (
            not domain or domain.rsplit(".", 1)[-1] not in IANA_TLDS
        ):
            continue
        end = match.end(1)
        if uri[-1] in ".,;:!?":
            uri, end = uri[:-1], end - 1
        if uri.endswith(")") and "(" not in uri:
            uri, end = uri[:-1], end - 1
        # The app links `https://` + what it found: the host is where that URL leads.
        found.append(
            Link(match.start(1), end, uri, _host(uri if domain is None else f"https://{uri}"))
        )
    return found


# Any scheme followed by a host: Mastodon renders its extra schemes as links, and a reader's
# client may render others.
_SCHEME_URL = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s<>\"]+")


def scheme_links(text: str) -> list[Link]:
    if "://" not in text:
        return []
    found = []
    for match in _SCHEME_URL.finditer(text):
        found.append(Link(match.start(), match.end(), match[0], _host(match[0])))
    return found


def _host(url: str) -> str:
    """The host a URL leads to, as a browser reads it (after any `user@`), lower case; for
    one no parser can read (`https://:.example`), what follows `//`: still a link, and
    never an allowed one."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:  # a malformed port or bracket
        host = ""
    return host or _AUTHORITY_END.split(url.split("://", 1)[-1])[0].rsplit("@", 1)[-1].lower()


_AUTHORITY_END = re.compile(r"[/?#]")


def graphemes(text: str) -> int:
    if text.isascii():  # no combining sequences in ASCII but CR LF
        return len(text) - text.count("\r\n")
    return len(_GRAPHEME.findall(text))


def x_length(text: str) -> int:
    """X's weighted length (twitter-text's `parseTweet`), which finds its own links."""
    return twitter_text.weighted_length(text)


# Mastodon's `Account::MENTION_RE`: a local part may hold dots and dashes inside it.
MASTODON_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]*[a-z0-9_])?)(?:@[\w.-]*\w)?", re.IGNORECASE
)


def mastodon_length(text: str) -> int:
    """Mastodon's `StatusLengthValidator`: grapheme clusters, where a link *with a scheme*
    counts as 23 (a bare domain or `www.` link counts as written) and a mention counts as
    its local part (`@alice@example.social` as `@alice`); of overlapping entities, the
    first wins."""
    scheme = [link for link in x_links(text) if "://" in link.url]
    entities = sorted(
        [(link.start, link.end, "x" * URL_LENGTH) for link in scheme]
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


# How each platform counts a text (see the module's docstring).
COUNTERS: dict[str, Callable[[str], int]] = {
    "x": x_length,
    "mastodon": mastodon_length,
    "bluesky": graphemes,
    "characters": len,
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

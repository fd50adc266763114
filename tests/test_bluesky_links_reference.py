"""Bluesky's links and length against its own client library (issue 21, items 2 and 3):
`@atproto/api`'s RichText, as the app composes a post, run under node on generated
mixed-script text (`tests/mixed_text.py`). Every link it would make (UTF-8 place and URI)
must be one `policies.channels.bluesky_links` finds, and no other; `channels.links`, which
the allowed-domains check reads, holds each of them; and the length in graphemes (what
Bluesky's 300 counts) is `channels.graphemes`.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import channels
from tests.mixed_text import BATCHES, need_node, none_differ, random_texts, reference, texts

need_node()


def ours(text: str) -> dict:
    return {"graphemes": channels.graphemes(text), "links": _links(text)}


def _links(text: str) -> list[list]:
    return [
        [
            len(text[: link.start].encode()),
            len(text[: link.end].encode()),
            link.url if link.url.startswith("http") else f"https://{link.url}",
        ]
        for link in channels.bluesky_links(text)
    ]


@pytest.mark.long
@BATCHES
@given(st.lists(texts(), min_size=200, max_size=200))
def test_links_are_the_bluesky_apps(batch: list[str]) -> None:
    none_differ("bluesky.js", batch, ours)


def test_random_strings_of_link_characters_agree_too() -> None:
    none_differ("bluesky.js", random_texts(seed=22, count=5_000), ours)


def test_every_bluesky_link_reaches_the_links_check() -> None:
    """A domain only Bluesky links (a TLD newer than twitter-text's list, after a bracket)
    is still checked against the allowed domains."""
    for text in random_texts(seed=23, count=2_000):
        hosts = {(link.start, link.host) for link in channels.links(text)}
        for link in channels.bluesky_links(text):
            assert (link.start, link.host) in hosts, text


def test_the_reference_runs_and_answers() -> None:
    text = "see acme.com/help, and (https://x.org/a) ACME.COM bsky.app."
    expected = [[4, 17, "https://acme.com/help"], [24, 39, "https://x.org/a"],
                [50, 58, "https://bsky.app"]]  # fmt: skip
    answer = {"graphemes": len(text), "links": expected}
    assert reference("bluesky.js", [text]) == [answer]
    assert ours(text) == answer

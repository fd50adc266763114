"""X's counting and links against the reference implementation itself (issue 21, item 1):
the npm `twitter-text` package (3.1.0, what X's web client runs), under node, on
generated mixed-script text (`tests/mixed_text.py`): every weighted length and every link
(its UTF-16 place and text) must be what `policies.twitter_text` says.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import twitter_text
from tests.mixed_text import BATCHES, need_node, none_differ, random_texts, reference, texts

need_node()


def ours(text: str) -> dict:
    return {
        "weightedLength": twitter_text.weighted_length(text),
        "urls": [[u.start, u.end, u.url] for u in twitter_text.extract_urls(text)],
    }


@pytest.mark.long
@BATCHES
@given(st.lists(texts(), min_size=200, max_size=200))
def test_links_and_length_are_twitter_texts(batch: list[str]) -> None:
    none_differ("twitter_text.js", batch, ours)


def test_random_strings_of_link_characters_agree_too() -> None:
    none_differ("twitter_text.js", random_texts(seed=21, count=5_000), ours)


def test_the_reference_runs_and_answers() -> None:
    """The harness itself: node answers, and a plain case agrees (a test that could pass
    because node printed nothing would prove nothing)."""
    [answer] = reference("twitter_text.js", ["see acme.ch/help—thanks! 😀"])
    assert answer == {"weightedLength": 38, "urls": [[4, 16, "acme.ch/help"]]}
    assert ours("see acme.ch/help—thanks! 😀") == answer

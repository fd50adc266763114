"""X's counting and links against twitter-text's own conformance cases (issue 21, item 1),
committed as data: every case of `validate.yml` for the current configuration (v3, emoji
discounted) and the directional markers must agree on the weighted length, and so on
whether the reply fits in 280; every link case of `extract.yml` on the links found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from policies import channels, twitter_text

CASES = yaml.safe_load(
    (Path(__file__).parent / "conformance" / "twitter_text_validate.yml").read_text("utf-8")
)["tests"]
CURRENT = [
    *CASES["WeightedTweetsWithDiscountedEmojiCounterTest"],
    *CASES["UnicodeDirectionalMarkerCounterTest"],
]


@pytest.mark.parametrize("case", CURRENT, ids=[c["description"][:60] for c in CURRENT])
def test_x_counts_as_twitter_text(case: dict[str, Any]) -> None:
    expected = case["expected"]
    length = channels.x_length(case["text"])
    assert length == expected["weightedLength"], case["description"]
    if "invalid" not in case["description"].lower():
        assert (length <= 280) == expected["valid"], case["description"]


def test_every_current_case_is_run() -> None:
    assert len(CURRENT) == 24


EXTRACT = yaml.safe_load(
    (Path(__file__).parent / "conformance" / "twitter_text_extract.yml").read_text("utf-8")
)["tests"]
URL_SECTIONS = (
    "urls",
    "urls_with_indices",
    "urls_with_directional_markers",
    "tco_urls_with_params",
)
URL_CASES = [(section, case) for section in URL_SECTIONS for case in EXTRACT[section]]


@pytest.mark.parametrize(
    "section, case", URL_CASES, ids=[f"{s}: {c['description'][:50]}" for s, c in URL_CASES]
)
def test_links_are_found_as_twitter_text_finds_them(section: str, case: dict[str, Any]) -> None:
    """twitter-text's own link cases (`conformance/extract.yml`): which links, their text
    and, where given, their places."""
    found = twitter_text.extract_urls(case["text"])
    if section in ("urls", "tco_urls_with_params"):
        assert [url.url for url in found] == case["expected"], case["description"]
    else:
        got = [{"url": url.url, "indices": [url.start, url.end]} for url in found]
        assert got == case["expected"], case["description"]


def test_every_link_case_is_run() -> None:
    assert len(URL_CASES) == 108

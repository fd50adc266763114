"""X's counting against twitter-text's own conformance cases (issue 21, item 1), committed
as data (`tests/conformance/twitter_text_validate.yml`): every case of the current
configuration (v3, emoji discounted) and of the directional-marker cases must agree on the
weighted length, and so on whether the reply fits in 280."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from policies import channels

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

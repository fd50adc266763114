"""Triage against a labelled corpus (issue 23, item 8): 350 realistic inbound posts —
complaints, praise, spam, fraud reports, outages, legal threats, in seven languages —
each labelled by hand with its topic, language, priority band, keep or dismiss, and public
risk, as a team lead would label them (`tests/data/triage_corpus.csv`, written by
someone who had not seen the rule set). The shipped rule set triages each; the accuracy of
each label is printed (`pytest -s`) and held to a floor.

The rule set's term lists were tuned looking only at the even rows' mistakes; the odd rows
are held out, and their accuracy is the honest figure (the floors are theirs).
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policies import triage
from policies.engine import RuleSet

CORPUS = Path(__file__).parent / "data" / "triage_corpus.csv"
NOW = datetime(2026, 11, 30, tzinfo=UTC)
# The floors, on the held-out rows: what the shipped rules reach there (2026-11-30: topic
# 77.7%, language 98.3%, priority 64.6%, keep or dismiss 95.4%, public risk 94.9%), less a
# margin for a changed library model (lingua, VADER); a rule change that loses more fails.
FLOORS = {
    "topic": 0.75,
    "language": 0.95,
    "priority": 0.60,
    "action": 0.92,
    "public_risk": 0.92,
}


def rows() -> list[dict[str, str]]:
    with CORPUS.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def results() -> list[tuple[dict[str, str], dict[str, str]]]:
    rules = RuleSet.load().triage
    found = []
    for row in rows():
        result = triage.triage(
            rules,
            row["text"],
            origin=row["origin"],
            author=triage.Author(
                followers=int(row["followers"]), verified=row["verified"] == "true"
            ),
            at=NOW,
        )
        found.append((row, {
            "topic": result.topic or "none",
            "language": result.language or "und",
            "priority": result.priority,
            "action": "dismiss" if result.spam else "keep",
            "public_risk": str(result.public_risk).lower(),
        }))  # fmt: skip
    return found


def test_the_corpus_is_large_and_varied_enough_to_mean_something() -> None:
    corpus = rows()
    assert len(corpus) >= 300
    for label, least in (("topic", 6), ("language", 8), ("priority", 4), ("action", 2)):
        assert len({row[label] for row in corpus}) >= least, label
    for language in ("es", "fr", "de", "pt"):
        assert sum(row["language"] == language for row in corpus) >= 15, language


@pytest.mark.parametrize("label", list(FLOORS))
def test_triage_labels_the_corpus_as_people_did(
    label: str, results: list[tuple[dict[str, str], dict[str, str]]]
) -> None:
    accuracy = {}
    for half, name in ((0, "tuned on"), (1, "held out")):
        rows_ = results[half::2]
        right = sum(row[label] == got[label] for row, got in rows_)
        accuracy[name] = right / len(rows_)
        misses = Counter((r[label], g[label]) for r, g in rows_ if r[label] != g[label])
        print(
            f"\n{label}, {name}: {accuracy[name]:.1%} ({right}/{len(rows_)}); most confused"
            f" (expected, got): {misses.most_common(5)}"
        )
    held_out = accuracy["held out"]
    assert held_out >= FLOORS[label], f"{label}: {held_out:.1%} < {FLOORS[label]:.0%}"


def test_public_risk_is_rarely_missed(results: list[tuple[dict[str, str], dict[str, str]]]) -> None:
    """A missed public-risk post is the costly error (a viral complaint answered late).
    Measured 2026-11-30: 24 of 31 (77%); the floor is that, less one post."""
    risky = [(row, got) for row, got in results if row["public_risk"] == "true"]
    caught = sum(got["public_risk"] == "true" for _, got in risky)
    print(f"\npublic risk recall: {caught}/{len(risky)}")
    assert caught >= 23


def test_spam_is_dismissed_and_a_customer_is_not(
    results: list[tuple[dict[str, str], dict[str, str]]],
) -> None:
    """Dismissing a real customer as spam is worse than keeping a spam post: the first
    loses a customer's complaint. Fraud reports are never dismissed."""
    kept = [(row, got) for row, got in results if row["action"] == "keep"]
    wrongly = [row["text"] for row, got in kept if got["action"] == "dismiss"]
    print(f"\ncustomers dismissed as spam: {len(wrongly)}/{len(kept)}: {wrongly[:5]}")
    assert len(wrongly) / len(kept) <= 0.02
    assert not any(got["action"] == "dismiss" for row, got in results if row["topic"] == "fraud")

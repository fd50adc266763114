"""The labelled corpus (`tests/policies/corpus.yaml`), table-driven on the shipped rule set:
every reply trips exactly the rules it is labelled with and takes its labelled route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.engine import RuleSet

CORPUS = yaml.safe_load((Path(__file__).parent / "policies" / "corpus.yaml").read_text())
CASES = [("clean", case) for case in CORPUS["clean"]] + [
    ("flagged", case) for case in CORPUS["flagged"]
]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load()


def test_the_corpus_is_large_and_half_clean() -> None:
    assert len(CASES) >= 200
    assert len(CORPUS["clean"]) >= len(CASES) / 2
    assert all("findings" not in case and "route" not in case for case in CORPUS["clean"])
    assert all(case.get("findings") or case.get("route") for case in CORPUS["flagged"])


@pytest.mark.parametrize(
    "kind, case", CASES, ids=[f"{kind}-{n}" for n, (kind, _) in enumerate(CASES)]
)
def test_each_reply_gets_its_labelled_findings_and_route(
    rules: RuleSet, kind: str, case: dict[str, Any]
) -> None:
    result = rules.check(case["text"], case.get("channel", "x"), post_text=case.get("post"))
    assert sorted(f.rule_id for f in result.findings) == sorted(case.get("findings", []))
    assert result.route == case.get("route", ["comms"])
    blocking = any(f.severity == "block" for f in result.findings)
    assert result.blocked == blocking and (kind == "flagged" or not result.findings)

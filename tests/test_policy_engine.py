"""The first policy engine: channel length limits and a lexicon with block/warn/route."""

from __future__ import annotations

import pytest

from policies.engine import RuleSet, RuleSetError


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load()


def test_a_clean_reply_goes_to_comms_only(rules: RuleSet) -> None:
    result = rules.check("Thanks for reaching out! We have sent you a direct message.", "x")
    assert (result.findings, result.route, result.blocked) == ([], ["comms"], False)
    assert result.ruleset_version == rules.version


def test_an_admission_of_fault_routes_to_legal_whatever_the_spacing(rules: RuleSet) -> None:
    result = rules.check("Sorry, this was OUR\tFAULT.", "x")
    assert result.route == ["comms", "legal"]
    assert not result.blocked
    [finding] = result.findings
    assert (finding.category, finding.excerpt, finding.start) == ("legal_risk", "OUR\tFAULT", 16)


def test_profanity_blocks_but_not_inside_other_words(rules: RuleSet) -> None:
    assert rules.check("That was a damn shame", "x").blocked
    assert not rules.check("The dam near Leeds is open; Amsterdam too.", "x").blocked


def test_length_is_limited_per_channel(rules: RuleSet) -> None:
    assert rules.check("a" * 280, "x").findings == []
    too_long = rules.check("a" * 281, "x")
    assert too_long.blocked and too_long.findings[0].rule_id == "length.x"
    assert rules.check("a" * 281, "mastodon").findings == []


def test_the_version_follows_the_content() -> None:
    base = "name: t\nbase_route: [comms]\nlexicon:\n  - {term: foo, category: c, severity: block}\n"
    assert RuleSet(base).version == RuleSet(base).version
    assert RuleSet(base).version != RuleSet(base.replace("foo", "bar")).version


@pytest.mark.parametrize(
    "source, message",
    [
        ("- just a list", "mapping"),
        ("name: t\nbase_route: [marketing]", "base_route"),
        ("name: t\nlexicon:\n  - {term: x, category: c, severity: route:nowhere}", "entry 1"),
        ("name: t\nlexicon:\n  - {category: c}", "entry 1 needs term"),
        ("name: [unclosed", "YAML"),
    ],
)
def test_a_bad_rule_set_is_refused_with_the_reason(source: str, message: str) -> None:
    with pytest.raises(RuleSetError, match=message):
        RuleSet(source)


def test_the_lexicon_sees_through_spacing_and_look_alikes(rules: RuleSet) -> None:
    result = rules.check("What a d.a.m.n shame; we promise a FULL R3FUND.", "x")
    assert result.blocked
    assert [(f.category, f.excerpt) for f in result.findings] == [
        ("profanity", "d.a.m.n"),
        ("financial_promise", "FULL R3FUND"),
    ]
    assert result.route == ["comms", "legal"]


def test_allow_listed_phrases_are_not_findings() -> None:
    source = (
        "name: t\nbase_route: [comms]\nallow: [Damn Yankees]\n"
        "lexicon:\n  - {term: damn, category: profanity, severity: block}\n"
    )
    rules = RuleSet(source)
    assert rules.check("Two tickets for Damn Yankees tonight", "x").findings == []
    assert rules.check("damn", "x").blocked


@pytest.mark.parametrize(
    "source, message",
    [
        ("name: t\nallow: yes", "allow"),
        ("name: t\nlexicon:\n  - {term: '!!', category: c}", "no letters"),
    ],
)
def test_a_bad_allow_list_or_term_is_refused(source: str, message: str) -> None:
    with pytest.raises(RuleSetError, match=message):
        RuleSet(source)

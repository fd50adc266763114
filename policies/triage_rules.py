"""The rule set's `triage` section (`policies.triage` uses it): its words — priorities,
reach, mood, why a post is spam, the conditions a priority rule may name — and reading it,
each mistake refused with its line (`policies.ruleset_yaml`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lingua import IsoCode639_1

from lifecycle.routing import URGENCY
from policies import reading
from policies.lexicon import Lexicon
from policies.ruleset_yaml import Reader
from records.fields import MAX_RESPONSE_MINUTES, Origin

PRIORITIES = tuple(URGENCY)  # records.fields.Priority's values, most urgent first
FRAUD = "fraud"  # the topic whose posts spam words never dismiss
LISTENING = Origin.listening.value  # found talking about us, not to us
# First-response targets when the rule set names none (`triage.response_minutes`).
RESPONSE_MINUTES = {"urgent": 30, "high": 120, "normal": 480, "low": 1440}


class Reach(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class Mood(StrEnum):
    negative = "negative"
    neutral = "neutral"
    positive = "positive"


class Spam(StrEnum):
    """Why a post is spam."""

    links_only = "links_only"
    repeated = "repeated"
    new_account_link = "new_account_link"
    spam_term = "spam_term"


# The conditions a priority rule may name, and the values each takes.
CONDITIONS: dict[str, tuple[str, ...] | None] = {
    "topic": None,  # any topic the section lists
    "language": None,  # any language the section lists
    "mood": tuple(Mood),
    "reach": tuple(Reach),
    "public_risk": ("true", "false"),
    "addressed": ("true", "false"),
}


@dataclass(frozen=True)
class PriorityRule:
    priority: str
    when: dict[str, frozenset[str]]  # condition -> the values any of which satisfies it

    def describe(self) -> str:
        return ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in self.when.items())


@dataclass(frozen=True)
class Rules:
    """The `triage` section, read."""

    languages: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "it", "nl")
    topics: tuple[str, ...] = ()
    medium_reach: int = 1_000
    high_reach: int = 10_000
    negative: float = -0.35  # VADER compound at or below: negative
    positive: float = 0.35  # at or above: positive
    new_account_days: int = 30
    dismiss_spam: bool = False  # spam is dismissed as it arrives (`spam.dismiss`)
    default: str = "normal"
    priority: tuple[PriorityRule, ...] = ()
    risk_topics: tuple[str, ...] = ()  # topics that, with high reach, are a public risk
    # First-response target per priority, in minutes (a queue may set its own).
    response_minutes: dict[str, int] = field(default_factory=lambda: dict(RESPONSE_MINUTES))
    # Every term of the section in one automaton, one scan per post: each key says what
    # the term is (`WordKind`), and for a topic's term, which topic.
    lexicon: Lexicon | None = field(default=None, compare=False)


class WordKind(StrEnum):
    """What a term of the section tells (the first part of its key in `Rules.lexicon`)."""

    topic = "topic"  # topic:<name>:<n>
    spam = "spam"
    legal = "legal"  # a public risk
    complaint = "complaint"  # negative


KNOWN = {
    "languages", "reach", "sentiment", "topics", "allow", "spam", "public_risk", "priority",
    "default", "response_minutes",
}  # fmt: skip


def read(top: Reader, legal_terms: Iterable[str]) -> Rules:
    """The `triage` section of a rule set (defaults where it is absent); `legal_terms` are
    the words that make a post a public risk."""
    section = top.mapping("triage", KNOWN)
    if section is None:
        return Rules(lexicon=_lexicon([], {WordKind.legal: list(legal_terms)}, []))
    languages = tuple(code.lower() for code in section.texts("languages", list(Rules.languages)))
    for code in languages:
        if not hasattr(IsoCode639_1, code.upper()):
            raise section.fail("languages", f"names {code!r}, not an ISO 639-1 code")
    reach = section.mapping("reach", {"medium", "high"})
    medium = (reach.count("medium", Rules.medium_reach) if reach else None) or Rules.medium_reach
    high = (reach.count("high", Rules.high_reach) if reach else None) or Rules.high_reach
    if reach is not None and medium > high:
        raise reach.fail("medium", f"is {medium}, above high ({high})")
    negative, positive, complaints = _sentiment(section)
    risk = section.mapping("public_risk", {"terms", "topics"})
    risk_terms = [*legal_terms, *(risk.texts("terms") if risk else [])]
    risk_topics = tuple(risk.texts("topics") if risk else [])
    topics: list[str] = []
    entries: list[tuple[str, str]] = []
    for line, entry in section.items("topics"):
        group = reading.group(entry, line, "triage.topics", {"topic", "terms"})
        name = group.text("topic")
        if name in topics:
            raise group.fail("topic", f"{name!r} is listed twice")
        topics.append(name)
        entries += [
            (f"{WordKind.topic}:{name}:{n}", term) for n, term in enumerate(reading.terms(group))
        ]
    for name in risk_topics:
        if name not in topics:
            assert risk is not None
            raise risk.fail("topics", f"names {name!r}, not a topic of triage.topics")
    spam = section.mapping("spam", {"terms", "new_account_days", "dismiss"})
    dismiss_spam = spam.data.get("dismiss", False) if spam else False
    if not isinstance(dismiss_spam, bool):
        assert spam is not None
        raise spam.fail("dismiss", "must be true or false")
    spam_terms = spam.texts("terms") if spam else []
    new_days = (spam.count("new_account_days", Rules.new_account_days) if spam else None) or (
        Rules.new_account_days
    )
    default = section.data.get("default", Rules.default)
    if default not in PRIORITIES:
        raise section.fail("default", f"is {default!r}, not one of {', '.join(PRIORITIES)}")
    rules = tuple(
        _priority_rule(line, entry, set(topics), set(languages))
        for line, entry in section.items("priority")
    )
    return Rules(
        response_minutes=_response_minutes(section),
        languages=languages, topics=tuple(topics), medium_reach=medium, high_reach=high,
        negative=negative, positive=positive, new_account_days=new_days, default=str(default),
        dismiss_spam=dismiss_spam,
        priority=rules,
        risk_topics=risk_topics,
        lexicon=_lexicon(
            entries,
            {WordKind.spam: spam_terms, WordKind.legal: risk_terms,
             WordKind.complaint: complaints},
            section.texts("allow"),
        ),
    )  # fmt: skip


def _response_minutes(section: Reader) -> dict[str, int]:
    """`response_minutes`: a priority's first-response target (those left out keep theirs)."""
    targets = section.mapping("response_minutes", set(PRIORITIES))
    minutes = dict(RESPONSE_MINUTES)
    for priority in PRIORITIES if targets is not None else ():
        assert targets is not None
        value = targets.count(priority)
        if value is not None and not 1 <= value <= MAX_RESPONSE_MINUTES:
            raise targets.fail(priority, f"must be 1 to {MAX_RESPONSE_MINUTES} minutes (30 days)")
        if value is not None:
            minutes[priority] = value
    return minutes


def _lexicon(
    topics: list[tuple[str, str]], others: dict[WordKind, list[str]], allow: list[str]
) -> Lexicon | None:
    entries = topics + [
        (f"{kind}:{n}", term) for kind, terms in others.items() for n, term in enumerate(terms)
    ]
    return Lexicon(entries, allow=allow) if entries else None


def _sentiment(section: Reader) -> tuple[float, float, list[str]]:
    sentiment = section.mapping("sentiment", {"negative", "positive", "complaints"})
    if sentiment is None:
        return Rules.negative, Rules.positive, []
    bounds = []
    for key, default in (("negative", Rules.negative), ("positive", Rules.positive)):
        value = sentiment.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > 1:
            raise sentiment.fail(key, "must be a number from -1 to 1 (VADER's compound score)")
        bounds.append(float(value))
    if bounds[0] >= bounds[1]:
        raise sentiment.fail("negative", "must be below positive")
    return bounds[0], bounds[1], sentiment.texts("complaints")


def _priority_rule(line: int, entry: Any, topics: set[str], languages: set[str]) -> PriorityRule:
    group = reading.group(entry, line, "triage.priority", {"priority", "when"})
    priority = group.text("priority")
    if priority not in PRIORITIES:
        raise group.fail("priority", f"is {priority!r}, not one of {', '.join(PRIORITIES)}")
    when = group.mapping("when", set(CONDITIONS))
    if when is None or not when.data:
        raise group.fail("when", "must name at least one condition")
    conditions: dict[str, frozenset[str]] = {}
    for name in when.data:
        value = when.data[name]
        values = [value] if not isinstance(value, list) else value
        words = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
        allowed = CONDITIONS[name] or tuple(topics if name == "topic" else languages)
        for word in words:
            if word not in allowed:
                raise when.fail(name, f"is {word!r}, not one of {', '.join(sorted(allowed))}")
        conditions[str(name)] = frozenset(words)
    return PriorityRule(priority, conditions)

"""Triage on arrival (issue 23): what a post is about, in which language, how it feels, how
far it reaches, whether it is spam and whether it talks to us, and from those how urgent it
is; every conclusion with the signal that gave it, so an agent can see why a post sits
where it does.

Pure: a post's text and its author's facts in, a `Triage` out. The rule set's `triage`
section configures it (`read`); `policies.engine.RuleSet` holds the result. The signals:

- language: lingua, among the languages the section lists (a short or mixed post that no
  language clearly wins is left undetermined rather than guessed);
- sentiment: VADER's compound score, tuned for social text (emoji, caps, "!!!"); VADER
  reads English only, so a post in another language has no score (said so);
- reach: the author's followers against the section's bounds; a verified author is high;
- topic: the section's topics, each a list of terms matched as the lexicon matches
  (folding, look-alikes, spacing: `policies.lexicon`); the first topic listed that matches;
- spam: a post of nothing but links, mentions and hashtags; the same text as the author
  sent four times before, or once before with a link (the ingest counts); a link from a
  new account (younger than `spam.new_account_days`); or one of `spam.terms`, unless the
  post is about fraud (a customer reporting a scam quotes it);
- addressed to us: a mention, a reply, a webhook's delivery (a comment on our page), not a
  post found by listening;
- public risk: high reach and negative, or high reach and one of `public_risk.topics` (a
  journalist asking about a scam is a risk however calmly put), or a legal word (the
  legal stage's `routes.inbound` terms, and `public_risk.terms`) in the post: comms and
  the supervisors are told at once.

The priority is the first of the section's `priority` rules whose conditions all hold,
else its `default`; spam is `low` whatever the rules say. The section and its words are
read in `policies.triage_rules`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lingua import IsoCode639_1, LanguageDetectorBuilder
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from policies.triage_rules import (
    FRAUD,
    LISTENING,
    PRIORITIES,
    Mood,
    Reach,
    Rules,
    Spam,
    WordKind,
    read,
)

__all__ = [
    "PRIORITIES", "Author", "Mood", "Reach", "Reading", "Rules", "Spam", "Triage", "read",
    "read_text", "triage",
]  # fmt: skip


@dataclass(frozen=True)
class Author:
    followers: int | None = None
    verified: bool | None = None
    created_at: datetime | None = None  # the account's


@dataclass(frozen=True)
class Triage:
    priority: str
    topic: str | None
    language: str | None
    sentiment: float | None
    mood: Mood
    reach: Reach
    public_risk: bool
    spam: Spam | None
    addressed: bool
    reasons: list[str]

    def as_row(self) -> dict[str, Any]:
        """The columns a post keeps (`records.post_models.Post`)."""
        return {
            "priority": self.priority, "topic": self.topic, "language": self.language,
            "sentiment": self.sentiment, "reach": self.reach.value,
            "public_risk": self.public_risk, "spam": self.spam.value if self.spam else None,
            "triage": self.reasons,
        }  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """What a post's text says, whoever wrote it and however it came: the section's words,
    the language and VADER's score. Most of triage's cost (0.15 to 0.3 ms a post), so the
    ingest has it done on another core while it resolves the batch's authors and threads
    (`policies.readers`)."""

    words: Words
    language: str | None
    confidence: float  # lingua's, in its best guess
    sentiment: float | None  # VADER's compound, where the language is English or unknown


def read_text(rules: Rules, text: str) -> Reading:
    words = Words.of(rules, text)
    language, confidence = detect_language(rules.languages, text)
    sentiment = None
    if language in (None, "en"):
        sentiment = round(_vader().polarity_scores(text)["compound"], 3)
    return Reading(words, language, confidence, sentiment)


def triage(
    rules: Rules,
    text: str,
    *,
    origin: str,
    author: Author,
    at: datetime,
    repeats: int = 0,
    reading: Reading | None = None,
) -> Triage:
    """Triage one post (`at`: when it was posted, for the account's age; `repeats`: how
    often its author sent the same text before, lately; `reading`: its text's, if read
    already)."""
    reasons: list[str] = []
    if reading is None:
        reading = read_text(rules, text)
    words, language, confidence = reading.words, reading.language, reading.confidence
    reasons.append(
        f"language {language} (lingua, confidence {confidence:.2f})" if language
        else "language undetermined (no listed language clearly wins)"
    )  # fmt: skip
    sentiment, mood = _mood(rules, text, reading, reasons)
    reach = _reach(rules, author, reasons)
    topic = _topic(rules, words, reasons)
    spam = _spam(rules, text, author, at, repeats, reasons, topic, words)
    addressed = origin != LISTENING
    reasons.append("addressed to us" if addressed else f"not addressed to us ({origin})")
    public_risk = False
    if reach is Reach.high and mood is Mood.negative:
        public_risk = True
        reasons.append("public risk: high reach and negative")
    elif reach is Reach.high and topic in rules.risk_topics:
        public_risk = True
        reasons.append(f"public risk: high reach and {topic}")
    if words.legal is not None:
        public_risk = True
        reasons.append(f"public risk: legal words ({words.legal!r})")
    facts = {
        "topic": topic, "language": language, "mood": mood.value,
        "reach": reach.value, "public_risk": str(public_risk).lower(),
        "addressed": str(addressed).lower(),
    }  # fmt: skip
    if spam is not None:
        priority = "low"
        reasons.append("priority low: spam")
    else:
        priority = rules.default
        for n, rule in enumerate(rules.priority, 1):
            if all(facts[name] in values for name, values in rule.when.items()):
                priority = rule.priority
                reasons.append(f"priority {priority} by rule {n} ({rule.describe()})")
                break
        else:
            reasons.append(f"priority {priority}: no rule matched (the default)")
    return Triage(
        priority=priority, topic=topic, language=language, sentiment=sentiment, mood=mood,
        reach=reach, public_risk=public_risk, spam=spam, addressed=addressed, reasons=reasons,
    )  # fmt: skip


@dataclass(frozen=True)
class Words:
    """What the section's terms found in a post, in one scan: each topic's first term, and
    the first complaint word, legal word and spam word (not one quoted: reported speech)."""

    topics: dict[str, str]
    complaint: str | None
    legal: str | None
    spam: str | None

    @classmethod
    def of(cls, rules: Rules, text: str) -> Words:
        topics: dict[str, str] = {}
        first: dict[str, str] = {}
        quotes: list[tuple[int, int]] | None = None
        for hit in rules.lexicon.find(text) if rules.lexicon is not None else []:
            kind, _, rest = hit.key.partition(":")
            words = text[hit.start : hit.end]
            if kind == WordKind.topic:
                topics.setdefault(rest.rpartition(":")[0], words)
                continue
            if kind == WordKind.spam:
                if quotes is None:
                    quotes = [m.span() for m in _QUOTED.finditer(text)]
                if any(a <= hit.start and hit.end <= b for a, b in quotes):
                    continue
            first.setdefault(kind, words)
        return cls(
            topics, first.get(WordKind.complaint), first.get(WordKind.legal),
            first.get(WordKind.spam),
        )  # fmt: skip


def _mood(
    rules: Rules, text: str, reading: Reading, reasons: list[str]
) -> tuple[float | None, Mood]:
    """VADER's score where it can read the post (English), and negative besides where the
    post holds one of the section's complaint words (in any language) or an angry emoji:
    "third time I've asked", "ridículo" and "😡" are complaints VADER scores neutral."""
    sentiment = reading.sentiment
    mood = Mood.neutral
    if sentiment is not None:
        mood = (
            Mood.negative if sentiment <= rules.negative
            else Mood.positive if sentiment >= rules.positive else Mood.neutral
        )  # fmt: skip
        reasons.append(f"{mood.value} (VADER compound {sentiment:+.2f})")
    else:
        reasons.append("sentiment not scored (VADER reads English)")
    if mood is not Mood.negative:
        cue = reading.words.complaint or next((c for c in text if c in ANGRY), None)
        if cue is not None:
            reasons.append(
                f"negative after all (complaint words: {cue!r})" if sentiment is not None
                else f"negative (complaint words: {cue!r})"
            )  # fmt: skip
            mood = Mood.negative
    return sentiment, mood


ANGRY = frozenset("\U0001f621\U0001f92c\U0001f620\U0001f44e\U0001f595\U0001f612\U0001f644")


def _topic(rules: Rules, words: Words, reasons: list[str]) -> str | None:
    """The first topic listed whose terms the text holds (a fraud report that also
    mentions a fee is about fraud)."""
    for topic in rules.topics:
        if topic in words.topics:
            reasons.append(f"topic {topic} ({words.topics[topic]!r})")
            return topic
    return None


def _reach(rules: Rules, author: Author, reasons: list[str]) -> Reach:
    followers = author.followers
    if author.verified:
        reasons.append("reach high (verified)")
        return Reach.high
    if followers is None:
        reasons.append("reach low (followers unknown)")
        return Reach.low
    reach = (
        Reach.high if followers >= rules.high_reach
        else Reach.medium if followers >= rules.medium_reach else Reach.low
    )  # fmt: skip
    reasons.append(f"reach {reach.value} ({followers:,} followers)")
    return reach


# The same text without a link is spam from its fifth copy (a customer left waiting asks
# again, "hello?", "anyone?"); with a link, from its second.
REPEATS_WITHOUT_LINK = 4
# A link, a mention or a hashtag: what a links-only post is made of.
_NOT_WORDS = re.compile(r"https?://\S+|www\.\S+|[@#][\w.@-]+", re.IGNORECASE)
_LINK = re.compile(r"https?://|www\.", re.IGNORECASE)
# Reported speech: 'a quote', "a quote", “a quote”, «a quote» (the apostrophe inside a word, as
# in "didn't", opens none).
_QUOTED = re.compile(r"(?<!\w)'[^']{2,200}'(?!\w)|\"[^\"]{2,200}\"|“[^”]{2,200}”|«[^»]{2,200}»")


def _spam(
    rules: Rules,
    text: str,
    author: Author,
    at: datetime,
    repeats: int,
    reasons: list[str],
    topic: str | None,
    words: Words,
) -> Spam | None:
    link = _LINK.search(text) is not None
    if link and not any(c.isalnum() for c in _NOT_WORDS.sub(" ", text)):
        reasons.append("spam: nothing but links, mentions and hashtags")
        return Spam.links_only
    # A customer may well ask again, and again ("hello?"); a bot sends the same link.
    if repeats >= REPEATS_WITHOUT_LINK or (repeats and link):
        reasons.append(f"spam: the author sent this text {repeats} time(s) before")
        return Spam.repeated
    if (
        author.created_at is not None
        and at - author.created_at < timedelta(days=rules.new_account_days)
        and link
    ):
        reasons.append(f"spam: a link from an account younger than {rules.new_account_days} days")
        return Spam.new_account_link
    # A customer reporting a scam quotes it ("click here", "crypto"): its words are not
    # spam in a fraud report, nor between quotation marks (`Words`).
    if topic != FRAUD and words.spam is not None:
        reasons.append(f"spam: {words.spam!r}")
        return Spam.spam_term
    return None


def detect_language(languages: tuple[str, ...], text: str) -> tuple[str | None, float]:
    """The ISO 639-1 code of the language of `text` among `languages`, and lingua's
    confidence in it; None where no language clearly wins (a word or two, emoji, mixed
    languages). Links, mentions and hashtags are not language and are left out."""
    words = _NOT_WORDS.sub(" ", text)
    if not any(c.isalpha() for c in words):
        return None, 0.0
    values = _detector(languages).compute_language_confidence_values(words)
    best = values[0]
    if best.value < MIN_CONFIDENCE:
        return None, best.value
    return best.language.iso_code_639_1.name.lower(), best.value


# Below this, lingua's best guess is a guess ("lol" is Italian at 0.25): undetermined.
MIN_CONFIDENCE = 0.5


@functools.lru_cache(maxsize=4)
def _detector(languages: tuple[str, ...]) -> Any:
    codes = [getattr(IsoCode639_1, code.upper()) for code in languages]
    # Lingua's low-accuracy mode (trigrams only): on the labelled corpus it is as right as
    # the full models (98.6% against 97.7%, tests/test_triage_corpus.py), loads in a tenth
    # of a second rather than two, and takes 20 MB of memory rather than 200.
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_low_accuracy_mode().build()


@functools.cache
def _vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()

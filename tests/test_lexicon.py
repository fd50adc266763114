"""Lexicon matching on folded text: the evasions in issue 4, item 2, and what must not match."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.lexicon import LOOK_ALIKES, Lexicon, fold

LEXICON = Lexicon(
    [("refund", "refund"), ("class-action", "class action"), ("damn", "damn"), ("cunt", "cunt")],
    allow=["Scunthorpe", "Damn Yankees"],
)


FULLWIDTH = "".join(chr(ord(c) - ord("A") + 0xFF21) for c in "REFUND")


def found(text: str) -> list[tuple[str, str]]:
    return [(h.key, text[h.start : h.end]) for h in LEXICON.find(text)]


@pytest.mark.parametrize(
    "text, excerpt",
    [
        ("We will refund you.", "refund"),
        ("REFUND", "REFUND"),
        (f"{FULLWIDTH} now", FULLWIDTH),  # NFKC
        ("a réfünd", "réfünd"),  # diacritics
        ("a re\u0301fund", "re\u0301fund"),  # a combining accent
        ("r3fund", "r3fund"),  # leetspeak
        ("r\u0435fund", "r\u0435fund"),  # Cyrillic small ie
        ("r e f u n d", "r e f u n d"),
        ("r.e.f.u.n.d!", "r.e.f.u.n.d"),
        ("r-e-f-u-n-d", "r-e-f-u-n-d"),
        ("ref\u200bund", "ref\u200bund"),  # zero-width space
        ("join the CLASS  ACTION", "CLASS  ACTION"),
        ("c l a s s a c t i o n", "c l a s s a c t i o n"),
    ],
)
def test_evasions_are_seen_through(text: str, excerpt: str) -> None:
    assert [e for _, e in found(text)] == [excerpt]


@pytest.mark.parametrize(
    "text",
    [
        "We are fund raising",  # "are fund" is not "refund"
        "therefunds",  # not at word boundaries
        "Amsterdam is damning",
        "Greetings from Scunthorpe",  # the allow-list (and boundaries)
        "classaction",  # a phrase needs its word break
        "Tickets for Damn Yankees",
        "",
    ],
)
def test_near_misses_do_not_match(text: str) -> None:
    assert found(text) == []


def test_a_finding_points_at_the_original_text() -> None:
    text = "Sorry \u2014 we\u2019ll r.e.f.u.n.d you, damn."
    hits = LEXICON.find(text)
    assert [(h.key, text[h.start : h.end]) for h in hits] == [
        ("refund", "r.e.f.u.n.d"),
        ("damn", "damn"),
    ]


def test_fold_keeps_an_origin_for_every_character() -> None:
    folded = fold("ﬁx Ä!")
    assert folded.text == "fixa"
    assert folded.origin == [0, 0, 1, 3]


LEET = {v: k for k, v in LOOK_ALIKES.items() if k.isascii()}
separators = st.sampled_from([" ", ".", "-", "_", "*", " . "])


@given(
    upper=st.lists(st.booleans(), min_size=6, max_size=6),
    leet=st.lists(st.booleans(), min_size=6, max_size=6),
    separator=st.one_of(st.just(""), separators),
    before=st.sampled_from(["", "We will ", "Yes: ", "("]),
    after=st.sampled_from(["", " today", "!", ")"]),
)
def test_any_mix_of_case_leetspeak_and_spacing_is_caught(
    upper: list[bool], leet: list[bool], separator: str, before: str, after: str
) -> None:
    letters = [
        LEET.get(c, c) if swap else (c.upper() if up else c)
        for c, up, swap in zip("refund", upper, leet, strict=True)
    ]
    word = separator.join(letters)
    assert [k for k, _ in found(before + word + after)] == ["refund"]


@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=4))
def test_a_term_glued_to_other_letters_is_not_a_match(prefix: str) -> None:
    if fold(prefix).text:  # the prefix really is made of letters or digits
        assert found(prefix + "refund") == []


PUNCTUATED = Lexicon([("pre", "pre-approved"), ("cover", "we'll cover"), ("shit", "shit")])


@pytest.mark.parametrize(
    "text, keys",
    [
        ("You are pre-approved", ["pre"]),
        ("You are preapproved", ["pre"]),
        ("You are pre approved", ["pre"]),
        ("You are p r e a p p r o v e d", ["pre"]),
        ("We'll cover it", ["cover"]),
        ("Well cover it", ["cover"]),
        ("W e ' l l cover it", ["cover"]),  # each word spaced or tight on its own
        ("We will cover it", []),
        ("b u l l s h i t", []),  # the tail of a longer spaced-out word is not a hit
        ("s h i t b u l l", []),
        ("what a s h i t day", ["shit"]),  # but a word of one letter is a word
    ],
)
def test_a_term_s_own_punctuation_may_be_written_or_not(text: str, keys: list[str]) -> None:
    assert [h.key for h in PUNCTUATED.find(text)] == keys


FILTERED = Lexicon(
    [(t, t) for t in ("refund", "class action", "pre-approved", "we'll cover", "ok", "0% apr")],
    allow=["refund policy"],
)
fragments = st.sampled_from(
    [
        "refund", "r e f u n d", "r.e.f.u.n.d", "REFUND", "r3fund", "ref\u200bund", "re\u0301fund",
        "class", "action", "classaction", "pre", "approved", "-", "we'll", "well", "we", "ll",
        "cover", "o", "k", "ok", "0%", "apr", "\ufb01", "x", "a", "i", " ", "  ", ".", "'",
        "\u2019", "\u00df", "\U0001f600", "policy", "\u0440", "\u0435", "fund", "re",
    ]
)  # fmt: skip


@given(st.lists(fragments, max_size=12))
def test_the_fast_filter_never_hides_a_hit(parts: list[str]) -> None:
    for glue in ("", " "):
        text = glue.join(parts)
        assert FILTERED.find(text) == FILTERED.find_exactly(text)

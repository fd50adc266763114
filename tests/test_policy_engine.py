"""The policy engine on the shipped rule set and on small ones: lexicon, personal data,
channel rules, links, routing, templates, and rule files refused with their line."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import channels, twitter_text
from policies.engine import RuleSet, RuleSetError, TemplateBasis
from policies.pii import luhn_ok

MINIMAL = "name: t\nroutes: {base: [comms]}\n"
SHIPPED = RuleSet.load()  # for the property tests (hypothesis reruns a test, not a fixture)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load()


def ids(rules: RuleSet, body: str, channel: str = "x", **kwargs: object) -> list[str]:
    return [f.rule_id for f in rules.check(body, channel, **kwargs).findings]  # type: ignore[arg-type]


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
    assert finding.ruleset_version == rules.version


def test_profanity_blocks_but_not_inside_other_words(rules: RuleSet) -> None:
    assert rules.check("That was a damn shame", "x").blocked
    assert not rules.check("The dam near Leeds is open; Amsterdam too.", "x").blocked
    assert not rules.check("Our Scunthorpe branch reopens on Monday.", "x").findings


def test_the_lexicon_sees_through_spacing_and_look_alikes(rules: RuleSet) -> None:
    result = rules.check("What a d.a.m.n shame; we promise a FULL R3FUND.", "x")
    assert result.blocked
    assert [(f.category, f.excerpt) for f in result.findings][:3] == [
        ("profanity", "d.a.m.n"),
        ("legal_risk", "we promise"),
        ("financial_promise", "FULL R3FUND"),
    ]
    assert result.route == ["comms", "legal"]


def test_allow_listed_phrases_are_not_findings() -> None:
    source = MINIMAL + (
        "allow: [Damn Yankees]\n"
        "lexicon:\n  - {category: profanity, severity: block, terms: [damn]}\n"
    )
    rules = RuleSet(source)
    assert rules.check("Two tickets for Damn Yankees tonight", "x").findings == []
    assert rules.check("damn", "x").blocked


# --- personal data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, rule_id, masked",
    [
        ("Is your card 4111 1111 1111 1111?", "pii.card", "\u2022\u2022\u2022\u2022 " * 3 + "1111"),
        ("Use 5500-0000-0000-0004 instead", "pii.card", "\u2022" * 4 + "-" + "\u2022" * 4 + "-"),
        ("Your IBAN GB82 WEST 1234 5698 7654 32 is fine", "pii.iban", "GB"),
        ("SSN 123-45-6789 on file", "pii.ssn", "\u2022\u2022\u2022-\u2022\u2022-6789"),
        ("Call +1 (415) 555-0132 today", "pii.phone", "32"),
        ("Call 020 7946 0958 today", "pii.phone", "58"),
        ("Write to jane.doe@example.com", "pii.email", "j\u2022\u2022\u2022@e"),
        ("We saw account no. 12345678 and it is ok", "pii.account_number", "78"),
        ("Order #A-1234567 is on its way", "pii.order_number", "67"),
    ],
)
def test_personal_data_blocks_with_a_masked_excerpt(
    rules: RuleSet, text: str, rule_id: str, masked: str
) -> None:
    result = rules.check(text, "x")
    [finding] = [f for f in result.findings if f.rule_id.startswith("pii.")]
    assert finding.rule_id == rule_id and finding.severity == "block" and result.blocked
    assert masked in finding.excerpt
    assert finding.redaction and finding.redaction.startswith("[")
    number = re.sub(r"\D", "", text[finding.start : finding.end])
    if len(number) >= 6:  # the finding, as stored and shown, never holds the whole number
        assert number not in re.sub(r"\D", "", json.dumps(finding.as_dict()))


def test_only_the_detectors_the_rule_set_names_run() -> None:
    rules = RuleSet(MINIMAL + "pii:\n  detectors: [email]\n")
    text = "Card 4111 1111 1111 1111, call 020 7946 0958, write to jo@example.com"
    assert [f.rule_id for f in rules.check(text, "x").findings] == ["pii.email"]
    assert rules.summary()["pii"]["detectors"] == ["email"]


def test_a_channel_without_limits_is_refused_naming_the_line() -> None:
    with pytest.raises(RuleSetError, match=re.escape("channels.x must be a mapping")) as raised:
        RuleSet(MINIMAL + "channels:\n  x:\n")
    assert raised.value.line == 4


@pytest.mark.parametrize(
    "text",
    [
        "Your balance was 1,234.56 on 2024-11-22.",
        "Tap the card on the reader for 10 seconds",
        "Version 4.12.1 of the app fixes it",
        "@alice@mastodon.social thanks for the heads-up",
        "Transfers take 3-5 business days.",
    ],
)
def test_numbers_and_handles_that_are_not_personal_data(rules: RuleSet, text: str) -> None:
    assert [
        f for f in rules.check(text, "mastodon").findings if f.category == "personal_data"
    ] == []


def _card_digits(draw: st.DrawFn) -> str:
    length = draw(st.integers(min_value=13, max_value=19))
    return draw(st.text(alphabet="0123456789", min_size=length, max_size=length))


@st.composite
def card_like(draw: st.DrawFn, *, valid: bool) -> str:
    digits = _card_digits(draw)
    check = next(d for d in "0123456789" if luhn_ok(digits[:-1] + d) == valid)
    digits = "4" + digits[1:-1] + check
    if luhn_ok(digits) != valid:  # changing the first digit changed the sum: redo the check
        digits = digits[:-1] + next(d for d in "0123456789" if luhn_ok(digits[:-1] + d) == valid)
    groups = draw(st.sampled_from([4, 0]))
    if groups:
        return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
    return digits


@given(card_like(valid=False))
def test_card_like_numbers_failing_luhn_are_not_flagged(number: str) -> None:
    assert SHIPPED.check(f"Reference {number} noted.", "facebook").findings == []


@given(card_like(valid=True))
def test_card_numbers_passing_luhn_are_flagged_and_masked(number: str) -> None:
    [finding] = SHIPPED.check(f"Reference {number} noted.", "facebook").findings
    assert finding.rule_id == "pii.card"
    assert sum(c.isdigit() for c in finding.excerpt) == 4


# --- channel rules ------------------------------------------------------------------------


def test_length_is_counted_the_way_each_platform_counts(rules: RuleSet) -> None:
    assert ids(rules, "a" * 280) == []
    assert ids(rules, "a" * 281) == ["channel.x.length"]
    assert ids(rules, "a" * 281, "mastodon") == []
    # X: CJK weighs 2, an emoji sequence 2, a URL 23 whatever its length.
    assert channels.x_length("\u3042" * 140) == 280
    assert ids(rules, "\u3042" * 141) == ["channel.x.length"]
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert channels.x_length(f"hi {family}") == 5
    long_link = "https://status.acmebank.com/" + "x" * 200
    assert channels.x_length(f"See {long_link}") == 4 + 23
    assert ids(rules, "a" * 257 + f" {long_link}") == ["channel.x.length"]  # 258 + 23
    assert ids(rules, "a" * 256 + f" {long_link}") == []  # 257 + 23 = 280
    # Mastodon: URLs 23, a remote mention counts as its local part.
    assert channels.mastodon_length(f"@alice@example.social {long_link}") == 6 + 1 + 23
    # Bluesky: graphemes, links in full.
    assert channels.graphemes(family * 300) == 300
    assert ids(rules, family * 300, "bluesky") == []
    assert ids(rules, "e\u0301" * 301, "bluesky") == ["channel.bluesky.length"]
    assert ids(rules, "a" * 2201, "instagram") == ["channel.instagram.length"]
    assert ids(rules, "a" * 8000, "facebook") == []


def test_mentions_and_hashtags_are_limited(rules: RuleSet) -> None:
    assert ids(rules, "Thanks @a @b @c @d @e") == []
    assert ids(rules, "Thanks @a @b @c @d @e @f") == ["channel.x.mentions"]
    assert ids(rules, "#help #acme") == []
    assert ids(rules, "#help #acme #banking") == ["channel.x.hashtags"]
    assert ids(rules, "Write to help@acmebank.com for #1 service") == ["pii.email"]


@pytest.mark.parametrize(
    "link, allowed",
    [
        ("https://acmebank.com/help", True),
        ("https://status.acmebank.com", True),
        ("www.acmebank.com/cards", True),
        ("acmebank.com/security.", True),
        ("https://acmebank.com.evil.io/login", False),
        ("https://evilacmebank.com", False),
        ("bit.ly/3xYz", False),
        ("http://192.168.0.1/", False),
    ],
)
def test_links_only_to_allowed_domains(rules: RuleSet, link: str, allowed: bool) -> None:
    found = ids(rules, f"Details: {link}")
    assert found == ([] if allowed else ["links.domain"])


# --- routing ------------------------------------------------------------------------------


def test_the_inbound_post_adds_stages(rules: RuleSet) -> None:
    reply = "Sorry to hear this. Please send us a direct message."
    assert rules.check(reply, "x", post_text="My l.a.w.y.e.r will hear about this").route == [
        "comms",
        "legal",
    ]
    assert rules.check(reply, "x", post_text="My card was declined twice").route == ["comms"]


def test_the_base_route_can_differ_per_channel() -> None:
    rules = RuleSet("name: t\nroutes:\n  base: [comms]\n  channels: {x: [comms, legal]}\n")
    assert rules.check("Hello", "x").route == ["comms", "legal"]
    assert rules.check("Hello", "mastodon").route == ["comms"]


def test_a_pre_approved_template_skips_the_stages_its_own_text_needs(rules: RuleSet) -> None:
    template = "Hi Jo, we will arrange a full refund of the fee."
    basis = TemplateBasis(template, ((3, 5),))  # "Jo" is what the agent filled in
    assert rules.check(template, "x").route == ["comms", "legal"]
    result = rules.check(template, "x", template=basis)
    assert (result.route, result.template, result.skipped) == (["comms"], "pre_approved", ["legal"])
    assert {f.rule_id for f in result.findings} >= {"lexicon.financial_promise.full-refund"}
    # Still every check: a blocking finding in the template's text blocks.
    assert rules.check("Hi Jo, damn.", "x", template=TemplateBasis("Hi Jo, damn.")).blocked


def test_what_the_agent_fills_in_or_adds_is_not_pre_approved(rules: RuleSet) -> None:
    fault = "Hi Jo, this was our fault."
    basis = TemplateBasis(fault, ((7, 25),))  # the variable was "this was our fault"
    assert rules.check(fault, "x", template=basis).route == ["comms", "legal"]
    rendered = "Hi Jo, we will arrange a full refund of the fee."
    # Typed into the variable: the template's own words stand, what was added is checked.
    filled = "Hi Jo, our fault, we will arrange a full refund of the fee."
    result = rules.check(filled, "x", template=TemplateBasis(rendered, ((3, 5),)))
    assert result.template == "pre_approved" and result.route == ["comms", "legal"]


@pytest.mark.parametrize(
    "edited",
    [
        "Hi Jo, we will not arrange a full refund of the fee.",  # 4 characters
        "Hi Jo, we will arrange a full refund of the fee!",  # 1 character
        "Hi Jo, we will arrange a full refund of the fee. It is on its way to you now, Jo!",
        "Hello Jo, we will arrange a full refund of the fee.",
        "Hi Jo, we will arrange a full refund.",
    ],
)
def test_any_change_to_the_templates_own_words_makes_it_free_text(
    rules: RuleSet, edited: str
) -> None:
    rendered = "Hi Jo, we will arrange a full refund of the fee."
    result = rules.check(edited, "x", template=TemplateBasis(rendered, ((3, 5),)))
    assert (result.template, result.route, result.skipped) == ("edited", ["comms", "legal"], [])


def test_a_post_that_needs_legal_keeps_legal_on_a_template_reply(rules: RuleSet) -> None:
    rendered = "Hi Jo, we will arrange a full refund of the fee."
    result = rules.check(
        rendered, "x", post_text="I will sue you", template=TemplateBasis(rendered, ((3, 5),))
    )
    assert result.route == ["comms", "legal"]


# --- the rule file ------------------------------------------------------------------------


def test_the_version_follows_the_content() -> None:
    base = MINIMAL + "lexicon:\n  - {category: c, severity: block, terms: [foo]}\n"
    assert RuleSet(base).version == RuleSet(base).version
    assert RuleSet(base).version != RuleSet(base.replace("foo", "bar")).version


@pytest.mark.parametrize(
    "text, length",
    [
        ("https://acmebank.com/help/a/very/long/path/indeed", 23),  # a scheme: 23
        ("acmebank.com/help/a/very/long/path/indeed", 41),  # bare: as written
        ("www.acmebank.com/help", 21),  # www. without a scheme: as written
        ("@alice@mastodon.social hi", 9),  # remote mention: its local part
        ("@first.last@mastodon.social hi", 14),  # dots and dashes in the local part
        ("@an-dy@x.example", 6),
        ("mail me at jo@example.com", 25),  # an address is not a mention
        ("e\u0301t\u00e9 \U0001f44d\U0001f3fd", 5),  # grapheme clusters: é t é, a space, 👍🏽
    ],
)
def test_mastodon_counts_as_its_status_length_validator(text: str, length: int) -> None:
    """Mastodon's `StatusLengthValidator#countable_text`: URLs extracted without a scheme
    are not given the 23-character concession; mentions count as `@username`."""
    assert channels.mastodon_length(text) == length


@pytest.mark.parametrize(
    "source, line, message",
    [
        ("- just a list", 1, "mapping"),
        ("name: [unclosed", 1, "YAML"),
        ("name: t", 1, "routes is required"),
        ("name: t\nroutes:\n  base: [marketing]", 3, "routes.base must be a non-empty list"),
        ("name: t\nroutes:\n  base: [legal]", 3, "must include comms"),
        (MINIMAL + "lexicon:\n  - {category: c, severity: 'rout:legal', terms: [x]}", 4, "rout"),
        (MINIMAL + "lexicon:\n  - {severity: block, terms: [x]}", 4, "lexicon.category"),
        (MINIMAL + "lexicon:\n  - category: c\n    terms: ['!!']\n", 5, "no letters"),
        (MINIMAL + "lexicon:\n  - {category: c, terms: [x, X]}", 4, "twice"),
        (MINIMAL + "channels:\n  x: {max_length: -1}", 4, "channels.x.max_length"),
        (MINIMAL + "channels:\n  x: {max_lenght: 280}", 4, "not a known setting"),
        (MINIMAL + "pii:\n  patterns:\n    - {id: a, label: b, pattern: '(('}", 5, "regular"),
        (MINIMAL + "pii:\n  detectors: [card, dna]", 4, "dna"),
        # What cannot run in linear time is refused with RE2's reason (issue 20).
        (MINIMAL + "pii:\n  patterns:\n    - {id: a, label: b, pattern: '(?<!x)y'}", 5, "look"),
        (MINIMAL + "pii:\n  patterns:\n    - {id: a, label: b, pattern: '(a)\\1'}", 5, "back-ref"),
        (MINIMAL + "templates: {skip_stages: [comms]}", 3, "cannot skip comms"),
        (MINIMAL + "allow: yes", 3, "allow"),
        (MINIMAL + "lexicon: {}\nname: again", 4, "appears twice"),
        (MINIMAL + "colour: blue", 3, "colour is not a known setting"),
    ],
)
def test_a_bad_rule_set_is_refused_naming_the_line(source: str, line: int, message: str) -> None:
    with pytest.raises(RuleSetError, match=re.escape(message)) as raised:
        RuleSet(source)
    assert raised.value.line == line
    assert str(raised.value).startswith(f"line {line}: ")


def test_the_shipped_rule_set_is_a_real_starting_point(rules: RuleSet) -> None:
    summary = rules.summary()
    assert set(summary["lexicon"]) >= {
        "profanity",
        "legal_risk",
        "financial_promise",
        "regulated_claims",
        "competitors",
        "confidential",
    }
    assert summary["pii"]["detectors"][:5] == ["card", "iban", "ssn", "phone", "email"]
    assert summary["channels"]["x"]["max_length"] == 280
    assert summary["routes"]["base"] == ["comms"]


def test_a_bare_domain_under_any_tld_twitter_text_knows_is_a_link(rules: RuleSet) -> None:
    """Issue 21: `evil-phish.ru/login` was no link at all (its TLD was not on a hand-kept
    list of 31), so it escaped the links check while X rendered it clickable. Every ASCII
    TLD of twitter-text's list (`policies/data/tld_lib.yml`) makes a bare domain a link."""
    assert "links.domain" in ids(rules, "Log in at evil-phish.ru/login now", "x")
    ascii_tlds = sorted(t for t in twitter_text.TLDS if t.isascii())
    assert len(twitter_text.TLDS) > 1500 and {"ch", "bank", "ru", "az"} <= twitter_text.TLDS
    for tld in ascii_tlds:
        [link] = channels.links(f"see acme.{tld}/help please")
        assert link.host == f"acme.{tld}"
    assert [link.host for link in channels.links("acme.com.notatld and file.txt")] == ["acme.com"]
    assert channels.x_length("acme.ch/help") == 23


@pytest.mark.parametrize(
    "text, host",
    [
        ("Log in: gemini://evil.ru/login", "evil.ru"),  # Mastodon links its extra schemes
        ("https://acmebank.com@evil.ru/login", "evil.ru"),  # the host is after `user@`
        ("(bonus.spa) for you", "bonus.spa"),  # a TLD newer than twitter-text's: Bluesky's
        ("see evil-phish.ru/login—now", "evil-phish.ru"),  # X: any TLD, text after the link
        ("https://:.evil.example/x", ":.evil.example"),  # no parser reads it; still a link
    ],
)
def test_the_links_check_sees_what_any_platform_would_link(
    rules: RuleSet, text: str, host: str
) -> None:
    """Issue 21, item 2: a link any platform renders is checked against the allowed
    domains, whichever channel the reply goes to (the reply may be read, quoted or shared
    elsewhere); the check must not read a different host than the browser would."""
    assert host in [link.host for link in channels.links(text)]
    for channel in ("x", "mastodon", "bluesky", "facebook"):
        assert "links.domain" in ids(rules, text, channel), (text, channel)


def test_an_allowed_domain_is_no_finding_on_any_platform(rules: RuleSet) -> None:
    text = "Status: https://status.acmebank.com/today and acmebank.com/help (acmebank.com)."
    for channel in ("x", "mastodon", "bluesky", "facebook"):
        assert "links.domain" not in ids(rules, text, channel), channel


@pytest.mark.parametrize(
    ("source", "first_error"),
    [
        (
            "name: x\nroutes:\n  base: [legal]\n"
            "  inbound:\n    - stage: nope\n      terms: [suit]\n",
            "line 3: routes.base must include comms",
        ),
        ("name: x\nroutes:\n  channels: [1]\n", "line 3: routes.base must be a non-empty list"),
        (
            "name: x\nroutes:\n  base: [comms]\n  channels:\n    x: [legal]\n"
            "  inbound:\n    - stage: nope\n      terms: [suit]\n",
            "line 5: routes.channels.x must include comms",
        ),
        (
            "name: x\nroutes:\n  base: []\n  inbound:\n    - stage: legal\n      terms: []\n",
            "line 3: routes.base must be a non-empty list",
        ),
    ],
)
def test_of_several_mistakes_in_the_routes_the_first_in_the_file_is_named(
    source: str, first_error: str
) -> None:
    """The base route, then each channel's, then the customer's words: a writer fixing the
    rule set from the top meets each mistake in turn."""
    with pytest.raises(RuleSetError) as refused:
        RuleSet(source)
    assert str(refused.value).startswith(first_error)


@pytest.mark.parametrize(
    ("body", "channel", "finding"),
    [
        # The reply too long for X: its excerpt is the body's start.
        ("Card 4111 1111 1111 1111 is blocked now. " + "Sorry. " * 60, "x", "channel.x.length"),
        # A link to a domain not allowed, with an IBAN in its query.
        ("See https://evil.example/pay?iban=DE89370400440532013000 today", "x", "links.domain"),
        # An e-mail address at the start of a reply too long for Bluesky.
        (
            "jane.doe@example.com wrote to us. " + "We are on it. " * 30,
            "bluesky",
            "channel.bluesky.length",
        ),
    ],
)
def test_personal_data_is_masked_in_every_finding_that_quotes_it(
    rules: RuleSet, body: str, channel: str, finding: str
) -> None:
    """THREATS: personal data masked in findings. Not only the personal-data finding's
    own excerpt: any finding whose excerpt takes in a detected number (the length limit
    quotes the body's start, a link finding the link) shows it masked, as that one does."""
    findings = rules.check(body, channel).findings
    detected = [f for f in findings if f.rule_id.startswith("pii.")]
    assert detected, "the number is personal data"
    [quoting] = [f for f in findings if f.rule_id == finding]
    for pii in detected:
        number = re.sub(r"\W", "", body[pii.start : pii.end])
        for shown in (quoting.excerpt, quoting.message, json.dumps(quoting.as_dict())):
            assert number not in re.sub(r"\W", "", shown), (finding, shown)
        assert pii.excerpt in quoting.excerpt  # masked as the personal-data finding shows it

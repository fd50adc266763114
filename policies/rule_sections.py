"""How a rule set's file is read, a section at a time (`policies.engine.RuleSet` keeps what
each gives): the routes, each channel's limits, links, personal data, the lexicon, templates
and publishing. Each section is checked as it is read; `RuleSetError` names the line.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies import channels, reading
from policies.lexicon import Lexicon, fold_text
from policies.patterns import PatternError, compile_linear
from policies.pii import KINDS as PII_KINDS
from policies.pii import Detectors, Pattern
from policies.results import STAGES
from policies.ruleset_yaml import Reader, RuleSetError

TOP_LEVEL = {
    "name", "description", "routes", "channels", "links", "pii", "lexicon", "allow", "templates",
    "publishing", "triage",
}  # fmt: skip
# A publish time requested before the approval came: publish at once, or hold for a publisher.
LATE_APPROVAL = ("hold", "publish")


@dataclass(frozen=True)
class Term:
    rule_id: str
    text: str
    category: str
    severity: str


@dataclass(frozen=True)
class ChannelRule:
    name: str
    counting: str
    max_length: int | None
    max_mentions: int | None
    max_hashtags: int | None


@dataclass(frozen=True)
class Routes:
    base: list[str]
    channels: dict[str, list[str]]
    inbound_terms: list[tuple[str, str]]  # (term, stage): a customer's word adds a stage
    inbound: Lexicon


def routes(top: Reader) -> Routes:
    section = top.mapping("routes", {"base", "channels", "inbound"})
    if section is None:
        raise RuleSetError("routes is required (at least routes.base: [comms])", 1)
    # Read in the file's order of checks: a mistake in `base` is named before one below it.
    base = reading.stages(section, "base")
    per_channel = section.mapping("channels")
    by_channel = (
        {str(c): reading.stages(per_channel, c) for c in per_channel.data} if per_channel else {}
    )
    inbound_terms: list[tuple[str, str]] = []
    for line, entry in section.items("inbound"):
        group = reading.group(entry, line, "routes.inbound", {"stage", "terms"})
        stage = group.text("stage")
        if stage not in STAGES:
            raise group.fail("stage", f"must be one of {list(STAGES)}")
        inbound_terms += [(term, stage) for term in reading.terms(group)]
    return Routes(
        base=base,
        channels=by_channel,
        inbound_terms=inbound_terms,
        inbound=Lexicon((f"{stage}:{n}", term) for n, (term, stage) in enumerate(inbound_terms)),
    )


def channel_rules(top: Reader) -> dict[str, ChannelRule]:
    rules: dict[str, ChannelRule] = {}
    section = top.mapping("channels")
    names = section.data if section is not None else {}
    for name in names:
        assert section is not None
        rule = section.mapping(name, {"counting", "max_length", "max_mentions", "max_hashtags"})
        if rule is None:
            raise section.fail(name, "must be a mapping of limits")
        default = str(name) if name in channels.COUNTERS else "characters"
        counting = str(rule.data.get("counting", default))
        if counting not in channels.COUNTERS:
            raise rule.fail("counting", f"must be one of {sorted(channels.COUNTERS)}")
        rules[str(name)] = ChannelRule(
            name=str(name),
            counting=counting,
            max_length=rule.count("max_length"),
            max_mentions=rule.count("max_mentions"),
            max_hashtags=rule.count("max_hashtags"),
        )
    return rules


def links(top: Reader) -> tuple[frozenset[str] | None, str]:
    """The domains a link may go to (None: any), and the severity of one that goes elsewhere."""
    section = top.mapping("links", {"allow", "severity"})
    if section is None:
        return None, "block"
    domains = frozenset(d.lower().strip(".") for d in section.texts("allow"))
    return domains, reading.severity(section, "severity", "block")


@dataclass(frozen=True)
class PersonalData:
    severity: str
    kinds: tuple[str, ...]
    detectors: Detectors


def personal_data(top: Reader) -> PersonalData:
    pii = top.mapping("pii", {"severity", "detectors", "phone_regions", "patterns"})
    severity = "block"
    kinds: tuple[str, ...] = PII_KINDS
    regions, patterns = ["US"], []
    if pii is not None:
        severity = reading.severity(pii, "severity", "block")
        kinds = tuple(pii.texts("detectors", list(PII_KINDS)))
        for kind in kinds:
            if kind not in PII_KINDS:
                raise pii.fail("detectors", f"names {kind!r}; known: {list(PII_KINDS)}")
        regions = pii.texts("phone_regions", ["US"])
        for line, entry in pii.items("patterns"):
            group = reading.group(entry, line, "pii.patterns", {"id", "label", "pattern"})
            source = group.text("pattern")
            try:
                compile_linear(source)
            except PatternError as exc:
                raise group.fail(
                    "pattern", f"is not a regular expression RE2 runs: {exc}"
                ) from None
            patterns.append(Pattern(group.text("id"), group.text("label"), source))
    try:  # the patterns are also scanned as one alternation
        detectors = Detectors(kinds=kinds, phone_regions=regions, patterns=patterns)
    except PatternError as exc:
        assert pii is not None
        raise pii.fail("patterns", f"cannot be combined into one scan: {exc}") from None
    return PersonalData(severity, kinds, detectors)


@dataclass(frozen=True)
class Words:
    by_id: dict[str, Term]
    allow: list[str]
    lexicon: Lexicon  # one automaton over folded text: one pass per reply (policies.lexicon)


def words(top: Reader) -> Words:
    by_id: dict[str, Term] = {}
    for line, entry in top.items("lexicon"):
        group = reading.group(entry, line, "lexicon", {"category", "severity", "terms"})
        category = group.text("category")
        severity = reading.severity(group, "severity", "warn")
        for term in reading.terms(group):
            rule_id = f"lexicon.{category}.{reading.slug(term)}"
            if rule_id in by_id:
                raise group.fail("terms", f"lists {term!r} twice in {category}")
            by_id[rule_id] = Term(rule_id, term, category, severity)
    allow = top.texts("allow")
    for phrase in allow:
        if not fold_text(phrase):
            raise top.fail("allow", f"has {phrase!r}, which has no letters or digits")
    lexicon = Lexicon(((t.rule_id, t.text) for t in by_id.values()), allow=allow)
    return Words(by_id, allow, lexicon)


def skip_stages(top: Reader) -> tuple[str, ...]:
    """The stages a pre-approved template's reply may skip."""
    templates = top.mapping("templates", {"max_edit_distance", "skip_stages"})
    if templates is None:
        return ()
    # No longer used: any change to a template's own words makes a draft free text
    # (`policies.templates.own_text`). Still read, so rule sets that set it load.
    templates.count("max_edit_distance", 0)
    skipped = tuple(templates.texts("skip_stages"))
    for stage in skipped:
        if stage not in STAGES:
            raise templates.fail("skip_stages", f"names {stage!r}, not a stage")
    if "comms" in skipped:
        raise templates.fail("skip_stages", "cannot skip comms: it approves every reply")
    return skipped


def late_approval(top: Reader) -> str:
    publishing = top.mapping("publishing", {"late_approval"})
    if publishing is None:
        return "hold"
    late = publishing.text("late_approval", "hold")
    if late not in LATE_APPROVAL:
        raise publishing.fail("late_approval", f"must be one of {list(LATE_APPROVAL)}")
    return late

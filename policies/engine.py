"""The policy engine: a rule set (YAML, see `rules/default.yaml`) compiled once, then one
pass of each check over a reply.

A rule set names what must never be said (lexicons by category), the personal data that
must not be published (`policies.pii`), what each channel accepts (`policies.channels`) and
who must approve: the base route per channel, stages added by findings (`route:legal`) and
by the customer's post, and the stages a pre-approved template may skip; and how an
inbound post is triaged (`policies.triage`).

Every result names the rule-set version that produced it; the version is derived from the
rule file's content, so the same file always yields the same version. What a check answers
is in `policies.results`, how each section of the file is read in `policies.rule_sections`
(with the YAML helpers of `policies.reading`), and the compiled rule sets by version in
`policies.versions`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from policies import channels, pii, triage
from policies import rule_sections as sections
from policies.budget import Deadline
from policies.lexicon import Hit
from policies.pii import Detection
from policies.results import SEVERITIES, STAGES, CheckResult, Finding, TemplateBasis, TemplateUse
from policies.rule_sections import ChannelRule
from policies.ruleset_yaml import Reader, RuleSetError, load
from policies.templates import own_text

__all__ = [
    "SEVERITIES", "STAGES", "CheckResult", "Finding", "RuleSet", "RuleSetError", "TemplateBasis",
]  # fmt: skip

RULES_DIR = Path(__file__).resolve().parent / "rules"


class RuleSet:
    """A compiled rule set. Construct from the file's text; `RuleSetError` names the line."""

    def __init__(self, source: str) -> None:
        top = Reader(load(source), "", sections.TOP_LEVEL)
        self.source = source
        self.name = top.text("name")
        self.description = str(top.data.get("description") or "")
        self.version = hashlib.sha256(source.encode()).hexdigest()[:16]
        found = sections.routes(top)
        self.base_route, self.channel_routes = found.base, found.channels
        self.inbound_terms, self._inbound = found.inbound_terms, found.inbound
        self.channels = sections.channel_rules(top)
        self.link_domains, self.link_severity = sections.links(top)
        pii = sections.personal_data(top)
        self.pii_severity, self.pii_kinds, self._detectors = pii.severity, pii.kinds, pii.detectors
        said = sections.words(top)
        self._by_id, self.allow, self._lexicon = said.by_id, said.allow, said.lexicon
        self.terms = list(self._by_id.values())
        self.skip_stages = sections.skip_stages(top)
        self.late_approval = sections.late_approval(top)
        # What triage makes of an inbound post (`policies.triage`); the legal stage's
        # words in a customer's post also make it a public risk.
        legal = [term for term, stage in self.inbound_terms if stage == "legal"]
        self.triage = triage.read(top, legal)

    @classmethod
    def load(cls, path: Path | None = None) -> RuleSet:
        return cls((path or RULES_DIR / "default.yaml").read_text())

    # --- checking a reply --------------------------------------------------------------

    def check(
        self,
        body: str,
        channel: str,
        *,
        post_text: str | None = None,
        template: TemplateBasis | None = None,
        budget: float | None = None,
    ) -> CheckResult:
        """Every check on `body` for `channel`, and the route it needs. `post_text` is the
        customer's post it answers; `template` what it was rendered as, if it was.
        CheckOverBudget if the checks take longer than `budget` seconds (by default
        `policies.budget.CHECK_BUDGET_SECONDS`)."""
        deadline = Deadline(budget)
        findings = self.findings(body, channel, deadline)
        inbound = self._inbound_stages(post_text)
        deadline.passed("the customer's post")
        if template is None and not inbound and not any(f.stage for f in findings):
            # The common case: the base route.
            return CheckResult(findings, list(self.route_of(channel)), self.version)
        exempt: set[int] = set()  # findings in the template's own (pre-approved) words
        use: TemplateUse | None = None
        if template is not None:
            own = own_text(body, template.rendered, template.variable_spans)
            use = "pre_approved" if own is not None else "edited"
            exempt = {
                i
                for i, f in enumerate(findings)
                if any(s <= f.start and f.end <= e for s, e in own or ())
            }
        route, skipped = self._route(channel, findings, inbound, exempt, use)
        return CheckResult(findings, route, self.version, template=use, skipped=skipped)

    def findings(self, body: str, channel: str, deadline: Deadline | None = None) -> list[Finding]:
        deadline = deadline or Deadline()
        hits = self._lexicon.find(body)
        deadline.passed("the lexicon")
        detected = self._detectors.find(body)
        deadline.passed("personal data")
        shown = _Excerpts(body, detected)  # what every finding quotes
        findings = [self._lexicon_finding(shown, hit) for hit in hits]
        findings += [self._pii_finding(d) for d in detected]
        findings += self._channel_findings(shown, channel)
        deadline.passed("the channel's rules")
        if len(findings) > 1:
            findings.sort(key=lambda f: (f.start, f.end))
        return findings

    def route_of(self, channel: str) -> list[str]:
        return self.channel_routes.get(channel, self.base_route)

    def _inbound_stages(self, post_text: str | None) -> set[str]:
        if not post_text:
            return set()
        return {hit.key.split(":", 1)[0] for hit in self._inbound.find(post_text)}

    def _route(
        self,
        channel: str,
        findings: list[Finding],
        inbound: set[str],
        exempt: set[int],
        use: TemplateUse | None,
    ) -> tuple[list[str], list[str]]:
        skippable = set(self.skip_stages) if use == "pre_approved" else set()
        needed = {s for s in self.route_of(channel) if s not in skippable} | inbound
        skipped = {s for s in self.route_of(channel) if s in skippable}
        for i, finding in enumerate(findings):
            stage = finding.stage
            if stage is None:
                continue
            if stage in skippable and i in exempt:
                skipped.add(stage)
            else:
                needed.add(stage)
        route = sorted(needed, key=STAGES.index)
        return route, sorted(skipped - needed, key=STAGES.index)

    # --- findings ----------------------------------------------------------------------

    def _lexicon_finding(self, shown: _Excerpts, hit: Hit) -> Finding:
        term = self._by_id[hit.key]
        excerpt = shown(hit.start, hit.end)
        verb = {"block": "must not appear", "warn": "needs care"}.get(
            term.severity, f"needs {term.severity.split(':', 1)[-1]} review"
        )
        return Finding(
            rule_id=term.rule_id,
            category=term.category,
            severity=term.severity,
            start=hit.start,
            end=hit.end,
            excerpt=excerpt,
            message=f"{term.category.replace('_', ' ')}: {excerpt!r} {verb}",
            suggestion="rephrase" if term.severity == "block" else None,
            ruleset_version=self.version,
        )

    def _pii_finding(self, detection: Detection) -> Finding:
        return Finding(
            rule_id=f"pii.{detection.kind}",
            category="personal_data",
            severity=self.pii_severity,
            start=detection.start,
            end=detection.end,
            excerpt=detection.masked,
            message=f"{_article(detection.label)} {detection.label} must not be posted in public",
            suggestion=f"replace it with {detection.redaction} and ask the customer to "
            "continue by direct message",
            redaction=detection.redaction,
            ruleset_version=self.version,
        )

    def length(self, body: str, channel: str) -> tuple[int, int | None]:
        """`body`'s length as `channel` counts it, and the most it allows (None: no limit)."""
        rule = self.channels.get(channel)
        counting = rule.counting if rule is not None else "characters"
        used = channels.COUNTERS[counting](body)
        return used, rule.max_length if rule is not None else None

    def _channel_findings(self, shown: _Excerpts, channel: str) -> list[Finding]:
        found: list[Finding] = []
        body = shown.body
        links = channels.links(body)
        rule = self.channels.get(channel)
        if rule is not None:
            found += self._limits(shown, rule, links)
        if self.link_domains is not None:
            for link in links:
                if not channels.host_allowed(link.host, self.link_domains):
                    found.append(
                        self._finding(
                            "links.domain", "link", self.link_severity, link.start, link.end,
                            shown(link.start, min(link.end, link.start + 80)),
                            f"{link.host} is not an allowed link domain",
                            "link only to the company's own sites",
                        )
                    )  # fmt: skip
        return found

    def _limits(
        self, shown: _Excerpts, rule: ChannelRule, links: list[channels.Link]
    ) -> list[Finding]:
        found = []
        body = shown.body
        if rule.max_length is not None:
            length = channels.COUNTERS[rule.counting](body)
            if length > rule.max_length:
                found.append(
                    self._finding(
                        f"channel.{rule.name}.length", "channel_limit", "block",
                        0, len(body), shown(0, min(len(body), 40)),
                        f"{length} characters as {rule.name} counts them; it allows "
                        f"{rule.max_length}",
                        f"shorten by {length - rule.max_length} characters",
                    )
                )  # fmt: skip
        for kind, limit, matches in (
            ("mentions", rule.max_mentions, channels.mentions),
            ("hashtags", rule.max_hashtags, channels.hashtags),
        ):
            if limit is None:
                continue
            seen = matches(body)
            if len(seen) > limit:
                first = seen[limit]
                found.append(
                    self._finding(
                        f"channel.{rule.name}.{kind}", "channel_limit", "block",
                        first.start(), seen[-1].end(), shown(first.start(), first.end()),
                        f"{len(seen)} {kind}; {rule.name} replies allow {limit}",
                        f"remove {len(seen) - limit} {kind}",
                    )
                )  # fmt: skip
        return found

    def _finding(
        self,
        rule_id: str,
        category: str,
        severity: str,
        start: int,
        end: int,
        excerpt: str,
        message: str,
        suggestion: str | None,
    ) -> Finding:
        return Finding(
            rule_id, category, severity, start, end, excerpt, message, suggestion,
            ruleset_version=self.version,
        )  # fmt: skip

    # --- a summary for GET /policies --------------------------------------------------

    def summary(self) -> dict[str, Any]:
        by_category: dict[str, Counter[str]] = {}
        for term in self.terms:
            by_category.setdefault(term.category, Counter())[term.severity] += 1
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "routes": {
                "base": self.base_route,
                "channels": self.channel_routes,
                "inbound": dict(Counter(stage for _, stage in self.inbound_terms)),
            },
            "lexicon": {cat: dict(sev) for cat, sev in sorted(by_category.items())},
            "allow": len(self.allow),
            "pii": {
                "severity": self.pii_severity,
                "detectors": list(self.pii_kinds) + [p.id for p in self._detectors.patterns],
            },
            "channels": {name: asdict(rule) for name, rule in self.channels.items()},
            "links": {
                "allow": sorted(self.link_domains) if self.link_domains is not None else None,
                "severity": self.link_severity,
            },
            "templates": {"skip_stages": list(self.skip_stages)},
            "publishing": {"late_approval": self.late_approval},
            "triage": {
                "languages": list(self.triage.languages),
                "topics": list(self.triage.topics),
                "priority_rules": len(self.triage.priority),
                "default": self.triage.default,
            },
        }


class _Excerpts:
    """What a finding may quote of the body: its text, with the personal data the
    detectors found in it masked as the personal-data findings show it (THREATS: personal
    data masked in findings; the length limit quotes the body's start, a link finding the
    link, and either may hold a card number or an IBAN)."""

    def __init__(self, body: str, detected: list[Detection]) -> None:
        self.body = body
        self._detected = sorted(detected, key=lambda d: (d.start, d.end))

    def __call__(self, start: int, end: int) -> str:
        """The body's text from `start` to `end`, masked where it holds personal data."""
        parts, at = [], start
        for found in self._detected:
            first, last = max(found.start, at), min(found.end, end)
            if first >= last:
                continue
            parts.append(self.body[at:first])
            whole = (found.start, found.end) == (first, last)
            # Cut by the excerpt's edge, none of it shows (the last digits included).
            parts.append(found.masked if whole else pii.mask(self.body[first:last], keep=0))
            at = last
        parts.append(self.body[at:end])
        return "".join(parts)


def _article(noun: str) -> str:
    """`an IBAN`, `an e-mail address`, `a phone number`: by how the word sounds."""
    sounds_vowel = noun[:1].lower() in "aeio" or (
        noun.split()[0].isupper() and noun[0] in "AEFHILMNORSX"
    )
    return "an" if sounds_vowel else "a"

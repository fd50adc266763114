"""The policy engine: a rule set (YAML) compiled once, then one pass over each reply.

A result names the rule-set version that produced it; the version is derived from the rule
file's content, so the same file always yields the same version.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from policies.lexicon import Hit, Lexicon, fold

RULES_DIR = Path(__file__).resolve().parent / "rules"
Severity = Literal["block", "warn"] | str  # or "route:<stage>"
STAGES = ("comms", "legal")


@dataclass(frozen=True)
class Finding:
    rule_id: str
    category: str
    severity: str
    start: int
    end: int
    excerpt: str
    message: str
    suggestion: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckResult:
    findings: list[Finding]
    route: list[str]
    ruleset_version: str
    blocked: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocked", any(f.severity == "block" for f in self.findings))


class RuleSetError(ValueError):
    """The rule file is not valid; the message says where and why."""


@dataclass(frozen=True)
class Term:
    rule_id: str
    text: str
    category: str
    severity: str


class RuleSet:
    def __init__(self, source: str) -> None:
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise RuleSetError(f"not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise RuleSetError("a rule set is a mapping with name, base_route, channels, lexicon")
        self.name = str(data.get("name", "unnamed"))
        self.version = hashlib.sha256(source.encode()).hexdigest()[:16]
        self.base_route = _stages(data.get("base_route", ["comms"]), "base_route")
        self.max_length = {
            str(channel): int(limits["max_length"])
            for channel, limits in (data.get("channels") or {}).items()
        }
        self.terms = [_term(n, entry) for n, entry in enumerate(data.get("lexicon") or [], 1)]
        self._by_id = {t.rule_id: t for t in self.terms}
        allow = data.get("allow") or []
        if not isinstance(allow, list) or not all(isinstance(a, str) and a.strip() for a in allow):
            raise RuleSetError("allow must be a list of phrases")
        # One automaton over folded text: one pass per reply (see policies.lexicon).
        self._lexicon = Lexicon(((t.rule_id, t.text) for t in self.terms), allow=allow)

    @classmethod
    def load(cls, path: Path | None = None) -> RuleSet:
        return cls((path or RULES_DIR / "default.yaml").read_text())

    def check(self, body: str, channel: str) -> CheckResult:
        findings = [self._lexicon_finding(body, hit) for hit in self._lexicon.find(body)]
        limit = self.max_length.get(channel)
        if limit is not None and len(body) > limit:
            findings.append(
                Finding(
                    rule_id=f"length.{channel}",
                    category="channel_limit",
                    severity="block",
                    start=limit,
                    end=len(body),
                    excerpt=body[limit : limit + 40],
                    message=f"{len(body)} characters; {channel} allows {limit}",
                    suggestion=f"shorten by {len(body) - limit} characters",
                )
            )
        route = list(self.base_route)
        for finding in findings:
            if finding.severity.startswith("route:"):
                stage = finding.severity.split(":", 1)[1]
                if stage not in route:
                    route.append(stage)
        route.sort(key=STAGES.index)
        return CheckResult(findings=findings, route=route, ruleset_version=self.version)

    def _lexicon_finding(self, body: str, hit: Hit) -> Finding:
        term = self._by_id[hit.key]
        excerpt = body[hit.start : hit.end]
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
        )


def _stages(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or any(v not in STAGES for v in value):
        raise RuleSetError(f"{where} must be a non-empty list of stages from {list(STAGES)}")
    return [str(v) for v in value]


def _term(n: int, entry: Any) -> Term:
    if not isinstance(entry, dict) or not entry.get("term") or not entry.get("category"):
        raise RuleSetError(f"lexicon entry {n} needs term and category")
    severity = str(entry.get("severity", "warn"))
    if severity not in ("block", "warn") and severity.removeprefix("route:") not in STAGES:
        raise RuleSetError(
            f"lexicon entry {n}: severity {severity!r} is not block, warn or route:<stage>"
        )
    text = " ".join(str(entry["term"]).split())
    if not fold(text).text:
        raise RuleSetError(f"lexicon entry {n}: term {text!r} has no letters or digits")
    return Term(
        rule_id=f"lexicon.{entry['category']}.{n}",
        text=text,
        category=str(entry["category"]),
        severity=severity,
    )

"""What a policy check answers: its findings, the route they need, and whether the reply is
blocked; the stages and severities a rule set speaks of."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

STAGES = ("comms", "legal")
SEVERITIES = ("block", "warn", *(f"route:{s}" for s in STAGES))


@dataclass(frozen=True)
class Finding:
    rule_id: str
    category: str
    severity: str  # block, warn or route:<stage>
    start: int
    end: int
    excerpt: str  # masked for personal data
    message: str
    suggestion: str | None = None
    redaction: str | None = None  # what could replace the span
    ruleset_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def stage(self) -> str | None:
        return self.severity.removeprefix("route:") if self.severity.startswith("route:") else None


TemplateUse = Literal["pre_approved", "edited"]


@dataclass(frozen=True)
class TemplateBasis:
    """What a draft made from a template was rendered as, and where its variables went."""

    rendered: str
    variable_spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class CheckResult:
    findings: list[Finding]
    route: list[str]
    ruleset_version: str
    template: TemplateUse | None = None  # how a template draft was treated
    skipped: list[str] = field(default_factory=list)  # stages a template skipped
    blocked: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocked", any(f.severity == "block" for f in self.findings))

"""Compiled rule sets by version: the API and the worker each hold one `RuleBook`."""

from __future__ import annotations

from collections.abc import Callable

from policies.engine import RuleSet


class RuleBook:
    """Compiled rule sets by version, each compiled once; the shipped one when none is
    active. The API and the worker each hold one: the active version is read from the
    database per check, its source only when that version is new here."""

    def __init__(self, shipped: RuleSet | None = None) -> None:
        self.shipped = shipped or RuleSet.load()
        self._compiled = {self.shipped.version: self.shipped}

    def add(self, rules: RuleSet) -> None:
        """A rule set compiled elsewhere (an upload this process just validated)."""
        self._compiled.setdefault(rules.version, rules)

    def get(self, version: str | None, source: Callable[[str], str]) -> RuleSet:
        if version is None:
            return self.shipped
        rules = self._compiled.get(version)
        if rules is None:
            rules = self._compiled[version] = RuleSet(source(version))
        return rules

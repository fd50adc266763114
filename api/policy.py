"""The API's view of the policies: the active rule set (compiled once per version, see
`policies.engine.RuleBook`) and the reply-template catalogue, both held on the app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.engine import Connection

from policies.engine import RuleSet
from policies.templates import Catalogue, Rendered, ReplyTemplate, TemplateProblem
from policies.versions import RuleBook
from records import rulesets
from records.db import Database
from records.errors import Invalid, NotFound


class Policies:
    def __init__(self, rules_file: Path | None = None, templates_dir: Path | None = None) -> None:
        self.book = RuleBook(RuleSet.load(rules_file))
        self.templates = Catalogue.load(templates_dir)

    def template(self, template_id: str) -> ReplyTemplate:
        template = self.templates.get(template_id)
        if template is None:
            raise NotFound(f"no template with id {template_id}")
        return template

    def render(self, template_id: str, variables: dict[str, Any], channel: str) -> Rendered:
        """The template filled in for `channel`; 404 or 422 saying what does not fit."""
        template = self.template(template_id)
        if channel not in template.channels:
            raise Invalid(
                f"template {template_id} is for {', '.join(template.channels)}, not {channel}"
            )
        try:
            return template.render(variables)
        except TemplateProblem as exc:
            raise Invalid(
                f"the variables do not fit template {template_id}: {exc}", problems=exc.problems
            ) from exc

    def _current(self, connection: Connection) -> RuleSet:
        version = rulesets.active_version(connection)
        return self.book.get(version, lambda v: rulesets.source_of(connection, v))

    async def rules(self, database: Database) -> RuleSet:
        """The rule set in force now."""
        return await database.read(self._current)


async def get_policies(request: Request) -> Policies:
    policies: Policies = request.app.state.policies
    return policies


PoliciesDep = Annotated[Policies, Depends(get_policies)]

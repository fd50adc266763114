"""Pre-approved reply templates: the catalogue, and rendering one with its variables
(the result goes through the policy checks like any reply)."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep, Principal, require_roles
from api.policy import PoliciesDep
from api.routes.policies import CheckAnswer, answer
from lifecycle.words import Role
from policies.engine import TemplateBasis
from records.draft_shapes import TEMPLATE_ID_PATTERN, TemplateRender
from records.fields import Channel

router = APIRouter(prefix="/templates", tags=["templates"])
Anyone = Annotated[Principal, Depends(require_roles(*Role))]
TemplateId = Annotated[str, Path(max_length=100, pattern=TEMPLATE_ID_PATTERN)]


class TemplateList(BaseModel):
    items: list[dict[str, Any]]


class RenderedReply(CheckAnswer):
    template_id: str
    template_version: str
    channel: str
    body: str
    variable_spans: list[tuple[int, int]]


@router.get("", response_model=TemplateList)
async def list_templates(
    _: Anyone, policies: PoliciesDep, channel: Annotated[Channel | None, Query()] = None
) -> TemplateList:
    chosen = policies.templates.for_channel(channel.value if channel else None)
    return TemplateList(items=[t.describe() for t in chosen])


@router.get("/{template_id}")
async def get_template(template_id: TemplateId, _: Anyone, policies: PoliciesDep) -> dict[str, Any]:
    return policies.template(template_id).describe()


@router.post("/{template_id}/render", response_model=RenderedReply)
async def render_template(
    template_id: TemplateId,
    body: TemplateRender,
    _: Anyone,
    database: DatabaseDep,
    policies: PoliciesDep,
) -> RenderedReply:
    """The reply the template makes with these values, and its policy findings and route
    (a pre-approved template may skip stages the rule set names; never the checks)."""
    template = policies.template(template_id)
    channel = body.channel.value if body.channel else template.channels[0]
    rendered = policies.render(template_id, body.variables, channel)
    rules = await policies.rules(database)
    basis = TemplateBasis(rendered.body, rendered.variable_spans)
    result = answer(
        await run_in_threadpool(
            functools.partial(rules.check, rendered.body, channel, template=basis)
        )
    )
    return RenderedReply(
        **result.model_dump(),
        template_id=rendered.template_id,
        template_version=rendered.template_version,
        channel=channel,
        body=rendered.body,
        variable_spans=list(rendered.variable_spans),
    )

"""The policies: the rule set in force, a dry-run check, and uploading a new rule set."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep, Principal, require_roles
from api.policy import PoliciesDep
from lifecycle.words import Role
from policies.engine import CheckResult, RuleSet, RuleSetError
from records import posts, rulesets
from records.draft_shapes import PolicyCheck
from records.errors import CountersignError, Invalid

router = APIRouter(prefix="/policies", tags=["policies"])
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]
Anyone = Annotated[Principal, Depends(require_roles(*Role))]
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
MAX_RULES_BYTES = 512 * 1024


class UnsupportedMediaType(CountersignError):
    status_code = 415
    title = "Unsupported media type"


class ActivePolicy(BaseModel):
    name: str
    version: str
    source: Literal["shipped", "uploaded"]
    uploaded_by: str | None
    uploaded_at: datetime | None
    summary: dict[str, Any]


class Length(BaseModel):
    used: int = Field(description="the reply's length as the channel counts it")
    allowed: int | None = Field(description="the channel's limit in the rule set")


class CheckAnswer(BaseModel):
    findings: list[dict[str, Any]]
    route: list[str]
    blocked: bool
    ruleset_version: str
    template: str | None = None
    skipped: list[str] = []
    length: Length | None = None


def answer(result: CheckResult) -> CheckAnswer:
    return CheckAnswer(
        findings=[f.as_dict() for f in result.findings],
        route=result.route,
        blocked=result.blocked,
        ruleset_version=result.ruleset_version,
        template=result.template,
        skipped=result.skipped,
    )


@router.get("", response_model=ActivePolicy)
async def active_policy(_: Anyone, database: DatabaseDep, policies: PoliciesDep) -> ActivePolicy:
    activation = await database.read(rulesets.active)
    rules = await policies.rules(database)
    return ActivePolicy(
        name=rules.name,
        version=rules.version,
        source="uploaded" if activation else "shipped",
        uploaded_by=activation.uploaded_by if activation else None,
        uploaded_at=activation.uploaded_at if activation else None,
        summary=rules.summary(),
    )


@router.get(
    "/source",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/yaml": {}}, "description": "the rule file"}},
)
async def active_source(
    _: Admin, database: DatabaseDep, policies: PoliciesDep
) -> PlainTextResponse:
    """The active rule file, to edit and upload again."""
    rules = await policies.rules(database)
    return PlainTextResponse(rules.source, media_type="application/yaml")


@router.put(
    "",
    response_model=ActivePolicy,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": {"schema": {"type": "string"}}},
            "description": "a rule file (see policies/rules/default.yaml)",
        }
    },
)
async def upload_policy(
    request: Request, caller: Admin, database: DatabaseDep, policies: PoliciesDep
) -> ActivePolicy:
    """Validate and activate a rule set. A bad file is refused with 422 naming the line and
    the problem, and the rule set in force stays in force."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in YAML_TYPES:
        raise UnsupportedMediaType(
            f"send the rule file as one of {', '.join(YAML_TYPES)}, not {media_type or 'nothing'}"
        )
    raw = await request.body()
    if len(raw) > MAX_RULES_BYTES:
        raise Invalid(f"a rule file is at most {MAX_RULES_BYTES} bytes", errors=[])
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("the rule file is not UTF-8 text", errors=[]) from exc
    try:
        rules = await run_in_threadpool(RuleSet, source)
    except RuleSetError as exc:
        raise Invalid(
            f"the rule set was not activated: {exc}",
            errors=[
                {
                    "loc": ["body", exc.line or 0],
                    "msg": exc.problem,
                    "type": "rule_set",
                    "line": exc.line,
                }
            ],
        ) from exc

    def activate() -> None:
        with database.write() as connection:
            rulesets.activate(
                connection,
                version=rules.version,
                name=rules.name,
                source=source,
                actor=caller.username,
            )

    await run_in_threadpool(activate)
    policies.book.add(rules)
    return await active_policy(caller, database, policies)


@router.post("/check", response_model=CheckAnswer)
async def check(
    body: PolicyCheck, _: Anyone, database: DatabaseDep, policies: PoliciesDep
) -> CheckAnswer:
    """A dry run: the findings and route `body` would get; nothing is stored."""
    channel = body.channel.value if body.channel else None
    post_text = body.post_text
    if body.post_id is not None:
        post_id = body.post_id
        post_channel, text = await database.read(lambda c: posts.channel_and_text(c, post_id))
        channel = channel or post_channel
        post_text = post_text if post_text is not None else text
    rules = await policies.rules(database)
    assert channel is not None  # the model requires channel or post_id

    # Off the event loop (one trip): a long text must not hold up other requests.
    def run() -> tuple[CheckResult, tuple[int, int | None]]:
        assert channel is not None
        return rules.check(body.body, channel, post_text=post_text), rules.length(
            body.body, channel
        )

    result, (used, allowed) = await run_in_threadpool(run)
    checked = answer(result)
    checked.length = Length(used=used, allowed=allowed)
    return checked

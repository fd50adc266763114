"""A reply's making in pages: the inbox, a reply from a template or free text, the editor
with live checks, and my drafts. A draft's page and its approval are `web.approvals`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from lifecycle.words import Presence, QueueOrder
from web.api import Api, ApiProblem
from web.core import (
    Person,
    api_for,
    done,
    form_of,
    render,
    signed_in,
)
from web.customers import customer_panel

router = APIRouter(include_in_schema=False)


# --- agents: the inbox, the editor, my drafts ---------------------------------------------


@router.get("/inbox")
async def inbox(
    request: Request,
    status: str = "new",
    channel: str = "",
    priority: str = "",
    topic: str = "",
    public_risk: str = "",
    order: str = QueueOrder.due.value,
    cursor: str = "",
) -> HTMLResponse:
    """The posts, most urgent first (by when each reply is due) unless asked by arrival;
    an agent sees and sets their presence here."""
    person = await signed_in(request)
    filters = {
        "status": status, "channel": channel, "priority": priority, "topic": topic,
        "public_risk": "true" if public_risk == "true" else "", "order": order,
    }  # fmt: skip
    async with api_for(request, person) as api:
        page = await api.get("/posts", **filters, cursor=cursor, limit=50)
        me = await api.get(f"/agents/{person.username}") if person.can("agent") else None
    return render(
        request,
        "inbox.html",
        person,
        posts=page["items"],
        next_cursor=page["next_cursor"],
        filters=filters,
        now=datetime.now(UTC),
        agent=me,
        PRESENCES=[p.value for p in Presence],
    )


@router.post("/posts/{post_id}/take")
async def take(request: Request, post_id: int) -> Response:
    person = await signed_in(request)
    form = await form_of(request)
    body = {"assignee": form["assignee"]} if form.get("assignee") else None
    async with api_for(request, person) as api:
        try:
            await api.post(f"/posts/{post_id}/assign", json=body)
        except ApiProblem as problem:
            return done(request, "/inbox", f"Not assigned: {problem.detail}")
    who = form.get("assignee") or "you"
    return done(request, "/inbox", f"Post {post_id} assigned to {who}.")


@router.post("/posts/{post_id}/dismiss")
async def dismiss(request: Request, post_id: int) -> Response:
    """The post needs no reply: for the reason chosen, with an optional note."""
    person = await signed_in(request)
    form = await form_of(request)
    reason, note = form.get("reason", ""), form.get("note") or None
    body = {"reason": reason, "note": note}
    async with api_for(request, person) as api:
        try:
            await api.post(f"/posts/{post_id}/dismiss", json=body)
        except ApiProblem as problem:
            return done(request, "/inbox", f"Not dismissed: {problem.detail}")
    return done(request, "/inbox", f"Post {post_id} dismissed ({reason.replace('_', ' ')}).")


@router.post("/posts/{post_id}/restore")
async def restore(request: Request, post_id: int) -> Response:
    """A supervisor's: the dismissed post waits for a reply again."""
    person = await signed_in(request)
    await form_of(request)
    async with api_for(request, person) as api:
        try:
            await api.post(f"/posts/{post_id}/restore")
        except ApiProblem as problem:
            return done(request, "/inbox?status=dismissed", f"Not restored: {problem.detail}")
    return done(request, "/inbox?status=dismissed", f"Post {post_id} restored to the inbox.")


@dataclass(frozen=True)
class _ReplyForm:
    """The post being answered, the templates for its channel, and the one chosen."""

    post: dict[str, Any]
    templates: list[dict[str, Any]]
    chosen: dict[str, Any] | None
    customer: dict[str, Any]

    @classmethod
    async def of(cls, api: Api, post_id: int, template_id: str) -> _ReplyForm:
        post = await api.get(f"/posts/{post_id}")
        templates = (await api.get("/templates", channel=post["channel"]))["items"]
        chosen = next((t for t in templates if t["id"] == template_id), None)
        return cls(post, templates, chosen, await customer_panel(api, post))

    def render(
        self,
        request: Request,
        person: Person,
        code: int = 200,
        values: dict[str, str] | None = None,
        error: ApiProblem | None = None,
        body: str = "",
    ) -> HTMLResponse:
        return render(
            request,
            "new_reply.html",
            person,
            code,
            post=self.post,
            templates=self.templates,
            chosen=self.chosen,
            values=values or {},
            error=error,
            body=body,
            **self.customer,
        )


@router.get("/posts/{post_id}/reply")
async def new_reply(request: Request, post_id: int, template: str = "") -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        reply = await _ReplyForm.of(api, post_id, template)
    return reply.render(request, person)


@router.post("/posts/{post_id}/reply")
async def create_reply(request: Request, post_id: int) -> Response:
    person = await signed_in(request)
    form = await form_of(request)
    template_id = form.get("template_id", "")
    async with api_for(request, person) as api:
        reply = await _ReplyForm.of(api, post_id, template_id)
        values = {k.removeprefix("var_"): v for k, v in form.items() if k.startswith("var_")}
        request_body: dict[str, Any] = {"post_id": post_id}
        if reply.chosen:
            request_body |= {"template_id": template_id, "variables": _typed(reply.chosen, values)}
        else:
            request_body["body"] = form.get("body", "")
        try:
            draft = await api.post("/drafts", json=request_body)
        except ApiProblem as problem:
            return reply.render(request, person, 422, values, problem, form.get("body", ""))
    return done(request, f"/drafts/{draft['id']}/edit", "Draft saved. Check it, then submit.")


def _typed(template: dict[str, Any], values: dict[str, str]) -> dict[str, str | int]:
    """Form values as the template's variables want them (numbers as numbers)."""
    typed: dict[str, str | int] = {}
    for variable in template["variables"]:
        value = values.get(variable["name"], "")
        numeric = variable["type"] == "number" and value.strip().lstrip("-").isdigit()
        typed[variable["name"]] = int(value) if numeric else value
    return typed


@router.get("/drafts")
async def my_drafts(request: Request, status: str = "", cursor: str = "") -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        page = await api.get(
            "/drafts", author=person.username, status=status, cursor=cursor, limit=50
        )
    return render(
        request,
        "drafts.html",
        person,
        drafts=page["items"],
        next_cursor=page["next_cursor"],
        status=status,
        now=datetime.now(UTC),
    )


@router.get("/drafts/{draft_id}/edit")
async def edit_page(request: Request, draft_id: int) -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        return await _editor(request, person, api, draft_id)


@router.post("/drafts/{draft_id}/edit")
async def save_draft(request: Request, draft_id: int) -> Response:
    """Save the text (a new version when it changed), then submit it if asked."""
    person = await signed_in(request)
    form = await form_of(request)
    body = form.get("body", "")
    async with api_for(request, person) as api:
        draft = await api.get(f"/drafts/{draft_id}")
        try:
            if body != draft["body"]:
                expected = int(form.get("version", draft["version"]))
                await api.put(
                    f"/drafts/{draft_id}", json={"body": body, "expected_version": expected}
                )
            if form.get("action") == "submit":
                await api.post(f"/drafts/{draft_id}/submit")
                return done(request, f"/drafts/{draft_id}", "Submitted for review.")
        except ApiProblem as problem:
            return await _editor(request, person, api, draft_id, body, problem)
    return done(request, f"/drafts/{draft_id}/edit", "Saved.")


async def _editor(
    request: Request,
    person: Person,
    api: Api,
    draft_id: int,
    body: str | None = None,
    error: ApiProblem | None = None,
) -> HTMLResponse:
    """The editor with `body` (else the draft's text) checked, and why an action failed."""
    draft = await api.get(f"/drafts/{draft_id}")
    post = await api.get(f"/posts/{draft['post_id']}")
    body = draft["body"] if body is None else body
    check = await api.post("/policies/check", json={"body": body, "post_id": post["id"]})
    return render(
        request,
        "editor.html",
        person,
        draft=draft,
        post=post,
        body=body,
        check=check,
        error=error,
        **await customer_panel(api, post),
    )


@router.post("/check")
async def live_check(request: Request) -> HTMLResponse:
    """The editor's live check (htmx, as the agent types): findings marked in the text, the
    route, and the channel's character count."""
    person = await signed_in(request)
    form = await form_of(request)
    body, post_id = form.get("body", ""), int(form.get("post_id", "0") or 0)
    async with api_for(request, person) as api:
        try:
            check = await api.post("/policies/check", json={"body": body, "post_id": post_id})
            post = await api.get(f"/posts/{post_id}")
        except ApiProblem as problem:
            return render(request, "_message.html", person, 200, message=problem.detail)
    return render(request, "_check.html", person, body=body, check=check, post=post)

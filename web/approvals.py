"""A reply on its way to the public, in pages: a draft's page (redline, timeline,
decisions, publishing, withdrawing) and the actions on it, and the reviewers' and
publishers' queues. How it is made is `web.work`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from lifecycle.words import DraftStatus
from web.api import Api, ApiProblem
from web.core import Person, api_for, as_utc, done, form_of, render, signed_in
from web.customers import customer_panel
from web.text import redline

router = APIRouter(include_in_schema=False)


# --- a draft: its page, decisions, publishing, withdrawing --------------------------------


@router.get("/drafts/{draft_id}")
async def draft_page(request: Request, draft_id: int) -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        return await _draft(request, person, api, draft_id)


async def _draft(
    request: Request,
    person: Person,
    api: Api,
    draft_id: int,
    comment: str = "",
    error: ApiProblem | None = None,
) -> HTMLResponse:
    """A draft's page, with what a reviewer typed and why an action failed."""
    draft = await api.get(f"/drafts/{draft_id}")
    post = await api.get(f"/posts/{draft['post_id']}")
    # The redline is against the last version reviewers decided on (what they saw), else
    # against the version before this one.
    earlier = draft["versions"][:-1]
    decided = {d["version"] for d in draft["decisions"]}
    baseline = ([v for v in earlier if v["version"] in decided] or earlier or [None])[-1]
    return render(
        request,
        "draft.html",
        person,
        draft=draft,
        post=post,
        baseline=baseline,
        changes=redline(baseline["body"], draft["body"]) if baseline else None,
        # Exactly what the API says this person may do now (lifecycle.rulebook).
        actions=set(draft["allowed_actions"]),
        now=datetime.now(UTC),
        comment=comment,
        error=error,
        **await customer_panel(api, post),
    )


async def _act(
    request: Request,
    draft_id: int,
    action: str,
    notice: str,
    body: Callable[[dict[str, str]], dict[str, Any] | None] = lambda _form: None,
) -> Response:
    """POST the draft's `action` to the API with the `body` the form makes; the draft's page
    with the refusal, or a redirect to it with `notice`."""
    person = await signed_in(request)
    form = await form_of(request)
    async with api_for(request, person) as api:
        try:
            await api.post(f"/drafts/{draft_id}/{action}", json=body(form))
        except ApiProblem as problem:
            try:
                return await _draft(
                    request, person, api, draft_id, form.get("comment", ""), problem
                )
            except ApiProblem:
                raise problem from None  # no draft to show it on: the refusal alone
    return done(request, f"/drafts/{draft_id}", notice)


def _decision(form: dict[str, str]) -> dict[str, Any]:
    decision: dict[str, Any] = {
        "stage": form.get("stage", ""),
        "decision": form.get("decision", ""),
        "version": int(form.get("version", "0") or 0),
    }
    if form.get("comment", "").strip():
        decision["comment"] = form["comment"].strip()
    return decision


def _publication(form: dict[str, str]) -> dict[str, Any] | None:
    at = form.get("at", "").strip()
    return {"at": as_utc(at)} if at else None


@router.post("/drafts/{draft_id}/decide")
async def decide(request: Request, draft_id: int) -> Response:
    return await _act(request, draft_id, "decisions", "Decision recorded.", _decision)


@router.post("/drafts/{draft_id}/submit")
async def submit(request: Request, draft_id: int) -> Response:
    return await _act(request, draft_id, "submit", "Submitted for review.")


@router.post("/drafts/{draft_id}/publish")
async def publish(request: Request, draft_id: int) -> Response:
    return await _act(request, draft_id, "publish", "Sent to the channel.", _publication)


@router.post("/drafts/{draft_id}/withdraw")
async def withdraw(request: Request, draft_id: int) -> Response:
    return await _act(request, draft_id, "withdraw", "Withdrawn.")


# --- reviewers and publishers: their queues -----------------------------------------------


@router.get("/reviews")
async def reviews(request: Request, cursor: str = "") -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        page = await api.get("/reviews", cursor=cursor, limit=50)
    template = "_review_rows.html" if request.headers.get("HX-Request") else "reviews.html"
    return render(
        request,
        template,
        person,
        drafts=page["items"],
        next_cursor=page["next_cursor"],
        now=datetime.now(UTC),
    )


@router.get("/publishing")
async def publishing(request: Request) -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        ready = (await api.get("/drafts", status=DraftStatus.approved, limit=100))["items"]
        failed = (await api.get("/drafts", status=DraftStatus.publish_failed, limit=100))["items"]
        scheduled = (await api.get("/drafts", status=DraftStatus.scheduled, limit=100))["items"]
    return render(
        request,
        "publishing.html",
        person,
        ready=ready,
        failed=failed,
        scheduled=scheduled,
        now=datetime.now(UTC),
    )

"""The notifications page: what the app told this person (assigned a post, a review asked
for, a public-risk post, a reply published...), newest first, each linking to its post or
draft, and marking them read. Every role has it: each is told of something."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from web.core import api_for, done, form_of, render, signed_in

router = APIRouter(include_in_schema=False)


@router.get("/notifications")
async def notifications(request: Request, before: str = "") -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        page = await api.get("/notifications", before=before, limit=50)
    return render(
        request, "notifications.html", person, items=page["items"], unread=page["unread"],
        next_cursor=page["next_cursor"],
    )  # fmt: skip


@router.post("/notifications/read")
async def mark_read(request: Request) -> Response:
    person = await signed_in(request)
    await form_of(request)
    async with api_for(request, person) as api:
        marked = (await api.post("/notifications/read"))["marked"]
    return done(request, "/notifications", f"{marked} marked read.")

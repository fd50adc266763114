"""Pages about the customer (issue 22, item 7): the panel beside a reply (who they are,
what they said before and what we answered, notes, CRM tier), a conversation in order, and
the customer's own page where agents keep notes and link or unlink identities."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from web.api import Api, ApiProblem
from web.core import api_for, done, form_of, render, signed_in

router = APIRouter(include_in_schema=False)
PANEL_HISTORY = 6  # posts shown beside a reply; the customer's page pages through all


async def customer_panel(api: Api, post: dict[str, Any]) -> dict[str, Any]:
    """The customer panel's data: the customer and their latest history, or nothing for
    someone who may not read customers (an auditor)."""
    if post.get("customer_id") is None:
        return {"customer": None, "history": []}
    try:
        customer = await api.get(f"/customers/{post['customer_id']}")
        history = await api.get(f"/customers/{post['customer_id']}/history", limit=PANEL_HISTORY)
    except ApiProblem as problem:
        if problem.status in (403, 404):
            return {"customer": None, "history": []}
        raise
    return {"customer": customer, "history": history["items"]}


@router.get("/conversations/{conversation_id}")
async def conversation_page(request: Request, conversation_id: int) -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        conversation = await api.get(f"/conversations/{conversation_id}")
    # The customer's posts and our replies, one thread in the order it happened.
    turns = sorted(
        [("customer", p["received_at"], p) for p in conversation["posts"]]
        + [("us", r["published_at"], r) for r in conversation["replies"]],
        key=lambda turn: turn[1],
    )
    return render(request, "conversation.html", person, conversation=conversation, turns=turns)


@router.get("/customers/{customer_id}")
async def customer_page(request: Request, customer_id: int, cursor: str = "") -> HTMLResponse:
    person = await signed_in(request)
    async with api_for(request, person) as api:
        customer = await api.get(f"/customers/{customer_id}")
        history = await api.get(f"/customers/{customer_id}/history", cursor=cursor, limit=20)
    return render(
        request,
        "customer.html",
        person,
        customer=customer,
        history=history["items"],
        next_cursor=history["next_cursor"],
    )


@router.post("/customers/{customer_id}/notes")
async def add_note(request: Request, customer_id: int) -> Response:
    person = await signed_in(request)
    form = await form_of(request)
    async with api_for(request, person) as api:
        try:
            await api.post(f"/customers/{customer_id}/notes", json={"text": form.get("text", "")})
        except ApiProblem as problem:
            return done(request, f"/customers/{customer_id}", f"Note not kept: {problem.detail}")
    return done(request, f"/customers/{customer_id}", "Note kept.")


@router.post("/customers/{customer_id}/link")
async def link(request: Request, customer_id: int) -> Response:
    person = await signed_in(request)
    form = await form_of(request)
    other = form.get("customer_id", "").strip()
    if not other.isdigit():
        return done(request, f"/customers/{customer_id}", "Give the other customer's number.")
    async with api_for(request, person) as api:
        try:
            await api.post(f"/customers/{customer_id}/link", json={"customer_id": int(other)})
        except ApiProblem as problem:
            return done(request, f"/customers/{customer_id}", f"Not linked: {problem.detail}")
    return done(request, f"/customers/{customer_id}", f"Customer {other} is this person now.")


@router.post("/customers/{customer_id}/identities/{identity_id}/unlink")
async def unlink(request: Request, customer_id: int, identity_id: int) -> Response:
    person = await signed_in(request)
    await form_of(request)  # checks the form's CSRF token
    async with api_for(request, person) as api:
        try:
            alone = await api.post(f"/customers/{customer_id}/identities/{identity_id}/unlink")
        except ApiProblem as problem:
            return done(request, f"/customers/{customer_id}", f"Not unlinked: {problem.detail}")
    return done(request, f"/customers/{alone['id']}", "Unlinked: this is a customer of its own.")

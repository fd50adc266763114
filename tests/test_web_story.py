"""The whole story in a real browser (Debian's Chromium, driven by Playwright): an agent
drafts from a template, the policy flags a phrase, the agent fixes it, comms approves,
legal requests changes, the agent edits, both approve again, the publisher posts, and the
auditor sees the timeline and a passing verify. Plus: a form posted without its CSRF token
is refused, and so is a role's hidden action posted by hand. Each page's screenshot is
saved under var/screenshots/."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright, expect

from api.app import create_app
from lifecycle.words import Role
from policies.versions import RuleBook
from records import routing_setup
from records.db import Database
from records.draft_models import Draft, DraftVersion, Publication
from records.ingest import store
from records.post_models import PostCreate
from records.routing_models import QueueCreate
from records.settings import Settings
from tests.conftest import PASSWORD
from tests.helpers import free_ports, insert_post
from workflows.connection import TemporalGateway

pytestmark = [pytest.mark.temporal, pytest.mark.long]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
CUSTOMER = "My card was charged twice for the same coffee. What is going on?"


@pytest.fixture
async def site(
    live_settings: Settings,
    database: Database,
    temporal_gateway: TemporalGateway,
    make_user: Callable[..., str],
) -> AsyncIterator[str]:
    """The app on a real port (the browser needs one), with its worker, on this loop."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("Chromium is required under CI=true (make test installs it)")
        pytest.skip("Chromium is not installed (make test installs Debian's package)")
    for name, role in (
        ("agent", Role.agent),
        ("comms", Role.comms),
        ("legal", Role.legal),
        ("pub", Role.publisher),
        ("auditor", Role.auditor),
        ("boss", Role.supervisor),
        ("root", Role.admin),
    ):
        make_user(name, role)
    [port] = free_ports(1)
    app = create_app(live_settings, database=database, temporal=temporal_gateway)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        await launched.close()


async def signed_in(browser: Browser, site: str, username: str, width: int = 1280) -> Page:
    context = await browser.new_context(base_url=site, viewport={"width": width, "height": 900})
    page = await context.new_page()
    await page.goto("/")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("form.who")).to_contain_text(f"{username} (")
    return page


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


async def decide(page: Page, draft_url: str, decision: str, comment: str = "") -> None:
    await page.goto("/reviews")
    await page.get_by_role("link", name=f"Review #{draft_url.rsplit('/', 1)[1]}").click()
    if comment:
        await page.get_by_label("Comment").fill(comment)
    await page.get_by_role("button", name=decision).click()
    await expect(page.get_by_role("status")).to_have_text("Decision recorded.")


async def test_the_whole_story_in_a_browser(
    site: str, browser: Browser, database: Database
) -> None:
    with database.write() as connection:
        insert_post(connection, text=CUSTOMER, channel="x")

    # An agent drafts from a template and adds a line the policy flags.
    agent = await signed_in(browser, site, "agent")
    await shot(agent, "inbox")
    await agent.get_by_role("link", name="Reply").click()
    await agent.get_by_label("Template", exact=True).select_option(
        label="A card payment shows twice"
    )
    await agent.get_by_role("button", name="Choose").click()
    await agent.get_by_label("Customer's first name").fill("Sam")
    await agent.get_by_label("Business days").fill("3")
    await agent.get_by_role("button", name="Create draft").click()
    await expect(agent.get_by_role("status")).to_contain_text("Draft saved")
    text = agent.get_by_label("Text (version 1)")
    await expect(text).to_have_value(
        "Hi Sam, sorry for the worry. When a payment shows twice, the second one is usually a "
        "pending hold that drops off by itself within 3 business days. If it is still there "
        "after that, send us a direct message and we will look into it."
    )
    original = await text.input_value()
    await text.fill(original + " Calm down, it is obviously a hold, you idiot.")
    flagged = agent.locator("#check mark.sev-block")
    await expect(flagged).to_have_text("idiot")  # marked as the agent types
    await expect(agent.locator("#check")).to_contain_text("blocked")
    await shot(agent, "editor-flagged")
    await agent.get_by_role("button", name="Submit for review").click()
    await expect(agent.get_by_role("alert")).to_contain_text("idiot")  # refused; text kept
    await expect(agent.get_by_label("Text (version 2)")).to_have_value(
        original + " Calm down, it is obviously a hold, you idiot."
    )

    # The agent fixes it (and promises money back, which needs legal) and submits.
    await agent.get_by_label("Text (version 2)").fill(
        original + " If it stays, we will reimburse you."
    )
    await expect(agent.locator("#check")).to_contain_text("comms → legal")
    await expect(agent.locator("#check mark.sev-block")).to_have_count(0)
    await agent.get_by_role("button", name="Submit for review").click()
    await expect(agent.get_by_role("status")).to_have_text("Submitted for review.")
    await expect(agent.get_by_role("heading", level=1)).to_contain_text("in review: comms")
    draft_url = agent.url.split("?")[0]

    # Comms approves; legal asks for changes.
    comms = await signed_in(browser, site, "comms")
    await shot(comms, "reviews")
    await decide(comms, draft_url, "Approve")
    legal = await signed_in(browser, site, "legal")
    await legal.goto("/reviews")
    await legal.get_by_role("link", name=f"Review #{draft_url.rsplit('/', 1)[1]}").click()
    await shot(legal, "review")
    await legal.get_by_role("button", name="Request changes").click()
    await expect(legal.get_by_role("alert")).to_contain_text("comment")  # a reason is required
    await decide(legal, draft_url, "Request changes", "Say we refund the fees; no reimbursing.")

    # The agent edits: the redline shows the change; both stages approve the new version.
    await agent.goto(draft_url)
    await expect(agent.get_by_role("heading", level=1)).to_contain_text("changes requested")
    await expect(agent.get_by_text("Say we refund the fees; no reimbursing.")).to_be_visible()
    await agent.get_by_role("link", name="Edit and submit").click()
    body = agent.get_by_label("Text (version 3)")
    await body.fill((await body.input_value()).replace("reimburse you", "refund the fees"))
    await expect(agent.locator("#check")).to_contain_text("comms → legal")
    await agent.get_by_role("button", name="Submit for review").click()
    await expect(agent.get_by_role("status")).to_have_text("Submitted for review.")
    await comms.goto(draft_url)
    await expect(comms.locator(".redline del")).to_have_text(["reimburse", "you"])
    await expect(comms.locator(".redline ins")).to_have_text(["refund", "the fees"])
    await decide(comms, draft_url, "Approve")
    await decide(legal, draft_url, "Approve")

    # The publisher posts it.
    pub = await signed_in(browser, site, "pub")
    await shot(pub, "publishing")
    await pub.get_by_role("link", name=f"#{draft_url.rsplit('/', 1)[1]}").first.click()
    await pub.get_by_role("button", name="Publish").click()
    await expect(pub.get_by_role("status")).to_have_text("Sent to the channel.")
    await expect(pub.get_by_role("heading", level=1)).to_contain_text("published")
    await expect(pub.get_by_text("confirmed on x")).to_be_visible()

    # The auditor sees the timeline and a passing verify.
    auditor = await signed_in(browser, site, "auditor")
    await auditor.get_by_label("Draft").fill(draft_url.rsplit("/", 1)[1])
    await auditor.get_by_role("button", name="Search").click()
    await expect(auditor.get_by_role("cell", name="draft.published")).to_be_visible()
    await auditor.get_by_role("button", name="Verify the chain").click()
    await expect(auditor.locator("#verified")).to_contain_text("the chain is intact")
    await shot(auditor, "audit")
    await auditor.goto(draft_url)
    timeline = auditor.locator("ol.timeline")
    for step in ("created", "blocked", "submitted", "request changes", "approve", "published"):
        await expect(timeline).to_contain_text(step)
    await shot(auditor, "timeline")
    phone = await signed_in(browser, site, "agent", width=390)
    await phone.goto(draft_url)
    await shot(phone, "draft-phone")

    # A form without its CSRF token, and a reviewer's action posted by an agent by hand.
    bare = await agent.request.post(
        f"{draft_url}/decide", form={"stage": "comms", "decision": "approve", "version": "3"}
    )
    assert bare.status == 403 and "security token" in await bare.text()
    await agent.goto("/drafts")
    token = await agent.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    by_hand = await agent.request.post(
        f"{draft_url}/decide",
        form={"csrf_token": token, "stage": "comms", "decision": "approve", "version": "3"},
    )
    assert by_hand.status == 403 and "needs the comms role" in await by_hand.text()


UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button')]
  .filter(el => el.tagName === 'BUTTON'
    ? !el.textContent.trim() && !el.getAttribute('aria-label')
    : !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map(el => el.outerHTML.slice(0, 100))"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
PAGES = {
    "agent": ["/inbox", "/drafts", "/posts/1/reply", "/drafts/1/edit", "/drafts/1"],
    "comms": ["/reviews"],
    "pub": ["/publishing"],
    "boss": ["/inbox", "/kpis", "/board", "/routing", "/notifications"],
    "auditor": ["/audit", "/kpis"],
    "root": ["/admin/users", "/admin/channels", "/admin/rules"],
}


async def test_every_page_is_labelled_usable_by_keyboard_and_fits_a_phone(
    site: str, browser: Browser, database: Database
) -> None:
    with database.write() as connection:
        insert_post(connection, text=CUSTOMER, channel="x")
    # Signing in with the keyboard alone: the username field has the focus.
    context = await browser.new_context(base_url=site)
    page = await context.new_page()
    await page.goto("/")
    # Autofocus lands once the page is shown: type only then (under load, keys sent
    # earlier went nowhere and "agent" arrived as "gent").
    await expect(page.locator("#username")).to_be_focused()
    await page.keyboard.type("agent")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{site}/inbox")
    # ... and taking a post to a draft: Tab to "Reply", Enter, type, Tab to the button.
    await page.get_by_role("link", name="Reply").focus()
    await page.keyboard.press("Enter")
    await page.get_by_label("Reply", exact=True).focus()
    await page.keyboard.type("Sorry about that, we will look into it today.")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Draft saved")

    for width in (1280, 390):
        for username, paths in PAGES.items():
            user = await signed_in(browser, site, username, width=width)
            for path in paths:
                answer = await user.goto(path)
                assert answer is not None and answer.status == 200, (username, path)
                assert await user.evaluate(UNLABELLED) == [], (username, path)
                assert await user.evaluate(OVERFLOW) <= 0, (username, path, width)
                name = path.strip("/").replace("/", "-")
                await shot(user, f"{width}-{username}-{name}")
            await user.context.close()


async def test_the_agent_sees_the_customers_earlier_reply_before_answering(
    site: str, browser: Browser, database: Database
) -> None:
    """Issue 22: a customer we answered writes again, in our reply's thread; the agent
    opening it sees who they are, what they said and what we answered, and the customer
    and conversation pages are labelled and fit a phone like every other page."""
    first = stored_by_a_connector(database, 1, "My card was declined at the pharmacy.")
    published_reply(database, first, "our-1", "Sorry, Dana: DM us and we will check it.")
    stored_by_a_connector(database, 2, "Still declined after the DM!", in_reply_to="our-1")
    agent = await signed_in(browser, site, "agent")
    row = agent.get_by_role("row").filter(has_text="Still declined")
    await expect(row).to_contain_text("in a thread")
    await row.get_by_role("link", name="Reply").click()
    panel = agent.locator("aside.customer")
    await expect(panel).to_contain_text("Dana Fox")
    await expect(panel).to_contain_text("My card was declined at the pharmacy.")
    await expect(panel).to_contain_text("Sorry, Dana: DM us and we will check it.")
    await shot(agent, "reply-with-customer")
    await agent.get_by_role("link", name="the whole conversation").click()
    await expect(agent.get_by_role("heading", level=1)).to_contain_text("Conversation")
    await shot(agent, "conversation")
    for width in (1280, 390):
        user = await signed_in(browser, site, "agent", width=width)
        for path in ("/customers/1", "/conversations/1"):
            answer = await user.goto(path)
            assert answer is not None and answer.status == 200, path
            assert await user.evaluate(UNLABELLED) == [], path
            assert await user.evaluate(OVERFLOW) <= 0, (path, width)
        await user.context.close()


def stored_by_a_connector(
    database: Database, n: int, text: str, in_reply_to: str | None = None
) -> int:
    data = PostCreate.model_validate({
        "channel": "x", "external_id": f"x-{n}", "author": "@dana",
        "author_profile": {"id": "1001", "display_name": "Dana Fox", "followers": 12},
        "text": text, "url": f"https://x.example/dana/{n}", "in_reply_to": in_reply_to,
        "received_at": f"2026-11-01T09:0{n}:00+00:00", "origin": "mention",
    })  # fmt: skip
    with database.write_session() as session:
        [done] = store(
            session, [data], rules=RuleBook(), actor="poller:test", actor_role="integration"
        )
    return done.post_id


def published_reply(database: Database, post_id: int, external_id: str, body: str) -> None:
    with database.write_session() as session:
        draft = Draft(post_id=post_id, author="agent", status="published", version=1)
        session.add(draft)
        session.flush()
        assert draft.id is not None
        session.add(DraftVersion(draft_id=draft.id, version=1, body=body,
                                 content_sha256="0" * 64, created_by="agent"))  # fmt: skip
        session.add(Publication(draft_id=draft.id, version=1, channel="x", status="confirmed",
                                requested_by="pub", external_id=external_id))  # fmt: skip


async def test_a_supervisor_sees_a_public_risk_post_jump_the_queue(
    site: str, browser: Browser, database: Database
) -> None:
    """Issue 23: three ordinary posts wait; the supervisor watches the queue board; a post
    from an author with a large following that threatens to sue arrives. Without a reload,
    the board counts it and lists it first, flagged a public risk; the inbox, most urgent
    first, has it on top too, though it is the newest."""
    with database.write() as connection:
        routing_setup.create_queue(
            connection, QueueCreate(name="Everything"), actor="boss", role="supervisor"
        )
    for n in range(3):
        arrived(database, n, f"@AcmeBank how do I order a new chequebook? ({n})", 40, 60 - n)
    boss = await signed_in(browser, site, "boss")
    await boss.goto("/board")
    row = boss.get_by_role("row").filter(has_text="Everything")
    await expect(row.get_by_role("cell").nth(1)).to_have_text("3")
    first = boss.locator("ol.urgent li").first
    await expect(first).to_contain_text("chequebook? (0)")
    await shot(boss, "board-before")
    arrived(
        database, 9, "@AcmeBank you froze my account for no reason. My lawyer will sue you and "
        "I will tell all my followers how you treat people.", 250_000, 1,
    )  # fmt: skip
    # The board reads itself again (every 10 s): no reload here.
    await expect(row.get_by_role("cell").nth(1)).to_have_text("4", timeout=25_000)
    await expect(first).to_contain_text("My lawyer will sue")
    await expect(first.locator(".chip.risk")).to_have_text("public risk")
    await expect(first.locator(".prio")).to_have_text("urgent")
    await shot(boss, "board-public-risk")
    await boss.goto("/inbox")
    top = boss.get_by_role("row").nth(1)
    await expect(top).to_contain_text("My lawyer will sue")
    await expect(top).to_contain_text("due in")


def arrived(database: Database, n: int, text: str, followers: int, minutes_ago: int) -> int:
    """A post as a connector brings it, triaged and placed in its queue."""
    data = PostCreate.model_validate({
        "channel": "x", "external_id": f"q-{n}", "author": f"@author{n}",
        "author_profile": {"id": f"20{n}", "followers": followers, "verified": followers > 10_000},
        "text": text, "url": f"https://x.example/q/{n}", "origin": "mention",
        "received_at": (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(),
    })  # fmt: skip
    with database.write_session() as session:
        [done] = store(
            session, [data], rules=RuleBook(), actor="poller:test", actor_role="integration"
        )
    return done.post_id

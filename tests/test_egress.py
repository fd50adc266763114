"""Outbound calls only where they belong (issue 20, item 2): every URL the worker calls is
checked when saved and at each connection, by `connectors.egress`; the address checked is
the address connected to; a remote party's answer is kept only as a status and a short
reason. The fakes listen on 127.0.0.1, which the default policy refuses."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors import egress
from connectors.base import REASON_LIMIT, PublishRefused, Reply, remote_reason
from connectors.bluesky import BlueskyPublisher
from connectors.http import raise_for_refusal
from connectors.mastodon import MastodonPublisher
from connectors.webhook import SignedJsonPublisher
from lifecycle.words import Role
from records.channels import Account
from tests.conftest import PASSWORD, Headers
from tests.helpers import JsonHandler, deliver_ticket, serve

STRICT = egress.EgressPolicy()


@pytest.fixture
def strict() -> None:
    """The policy a service runs with when nothing is allowed (the default)."""
    egress.configure(STRICT)


@pytest.fixture
def listener() -> Iterator[dict[str, Any]]:
    """A service on this machine (the API itself, a database's HTTP port): counts what
    reaches it."""
    seen: dict[str, Any] = {"requests": 0, "url": ""}

    class Handler(JsonHandler):
        def do_GET(self) -> None:
            seen["requests"] += 1
            self.answer(200, {"id": "1", "users": ["admin", "agent"], "url": "https://a.b/1"})

        do_POST = do_DELETE = do_GET

    with serve(Handler) as base:
        seen["url"] = base
        yield seen


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:8000/api/v1/users", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://localhost:8000/", "loopback"),  # a name, resolved here
        ("http://10.1.2.3/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://100.100.100.200/", "metadata"),
        ("http://168.63.129.16/", "Azure"),
        ("http://100.64.0.1/", "not a public address"),  # shared (carrier-grade NAT)
        ("http://[fe80::1]/", "link-local"),
        ("http://[fec0::1]/", "site-local"),  # deprecated, and not public
        ("http://0.0.0.0:8000/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[::ffff:127.0.0.1]/", r"carries 127\.0\.0\.1 is a loopback"),
        ("http://[2002:7f00:1::]/", r"carries 127\.0\.0\.1 is a loopback"),  # 6to4
        ("http://[64:ff9b::a00:1]/", r"carries 10\.0\.0\.1 is a private"),  # NAT64
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("gopher://example.com/", "must start with"),
        ("https://admin:pw@example.com/", "user name or password"),
        ("https:///path-only", "no host"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_a_url_the_service_must_not_call_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(egress.EgressRefused, match=reason):
        egress.check_url(url, STRICT)


def test_public_addresses_pass_and_production_wants_https() -> None:
    assert egress.check_url("http://93.184.216.34/x", STRICT)
    assert egress.check_url("https://[2606:4700:4700::1111]/", STRICT)
    with pytest.raises(egress.EgressRefused, match="must start with https://"):
        egress.check_url("http://93.184.216.34/x", egress.EgressPolicy(https_only=True))


def test_the_allow_list_opens_named_hosts_and_networks_only() -> None:
    policy = egress.EgressPolicy(allow=("10.20.0.0/16", "crm.corp.example", "*.lan.example"))
    assert egress.check_url("http://10.20.3.4/", policy)
    assert egress.check_url("http://crm.corp.example/", policy)
    assert egress.check_url("http://a.b.lan.example/", policy)
    for url in ("http://10.21.0.1/", "http://127.0.0.1/", "http://169.254.169.254/"):
        with pytest.raises(egress.EgressRefused):
            egress.check_url(url, policy)
    with pytest.raises(ValueError, match="neither a host name nor a network"):
        egress.parse_allow(["crm..corp"])


def test_an_allowed_name_opens_private_addresses_never_the_metadata_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An on-premise name on the allow-list may resolve to the office network; if someone
    points its DNS at the metadata service, it is refused all the same."""
    policy = egress.EgressPolicy(allow=("crm.corp.example",))
    answers = {"crm.corp.example": [["10.1.2.3"], ["169.254.169.254"], ["0.0.0.0"]]}  # noqa: S104
    monkeypatch.setattr(socket, "getaddrinfo", _resolver(answers, []))
    assert egress.resolve("crm.corp.example", 443, policy) == "10.1.2.3"
    for reason in ("metadata", "unspecified"):
        with pytest.raises(egress.EgressRefused, match=reason):
            egress.resolve("crm.corp.example", 443, policy)


def test_production_refuses_plain_http_when_called_too(listener: dict[str, Any]) -> None:
    """Not only when saved: a stored http:// URL, or a redirect to one, is refused before
    anything is sent."""
    egress.configure(egress.EgressPolicy(https_only=True, allow=("127.0.0.0/8",)))
    with pytest.raises(egress.EgressRefused, match="must start with https://"):
        egress.request("GET", f"{listener['url']}/", timeout=2)
    assert listener["requests"] == 0


def _resolver(answers: dict[str, list[list[str]]], calls: list[str]) -> Callable[..., Any]:
    """getaddrinfo with a fixed, changing answer per name (each call takes the next)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        calls.append(host)
        addresses = answers[host][min(len(calls) - 1, len(answers[host]) - 1)]
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))
            for address in addresses
        ]

    return getaddrinfo


def test_a_name_with_one_refused_address_is_refused(
    strict: None, listener: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    answers = {"mixed.example": [["93.184.216.34", "127.0.0.1"]]}
    monkeypatch.setattr(socket, "getaddrinfo", _resolver(answers, calls))
    port = listener["url"].rsplit(":", 1)[1]
    with pytest.raises(egress.EgressRefused, match=r"127\.0\.0\.1 is a loopback"):
        egress.request("GET", f"http://mixed.example:{port}/", timeout=2)
    assert listener["requests"] == 0


def test_the_address_checked_is_the_address_connected_to(
    listener: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers an allowed address once, then a refused one. The
    connection goes to the address that was checked; the name is not resolved again."""
    calls: list[str] = []
    answers = {"rebind.example": [["127.0.0.1"], ["10.9.9.9"]]}
    monkeypatch.setattr(socket, "getaddrinfo", _resolver(answers, calls))
    port = listener["url"].rsplit(":", 1)[1]
    answer = egress.request("GET", f"http://rebind.example:{port}/", timeout=2)
    assert answer.status_code == 200 and listener["requests"] == 1
    assert calls == ["rebind.example"]


def _account(channel: str, settings: dict[str, str], credentials: dict[str, str]) -> Account:
    return Account(
        id=1, name="acme", channel=channel, source=None, settings=settings, credentials=credentials
    )


def _reply(channel: str) -> Reply:
    return Reply(
        key="draft-1-v1",
        channel=channel,
        in_reply_to="1",
        body="Thanks!",
        requested_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    "publisher",
    [
        lambda url: SignedJsonPublisher(
            _account("webhook", {"reply_url": f"{url}/api/v1/users"}, {"secret": "s"})
        ),
        lambda url: MastodonPublisher(
            _account("mastodon", {"api_base": url, "account_id": "1"}, {"access_token": "t"})
        ),
        lambda url: BlueskyPublisher(
            _account("bluesky", {"service": url, "handle": "acme.test"}, {"app_password": "p"})
        ),
    ],
    ids=["webhook (httpx)", "mastodon (requests)", "bluesky (atproto)"],
)
def test_every_connector_refuses_at_connect_time(
    strict: None, listener: dict[str, Any], publisher: Callable[[str], Any]
) -> None:
    """An account saved before the rule (or written into the database) still calls
    nobody it should not: each HTTP stack the connectors use connects through the check."""
    with pytest.raises(PublishRefused, match=r"127\.0\.0\.1 is a loopback"):
        publisher(listener["url"]).post(_reply("webhook"))
    assert listener["requests"] == 0


def test_a_remote_answer_is_kept_as_a_status_and_a_short_reason() -> None:
    detail = "Bad\nrequest <script>x</script> \x1b[31m" + "users: admin, agent, " * 40 + "TAIL"
    answer = httpx.Response(422, json={"detail": detail})
    with pytest.raises(PublishRefused) as refused:
        raise_for_refusal(answer, "the webhook")
    message = str(refused.value)
    assert message.startswith("the webhook refused the reply: 422 Bad request <script>")
    reason = message.removeprefix("the webhook refused the reply: 422 ")
    assert len(reason) == REASON_LIMIT and reason.endswith("\u2026")
    assert "TAIL" not in message and "\n" not in message and "\x1b" not in message
    assert remote_reason("  fine  ") == "fine"


async def test_a_reply_cannot_be_published_into_the_service_itself(
    client: httpx.AsyncClient,
    people: dict[str, Headers],
    make_user: Callable[..., str],
    listener: dict[str, Any],
) -> None:
    """The story from the issue: a webhook account whose reply_url is the service's own
    API. Saving it is refused; one saved before (when loopback was allowed) fails at
    publish time with a reason that copies nothing of the answer, and nothing is called."""
    make_user("admin", Role.admin)
    token = await client.post(
        "/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
    )
    admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
    secret = "shop-secret-0123456789abcdef"
    account = {
        "channel": "webhook",
        "source": "webhook",
        "settings": {"reply_url": f"{listener['url']}/api/v1/users"},
        "credentials": {"secret": secret},
    }
    created = await client.post("/api/v1/channels", headers=admin, json={**account, "name": "old"})
    assert created.status_code == 201, created.text

    egress.configure(STRICT)
    refused = await client.post("/api/v1/channels", headers=admin, json={**account, "name": "new"})
    assert refused.status_code == 422
    assert refused.json()["field"] == "settings.reply_url"
    assert "127.0.0.1 is a loopback address" in refused.json()["detail"]

    post = await deliver_ticket(client, "old", secret, "ticket-1")
    draft = await client.post(
        "/api/v1/drafts", headers=people["agent"], json={"post_id": post["id"], "body": "Sorry!"}
    )
    url = f"/api/v1/drafts/{draft.json()['id']}"
    await client.post(f"{url}/submit", headers=people["agent"])
    await client.post(
        f"{url}/decisions",
        headers=people["comms"],
        json={"stage": "comms", "decision": "approve", "version": 1},
    )
    published = (await client.post(f"{url}/publish", headers=people["pub"])).json()
    assert published["status"] == "publish_failed", published
    error = published["publication"]["error"]
    assert "refused to connect to 127.0.0.1" in error and "admin" not in error
    assert listener["requests"] == 0

"""Where the service may send a request: one rule for every outbound URL.

A channel account's URLs (`reply_url`, `api_base`, `service`, `graph_base`) and the
notification webhook are set by admins, whose accounts can be taken over. Left unchecked,
a reply "published" to `http://127.0.0.1:8000/api/v1/users` or to the cloud's metadata
service makes the worker call, with its own network position, whatever the admin chose.

So a URL is checked twice, by the same rule:

- when it is saved (`check_url`): http or https (https only in production), no user or
  password in it, and a host whose addresses are all public (if it resolves here);
- when a connection is made (`resolve`): the host is resolved once, every address is
  checked, and the connection goes to a checked address. Nothing resolves the name
  again between the check and the connection, so a name that answers a public address
  to the check and a private one to the connection (DNS rebinding) gets nowhere.

Refused: loopback, private, link-local, shared (CGNAT), multicast, reserved and
unspecified addresses, IPv4 inside IPv6 (mapped, 6to4, NAT64) when the IPv4 is refused,
and the cloud metadata addresses. `COUNTERSIGN_OUTBOUND_ALLOW` names the exceptions for
on-premise targets: host names (`crm.corp.example`, `*.corp.example`) or networks
(`10.20.0.0/16`). Both HTTP stacks the connectors use go through `resolve`:
`guarded_transport()` for httpx (X, Meta, webhooks, Bluesky's atproto client) and
`guarded_session()` for requests (Mastodon.py). Both also hold every answer to the bounds
of `connectors.answers`: so much of it, within so long.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import requests
from requests.adapters import HTTPAdapter
from urllib3 import connection as urllib3_connection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from connectors import answers
from connectors.base import PublishRefused

__all__ = [
    "URL_SETTINGS",
    "EgressPolicy",
    "EgressRefused",
    "check_url",
    "configure",
    "current",
    "guarded_session",
    "guarded_transport",
    "request",
    "resolve",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The channel-account settings that are URLs the worker calls.
URL_SETTINGS = ("reply_url", "api_base", "service", "graph_base")

# Cloud metadata services (most sit in link-local or shared space, refused anyway; these
# are listed so the reason names them, and for the public ones).
_METADATA = {
    ipaddress.ip_address("169.254.169.254"): "the cloud metadata service",
    ipaddress.ip_address("169.254.170.2"): "the container metadata service",
    ipaddress.ip_address("168.63.129.16"): "Azure's platform service",
    ipaddress.ip_address("100.100.100.200"): "Alibaba's metadata service",
    ipaddress.ip_address("fd00:ec2::254"): "the cloud metadata service",
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(PublishRefused):
    """An outbound URL or address the service will not call (asking again cannot help)."""


@dataclass(frozen=True)
class EgressPolicy:
    """What `check_url` and `resolve` allow: https only (production), and the exceptions."""

    https_only: bool = False
    allow: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Any) -> EgressPolicy:
        """The policy `records.settings.Settings` describe."""
        return cls(https_only=settings.https_only, allow=tuple(settings.outbound_allow))

    @functools.cached_property
    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The allow-list's networks, parsed once (every connection asks)."""
        found = []
        for entry in self.allow:
            try:
                found.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue  # a host name
        return tuple(found)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for entry in self.allow:
            entry = entry.lower().rstrip(".")
            if entry == host or (entry.startswith("*.") and host.endswith(entry[1:])):
                return True
        return False

    def refusal(self, address: Address, *, named: bool = False) -> str | None:
        """Why `address` may not be called, or None if it may. `named`: the host name is
        on the allow-list, which opens private addresses, never the metadata service nor
        an unspecified or link-local address (a network on the list may)."""
        if any(address in network for network in self.networks):
            return None
        reason = _refusal(address)
        if named and reason is not None and not _never_by_name(address):
            return None
        return reason

    def scheme_refusal(self, scheme: str, what: str) -> str | None:
        schemes = ("https",) if self.https_only else ("http", "https")
        if scheme in schemes:
            return None
        return f"{what} must start with {' or '.join(s + '://' for s in schemes)}"


def parse_allow(entries: Iterable[str]) -> tuple[str, ...]:
    """Allow-list entries, checked: each a host name, `*.` and a domain, or a network."""
    kept = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            name = entry.removeprefix("*.")
            if not name or any(not part for part in name.split(".")) or "/" in name:
                raise ValueError(f"{entry!r} is neither a host name nor a network") from None
        kept.append(entry)
    return tuple(kept)


_policy = EgressPolicy()


def configure(policy: EgressPolicy) -> None:
    """Set this process's policy (the API and the worker do, from their settings)."""
    global _policy
    _policy = policy


def current() -> EgressPolicy:
    return _policy


def _never_by_name(address: Address) -> bool:
    inner = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    address = inner or address
    return address in _METADATA or address.is_unspecified or address.is_link_local


def _refusal(address: Address) -> str | None:
    if address in _METADATA:
        return f"{address} is {_METADATA[address]}"
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            reason = _refusal(inner)
            return f"{address} carries {reason}" if reason else None
    for kind, flag in (
        ("a loopback", address.is_loopback),
        ("an unspecified", address.is_unspecified),
        ("a link-local", address.is_link_local),
        ("a site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("a multicast", address.is_multicast),
        ("a private", address.is_private),
        ("a reserved", address.is_reserved),
    ):
        if flag:
            return f"{address} is {kind} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def check_url(url: str, policy: EgressPolicy | None = None, *, what: str = "the URL") -> str:
    """`url` if the service may call it; else EgressRefused saying why. A host that does
    not resolve here is let through (it is checked again at each connection)."""
    policy = policy or _policy
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressRefused(f"{what} is not a valid URL: {exc}") from None
    wrong_scheme = policy.scheme_refusal(parts.scheme, what)
    if wrong_scheme is not None:
        raise EgressRefused(wrong_scheme)
    if parts.username is not None or parts.password is not None:
        raise EgressRefused(f"{what} may not carry a user name or password")
    host = parts.hostname
    if not host:
        raise EgressRefused(f"{what} has no host")
    try:
        addresses = _addresses(host, port or (443 if parts.scheme == "https" else 80))
    except OSError:
        return url
    named = policy.host_allowed(host)
    for address in addresses:
        reason = policy.refusal(address, named=named)
        if reason is not None:
            raise EgressRefused(f"{what} points at {host}: {reason}")
    return url


def resolve(host: str, port: int, policy: EgressPolicy | None = None) -> str:
    """The address to connect to for `host`: every address it resolves to is checked (one
    refused address refuses the host), and the first is returned."""
    policy = policy or _policy
    addresses = _addresses(host, port)
    named = policy.host_allowed(host)
    for address in addresses:
        reason = policy.refusal(address, named=named)
        if reason is not None:
            raise EgressRefused(f"refused to connect to {host}: {reason}")
    return str(addresses[0])


def _addresses(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise OSError(f"{host} has no address")
    return found


# --- httpx: the network backend connects to a checked address ---------------------------


class _GuardedBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        # TLS still names `host` (httpcore takes the server name from the URL, not here).
        return answers.TimedStream(
            super().connect_tcp(resolve(host, port), port, timeout, local_address, socket_options)
        )


class _GuardedTransport(httpx.HTTPTransport):
    """Every request's scheme is checked (a redirect to http:// in production is refused),
    every connection goes through `resolve`, and every answer is held to the bounds of
    `connectors.answers`."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        refused = _policy.scheme_refusal(request.url.scheme, "the address called")
        if refused is not None:
            raise EgressRefused(refused)
        answers.ask_plainly(request)
        return answers.capped(super().handle_request(request), request.url.host)


def guarded_transport(**options: Any) -> httpx.HTTPTransport:
    """An httpx transport whose every request and connection are checked; environment
    proxies are not used (the worker calls the platforms directly)."""
    transport = _GuardedTransport(**options)
    transport._pool._network_backend = _GuardedBackend()
    return transport


def request(method: str, url: str, **options: Any) -> httpx.Response:
    """`httpx.request` through a guarded transport: what every connector calls."""
    with httpx.Client(transport=guarded_transport(), trust_env=False) as client:
        return client.request(method, url, **options)


# --- requests (Mastodon.py): the connection classes connect to a checked address --------


class _GuardedConnection(urllib3_connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        address = resolve(self._dns_host, self.port)
        try:
            return urllib3_connection.connection.create_connection(
                (address, self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except OSError as exc:
            raise NewConnectionError(self, f"could not connect: {exc}") from exc


class _GuardedTlsConnection(_GuardedConnection, urllib3_connection.HTTPSConnection):
    pass


class _GuardedPool(HTTPConnectionPool):
    ConnectionCls = _GuardedConnection


class _GuardedTlsPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedTlsConnection


class _GuardedAdapter(HTTPAdapter):
    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url)
        refused = _policy.scheme_refusal(parts.scheme, "the address called")
        if refused is not None:
            raise EgressRefused(refused)
        request.headers["Accept-Encoding"] = answers.IDENTITY
        kwargs["stream"] = True  # read here, within the bounds of `connectors.answers`
        return answers.read_bounded(super().send(request, *args, **kwargs), parts.hostname or "")

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedPool, "https": _GuardedTlsPool}


def guarded_session() -> requests.Session:
    """A requests session whose every connection goes through `resolve`."""
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

"""Reaching a secured Temporal cluster: TLS with the server's CA, mutual TLS with a client
certificate, and an API key, from settings. The dev server speaks plain gRPC, so a TLS
terminator on 127.0.0.1 (the standard library's `ssl`, with ALPN h2 as gRPC wants) stands
in front of it, with certificates made here by `cryptography`."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from records.settings import load_settings
from workflows.connection import Access, connect

pytestmark = pytest.mark.temporal


class Authority:
    """A throwaway certificate authority, and certificates it issues."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "countersign test CA")])
        self.name = name
        self.cert = (
            self._builder(name, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def _builder(
        self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        now = datetime.now(UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
        )

    def issue(self, folder: Path, name: str, *, server: bool) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = self._builder(subject, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if server:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_file, key_file = folder / f"{name}.crt", folder / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file

    def write(self, folder: Path) -> Path:
        path = folder / "ca.crt"
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path


@contextlib.asynccontextmanager
async def tls_front(target: str, context: ssl.SSLContext) -> AsyncIterator[str]:
    """A TLS terminator on 127.0.0.1 passing bytes to `target` (host:port); its address."""
    host, port = target.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def server_context(authority: Authority, folder: Path, *, clients: bool) -> ssl.SSLContext:
    cert, key = authority.issue(folder, "server", server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    if clients:  # mutual TLS: only clients with a certificate from this authority
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(authority.write(folder))
    return context


def test_settings_turn_tls_on_and_keep_a_client_certificate_with_its_key(tmp_path: Path) -> None:
    assert Access.of(load_settings()) == Access()  # the dev server: plain
    cert = tmp_path / "c.crt"
    cert.write_text("cert")
    with pytest.raises(ValidationError, match="go together"):
        load_settings(temporal_tls_cert_file=cert)
    keyed = Access.of(load_settings(temporal_api_key="cloud-key"))
    assert keyed.api_key == "cloud-key" and keyed.tls is not None  # keys go over TLS only
    ca = tmp_path / "ca.crt"
    ca.write_text("ca")
    access = Access.of(load_settings(temporal_tls_ca_file=ca, temporal_tls_server_name="t.io"))
    assert access.tls is not None
    assert (access.tls.server_root_ca_cert, access.tls.domain) == (b"ca", "t.io")


async def test_tls_with_the_servers_ca_connects_and_an_unknown_ca_does_not(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    authority = Authority()
    target = temporal_env.client.service_client.config.target_host
    context = server_context(authority, tmp_path, clients=False)
    async with tls_front(target, context) as address:
        settings = load_settings(temporal_tls_ca_file=authority.write(tmp_path))
        client = await connect(address, "default", timeout=10, access=Access.of(settings))
        assert await client.service_client.check_health()
        (tmp_path / "other").mkdir()
        stranger = Authority().write(tmp_path / "other")  # a CA that did not sign the server
        refused = Access.of(load_settings(temporal_tls_ca_file=stranger))
        with pytest.raises(ConnectionError):
            await connect(address, "default", timeout=1, access=refused)


async def test_mutual_tls_needs_the_client_certificate(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    authority = Authority()
    target = temporal_env.client.service_client.config.target_host
    context = server_context(authority, tmp_path, clients=True)
    ca = authority.write(tmp_path)
    async with tls_front(target, context) as address:
        without = Access.of(load_settings(temporal_tls_ca_file=ca))
        with pytest.raises(ConnectionError):
            client = await connect(address, "default", timeout=1, access=without)
            await client.service_client.check_health()
        cert, key = authority.issue(tmp_path, "worker", server=False)
        settings = load_settings(
            temporal_tls_ca_file=ca, temporal_tls_cert_file=cert, temporal_tls_key_file=key
        )
        client = await connect(address, "default", timeout=10, access=Access.of(settings))
        assert await client.service_client.check_health()
        assert client.service_client.config.tls

"""Tokens as four identity providers mint them (issue 21, item 5), signed with PyJWT rather
than the library the service verifies with: Microsoft Entra ID (v2 access token, app
roles), Okta (custom authorization server, groups), Auth0 (a namespaced roles claim) and
Keycloak (realm and client roles, nested). Each shape signs in with the right roles; each
forgery is refused. Both databases."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from api.app import create_app
from records.db import Database
from records.settings import Settings
from tests.test_tokens import hs256_raw

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "key-2026-11"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "6e74172b-be56-4843-9ff4-e66a39bb12e3"


@dataclass(frozen=True)
class Provider:
    name: str
    issuer: str
    audience: str
    settings: dict[str, Any]  # roles claim and map, as an admin would configure them
    claims: dict[str, Any]  # what its access token carries besides iss, aud, iat, exp
    roles: list[str]  # what Countersign should make of them
    header: dict[str, Any] = field(default_factory=dict)


PROVIDERS = [
    Provider(
        "entra",
        issuer=f"https://login.microsoftonline.com/{TENANT}/v2.0",
        audience=CLIENT_ID,
        settings={"idp_role_map": {"Countersign.Comms": "comms", "Countersign.Legal": "legal"}},
        claims={
            "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",  # pairwise, base64url
            "oid": "00000000-0000-0000-66f3-3332eca7ea81",
            "tid": TENANT,
            "azp": "0c4d5f7e-1111-2222-3333-444455556666",
            "ver": "2.0",
            "scp": "Replies.Review",
            "roles": ["Countersign.Comms", "Countersign.Legal", "Directory.Read"],
            "preferred_username": "alex.wilber@contoso.com",
            "name": "Alex Wilber",
            "uti": "AbCdEf123456-xyz_uti",
        },
        roles=["comms", "legal"],
    ),
    Provider(
        "okta",
        issuer="https://dev-123456.okta.com/oauth2/default",
        audience="api://default",
        settings={
            "idp_roles_claim": "groups",
            "idp_role_map": {"Countersign Publishers": "publisher"},
        },
        claims={
            "sub": "00u1abcd2EFGH3ijk4x7",
            "uid": "00u1abcd2EFGH3ijk4x7",
            "cid": "0oa1b2c3d4e5f6g7h8i9",
            "scp": ["openid", "profile"],
            "groups": ["Everyone", "Countersign Publishers"],
            "jti": "AT.2h0mZ3-abcDEF_ghiJKL.oar1b2c3d4",
        },
        roles=["publisher"],
    ),
    Provider(
        "auth0",
        issuer="https://acme-care.eu.auth0.com/",
        audience="https://countersign.acme.example/api",
        settings={"idp_roles_claim": "https://countersign.acme.example/roles"},
        claims={
            "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
            "azp": "q1w2e3r4t5y6u7i8o9p0",
            "scope": "openid profile email",
            "https://countersign.acme.example/roles": ["agent", "supervisor"],
            "email": "jo@acme.example",
        },
        roles=["agent", "supervisor"],
    ),
    Provider(
        "keycloak",
        issuer="https://sso.acme.example/realms/care",
        audience="countersign",
        settings={"idp_roles_claim": "resource_access.countersign.roles"},
        claims={
            "sub": "f:8a9c2e1b-1c0d-4a4e-9d3f-3c2b1a0f9e8d:jdoe",
            "typ": "Bearer",
            "azp": "countersign-web",
            "sid": "3b7c1f2a-9d8e-4c6b-a5f4-e3d2c1b0a987",
            "realm_access": {"roles": ["offline_access", "uma_authorization"]},
            "resource_access": {
                "countersign": {"roles": ["auditor"]},
                "account": {"roles": ["manage-account"]},
            },
            "preferred_username": "jdoe",
            "jti": str(uuid.uuid4()),
        },
        roles=["auditor"],
        header={"typ": "JWT"},
    ),
]


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def mint(provider: Provider, key: rsa.RSAPrivateKey = KEY, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "aud": provider.audience,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        **provider.claims,
        **changes,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    header = {"kid": KID, **provider.header}
    return jwt.encode(claims, _pem(key), algorithm="RS256", headers=header)


@pytest.fixture(params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def provider(
    request: pytest.FixtureRequest, settings: Settings, database: Database, tmp_path: Path
) -> Iterator[tuple[Provider, TestClient]]:
    """The service configured for one provider: its signing key (a JWKS file, as fetched
    from the provider's `jwks_uri` by the operator), issuer, audience and roles claim."""
    chosen: Provider = request.param
    public = jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps({"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]}))
    configured = settings.model_copy(
        update={
            "idp_keys_file": keys,
            "idp_issuer": chosen.issuer,
            "idp_audience": chosen.audience,
            **chosen.settings,
        }
    )
    with TestClient(create_app(configured, database=database)) as client:
        yield chosen, client


def me(client: TestClient, token: str) -> Any:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_a_providers_token_signs_in_with_the_roles_it_grants(
    provider: tuple[Provider, TestClient],
) -> None:
    chosen, client = provider
    answer = me(client, mint(chosen))
    assert answer.status_code == 200, answer.text
    assert answer.json()["roles"] == chosen.roles
    assert answer.json()["issuer"] == chosen.issuer
    assert answer.json()["username"].startswith("idp.")
    again = me(client, mint(chosen))
    assert again.json()["id"] == answer.json()["id"]  # the same person, provisioned once


FORGERIES: dict[str, Callable[[Provider], str]] = {
    "another tenant's issuer": lambda p: mint(p, iss=p.issuer.replace("acme", "evil") + "x"),
    "another audience": lambda p: mint(p, aud="api://someone-else"),
    "expired": lambda p: mint(p, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
    "issued in the future": lambda p: mint(p, iat=int(time.time()) + 3600),
    "signed by another key": lambda p: mint(p, key=STRANGER),
    "unsigned (alg none)": lambda p: jwt.encode(
        {**jwt.decode(mint(p), options={"verify_signature": False})}, None, algorithm="none"
    ),
    "HS256 keyed with the public key": lambda p: hs256_raw(
        {"alg": "HS256", "typ": "JWT", "kid": KID},
        jwt.decode(mint(p), options={"verify_signature": False}),
        KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    ),
    "roles added after signing": lambda p: _tampered(mint(p)),
}


def _tampered(token: str) -> str:
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["roles"] = ["admin"]
    body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{body}.{signature}"


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_each_forgery_of_a_providers_token_is_refused(
    provider: tuple[Provider, TestClient], forgery: str
) -> None:
    chosen, client = provider
    assert me(client, FORGERIES[forgery](chosen)).status_code == 401


def test_a_token_without_the_roles_claim_signs_in_with_none_and_says_so_once(
    provider: tuple[Provider, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    chosen, client = provider
    name = chosen.settings.get("idp_roles_claim", "roles")
    claim = name if name in chosen.claims else name.split(".")[0]  # a path: drop its root
    with caplog.at_level(logging.WARNING, logger="countersign.tokens"):
        for _ in range(2):
            answer = me(client, mint(chosen, **{claim: None}))
            assert answer.status_code == 200 and answer.json()["roles"] == []
    warnings = [r for r in caplog.records if "carry no" in r.getMessage()]
    assert len(warnings) == 1

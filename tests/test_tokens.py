"""The forged-token suite: every one of these is answered 401, whatever it claims."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jose import jwk, jwt
from sqlalchemy import text

from api.app import create_app
from lifecycle.words import Role
from records.db import Database
from records.settings import Settings
from tests.conftest import PASSWORD

ISSUER, AUDIENCE = "countersign", "countersign-api"
IDP_ISSUER = "https://idp.example.test/"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_raw(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """Sign by hand, so that no library refuses to build the forgery."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem_private(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem_public(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def idp_client(
    settings: Settings,
    database: Database,
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    make_user: Callable[..., str],
) -> Iterator[TestClient]:
    """The app with an identity provider whose keys (one RSA, one EC) are a JWKS file."""
    rsa_jwk = jwk.construct(pem_public(rsa_key).decode(), "RS256").to_dict()
    ec_jwk = jwk.construct(pem_public(ec_key).decode(), "ES256").to_dict()
    keys = [{**rsa_jwk, "kid": "rsa-1"}, {**ec_jwk, "kid": "ec-1"}]
    keys_file = tmp_path / "jwks.json"
    keys_file.write_text(json.dumps({"keys": keys}))
    configured = settings.model_copy(update={"idp_keys_file": keys_file, "idp_issuer": IDP_ISSUER})
    make_user("alice", Role.agent)
    with TestClient(create_app(configured, database=database)) as client:
        yield client


def me(client: TestClient, token: str) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def own_token(settings: Settings, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), settings.jwt_secret, algorithm="HS256")


def test_a_genuine_token_is_accepted(idp_client: TestClient, settings: Settings) -> None:
    response = idp_client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {own_token(settings)}"}
    )
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert response.json()["roles"] == ["agent"]


def test_alg_none_is_refused(idp_client: TestClient) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{header}.{b64(json.dumps(claims()).encode())}."
    assert me(idp_client, unsigned) == 401


@pytest.mark.parametrize("encoding", ["pem", "der"])
def test_hs256_signed_with_the_rsa_public_key_is_refused(
    idp_client: TestClient, rsa_key: rsa.RSAPrivateKey, encoding: str
) -> None:
    public = rsa_key.public_key()
    key = (
        pem_public(rsa_key)
        if encoding == "pem"
        else public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for issuer, audience in ((IDP_ISSUER, "countersign-api"), (ISSUER, AUDIENCE)):
        forged = hs256_raw(
            {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
            claims(iss=issuer, aud=audience, roles=["admin"]),
            key,
        )
        assert me(idp_client, forged) == 401


def test_expired_beyond_leeway_is_refused_within_leeway_accepted(
    idp_client: TestClient, settings: Settings
) -> None:
    now = int(time.time())
    leeway = settings.jwt_leeway_seconds
    expired = own_token(settings, iat=now - 3600, exp=now - leeway - 5)
    assert me(idp_client, expired) == 401
    just_expired = own_token(settings, iat=now - 3600, exp=now - max(leeway - 5, 0))
    assert me(idp_client, just_expired) == 200


def test_a_token_accepted_before_is_refused_once_it_expires(
    idp_client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token is verified in full once and its answer kept (`api.tokens`): its expiry is
    still held against the clock on every use, with the same leeway."""
    now = int(time.time())
    leeway = settings.jwt_leeway_seconds
    token = own_token(settings, iat=now - 60, exp=now + 60)
    assert me(idp_client, token) == 200  # verified in full, and kept
    monkeypatch.setattr(time, "time", lambda: now + 60 + leeway - 1)
    assert me(idp_client, token) == 200  # within the leeway
    monkeypatch.setattr(time, "time", lambda: now + 60 + leeway + 1)
    assert me(idp_client, token) == 401


def test_a_kept_token_expires_at_the_second_python_jose_says(
    idp_client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """python-jose holds `exp` against whole seconds: a kept token is refused at the same
    second, not a fraction of one earlier."""
    now = int(time.time())
    leeway = settings.jwt_leeway_seconds
    token = own_token(settings, iat=now - 60, exp=now + 30)
    assert me(idp_client, token) == 200
    monkeypatch.setattr(time, "time", lambda: now + 30 + leeway + 0.9)
    assert me(idp_client, token) == 200
    monkeypatch.setattr(time, "time", lambda: now + 30 + leeway + 1.0)
    assert me(idp_client, token) == 401


@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param(lambda t: t + "!!", id="junk-after"),
        pytest.param(lambda t: t + "==", id="padding"),
        pytest.param(lambda t: t[:-5] + "~*" + t[-5:], id="junk-inside"),
        pytest.param(lambda t: t + "!" * 8000, id="long-junk"),
        pytest.param(lambda t: t.replace(".", " .", 1), id="space"),
    ],
)
def test_a_token_written_another_way_is_refused(
    idp_client: TestClient, settings: Settings, rewrite: Callable[[str], str]
) -> None:
    """Only the compact form (RFC 7515: base64url, no padding) is read. python-jose skips
    other characters, so one token could be written many ways, each kept apart by the
    verifier's memory (`api.tokens`): refused before any work."""
    token = own_token(settings)
    assert me(idp_client, token) == 200
    assert me(idp_client, rewrite(token)) == 401


def test_a_refused_token_is_not_remembered_as_refused_nor_a_forgery_as_its_original(
    idp_client: TestClient, settings: Settings
) -> None:
    """What is kept is keyed by the whole token: a token differing in one character of its
    signature is checked in full, and refused."""
    token = own_token(settings)
    assert me(idp_client, token) == 200
    head, body, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert me(idp_client, f"{head}.{body}.{flipped}") == 401
    assert me(idp_client, token) == 200


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"aud": None}, id="missing-aud"),
        pytest.param({"aud": "someone-else"}, id="wrong-aud"),
        pytest.param({"iss": "https://evil.example/"}, id="wrong-iss"),
        pytest.param({"iss": None}, id="missing-iss"),
        pytest.param({"exp": None}, id="missing-exp"),
        pytest.param({"iat": None}, id="missing-iat"),
        pytest.param({"sub": None}, id="missing-sub"),
        pytest.param({"sub": "nobody"}, id="unknown-user"),
        pytest.param({"jti": None}, id="missing-jti"),
        pytest.param({"iat": int(time.time()) + 3600}, id="issued-in-the-future"),
        pytest.param({"iat": "yesterday"}, id="iat-not-a-number"),
    ],
)
def test_claims_are_required_and_checked(
    idp_client: TestClient, settings: Settings, overrides: dict[str, Any]
) -> None:
    assert me(idp_client, own_token(settings, **overrides)) == 401


def test_tampered_payload_is_refused(idp_client: TestClient, settings: Settings) -> None:
    header, _payload, signature = own_token(settings).split(".")
    evil = b64(
        json.dumps(claims(sub="alice", roles=["admin"], exp=int(time.time()) + 10**6)).encode()
    )
    assert me(idp_client, f"{header}.{evil}.{signature}") == 401


@pytest.mark.parametrize(
    "extra_header",
    [
        pytest.param({"crit": ["exp-policy"], "exp-policy": 1}, id="crit"),
        pytest.param({"jku": "https://evil.example/jwks.json"}, id="jku"),
        pytest.param({"x5u": "https://evil.example/cert.pem"}, id="x5u"),
        pytest.param({"jwk": {"kty": "oct", "k": "c2VjcmV0"}}, id="jwk"),
    ],
)
def test_dangerous_headers_are_refused(
    idp_client: TestClient, settings: Settings, extra_header: dict[str, Any]
) -> None:
    token = hs256_raw(
        {"alg": "HS256", "typ": "JWT", **extra_header}, claims(), settings.jwt_secret.encode()
    )
    assert me(idp_client, token) == 401


def test_jwe_is_refused(idp_client: TestClient) -> None:
    assert me(idp_client, "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0..aaaa.bbbb.cccc") == 401


def test_a_disabled_user_is_refused(
    idp_client: TestClient, settings: Settings, database: Database
) -> None:
    from records import users

    token = own_token(settings)
    assert me(idp_client, token) == 200
    with database.write_session() as session:
        users.disable(session, "alice", actor="admin", actor_role="admin")
    assert me(idp_client, token) == 401


def test_missing_or_malformed_authorization_is_refused(idp_client: TestClient) -> None:
    assert idp_client.get("/api/v1/me").status_code == 401
    assert me(idp_client, "not-a-token") == 401
    assert me(idp_client, "a.b.c") == 401
    response = idp_client.get("/api/v1/me")
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("alg, kid", [("RS256", "rsa-1"), ("ES256", "ec-1")])
def test_identity_provider_tokens_are_accepted_with_roles_from_the_claim(
    idp_client: TestClient,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    alg: str,
    kid: str,
) -> None:
    key = rsa_key if alg == "RS256" else ec_key
    token = jwt.encode(
        claims(sub="carol@corp", iss=IDP_ISSUER, roles=["comms", "legal", "not-a-role"]),
        pem_private(key).decode(),
        algorithm=alg,
        headers={"kid": kid},
    )
    response = idp_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["username"].startswith("idp.carol@corp.")  # its own namespace
    assert response.json()["roles"] == ["comms", "legal"]
    assert response.json()["issuer"] == IDP_ISSUER


def test_identity_provider_token_signed_by_another_key_is_refused(idp_client: TestClient) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        claims(iss=IDP_ISSUER, roles=["admin"]),
        pem_private(stranger).decode(),
        algorithm="RS256",
        headers={"kid": "rsa-1"},
    )
    assert me(idp_client, token) == 401


def test_identity_provider_token_with_our_issuer_or_wrong_audience_is_refused(
    idp_client: TestClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    for overrides in ({"iss": ISSUER}, {"iss": IDP_ISSUER, "aud": "other"}):
        token = jwt.encode(
            claims(**overrides, roles=["admin"]),
            pem_private(rsa_key).decode(),
            algorithm="RS256",
            headers={"kid": "rsa-1"},
        )
        assert me(idp_client, token) == 401


def test_pem_keys_file_is_accepted(
    settings: Settings, database: Database, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    keys_file = tmp_path / "idp.pem"
    keys_file.write_bytes(pem_public(rsa_key))
    configured = settings.model_copy(update={"idp_keys_file": keys_file, "idp_issuer": IDP_ISSUER})
    with TestClient(create_app(configured, database=database)) as client:
        token = jwt.encode(
            claims(sub="dave", iss=IDP_ISSUER, roles="auditor"),
            pem_private(rsa_key).decode(),
            algorithm="RS256",
        )
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["roles"] == ["auditor"]


def idp_token(key: rsa.RSAPrivateKey, **overrides: Any) -> str:
    return jwt.encode(
        claims(iss=IDP_ISSUER, **overrides),
        pem_private(key).decode(),
        algorithm="RS256",
        headers={"kid": "rsa-1"},
    )


def local_admin(client: TestClient, make_user: Callable[..., str]) -> dict[str, str]:
    """A local admin `root`, signed in with a password: their bearer header."""
    make_user("root", Role.admin)
    answer = client.post("/api/v1/auth/token", data={"username": "root", "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_a_provider_subject_never_becomes_the_local_account_of_that_name(
    idp_client: TestClient, rsa_key: rsa.RSAPrivateKey, settings: Settings
) -> None:
    """The finding: a provider's subject `alice` was merged with local `alice`. Now the
    provider's person gets an account of their own, found by issuer and subject."""
    local = idp_client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {own_token(settings)}"}
    ).json()
    token = idp_token(rsa_key, sub="alice", roles=["admin"], preferred_username="alice")
    theirs = idp_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert theirs["username"].startswith("idp.alice.") and theirs["roles"] == ["admin"]
    assert theirs["id"] != local["id"] and local["roles"] == ["agent"]
    again = idp_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert again["id"] == theirs["id"]  # provisioned once


def test_a_provisioned_account_is_seen_changed_and_disabled_by_an_admin(
    idp_client: TestClient, rsa_key: rsa.RSAPrivateKey, make_user: Callable[..., str]
) -> None:
    admin = local_admin(idp_client, make_user)
    boss = {
        "Authorization": f"Bearer {idp_token(rsa_key, sub='00u1abcd2EFGH3ijk4x7', roles=['admin'])}"
    }
    username = idp_client.get("/api/v1/me", headers=boss).json()["username"]
    listed = {
        u["username"]: u for u in idp_client.get("/api/v1/users", headers=admin).json()["items"]
    }
    assert listed[username]["issuer"] == IDP_ISSUER and listed[username]["roles"] == ["admin"]
    roles = idp_client.patch(f"/api/v1/users/{username}", headers=admin, json={"roles": ["agent"]})
    assert roles.status_code == 409 and "identity provider" in roles.json()["detail"]
    off = idp_client.patch(f"/api/v1/users/{username}", headers=admin, json={"disabled": True})
    assert off.status_code == 200
    assert idp_client.get("/api/v1/me", headers=boss).status_code == 401


def test_roles_follow_the_provider_and_the_change_is_audited(
    idp_client: TestClient, rsa_key: rsa.RSAPrivateKey, database: Database
) -> None:
    def me_with(roles: list[str]) -> dict[str, Any]:
        token = idp_token(rsa_key, sub="carol", roles=roles)
        answer = idp_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        return dict(answer.json())

    assert me_with(["comms"])["roles"] == ["comms"]
    assert me_with(["legal"])["roles"] == ["legal"]
    with database.engine.connect() as connection:
        actions = [
            row.action
            for row in connection.execute(
                text("SELECT action FROM audit_events WHERE actor = 'countersign' ORDER BY seq")
            )
        ]
    assert actions == ["user.provisioned", "user.roles_changed"]


@pytest.mark.parametrize(
    "subject",
    [
        "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",  # Entra (pairwise, base64url)
        "00u1abcd2EFGH3ijk4x7",  # Okta
        "auth0|5f7c8ec7c33c6c004bbafe82",  # Auth0
        "google-oauth2|104859384756473829384",  # Auth0 social
        "Jane.Doe+care@Example.COM",  # e-mail-style providers
        "f:8a9c2e1b-1c0d-4a4e-9d3f-3c2b1a0f9e8d:jdoe",  # Keycloak federated
    ],
)
def test_ordinary_provider_subjects_sign_in(
    idp_client: TestClient, rsa_key: rsa.RSAPrivateKey, subject: str
) -> None:
    token = idp_token(rsa_key, sub=subject, roles=["agent"])
    answer = idp_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"].startswith("idp.")


def test_a_local_account_cannot_take_the_providers_namespace(
    idp_client: TestClient, make_user: Callable[..., str]
) -> None:
    admin = local_admin(idp_client, make_user)
    made = idp_client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": "idp.alice.12345678", "password": PASSWORD, "roles": ["admin"]},
    )
    assert made.status_code == 422 and "identity-provider" in made.json()["detail"]


def test_a_provider_token_is_signed_out_by_its_id_or_told_why_not(
    idp_client: TestClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    long_id = "u-" + "x" * 300  # a provider's ids may be longer than ours
    with_id = bearer_of(idp_token(rsa_key, sub="dora", roles=["agent"], jti=None, uti=long_id))
    assert idp_client.post("/api/v1/auth/logout", headers=with_id).status_code == 204
    assert idp_client.get("/api/v1/me", headers=with_id).status_code == 401
    without = bearer_of(idp_token(rsa_key, sub="dora", roles=["agent"], jti=None))
    refused = idp_client.post("/api/v1/auth/logout", headers=without)
    assert refused.status_code == 422 and "sign out at the provider" in refused.json()["detail"]


def bearer_of(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_provider_person_whose_name_is_taken_gets_another(
    idp_client: TestClient, rsa_key: rsa.RSAPrivateKey, database: Database
) -> None:
    """An account made before the `idp.` prefix was reserved holds the name the provider's
    person would get: they get a longer one, never the old account nor a 500."""
    from records import identities

    taken = identities.username_for(IDP_ISSUER, "erin", {})
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (username, display_name, disabled, created_at, updated_at)"
                " VALUES (:u, 'old', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"u": taken},
        )
    token = idp_token(rsa_key, sub="erin", roles=["agent"])
    answer = idp_client.get("/api/v1/me", headers=bearer_of(token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] != taken and answer.json()["username"].startswith(taken)

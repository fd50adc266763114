"""Every JWT this service issues or accepts passes through this module.

Two verifiers, never mixed: tokens we issue are HMAC-signed with our secret (algorithm pinned
by settings); tokens from an external identity provider are verified with its *public* keys
(RS*/ES* pinned by settings). The verifier is chosen by the token's `alg`, but each accepts
only its own pinned algorithms, so an HS256 token "signed" with the provider's public key is
checked against our secret and fails. `exp`, `iat`, `iss`, `aud` and `sub` are required and
checked, leeway is at most 30 s, and tokens with `crit`, `jku`, `x5u`, `x5c` or `jwk` headers
(or JWE, five segments) are refused before any signature work.

A token is verified in full once (`TokenService._verify`), and its expiry is held against
the clock on every use (`TokenService.verify`): what a token says cannot change, only the
time can. Nothing else is remembered: whether its holder is still enabled, signed in and in
which roles is read from the record on every request (`api.deps.principal_of`).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jose import jwk, jws, jwt
from jose.exceptions import JOSEError

from lifecycle.words import Role
from records.settings import Settings
from records.types import utcnow

FORBIDDEN_HEADERS = frozenset({"crit", "jku", "x5u", "x5c", "jwk"})
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
log = logging.getLogger("countersign.tokens")
MAX_LEEWAY_SECONDS = 30
# Tokens whose full verification is remembered (the most recently used): a few hundred
# bytes each. A signed-in person's requests carry one token for its lifetime.
VERIFIED_TOKENS_KEPT = 4096
# A JWS in compact form (RFC 7515, 7.1): three parts in base64url without padding. python-jose
# skips characters outside that alphabet, so one token could be written many ways, each
# remembered apart; only this form is read, so each token is remembered once.
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_TOKEN_CHARS = 16_384  # an identity provider's token with many groups is a few kB


class TokenError(Exception):
    """The token is not acceptable; the message says why (logged, never sent to clients)."""


@dataclass(frozen=True)
class VerifiedToken:
    subject: str
    issuer: str
    external: bool
    roles: frozenset[Role] | None  # from the provider's claim; None for our own tokens
    token_id: str | None = None  # `jti` (ours always have one; Entra's is `uti`)
    issued_at: float = 0.0
    expires_at: int = 0
    # A provider's name claims; read-only, since the same answer serves every request made
    # with the token (`TokenService.verify`).
    names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


def _options(leeway: int) -> dict[str, Any]:
    options: dict[str, Any] = {f"require_{claim}": True for claim in REQUIRED_CLAIMS}
    options.update(verify_signature=True, verify_aud=True, verify_iss=True, verify_exp=True)
    options["leeway"] = min(leeway, MAX_LEEWAY_SECONDS)
    return options


def load_public_keys(path: Path) -> list[dict[str, Any]]:
    """Public keys as JWK dicts, from a JWKS JSON file or one or more PEM blocks."""
    text = path.read_text()
    if text.lstrip().startswith("{"):
        keys = json.loads(text).get("keys", [])
        for key in keys:
            if any(part in key for part in ("d", "p", "q", "k")):
                raise ValueError(f"{path} holds private or symmetric key material")
        return list(keys)
    blocks = [b for b in text.split("-----END PUBLIC KEY-----") if "BEGIN PUBLIC KEY" in b]
    if not blocks:
        raise ValueError(f"{path} holds no PEM public key nor JWKS")
    result: list[dict[str, Any]] = []
    for block in blocks:
        pem = block[block.index("-----BEGIN PUBLIC KEY-----") :] + "-----END PUBLIC KEY-----\n"
        result.append({"pem": pem})
    return result


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self._algorithm = settings.jwt_algorithm
        # Built once: given a plain string, python-jose tries to parse it as a JWK set and
        # builds a fresh key on every call.
        self._secret = jwk.construct(settings.jwt_secret, self._algorithm)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._ttl = settings.jwt_ttl_seconds
        self._options = _options(settings.jwt_leeway_seconds)
        self._idp_keys: list[dict[str, Any]] = (
            load_public_keys(settings.idp_keys_file) if settings.idp_keys_file else []
        )
        self._idp_algorithms = tuple(settings.idp_algorithms)
        self._idp_issuer = settings.idp_issuer
        self._idp_audience = settings.idp_audience
        self._roles_claim = settings.idp_roles_claim
        self._role_map = dict(settings.idp_role_map)
        self._warned_missing = False
        self._verified_once = lru_cache(maxsize=VERIFIED_TOKENS_KEPT)(self._verify)

    def issue(self, subject: str) -> IssuedToken:
        # RFC 7519 allows fractional NumericDates: `iat` to the millisecond, so signing in
        # again right after "sign out everywhere" gives a token that is not refused.
        now = round(utcnow().timestamp(), 3)
        claims = {
            "sub": subject,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "exp": int(now) + self._ttl,
            "jti": secrets.token_urlsafe(16),  # what signing out revokes (records.sessions)
        }
        token = jwt.encode(claims, self._secret, algorithm=self._algorithm)
        return IssuedToken(access_token=token, expires_in=self._ttl)

    def verify(self, token: str) -> VerifiedToken:
        """The token's claims if it is one we accept now. Its signature, algorithm, header,
        issuer, audience and claims were checked when it was first seen, and the answer is
        kept (a refusal is not: it is checked again each time); its expiry is checked here,
        on every use, with the same leeway. Checking a token in full cost about a tenth of a
        page of the queue's time (issue 24)."""
        if len(token) > MAX_TOKEN_CHARS or not COMPACT_JWS.fullmatch(token):
            raise TokenError("not a JWS compact token (JWE and other forms are refused)")
        verified = self._verified_once(token)
        # As python-jose holds it: whole seconds, `exp` no earlier than now less the leeway.
        if verified.expires_at < int(time.time()) - self._options["leeway"]:
            raise TokenError("the token has expired")
        return verified

    def _verify(self, token: str) -> VerifiedToken:
        try:
            header = jws.get_unverified_header(token)
        except JOSEError as exc:
            raise TokenError(f"unreadable header: {exc}") from exc
        refused = FORBIDDEN_HEADERS.intersection(header)
        if refused:
            raise TokenError(f"refused header parameter(s): {sorted(refused)}")
        alg = header.get("alg")
        if alg == self._algorithm:
            claims = self._decode(token, self._secret, self._issuer, self._audience)
            if not isinstance(claims.get("jti"), str) or not claims["jti"]:
                raise TokenError("jti is required: every token this service issues has one")
            return _verified(claims, external=False, roles=None)
        if alg in self._idp_algorithms and self._idp_keys:
            key = self._idp_key(header, alg)
            claims = self._decode(token, key, self._idp_issuer, self._idp_audience, alg)
            return _verified(claims, external=True, roles=self._roles(claims))
        raise TokenError(f"algorithm {alg!r} is not accepted")

    def _decode(
        self, token: str, key: Any, issuer: str, audience: str, alg: str | None = None
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg or self._algorithm],
                audience=audience,
                issuer=issuer,
                options=self._options,
            )
        except JOSEError as exc:
            raise TokenError(str(exc)) from exc
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenError("sub must be a non-empty string")
        issued = claims.get("iat")
        if not isinstance(issued, int | float) or isinstance(issued, bool):
            raise TokenError("iat must be a number")
        if issued > time.time() + self._options["leeway"]:
            raise TokenError("the token says it was issued in the future")
        return claims

    def _idp_key(self, header: dict[str, Any], alg: str) -> Any:
        kid = header.get("kid")
        candidates = [k for k in self._idp_keys if kid is None or k.get("kid") == kid]
        if len(candidates) != 1:
            raise TokenError("no single identity-provider key matches the token's kid")
        key = candidates[0]
        try:
            return jwk.construct(key.get("pem", key), alg)
        except JOSEError as exc:
            raise TokenError(f"key does not fit {alg}: {exc}") from exc

    def _roles(self, claims: dict[str, Any]) -> frozenset[Role]:
        """The provider's roles or groups (`idp_roles_claim`), as Countersign roles through
        `idp_role_map`; names that are neither mapped nor roles are ignored. A valid token
        without the claim has no roles, and says so in the log (once)."""
        raw = _claim(claims, self._roles_claim)
        if raw is None:
            if not self._warned_missing:
                self._warned_missing = True
                log.warning(
                    "identity-provider tokens carry no %r claim: their holders get no roles "
                    "(set COUNTERSIGN_IDP_ROLES_CLAIM)",
                    self._roles_claim,
                )
            return frozenset()
        names: Sequence[Any] = raw.split() if isinstance(raw, str) else raw
        if not isinstance(names, list | tuple):
            raise TokenError(f"claim {self._roles_claim!r} must be a list or a string")
        found = (self._role_map.get(n, n) for n in names if isinstance(n, str))
        return frozenset(Role(n) for n in found if n in Role.__members__)


def _claim(claims: dict[str, Any], name: str) -> Any:
    """`name` as a claim, else as a dotted path into nested claims (`realm_access.roles`)."""
    if name in claims:
        return claims[name]
    found: Any = claims
    for part in name.split("."):
        if not isinstance(found, dict) or part not in found:
            return None
        found = found[part]
    return found


# The claims a provider names a person by, in the order they are preferred.
NAME_CLAIMS = ("preferred_username", "email", "upn", "name")


def _verified(
    claims: dict[str, Any], *, external: bool, roles: frozenset[Role] | None
) -> VerifiedToken:
    token_id = claims.get("jti") or claims.get("uti")
    return VerifiedToken(
        subject=claims["sub"],
        issuer=claims["iss"],
        external=external,
        roles=roles,
        token_id=token_id if isinstance(token_id, str) and token_id else None,
        issued_at=float(claims["iat"]),
        expires_at=int(claims["exp"]),
        names=MappingProxyType(
            {k: v for k in NAME_CLAIMS if isinstance(v := claims.get(k), str) and v}
        ),
    )

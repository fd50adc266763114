"""Configuration, read from `COUNTERSIGN_*` environment variables.

Settings are built by `load_settings()` when a process starts (or by a test), never at
import time, so the API, the worker, the CLI and the tests can each configure their own.
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "countersign-development-secret-change-me"  # noqa: S105 - refused in production
DEV_ACTION_KEY = "countersign-development-action-key-change-me"  # refused in production
DEV_CSRF_SECRET = "countersign-development-csrf-key-change-me"  # noqa: S105 - refused in production
# An Ed25519 seed everyone can read: refused in production (`countersign dev` makes its own).
DEV_AUDIT_KEY = "Y291bnRlcnNpZ24tZGV2LWF1ZGl0LWtleS0wMDAwMDA="
# The same for the key that seals stored secrets (records.vault): 32 bytes, base64.
DEV_SECRETS_KEY = "Y291bnRlcnNpZ24tZGV2LXNlY3JldHMta2V5LTAwMDA="


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COUNTERSIGN_", extra="ignore")

    environment: Environment = Environment.development
    data_dir: Path = Path("./var")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means a SQLite file under DATA_DIR"
    )

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "countersign"
    workflow_id_prefix: str = Field(
        default="", max_length=40, description="e.g. 'staging-' when deployments share a namespace"
    )
    workflow_sandbox: bool = Field(
        default=False,
        description="run workflow code in temporalio's sandbox (tests always do; slower)",
    )
    temporal_retry_seconds: float = Field(
        default=30.0, ge=0, description="how long an API call waits for Temporal to come back"
    )
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    # A secured cluster or Temporal Cloud: TLS (with the server's CA, else the system's
    # roots), mutual TLS (a client certificate and key), and/or an API key.
    temporal_tls: bool = Field(default=False, description="TLS to the Temporal frontend")
    temporal_tls_ca_file: Path | None = Field(default=None, description="the server's CA (PEM)")
    temporal_tls_cert_file: Path | None = Field(
        default=None, description="client certificate (PEM), for mutual TLS"
    )
    temporal_tls_key_file: Path | None = Field(
        default=None, description="the client certificate's private key (PEM)"
    )
    temporal_tls_server_name: str = Field(
        default="", description="the name the server's certificate is checked against"
    )
    temporal_api_key: str = Field(default="", description="e.g. a Temporal Cloud API key")

    # Every action the API sends to a draft's workflow is sealed with this key
    # (HMAC-SHA256, `lifecycle.seals`); the worker refuses any other. Previous keys still
    # verify while a rotation rolls out.
    action_key: str = DEV_ACTION_KEY
    action_previous_keys: list[str] = []

    # Stored secrets (channel credentials) are sealed with AES-256-GCM under this key
    # (records.vault; 32 bytes, base64: `countersign keys new`). Previous keys still open
    # what they sealed until `countersign keys rotate` re-seals it under this one.
    secrets_key: str = DEV_SECRETS_KEY
    secrets_previous_keys: list[str] = []

    # The audit log's signed checkpoints (records.checkpoints): the log's name (also each
    # checkpoint's origin line), its Ed25519 signing key (a 32-byte seed, base64), a folder
    # outside the database where every checkpoint is also written, and how often one is
    # signed while events arrive.
    audit_log_name: str = Field(default="countersign.local/audit", pattern=r"^[^\s+]+$")
    audit_signing_key: str = DEV_AUDIT_KEY
    audit_checkpoint_dir: Path | None = Field(
        default=None, description="a folder (outside the database) that keeps every checkpoint"
    )
    audit_checkpoint_minutes: float = Field(default=5.0, gt=0)

    # How long each class of record keeps its content, in days (records.retention), and how
    # often the purge runs; a legal hold keeps what it covers regardless.
    retention_days: dict[str, int] = Field(
        default={"audit": 6 * 365, "published": 6 * 365, "unpublished": 3 * 365, "posts": 3 * 365},
        description='e.g. {"unpublished": 365}: audit, published, unpublished, posts',
    )
    retention_purge_hours: float = Field(default=24.0, gt=0)

    # How often the queues' router runs a round when nothing nudges it (records.routing).
    router_seconds: float = Field(default=5.0, gt=0, le=3600)
    # How the API and the worker log (`countersign.logs`): text, or a JSON object a line.
    log_format: Literal["text", "json"] = "text"
    # The worker's liveness, readiness and metrics endpoint (`workflows.health`); 0: off.
    worker_health_host: str = "127.0.0.1"
    worker_health_port: int = Field(default=0, ge=0, le=65535)
    # Traces (`countersign.tracing`): an OpenTelemetry collector's OTLP/HTTP base URL
    # (e.g. http://otel-collector:4318); empty: no traces, and nothing instrumented.
    otlp_endpoint: str = Field(default="", pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$")
    trace_sample_ratio: float = Field(
        default=1.0, ge=0, le=1, description="the share of requests traced (a trace's parts follow)"
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    max_body_bytes: int = 1024 * 1024

    # Tokens this service issues itself (HS256 with a shared secret).
    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "countersign"
    jwt_audience: str = "countersign-api"
    jwt_ttl_seconds: int = 3600
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=30)
    # The pages' CSRF tokens and signed notices: a key of their own, not the tokens'.
    csrf_secret: str = DEV_CSRF_SECRET
    # The API docs, the OpenAPI schema and /metrics only for signed-in callers; unset: on
    # in production, off elsewhere.
    private_endpoints: bool | None = None

    # Policies: the shipped rule set (in force until an admin uploads one) and the templates.
    rules_file: Path | None = Field(
        default=None, description="the shipped rule set; policies/rules/default.yaml if unset"
    )
    reply_templates_dir: Path | None = Field(
        default=None, description="pre-approved reply templates; templates/replies if unset"
    )

    # Review SLAs (minutes per stage, scaled by the post's priority), reminders at a fraction
    # of a stage's time, escalation at its end, optional backup roles that may then decide
    # the stage, and each priority's deadline for a reply (see `policies.sla`). JSON objects
    # in the environment, e.g. COUNTERSIGN_SLA_MINUTES='{"comms": 2, "legal": 5}'.
    sla_minutes: dict[str, float] = {"comms": 30, "legal": 240}
    sla_priority_factors: dict[str, float] = {"urgent": 0.5}
    sla_reminder_fraction: float = Field(default=0.5, ge=0, lt=1, description="0 sends no reminder")
    sla_backup_roles: dict[str, str] = Field(
        default={}, description='e.g. {"legal": "supervisor"}: who may decide a breached stage'
    )
    post_deadline_minutes: dict[str, float] = {
        "urgent": 4 * 60,
        "high": 12 * 60,
        "normal": 24 * 60,
        "low": 72 * 60,
    }

    # Notifications outside the app: a signed webhook and e-mail over SMTP.
    notify_webhook_url: str = Field(default="", description="where webhook notifications go")
    notify_webhook_secret: str = Field(
        default="", description="HMAC-SHA256 key for the X-Countersign-Signature header"
    )
    # An optional CRM look-up (connectors.crm): a signed POST of a customer's identities,
    # answered with the CRM's id, tier and value for them; cached for `crm_cache_hours`,
    # shown beside the customer, never awaited by a page or an ingest.
    crm_url: str = Field(default="", description="empty: no CRM look-up")
    crm_secret: str = Field(default="", description="HMAC-SHA256 key for X-Countersign-Signature")
    crm_cache_hours: float = Field(default=24.0, gt=0)
    crm_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # The proxies or load balancers whose X-Forwarded-For the API believes (comma-separated
    # addresses or networks): the sign-in throttle counts per client address, which behind
    # a load balancer only the balancer can tell. Never `*` in production (any client could
    # then name a fresh address per request).
    forwarded_allow_ips: str = "127.0.0.1"

    # Outbound calls go to public addresses only (connectors.egress); these are the
    # exceptions for on-premise targets: host names (`crm.corp.example`, `*.corp.example`)
    # or networks (`10.20.0.0/16`), as a JSON list.
    outbound_allow: list[str] = []

    smtp_host: str = Field(default="", description="empty: no e-mail")
    smtp_port: int = 25
    smtp_from: str = "countersign@localhost"

    # Tokens from an external identity provider (RS256/ES256, public keys only).
    idp_keys_file: Path | None = Field(
        default=None, description="PEM public key(s) or a JWKS JSON file of the identity provider"
    )
    idp_algorithms: list[str] = ["RS256", "ES256"]
    idp_issuer: str = ""
    idp_audience: str = "countersign-api"
    # The claim holding the provider's roles or groups: a name (`roles`, `groups`, an
    # Auth0 namespaced URL) or a dotted path into nested claims (Keycloak's
    # `realm_access.roles`, `resource_access.countersign.roles`).
    idp_roles_claim: str = "roles"
    # Provider role or group names to Countersign roles, e.g. {"Countersign.Comms": "comms"}
    # (JSON); names that are already Countersign roles need no entry.
    idp_role_map: dict[str, str] = {}

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.jwt_algorithm not in {"HS256", "HS384", "HS512"}:
            raise ValueError("COUNTERSIGN_JWT_ALGORITHM must be one of HS256, HS384, HS512")
        if self.crm_url and len(self.crm_secret) < 16:
            raise ValueError(
                "COUNTERSIGN_CRM_SECRET (16 characters or more) signs the CRM look-ups:"
                " set it with COUNTERSIGN_CRM_URL"
            )
        from connectors.egress import parse_allow  # here: settings import nothing at load
        from records.vault import decode_key

        for name, key in (
            ("COUNTERSIGN_SECRETS_KEY", self.secrets_key),
            *(("COUNTERSIGN_SECRETS_PREVIOUS_KEYS", k) for k in self.secrets_previous_keys),
        ):
            try:
                decode_key(key)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc} (`countersign keys new` makes one)") from None

        try:
            self.outbound_allow = list(parse_allow(self.outbound_allow))
        except ValueError as exc:
            raise ValueError(f"COUNTERSIGN_OUTBOUND_ALLOW: {exc}") from None
        from lifecycle.words import Role

        not_roles = sorted(v for v in self.idp_role_map.values() if v not in Role.__members__)
        if not_roles:
            raise ValueError(f"COUNTERSIGN_IDP_ROLE_MAP names no such roles: {not_roles}")
        bad = set(self.idp_algorithms) - {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}
        if bad:
            raise ValueError(f"COUNTERSIGN_IDP_ALGORITHMS may list RS*/ES* only, not {sorted(bad)}")
        if (self.temporal_tls_cert_file is None) != (self.temporal_tls_key_file is None):
            raise ValueError(
                "COUNTERSIGN_TEMPORAL_TLS_CERT_FILE and COUNTERSIGN_TEMPORAL_TLS_KEY_FILE "
                "go together (mutual TLS)"
            )
        if self.idp_keys_file is not None and not self.idp_issuer:
            raise ValueError("COUNTERSIGN_IDP_ISSUER is required with COUNTERSIGN_IDP_KEYS_FILE")
        try:
            seed = base64.b64decode(self.audit_signing_key, validate=True)
        except binascii.Error:
            seed = b""
        if len(seed) != 32:
            raise ValueError(
                "COUNTERSIGN_AUDIT_SIGNING_KEY is a 32-byte Ed25519 seed in base64 "
                "(`countersign audit new-key` makes one)"
            )
        unknown = set(self.retention_days) - {"audit", "published", "unpublished", "posts"}
        if unknown or any(days < 1 for days in self.retention_days.values()):
            raise ValueError(
                "COUNTERSIGN_RETENTION_DAYS takes audit, published, unpublished and posts, each "
                f"at least 1 day (got {self.retention_days})"
            )
        for name in ("sla_minutes", "sla_priority_factors", "post_deadline_minutes"):
            negative = sorted(k for k, v in getattr(self, name).items() if v < 0)
            if negative:
                raise ValueError(f"COUNTERSIGN_{name.upper()} may not be negative: {negative}")
        if self.environment is Environment.production:
            if self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret) < 32:
                raise ValueError(
                    "COUNTERSIGN_JWT_SECRET must be set to a secret of 32+ characters in production"
                )
            if not self.database_url:
                raise ValueError("COUNTERSIGN_DATABASE_URL must be set in production")
            if self.action_key == DEV_ACTION_KEY or len(self.action_key) < 32:
                raise ValueError(
                    "COUNTERSIGN_ACTION_KEY must be set to a secret of 32+ characters in "
                    "production (the same for the API and the worker)"
                )
            if self.csrf_secret == DEV_CSRF_SECRET or len(self.csrf_secret) < 32:
                raise ValueError(
                    "COUNTERSIGN_CSRF_SECRET must be set to a secret of 32+ characters in "
                    "production"
                )
            if self.forwarded_allow_ips.strip() == "*":
                raise ValueError(
                    "COUNTERSIGN_FORWARDED_ALLOW_IPS may not be * in production: name the "
                    "load balancers' addresses"
                )
            if self.secrets_key == DEV_SECRETS_KEY:
                raise ValueError(
                    "COUNTERSIGN_SECRETS_KEY must be set in production (32 bytes, base64; "
                    "`countersign keys new` makes one)"
                )
            if self.audit_signing_key == DEV_AUDIT_KEY:
                raise ValueError(
                    "COUNTERSIGN_AUDIT_SIGNING_KEY must be set in production (a 32-byte "
                    "Ed25519 seed, base64; `countersign audit new-key` makes one)"
                )
        return self

    @property
    def https_only(self) -> bool:
        """Outbound URLs must be https (production)."""
        return self.environment is Environment.production

    @property
    def endpoints_private(self) -> bool:
        if self.private_endpoints is not None:
            return self.private_endpoints
        return self.environment is Environment.production

    def development_secrets(self) -> list[str]:
        """The settings still at their published development values: `countersign api`
        and `worker` refuse to start with any (`countersign dev` makes its own)."""
        shipped = {
            "COUNTERSIGN_JWT_SECRET": (self.jwt_secret, DEV_JWT_SECRET),
            "COUNTERSIGN_CSRF_SECRET": (self.csrf_secret, DEV_CSRF_SECRET),
            "COUNTERSIGN_ACTION_KEY": (self.action_key, DEV_ACTION_KEY),
            "COUNTERSIGN_AUDIT_SIGNING_KEY": (self.audit_signing_key, DEV_AUDIT_KEY),
            "COUNTERSIGN_SECRETS_KEY": (self.secrets_key, DEV_SECRETS_KEY),
        }
        return [name for name, (value, dev) in shipped.items() if value == dev]

    @property
    def action_keys(self) -> list[str]:
        """The keys a seal may verify under; the first one seals."""
        return [self.action_key, *self.action_previous_keys]

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, with the embedded SQLite default and the psycopg 3 driver."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'countersign.db').resolve()}"
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and any explicit overrides, used by tests and the CLI)."""
    return Settings(**overrides)  # type: ignore[arg-type]

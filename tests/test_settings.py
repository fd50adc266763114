"""Settings: defaults, the embedded database, production refusing default secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from records.settings import DEV_JWT_SECRET, Environment, Settings, load_settings


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'var' / 'countersign.db'}"
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8000)
    assert (settings.temporal_port, settings.temporal_ui_port) == (7233, 8233)
    assert settings.temporal_address == "127.0.0.1:7233"
    assert settings.task_queue == "countersign"
    assert settings.max_body_bytes == 1024 * 1024


def test_environment_variables_use_the_countersign_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", "postgresql://u@db:5432/cs")
    monkeypatch.setenv("COUNTERSIGN_API_PORT", "9001")
    monkeypatch.setenv("COUNTERSIGN_IDP_ALGORITHMS", '["ES256"]')
    settings = load_settings()
    assert settings.resolved_database_url == "postgresql+psycopg://u@db:5432/cs"
    assert settings.api_port == 9001
    assert settings.idp_algorithms == ["ES256"]


SECRETS_KEY = "c2VjcmV0cy1rZXktZm9yLXRoZS10ZXN0cy0wMDAwMDA="  # 32 bytes, base64


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"database_url": "postgresql://db/cs"}, "JWT_SECRET"),
        ({"database_url": "postgresql://db/cs", "jwt_secret": "short"}, "JWT_SECRET"),
        ({"jwt_secret": "x" * 40}, "DATABASE_URL"),
        ({"database_url": "postgresql://db/cs", "jwt_secret": "x" * 40}, "ACTION_KEY"),
        (
            {
                "database_url": "postgresql://db/cs",
                "jwt_secret": "x" * 40,
                "audit_signing_key": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
                "action_key": "k",
            },
            "ACTION_KEY",
        ),
        (
            {"database_url": "postgresql://db/cs", "jwt_secret": "x" * 40, "action_key": "a" * 40},
            "CSRF_SECRET",
        ),
        (
            {
                "database_url": "postgresql://db/cs",
                "jwt_secret": "x" * 40,
                "action_key": "a" * 40,
                "csrf_secret": "c" * 40,
            },
            "SECRETS_KEY",
        ),
        (
            {
                "database_url": "postgresql://db/cs",
                "jwt_secret": "x" * 40,
                "action_key": "a" * 40,
                "csrf_secret": "c" * 40,
                "secrets_key": SECRETS_KEY,
            },
            "AUDIT_SIGNING_KEY",
        ),
    ],
)
def test_production_refuses_default_secrets(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_settings(environment=Environment.production, **overrides)
    load_settings(
        environment=Environment.production,
        database_url="postgresql://db/cs",
        jwt_secret="s" * 40,
        action_key="a" * 40,
        audit_signing_key="a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
        csrf_secret="c" * 40,
        secrets_key=SECRETS_KEY,
    )


# Settings production accepts (each test changes one thing).
PRODUCTION = {
    "environment": Environment.production,
    "database_url": "postgresql://db/cs",
    "jwt_secret": "s" * 40,
    "action_key": "a" * 40,
    "csrf_secret": "c" * 40,
    "audit_signing_key": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
    "secrets_key": SECRETS_KEY,
}


def test_production_believes_no_client_about_its_own_address() -> None:
    """`*` would let any client name a fresh address per request to the sign-in throttle."""
    with pytest.raises(ValidationError, match="FORWARDED_ALLOW_IPS"):
        load_settings(**PRODUCTION, forwarded_allow_ips="*")
    assert load_settings(**PRODUCTION, forwarded_allow_ips="10.0.0.5").forwarded_allow_ips


def test_a_secrets_key_that_is_not_32_bytes_of_base64_is_refused_at_start() -> None:
    for bad in ("not base64!", "QUFB"):
        with pytest.raises(ValidationError, match="SECRETS_KEY"):
            load_settings(secrets_key=bad)
    with pytest.raises(ValidationError, match="SECRETS_PREVIOUS_KEYS"):
        load_settings(secrets_previous_keys=["QUFB"])


def test_algorithms_are_pinned_to_their_families() -> None:
    with pytest.raises(ValidationError, match="JWT_ALGORITHM"):
        load_settings(jwt_algorithm="RS256")
    with pytest.raises(ValidationError, match="IDP_ALGORITHMS"):
        load_settings(idp_algorithms=["HS256"])
    with pytest.raises(ValidationError, match="jwt_leeway_seconds"):
        load_settings(jwt_leeway_seconds=120)
    assert load_settings().jwt_secret == DEV_JWT_SECRET


def test_an_audit_signing_key_that_is_not_an_ed25519_seed_is_refused_at_start() -> None:
    for bad in ("not base64!", "QUFB", "QUFB" * 11):
        with pytest.raises(ValidationError, match="32-byte Ed25519 seed"):
            load_settings(audit_signing_key=bad)


def test_private_endpoints_are_on_by_default_in_production_only() -> None:
    assert load_settings(**PRODUCTION).endpoints_private is True
    assert load_settings(**PRODUCTION, private_endpoints=False).endpoints_private is False
    assert load_settings().endpoints_private is False


def test_traces_are_off_unless_a_collector_is_named() -> None:
    """No endpoint: nothing instrumented, nothing exported (`countersign.tracing`). An
    endpoint that is not an http(s) URL is refused when the process starts."""
    from countersign import tracing

    assert tracing.start(Settings(), "api") is None
    for wrong in ("otel-collector:4318", "ftp://collector", "http://a b"):
        with pytest.raises(ValidationError, match="otlp_endpoint"):
            Settings(otlp_endpoint=wrong)
    with pytest.raises(ValidationError, match="trace_sample_ratio"):
        Settings(trace_sample_ratio=1.5)

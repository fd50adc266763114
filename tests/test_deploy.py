"""`deploy/` (issue 25, item 5): the Kubernetes manifests are valid against the Kubernetes
API's own schemas (kubernetes-validate, offline, strict: an unknown field is an error), and
every setting the manifests and the Compose file give a Countersign process is one it
reads, with a value it accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from records.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
KUBERNETES = "1.30"  # the oldest release still supported upstream when this was written
PREFIX = "COUNTERSIGN_"
KNOWN = {PREFIX + name.upper() for name in Settings.model_fields}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def countersign_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a workload that run the Countersign image."""
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    return [
        c for c in pod.get("containers", []) if str(c.get("image", "")).startswith("countersign")
    ]


def test_there_are_manifests_for_every_process_and_what_they_need() -> None:
    kinds = {
        (doc["kind"], doc["metadata"]["name"]) for path in MANIFESTS for doc in documents(path)
    }
    assert {
        ("Deployment", "countersign-api"), ("Service", "countersign-api"),
        ("Deployment", "countersign-worker"), ("Job", "countersign-migrate"),
        ("ConfigMap", "countersign-settings"), ("StatefulSet", "postgres"),
        ("Deployment", "temporal"),
    } <= kinds  # fmt: skip


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_manifest_is_valid_kubernetes(path: Path) -> None:
    for doc in documents(path):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_validator_refuses_what_kubernetes_would() -> None:
    """The check can fail: a misspelt field and a wrong type are both refused."""
    [deployment] = [
        d for d in documents(DEPLOY / "kubernetes" / "api.yaml") if d["kind"] == "Deployment"
    ]
    misspelt = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES, strict=True)
    wrong = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES, strict=True)


def test_every_workload_has_probes_and_resource_requests() -> None:
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] not in ("Deployment", "StatefulSet"):
                continue
            for container in doc["spec"]["template"]["spec"]["containers"]:
                name = f"{path.name}: {container['name']}"
                assert "readinessProbe" in container and "livenessProbe" in container, name
                assert container["resources"]["requests"], name


def settings_given_in_kubernetes() -> dict[str, str | None]:
    """Every COUNTERSIGN_* variable a manifest sets: the ConfigMap's data, and each
    container's env (a secret's value stands as None)."""
    given: dict[str, str | None] = {}
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "countersign-settings":
                given |= doc["data"]
            for container in countersign_containers(doc):
                for variable in container.get("env", []):
                    given[variable["name"]] = variable.get("value")
                for source in container.get("envFrom", []):
                    assert source["configMapRef"]["name"] == "countersign-settings"
    return given


def settings_given_in_compose() -> list[dict[str, str]]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return [
        {name: str(value) for name, value in service["environment"].items()}
        for service in compose["services"].values()
        if str(service.get("image", "")).startswith("countersign")
    ]


def test_every_setting_the_deployments_give_is_one_countersign_reads() -> None:
    kubernetes = settings_given_in_kubernetes()
    compose = settings_given_in_compose()
    assert len(compose) == 3  # the migrations, the API and the worker
    for where, names in [("kubernetes", set(kubernetes))] + [("compose", set(c)) for c in compose]:
        ours = {name for name in names if name.startswith(PREFIX)}
        assert ours == names, f"{where}: {sorted(names - ours)} is not a Countersign setting"
        assert ours <= KNOWN, f"{where}: {sorted(ours - KNOWN)} are not settings"
    secrets = {"COUNTERSIGN_DATABASE_URL", "COUNTERSIGN_JWT_SECRET", "COUNTERSIGN_CSRF_SECRET",
               "COUNTERSIGN_ACTION_KEY", "COUNTERSIGN_AUDIT_SIGNING_KEY",
               "COUNTERSIGN_SECRETS_KEY"}  # fmt: skip
    assert {name for name, value in kubernetes.items() if value is None} == secrets


def test_the_values_they_give_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifests' settings, with the platform's secrets, make settings the service
    starts with: production, none of the development secrets."""
    for name, value in settings_given_in_kubernetes().items():
        monkeypatch.setenv(name, value if value is not None else "x" * 48)
    monkeypatch.setenv(
        "COUNTERSIGN_AUDIT_SIGNING_KEY", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    )
    monkeypatch.setenv("COUNTERSIGN_SECRETS_KEY", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=")
    settings = Settings()
    assert settings.environment == "production"
    assert settings.development_secrets() == []
    assert settings.worker_health_port == 9100
    assert settings.worker_health_host == "0.0.0.0"  # noqa: S104 - in its own pod, behind its probes

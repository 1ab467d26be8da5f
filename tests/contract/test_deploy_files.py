"""Deployment files against their formats' published schemas, and against the code.

The Compose file and the kustomization are checked with the format owners' own
JSON Schemas (kept beside the repository, in ``../shared/schemas``). The rest
checks them against the code: a container runs a service module that exists,
and every variable they set is a real setting — the settings ignore unknown
variables, so a misspelt name would otherwise leave the default in force
without a word.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from services.source_control.settings import SourceControlSettings
from shared_kernel.durations import parse_duration
from shared_kernel.settings import FLEET_WIDE, ServiceSettings
from tests.support.schemas import published_schema

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SOURCE_CONTROL_KUSTOMIZATION = ROOT / "deploy" / "kubernetes" / "source-control" / "kustomization.yaml"
SETTINGS_DOC = ROOT / "docs" / "settings.md"

FLEET_PREFIX = "DEVOPS_"
# The settings class each service module reads; a new service adds its own here.
SETTINGS: dict[str, type[ServiceSettings]] = {"services.source_control": SourceControlSettings}
# Real settings that no deployment may set: one renames every queue, role and
# database of the service, the other SIGKILLs it (crash tests only).
NEVER_DEPLOYED = frozenset({"service_name", "crash_at"})


# -- loading ---------------------------------------------------------------------


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    errors = Draft7Validator(schema).iter_errors(instance)
    return sorted(
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}" for error in errors
    )


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = _load(COMPOSE)
    return compose


def _kustomization() -> dict[str, Any]:
    kustomization: dict[str, Any] = _load(SOURCE_CONTROL_KUSTOMIZATION)
    return kustomization


def _resources() -> list[dict[str, Any]]:
    """Every object the Source Control kustomization lists."""
    folder = SOURCE_CONTROL_KUSTOMIZATION.parent
    return [doc for name in _kustomization()["resources"] for doc in _documents(folder / name)]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [resource for resource in _resources() if resource["kind"] == kind]


def _containers(deployment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pod = deployment["spec"]["template"]["spec"]
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _fleet_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Compose services run from the fleet image: their command starts with a service module."""
    return {
        name: service
        for name, service in compose["services"].items()
        if _command(service)[:1] and _command(service)[0].startswith("services.")
    }


def _environment_names(service: dict[str, Any]) -> list[str]:
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return list(environment)
    return [entry.split("=", 1)[0] for entry in environment]


# -- settings --------------------------------------------------------------------


def _module_path(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")) / "__main__.py"


def _setting(variable: str, settings_type: type[ServiceSettings]) -> str | None:
    """The setting a variable sets (service prefix or fleet-wide prefix), or None."""
    upper = variable.upper()
    service_prefix = str(settings_type.model_config["env_prefix"]).upper()
    if upper.startswith(service_prefix):
        field = upper.removeprefix(service_prefix).lower()
        return field if field in settings_type.model_fields else None
    if upper.startswith(FLEET_PREFIX):  # only fleet-wide settings have a DEVOPS_ name
        field = upper.removeprefix(FLEET_PREFIX).lower()
        return field if field in FLEET_WIDE else None
    return None


def _misnamed(variables: list[str], settings_type: type[ServiceSettings]) -> list[str]:
    problems = []
    for variable in variables:
        setting = _setting(variable, settings_type)
        if setting is None:
            problems.append(f"{variable}: not a setting of {settings_type.__name__}")
        elif setting in NEVER_DEPLOYED:
            problems.append(f"{variable}: {setting} must not be set by a deployment")
    return problems


def _argv(container: dict[str, Any]) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def _shutdown_timeout(environment: dict[str, str]) -> float:
    """Source Control's SHUTDOWN_TIMEOUT in seconds under ``environment`` (service prefix first)."""
    default = SourceControlSettings.model_fields["shutdown_timeout"].default
    value = environment.get("SOURCE_CONTROL_SHUTDOWN_TIMEOUT", environment.get("DEVOPS_SHUTDOWN_TIMEOUT"))
    return parse_duration(value or default)


def _deployment_module(deployment: dict[str, Any]) -> str:
    """The service module the Deployment's main container runs (``python -m <module>``)."""
    return _argv(deployment["spec"]["template"]["spec"]["containers"][0])[2]


# -- the Compose file ------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    schema = published_schema("compose-spec.schema.json")
    assert _schema_errors(_compose(), schema) == []


def test_compose_runs_source_control_after_its_migrations() -> None:
    services = _compose()["services"]
    assert services["source-control-migrate"]["command"] == ["services.source_control", "migrate"]
    assert services["source-control"]["command"] == ["services.source_control"]
    depends_on = services["source-control"]["depends_on"]
    assert depends_on["source-control-migrate"] == {"condition": "service_completed_successfully"}
    assert depends_on["rabbitmq"]["condition"] == "service_healthy"
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert services["source-control-migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["rabbitmq"]
    assert "healthcheck" in services["postgres"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"]


def test_every_compose_fleet_service_runs_an_existing_module() -> None:
    fleet = _fleet_services(_compose())
    assert fleet, "no service runs the fleet image"
    for name, service in fleet.items():
        module, *arguments = _command(service)
        assert _module_path(module).is_file(), f"{name}: no module {module}"
        assert arguments in ([], ["migrate"]), f"{name}: unexpected arguments {arguments}"
        assert module in SETTINGS, f"{name}: add the settings class of {module} to SETTINGS"


def test_compose_sets_only_real_settings() -> None:
    problems = []
    for name, service in _fleet_services(_compose()).items():
        settings_type = SETTINGS[_command(service)[0]]
        problems += [
            f"{name}: {problem}" for problem in _misnamed(_environment_names(service), settings_type)
        ]
    assert problems == []


def test_compose_keeps_the_git_root_on_a_named_volume() -> None:
    compose = _compose()
    consumer = compose["services"]["source-control"]
    git_root = consumer["environment"]["SOURCE_CONTROL_GIT_ROOT"]
    mounts = dict(reversed(volume.split(":")[:2]) for volume in consumer["volumes"])
    assert git_root in mounts, f"{git_root} is not a mount of source-control"
    assert mounts[git_root] in compose["volumes"], f"{mounts[git_root]} is not a named volume"


def test_compose_grace_period_outlasts_the_shutdown_timeout() -> None:
    consumer = _compose()["services"]["source-control"]
    assert parse_duration(consumer["stop_grace_period"]) > _shutdown_timeout(consumer["environment"])


# -- Kubernetes ------------------------------------------------------------------


def test_kustomization_follows_its_schema() -> None:
    schema = published_schema("kustomization.schema.json")
    assert _schema_errors(_kustomization(), schema) == []


def test_every_kustomization_resource_exists_and_parses() -> None:
    folder = SOURCE_CONTROL_KUSTOMIZATION.parent
    kinds = set()
    for name in _kustomization()["resources"]:
        path = folder / name
        assert path.is_file(), f"{name} is listed but missing"
        documents = _documents(path)
        assert documents, f"{name} holds no object"
        for document in documents:
            assert {"apiVersion", "kind", "metadata"} <= set(document), f"{name}: not a Kubernetes object"
            assert document["metadata"].get("name"), f"{name}: {document['kind']} without a name"
            kinds.add(document["kind"])
    assert {"Deployment", "ConfigMap", "Secret", "PersistentVolumeClaim"} <= kinds
    for config_map in _of_kind("ConfigMap"):
        # Kubernetes refuses a ConfigMap whose values are not strings (an unquoted port, say).
        assert all(isinstance(value, str) for value in config_map["data"].values())


def test_deployment_containers_run_an_existing_service_module() -> None:
    deployments = _of_kind("Deployment")
    assert deployments
    for deployment in deployments:
        for container in _containers(deployment):
            argv = _argv(container)
            where = f"{deployment['metadata']['name']}/{container['name']}"
            assert argv[:2] == ["python", "-m"], f"{where}: runs {argv}"
            module, arguments = argv[2], argv[3:]
            assert module.startswith("services."), f"{where}: {module} is not a service"
            assert _module_path(module).is_file(), f"{where}: no module {module}"
            assert arguments in ([], ["migrate"]), f"{where}: unexpected arguments {arguments}"
        init = deployment["spec"]["template"]["spec"].get("initContainers", [])
        assert any(_argv(container)[3:] == ["migrate"] for container in init), (
            f"{deployment['metadata']['name']}: no init container runs migrate"
        )


def test_kubernetes_files_set_only_real_settings() -> None:
    (deployment,) = _of_kind("Deployment")
    settings_type = SETTINGS[_deployment_module(deployment)]
    problems = []
    for kind in ("ConfigMap", "Secret"):
        for resource in _of_kind(kind):
            keys = [*resource.get("data", {}), *resource.get("stringData", {})]
            problems += [
                f"{kind} {resource['metadata']['name']}: {p}" for p in _misnamed(keys, settings_type)
            ]
    for container in _containers(deployment):
        names = [variable["name"] for variable in container.get("env", [])]
        problems += [f"container {container['name']}: {p}" for p in _misnamed(names, settings_type)]
    assert problems == []


def test_deployment_references_resolve() -> None:
    (deployment,) = _of_kind("Deployment")
    config_maps = {resource["metadata"]["name"] for resource in _of_kind("ConfigMap")}
    secrets = {
        resource["metadata"]["name"]: {*resource.get("data", {}), *resource.get("stringData", {})}
        for resource in _of_kind("Secret")
    }
    claims = {resource["metadata"]["name"] for resource in _of_kind("PersistentVolumeClaim")}
    for container in _containers(deployment):
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] in config_maps
        for variable in container.get("env", []):
            reference = variable["valueFrom"]["secretKeyRef"]
            assert reference["key"] in secrets[reference["name"]], f"{variable['name']}: no such secret key"
    pod = deployment["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_deployment_is_locked_down_and_keeps_the_git_root_on_a_volume() -> None:
    (deployment,) = _of_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in _containers(deployment):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"]
    (config_map,) = _of_kind("ConfigMap")
    git_root = config_map["data"]["SOURCE_CONTROL_GIT_ROOT"]
    claims = {volume["name"] for volume in pod["volumes"] if "persistentVolumeClaim" in volume}
    main = pod["containers"][0]
    assert any(m["mountPath"] == git_root and m["name"] in claims for m in main["volumeMounts"])
    assert "livenessProbe" in main


def test_deployment_grace_period_outlasts_the_shutdown_timeout() -> None:
    (deployment,) = _of_kind("Deployment")
    (config_map,) = _of_kind("ConfigMap")
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > _shutdown_timeout(config_map["data"])


# -- docs ------------------------------------------------------------------------


def test_settings_doc_names_every_setting() -> None:
    text = SETTINGS_DOC.read_text(encoding="utf-8")
    for module, settings_type in SETTINGS.items():
        prefix = str(settings_type.model_config["env_prefix"])
        missing = [
            field
            for field in settings_type.model_fields
            if f"`{prefix}{field.upper()}`" not in text
            or (field in FLEET_WIDE and f"`{FLEET_PREFIX}{field.upper()}`" not in text)
        ]
        assert missing == [], f"docs/settings.md does not document {missing} of {module}"

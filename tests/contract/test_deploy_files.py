"""Deployment files against their formats' published schemas, and against the code.

The Compose file and the kustomization are checked with the format owners' own
JSON Schemas (kept beside the repository, in ``../shared/schemas``). The rest
checks them against the code: a container runs a service module that exists,
and every variable they set is a real setting — the settings ignore unknown
variables, so a misspelt name would otherwise leave the default in force
without a word.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from services.packaging.settings import PackagingSettings
from services.pipelines.settings import PipelinesSettings
from services.source_control.settings import SourceControlSettings
from shared_kernel.durations import parse_duration
from shared_kernel.settings import FLEET_WIDE, ServiceSettings
from tests.support.schemas import published_schema

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
SETTINGS_DOC = ROOT / "docs" / "settings.md"

FLEET_PREFIX = "DEVOPS_"
# The settings class each service module reads; a new service adds its own here.
SETTINGS: dict[str, type[ServiceSettings]] = {
    "services.source_control": SourceControlSettings,
    "services.pipelines": PipelinesSettings,
    "services.packaging": PackagingSettings,
}
# Real settings that no deployment may set: one renames every queue, role and
# database of the service, the other SIGKILLs it (crash tests only).
NEVER_DEPLOYED = frozenset({"service_name", "crash_at"})
# The services sharing the blob store (blob_root): Pipelines writes, Packaging reads.
BLOB_STORE_USERS = ("services.pipelines", "services.packaging")
# Where each service keeps files: every one must be set, on a volume (the root
# file system is read-only in both Compose and Kubernetes).
KEPT_ON_VOLUMES: dict[str, tuple[str, ...]] = {
    "services.source_control": ("git_root",),
    "services.pipelines": ("blob_root",),
    "services.packaging": ("blob_root", "feed_root", "registry_root"),
}


def _context(module: str) -> str:
    """Compose service and Kubernetes folder name: ``services.source_control`` → ``source-control``."""
    return SETTINGS[module].service_name.replace("_", "-")


def _prefix(settings_type: type[ServiceSettings]) -> str:
    return str(settings_type.model_config["env_prefix"]).upper()


def _value(environment: dict[str, str], setting: str, settings_type: type[ServiceSettings]) -> str | None:
    """A setting's value under ``environment``: the service's prefix first, then the fleet's."""
    own = environment.get(f"{_prefix(settings_type)}{setting.upper()}")
    if own is not None or setting not in FLEET_WIDE:
        return own
    return environment.get(f"{FLEET_PREFIX}{setting.upper()}")


def _covers(mount_path: str, path: str) -> bool:
    return PurePosixPath(path).is_relative_to(PurePosixPath(mount_path))


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


def _kustomization_path(module: str) -> Path:
    return KUBERNETES / _context(module) / "kustomization.yaml"


def _kustomization(module: str) -> dict[str, Any]:
    kustomization: dict[str, Any] = _load(_kustomization_path(module))
    return kustomization


def _resources(module: str) -> list[dict[str, Any]]:
    """Every object the service's kustomization lists."""
    folder = _kustomization_path(module).parent
    return [doc for name in _kustomization(module)["resources"] for doc in _documents(folder / name)]


def _of_kind(module: str, kind: str) -> list[dict[str, Any]]:
    return [resource for resource in _resources(module) if resource["kind"] == kind]


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


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return {name: str(value) for name, value in environment.items()}
    return dict(entry.split("=", 1) if "=" in entry else (entry, "") for entry in environment)


def _named_volume_mounts(service: dict[str, Any], compose: dict[str, Any]) -> dict[str, str]:
    """Mount path → named volume, for the short-syntax named-volume mounts of a Compose service."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source in (compose.get("volumes") or {}):
            mounts[target] = source
    return mounts


# -- settings --------------------------------------------------------------------


def _module_path(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")) / "__main__.py"


def _setting(variable: str, settings_type: type[ServiceSettings]) -> str | None:
    """The setting a variable sets (service prefix or fleet-wide prefix), or None."""
    upper = variable.upper()
    service_prefix = _prefix(settings_type)
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


def _shutdown_timeout(environment: dict[str, str], settings_type: type[ServiceSettings]) -> float:
    """A service's SHUTDOWN_TIMEOUT in seconds under ``environment`` (service prefix first)."""
    default = settings_type.model_fields["shutdown_timeout"].default
    return parse_duration(_value(environment, "shutdown_timeout", settings_type) or default)


def _deployment_module(deployment: dict[str, Any]) -> str:
    """The service module the Deployment's main container runs (``python -m <module>``)."""
    return _argv(deployment["spec"]["template"]["spec"]["containers"][0])[2]


def _deployment(module: str) -> dict[str, Any]:
    (deployment,) = _of_kind(module, "Deployment")
    return deployment


def _settings_data(module: str) -> dict[str, str]:
    (config_map,) = _of_kind(module, "ConfigMap")
    data: dict[str, str] = config_map["data"]
    return data


def _claim_mounts(deployment: dict[str, Any]) -> dict[str, str]:
    """Mount path → PersistentVolumeClaim name, for the Deployment's main container."""
    pod = deployment["spec"]["template"]["spec"]
    claims = {
        volume["name"]: volume["persistentVolumeClaim"]["claimName"]
        for volume in pod["volumes"]
        if "persistentVolumeClaim" in volume
    }
    return {
        mount["mountPath"]: claims[mount["name"]]
        for mount in pod["containers"][0].get("volumeMounts", [])
        if mount["name"] in claims
    }


def _declared_claims() -> dict[str, list[str]]:
    """PersistentVolumeClaim name → the services whose kustomization declares it."""
    declared: dict[str, list[str]] = {}
    for module in SETTINGS:
        for claim in _of_kind(module, "PersistentVolumeClaim"):
            declared.setdefault(claim["metadata"]["name"], []).append(_context(module))
    return declared


def _claim(name: str) -> dict[str, Any]:
    (claim,) = (
        claim
        for module in SETTINGS
        for claim in _of_kind(module, "PersistentVolumeClaim")
        if claim["metadata"]["name"] == name
    )
    return claim


# -- the Compose file ------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    schema = published_schema("compose-spec.schema.json")
    assert _schema_errors(_compose(), schema) == []


def test_compose_infrastructure_is_health_checked() -> None:
    services = _compose()["services"]
    assert "healthcheck" in services["rabbitmq"]
    assert "healthcheck" in services["postgres"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"]


@pytest.mark.parametrize("module", SETTINGS)
def test_compose_runs_each_service_after_its_migrations(module: str) -> None:
    services, name = _compose()["services"], _context(module)
    migrate, consumer = services[f"{name}-migrate"], services[name]
    assert _command(migrate) == [module, "migrate"]
    assert _command(consumer) == [module]
    depends_on = consumer["depends_on"]
    assert depends_on[f"{name}-migrate"] == {"condition": "service_completed_successfully"}
    assert depends_on["rabbitmq"]["condition"] == "service_healthy"
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The migrate step sets the role passwords the consumer logs in with.
    prefix = _prefix(SETTINGS[module])
    for role in ("APP", "RELAY"):
        variable = f"{prefix}{role}_ROLE_PASSWORD"
        assert _environment(migrate).get(variable), f"{name}-migrate: no {variable}"
        assert _environment(consumer).get(variable) == _environment(migrate)[variable]
    assert FLEET_PREFIX + "POSTGRES_ADMIN_PASSWORD" not in _environment(consumer), "the consumer is no owner"


@pytest.mark.parametrize("module", SETTINGS)
def test_compose_checks_readiness_on_a_host_port_of_its_own(module: str) -> None:
    consumer = _compose()["services"][_context(module)]
    assert "/readyz" in " ".join(consumer["healthcheck"]["test"])
    (port,) = consumer["ports"]
    assert port.startswith("127.0.0.1:"), f"{port}: published beyond the host's loopback"
    assert port.endswith(":8080"), f"{port}: not the container's health port"


def _interpolated(value: str) -> str:
    """A Compose value with each ``${VARIABLE:-default}`` replaced by its default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_compose_publishes_each_service_on_a_different_host_port() -> None:
    services = _compose()["services"]
    published = {
        module: _interpolated(services[_context(module)]["ports"][0]).rsplit(":", 1)[0] for module in SETTINGS
    }
    assert len(set(published.values())) == len(published), published


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
            f"{name}: {problem}" for problem in _misnamed(list(_environment(service)), settings_type)
        ]
    assert problems == []


@pytest.mark.parametrize("module", SETTINGS)
def test_compose_keeps_the_service_files_on_named_volumes(module: str) -> None:
    compose = _compose()
    name = _context(module)
    consumer = compose["services"][name]
    environment = _environment(consumer)
    mounts = _named_volume_mounts(consumer, compose)
    for setting in KEPT_ON_VOLUMES[module]:
        path = _value(environment, setting, SETTINGS[module])
        assert path, f"{name}: {setting} is not set (its default is on the read-only root file system)"
        assert any(_covers(mount, path) for mount in mounts), f"{name}: {path} is not on a named volume"


def test_compose_shares_one_blob_store_between_pipelines_and_packaging() -> None:
    compose = _compose()
    stores = set()
    for module in BLOB_STORE_USERS:
        consumer = compose["services"][_context(module)]
        blob_root = _value(_environment(consumer), "blob_root", SETTINGS[module])
        assert blob_root
        mounts = _named_volume_mounts(consumer, compose)
        stores.add((blob_root, mounts.get(blob_root)))
    assert len(stores) == 1, f"the services see different blob stores: {stores}"
    # Packaging's feeds and registries are its own, not in the shared store.
    packaging = compose["services"][_context("services.packaging")]
    environment = _environment(packaging)
    blob_root = _value(environment, "blob_root", PackagingSettings)
    assert blob_root
    for setting in ("feed_root", "registry_root"):
        path = _value(environment, setting, PackagingSettings)
        assert path, f"packaging: {setting} is not set"
        assert not _covers(blob_root, path), f"{setting} is inside the shared blob store"


@pytest.mark.parametrize("module", SETTINGS)
def test_compose_grace_period_outlasts_the_shutdown_timeout(module: str) -> None:
    consumer = _compose()["services"][_context(module)]
    assert parse_duration(consumer["stop_grace_period"]) > _shutdown_timeout(
        _environment(consumer), SETTINGS[module]
    )


# -- Kubernetes ------------------------------------------------------------------


@pytest.mark.parametrize("module", SETTINGS)
def test_kustomization_follows_its_schema(module: str) -> None:
    schema = published_schema("kustomization.schema.json")
    assert _schema_errors(_kustomization(module), schema) == []


def test_every_service_has_a_kustomization_of_the_same_files() -> None:
    expected = sorted(path.name for path in _kustomization_path("services.source_control").parent.iterdir())
    for module in SETTINGS:
        folder = _kustomization_path(module).parent
        assert folder.is_dir(), f"no {folder.relative_to(ROOT)}"
        assert sorted(path.name for path in folder.iterdir()) == expected


@pytest.mark.parametrize("module", SETTINGS)
def test_every_kustomization_resource_exists_and_parses(module: str) -> None:
    folder = _kustomization_path(module).parent
    kinds = set()
    for name in _kustomization(module)["resources"]:
        path = folder / name
        assert path.is_file(), f"{name} is listed but missing"
        documents = _documents(path)
        assert documents, f"{name} holds no object"
        for document in documents:
            assert {"apiVersion", "kind", "metadata"} <= set(document), f"{name}: not a Kubernetes object"
            assert document["metadata"].get("name"), f"{name}: {document['kind']} without a name"
            kinds.add(document["kind"])
    assert {"Deployment", "ConfigMap", "Secret", "PersistentVolumeClaim"} <= kinds
    for config_map in _of_kind(module, "ConfigMap"):
        # Kubernetes refuses a ConfigMap whose values are not strings (an unquoted port, say).
        assert all(isinstance(value, str) for value in config_map["data"].values())


@pytest.mark.parametrize("module", SETTINGS)
def test_deployment_containers_run_an_existing_service_module(module: str) -> None:
    deployments = _of_kind(module, "Deployment")
    assert deployments
    for deployment in deployments:
        assert _deployment_module(deployment) == module
        for container in _containers(deployment):
            argv = _argv(container)
            where = f"{deployment['metadata']['name']}/{container['name']}"
            assert argv[:2] == ["python", "-m"], f"{where}: runs {argv}"
            module_run, arguments = argv[2], argv[3:]
            assert module_run == module, f"{where}: runs {module_run}, not {module}"
            assert _module_path(module_run).is_file(), f"{where}: no module {module_run}"
            assert arguments in ([], ["migrate"]), f"{where}: unexpected arguments {arguments}"
        init = deployment["spec"]["template"]["spec"].get("initContainers", [])
        assert any(_argv(container)[3:] == ["migrate"] for container in init), (
            f"{deployment['metadata']['name']}: no init container runs migrate"
        )


@pytest.mark.parametrize("module", SETTINGS)
def test_kubernetes_files_set_only_real_settings(module: str) -> None:
    deployment = _deployment(module)
    settings_type = SETTINGS[_deployment_module(deployment)]
    problems = []
    for kind in ("ConfigMap", "Secret"):
        for resource in _of_kind(module, kind):
            keys = [*resource.get("data", {}), *resource.get("stringData", {})]
            problems += [
                f"{kind} {resource['metadata']['name']}: {p}" for p in _misnamed(keys, settings_type)
            ]
    for container in _containers(deployment):
        names = [variable["name"] for variable in container.get("env", [])]
        problems += [f"container {container['name']}: {p}" for p in _misnamed(names, settings_type)]
    assert problems == []


@pytest.mark.parametrize("module", SETTINGS)
def test_deployment_references_resolve(module: str) -> None:
    deployment = _deployment(module)
    config_maps = {resource["metadata"]["name"] for resource in _of_kind(module, "ConfigMap")}
    secrets = {
        resource["metadata"]["name"]: {*resource.get("data", {}), *resource.get("stringData", {})}
        for resource in _of_kind(module, "Secret")
    }
    own_claims = {resource["metadata"]["name"] for resource in _of_kind(module, "PersistentVolumeClaim")}
    for container in _containers(deployment):
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] in config_maps
        for variable in container.get("env", []):
            reference = variable["valueFrom"]["secretKeyRef"]
            assert reference["key"] in secrets[reference["name"]], f"{variable['name']}: no such secret key"
    pod = deployment["spec"]["template"]["spec"]
    declared = _declared_claims()
    for volume in pod["volumes"]:
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            # A claim of its own, or the blob store another service's kustomization declares.
            assert claim in own_claims or claim in declared, f"{claim}: declared by no kustomization"


def test_each_claim_is_declared_by_one_kustomization() -> None:
    # Declared twice, two kustomizations applied together would fight over it.
    assert {name: owners for name, owners in _declared_claims().items() if len(owners) > 1} == {}


@pytest.mark.parametrize("module", SETTINGS)
def test_deployment_is_locked_down_and_keeps_the_service_files_on_claims(module: str) -> None:
    deployment = _deployment(module)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in _containers(deployment):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"]
    data, mounts = _settings_data(module), _claim_mounts(deployment)
    for setting in KEPT_ON_VOLUMES[module]:
        path = _value(data, setting, SETTINGS[module])
        assert path, f"{_context(module)}: {setting} is not set in the ConfigMap"
        assert any(_covers(mount, path) for mount in mounts), f"{path} is not on a PersistentVolumeClaim"
    main = pod["containers"][0]
    assert "livenessProbe" in main
    assert "readinessProbe" in main


def test_pipelines_and_packaging_mount_one_read_write_many_blob_store() -> None:
    stores = set()
    for module in BLOB_STORE_USERS:
        blob_root = _value(_settings_data(module), "blob_root", SETTINGS[module])
        assert blob_root
        stores.add((blob_root, _claim_mounts(_deployment(module)).get(blob_root)))
    assert len(stores) == 1, f"the services see different blob stores: {stores}"
    ((_, claim_name),) = stores
    assert claim_name, "the blob root is not the mount path of a claim"
    claim = _claim(claim_name)
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "two Deployments mount it, on any nodes"


@pytest.mark.parametrize("module", SETTINGS)
def test_deployment_grace_period_outlasts_the_shutdown_timeout(module: str) -> None:
    grace = _deployment(module)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > _shutdown_timeout(_settings_data(module), SETTINGS[module])


@pytest.mark.parametrize("module", SETTINGS)
def test_a_deployment_on_a_read_write_once_claim_is_recreated(module: str) -> None:
    deployment = _deployment(module)
    modes = {
        mode for claim in _claim_mounts(deployment).values() for mode in _claim(claim)["spec"]["accessModes"]
    }
    if "ReadWriteOnce" in modes:
        # A rolled pod on another node could not attach the claim the old one holds.
        assert deployment["spec"]["strategy"]["type"] == "Recreate"


# -- docs ------------------------------------------------------------------------

SETTING_ROW = re.compile(r"^\| `(?P<setting>\w+)` \|(?P<cells>.*)\|\s*$")


def _doc_sections() -> dict[str, str]:
    """docs/settings.md by ``## `` heading, keyed by the heading's first word (the class name)."""
    text = SETTINGS_DOC.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return {section.split(maxsplit=1)[0]: section for section in sections}


def _documented_rows(section: str) -> dict[str, list[str]]:
    """Setting → its table cells after the name: variables, type, default, meaning."""
    rows = {}
    for line in section.splitlines():
        if match := SETTING_ROW.match(line):
            rows[match["setting"]] = [cell.strip() for cell in match["cells"].split(" | ")]
    return rows


def _documented_default(value: object) -> set[str]:
    """How the settings doc writes a default: as it would be set in the environment."""
    if value == "":
        return {"empty", "derived"}
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, list | dict):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = str(value)
    return {f"`{text}`"}


def _check_rows(
    section_name: str, section: str, fields: list[str], settings_type: type[ServiceSettings]
) -> list[str]:
    problems = []
    rows = _documented_rows(section)
    prefix = _prefix(settings_type)
    for field in fields:
        if field not in rows:
            problems.append(f"{section_name}: no row for {field}")
            continue
        variables, _, default, *_ = rows[field]
        fleet = f"`{FLEET_PREFIX}{field.upper()}`" if field in FLEET_WIDE else "—"
        if variables != f"`{prefix}{field.upper()}` / {fleet}":
            problems.append(
                f"{section_name}: {field} is set by `{prefix}{field.upper()}` / {fleet}, not {variables}"
            )
        value = settings_type.model_fields[field].get_default(call_default_factory=True)
        if default not in _documented_default(value):
            problems.append(
                f"{section_name}: {field} defaults to {_documented_default(value)}, not {default}"
            )
    stale = sorted(set(rows) - set(fields))
    if stale:
        problems.append(f"{section_name}: rows for settings that do not exist: {stale}")
    return problems


def test_settings_doc_names_every_setting_with_its_variables_and_default() -> None:
    sections = _doc_sections()
    # The shared settings are documented once, under Source Control's names.
    shared = list(ServiceSettings.model_fields)
    problems = _check_rows(
        "ServiceSettings", sections.get("ServiceSettings", ""), shared, SourceControlSettings
    )
    for settings_type in SETTINGS.values():
        name = settings_type.__name__
        own = [field for field in settings_type.model_fields if field not in ServiceSettings.model_fields]
        if name not in sections:
            problems.append(f"no section ## {name}")
            continue
        problems += _check_rows(name, sections[name], own, settings_type)
    assert problems == [], "docs/settings.md is out of date:\n" + "\n".join(problems)

"""Pipeline definitions are real Azure Pipelines YAML, by module type.

The YAML is read back with PyYAML, independently of the emitter that wrote
it, and checked against Microsoft's published schema. That schema types every
scalar as Azure reads it, a string (a boolean is a string matching
``^true$``), so the document it validates is loaded with ``BaseLoader``,
which resolves no implicit types either.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from services.pipelines.adapters.pipeline_yaml import (
    AzurePipelinesYaml,
    pipeline_definition,
    render_pipeline,
)
from services.pipelines.ports import InvalidPipelineSpec, PipelineSpec
from tests.support.schemas import published_schema

pytestmark = pytest.mark.unit

LIBRARY = PipelineSpec(
    module_id="billing-core",
    module_type="library",
    repository_name="Billing.Core",
    default_branch="main",
    template_version="v1.4.0",
    solution_path="Billing.Core.sln",
    dotnet_version="8.0.x",
    target_feed="Platform/connectsoft-packages",
)
SERVICE = PipelineSpec(
    module_id="billing-api",
    module_type="service",
    repository_name="Billing.Api",
    default_branch="develop",
    template_version="2.0.1",
    solution_path="src/Billing.Api/Billing.Api.csproj",
    container_registry="connectsoft-acr",
    image_repository="billing/api",
    dockerfile_path="src/Billing.Api/Dockerfile",
)


def _parsed(spec: PipelineSpec) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(render_pipeline(spec))
    return document


def _steps(document: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    (found,) = [s for s in document["stages"] if s["stage"] == stage]
    return [step for job in found["jobs"] for step in job["steps"]]


def _tasks(document: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    return [step for step in _steps(document, stage) if "task" in step]


def _variables(document: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["value"] for v in document["variables"]}


@pytest.mark.parametrize(
    ("spec", "stages"),
    [(LIBRARY, ["Build", "Test", "Pack", "Push"]), (SERVICE, ["Build", "Test", "ContainerImage"])],
)
def test_the_stages_follow_the_module_type_in_order(spec: PipelineSpec, stages: list[str]) -> None:
    document = _parsed(spec)

    assert [s["stage"] for s in document["stages"]] == stages
    # Each stage waits for the one before it.
    assert [s["dependsOn"] for s in document["stages"]] == [[], *[[name] for name in stages[:-1]]]
    assert pipeline_definition(spec).stage_names == tuple(stages)


@pytest.mark.parametrize("spec", [LIBRARY, SERVICE])
def test_the_template_repository_is_pinned_to_the_template_version(spec: PipelineSpec) -> None:
    document = _parsed(spec)

    assert document["resources"]["repositories"] == [
        {
            "repository": "templates",
            "type": "git",
            "name": "ConnectSoft/ConnectSoft.AzurePipelines",
            "ref": f"refs/tags/{spec.template_version}",
        }
    ]
    stages = [stage["stage"] for stage in document["stages"]]
    templates = [s["template"] for stage in stages for s in _steps(document, stage) if "template" in s]
    assert templates
    assert all(t.endswith("@templates") for t in templates)


@pytest.mark.parametrize("spec", [LIBRARY, SERVICE])
def test_triggers_and_variables_name_the_module(spec: PipelineSpec) -> None:
    document = _parsed(spec)

    # Pipelines queues every run itself, with the parameters the service hooks carry back.
    assert (document["trigger"], document["pr"]) == ("none", "none")
    assert [(p["name"], p["type"], p["default"]) for p in document["parameters"]] == [
        ("devopsTenantId", "string", ""),
        ("devopsProjectId", "string", ""),
        ("devopsPipelineRunId", "string", ""),
    ]
    variables = _variables(document)
    assert variables["moduleId"] == spec.module_id
    assert variables["solutionPath"] == spec.solution_path
    assert variables["dotnetVersion"] == spec.dotnet_version
    assert variables["version"] == "$(Build.BuildNumber)"


@pytest.mark.parametrize("spec", [LIBRARY, SERVICE])
def test_tests_run_with_coverage_and_publish_it(spec: PipelineSpec) -> None:
    tasks = _tasks(_parsed(spec), "Test")

    (test,) = [t for t in tasks if t["task"] == "DotNetCoreCLI@2"]
    assert test["inputs"]["command"] == "test"
    assert '--collect "XPlat Code Coverage"' in test["inputs"]["arguments"]
    (coverage,) = [t for t in tasks if t["task"].startswith("PublishCodeCoverageResults@")]
    assert coverage["inputs"]["codeCoverageTool"] == "Cobertura"


def test_a_library_packs_and_pushes_to_its_feed_from_the_default_branch_only() -> None:
    document = _parsed(LIBRARY)

    assert _variables(document)["targetFeed"] == "Platform/connectsoft-packages"
    (pack,) = _tasks(document, "Pack")
    assert pack["inputs"]["command"] == "pack"
    push = [t for t in _tasks(document, "Push") if t["task"] == "DotNetCoreCLI@2"]
    assert [p["inputs"] for p in push] == [
        {
            "command": "push",
            "packagesToPush": "$(Pipeline.Workspace)/packages/*.nupkg",
            "nuGetFeedType": "internal",
            "publishVstsFeed": "$(targetFeed)",
        }
    ]
    (push_stage,) = [s for s in document["stages"] if s["stage"] == "Push"]
    assert "'refs/heads/main'" in push_stage["condition"]


def test_a_service_builds_and_pushes_its_image_to_its_registry() -> None:
    document = _parsed(SERVICE)

    variables = _variables(document)
    assert variables["containerRegistry"] == "connectsoft-acr"
    assert variables["imageRepository"] == "billing/api"
    assert "targetFeed" not in variables
    (docker,) = _tasks(document, "ContainerImage")
    assert docker["task"] == "Docker@2"
    assert docker["inputs"]["command"] == "buildAndPush"
    assert docker["inputs"]["containerRegistry"] == "$(containerRegistry)"
    assert docker["inputs"]["repository"] == "$(imageRepository)"
    assert docker["inputs"]["Dockerfile"] == "$(dockerfilePath)"
    assert variables["dockerfilePath"] == "src/Billing.Api/Dockerfile"


@pytest.mark.parametrize("spec", [LIBRARY, SERVICE])
def test_the_same_spec_renders_the_same_bytes_and_digest(spec: PipelineSpec) -> None:
    first, second = pipeline_definition(spec), AzurePipelinesYaml().render(replace(spec))

    assert first == second
    assert first.sha256 == hashlib.sha256(first.content.encode("utf-8")).hexdigest()
    assert pipeline_definition(replace(spec, template_version="9.9.9")).sha256 != first.sha256


def test_strings_yaml_would_misread_are_quoted() -> None:
    # A feed called "true", a version "1.10" and a branch "on" stay strings.
    spec = replace(LIBRARY, target_feed="true", version_prefix="1.10", default_branch="on")
    document = _parsed(spec)

    assert _variables(document)["targetFeed"] == "true"
    assert _variables(document)["versionPrefix"] == "1.10"
    assert document["trigger"] == "none"


@pytest.fixture(scope="module")
def azure_pipelines_validator() -> Draft7Validator:
    return Draft7Validator(published_schema("azure-pipelines.schema.json"))


@pytest.mark.contract
@pytest.mark.parametrize("spec", [LIBRARY, SERVICE], ids=["library", "service"])
def test_the_definition_validates_against_the_published_schema(
    spec: PipelineSpec, azure_pipelines_validator: Draft7Validator
) -> None:
    document = yaml.load(render_pipeline(spec), Loader=yaml.BaseLoader)

    errors = sorted(azure_pipelines_validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, json.dumps([e.message[:300] for e in errors], indent=2)


@pytest.mark.contract
def test_the_schema_catches_a_broken_definition(azure_pipelines_validator: Draft7Validator) -> None:
    # The check above means something only if the schema refuses what Azure would.
    document = yaml.load(render_pipeline(LIBRARY), Loader=yaml.BaseLoader)
    document["stages"][0]["Jobs"] = document["stages"][0].pop("jobs")

    assert not azure_pipelines_validator.is_valid(document)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"module_type": "function"}, "module_type"),
        ({"target_feed": ""}, "target_feed"),
        ({"target_feed": None}, "target_feed"),
        ({"container_registry": "acr"}, "container_registry"),
        ({"template_version": "main"}, "template_version"),
        ({"template_version": ""}, "template_version"),
        ({"default_branch": ""}, "default_branch"),
        ({"solution_path": "../elsewhere.sln"}, "solution_path"),
        ({"module_id": "has space"}, "module_id"),
    ],
)
def test_a_wrong_library_spec_is_refused_naming_the_field(change: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidPipelineSpec, match=named):
        replace(LIBRARY, **change)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"container_registry": None}, "container_registry"),
        ({"image_repository": ""}, "image_repository"),
        ({"image_repository": "Billing/API"}, "image_repository"),
        ({"target_feed": "packages"}, "target_feed"),
    ],
)
def test_a_wrong_service_spec_is_refused_naming_the_field(change: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidPipelineSpec, match=named):
        replace(SERVICE, **change)

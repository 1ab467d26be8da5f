"""PipelineDefinition: generation, the path rule, supersession."""

from __future__ import annotations

from typing import Any

import pytest

from services.pipelines.domain import DefinitionStatus, PipelineDefinition, PipelineStage, PipelineVariable
from services.pipelines.domain.errors import (
    CannotSupersedeItself,
    DefinitionAlreadySuperseded,
    DuplicateDefinitionPath,
    DuplicateStageName,
    DuplicateVariableName,
    PipelineHasNoStages,
    UnknownTemplateVersion,
)
from shared_kernel.domain import RuleViolation, StaleMessage
from tests.support.aggregates import refusal, validated
from tests.unit.pipelines.builders import AT, STAGES, at, generate

pytestmark = pytest.mark.unit


def test_generate_records_pipeline_generated_with_the_definition_shape() -> None:
    definition = generate()

    assert definition.status is DefinitionStatus.ACTIVE
    [event] = validated(definition)
    assert event["type"] == "PipelineGenerated"
    assert event["moduleType"] == "library"
    assert event["templateVersion"] == "v1.4.0"
    assert event["targetFeed"] == "acme/packages"
    assert event["stages"] == [
        {"name": "Build", "jobs": ["compile", "test"]},
        {"name": "Pack", "jobs": ["push"]},
    ]
    assert "variables" not in event  # secret references stay inside the context


@pytest.mark.parametrize(
    ("overrides", "error", "rule"),
    [
        ({"template_version": "v9.9.9"}, UnknownTemplateVersion, "UnknownTemplateVersion"),
        ({"stages": []}, PipelineHasNoStages, "PipelineHasNoStages"),
        (
            {"stages": [*STAGES, PipelineStage(name="Build", jobs=("x",))]},
            DuplicateStageName,
            "DuplicateStageName",
        ),
        (
            {"variables": [PipelineVariable(name="A", value="1"), PipelineVariable(name="A", value="2")]},
            DuplicateVariableName,
            "DuplicateVariableName",
        ),
        ({"supersedes": "pipe-1"}, CannotSupersedeItself, "CannotSupersedeItself"),
    ],
)
def test_generate_refuses_a_broken_definition(
    overrides: dict[str, Any], error: type[RuleViolation], rule: str
) -> None:
    with pytest.raises(error) as refused:
        generate(**overrides)
    assert refused.value.rule == rule
    assert isinstance(refused.value, RuleViolation)


def test_the_definition_path_is_free_only_for_the_same_module() -> None:
    existing = generate()

    PipelineDefinition.ensure_path_free(None, module_id="module-2")
    PipelineDefinition.ensure_path_free(existing, module_id="module-1")  # a regeneration
    error = refusal(
        existing,
        DuplicateDefinitionPath,
        lambda: PipelineDefinition.ensure_path_free(existing, module_id="module-2"),
    )
    assert error.rule == "DuplicateDefinitionPath"


def test_regeneration_supersedes_the_prior_definition() -> None:
    old = generate()
    old.pull_events()
    new = generate(pipeline_id="pipe-2", supersedes="pipe-1", yaml_sha256="b" * 64, at=at(5))
    old.supersede(superseded_by="pipe-2", at=at(5), by="svc-pipelines")

    assert (old.status, old.superseded_by) == (DefinitionStatus.SUPERSEDED, "pipe-2")
    [event] = validated(old)
    assert (event["type"], event["supersededByPipelineId"]) == ("PipelineSuperseded", "pipe-2")
    assert validated(new)[0]["supersedes"] == "pipe-1"
    PipelineDefinition.ensure_path_free(old, module_id="module-2")  # a superseded one holds nothing


def test_superseding_twice_is_stale_and_changes_nothing() -> None:
    definition = generate()
    definition.supersede(superseded_by="pipe-2", at=at(1), by="svc")

    error = refusal(
        definition,
        DefinitionAlreadySuperseded,
        lambda: definition.supersede(superseded_by="pipe-3", at=at(2), by="svc"),
    )
    assert error.rule == "DefinitionAlreadySuperseded"
    assert isinstance(error, StaleMessage)


def test_a_definition_cannot_supersede_itself() -> None:
    definition = generate()

    error = refusal(
        definition,
        CannotSupersedeItself,
        lambda: definition.supersede(superseded_by="pipe-1", at=AT, by="svc"),
    )
    assert error.rule == "CannotSupersedeItself"
    assert definition.status is DefinitionStatus.ACTIVE

"""Pipelines contracts: routing, and the commands' shapes."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

import contracts.pipelines  # noqa: F401  (registration; contracts/__init__ does not import it yet)
from contracts import registry
from contracts.pipelines import CompletePipelineRun, RunPipeline

pytestmark = pytest.mark.contract

COMMANDS = ["GeneratePipeline", "RunPipeline", "RecordPipelineRunProgress", "CompletePipelineRun"]
EVENTS = [
    "PipelineGenerated",
    "PipelineSuperseded",
    "PipelineRunStarted",
    "PipelineRunProgressed",
    "PipelineRunCompleted",
    "BuildCompleted",
]
ROUTING_KEY = re.compile(r"pipelines\.[a-z]+(-[a-z]+)*\.v1")


@pytest.mark.parametrize(
    ("name", "kind"), [(c, "command") for c in COMMANDS] + [(e, "event") for e in EVENTS]
)
def test_every_message_is_registered_with_a_versioned_routing_key(name: str, kind: str) -> None:
    contract = registry.get(name, 1)

    assert (contract.kind, contract.context) == (kind, "pipelines")
    assert ROUTING_KEY.fullmatch(contract.routing_key)
    assert contract.description


def test_build_completed_routes_as_pipelines_build_completed() -> None:
    assert registry.get("BuildCompleted", 1).routing_key == "pipelines.build-completed.v1"


def test_run_pipeline_is_manual_or_release_only() -> None:
    base = {"pipelineRunId": "run-1", "pipelineId": "pipe-1", "branch": "main", "requestedBy": "alice"}

    assert RunPipeline.model_validate(base).reason == "manual"
    with pytest.raises(ValidationError):
        RunPipeline.model_validate({**base, "reason": "ci"})


@pytest.mark.parametrize(
    ("field", "value"), [("coverage", 101), ("result", "InProgress"), ("testsFailed", -1)]
)
def test_complete_pipeline_run_refuses_impossible_outcomes(field: str, value: object) -> None:
    command = {
        "pipelineRunId": "run-1",
        "result": "Succeeded",
        "version": "1.2.0",
        "testsPassed": 1,
        "testsFailed": 0,
        "coverage": 80,
        "logsUri": "blob://logs/ab",
        "finishedAt": "2025-03-01T09:40:00Z",
        "reportedBy": "azure-devops",
    }
    CompletePipelineRun.model_validate(command)
    with pytest.raises(ValidationError):
        CompletePipelineRun.model_validate({**command, field: value})

"""Builders and checks shared by the Pipelines domain tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import contracts.pipelines  # noqa: F401  (registration)
from services.pipelines.domain import (
    ArtifactItem,
    BuildResult,
    ItemStatus,
    JobReport,
    JobResult,
    ModuleType,
    PipelineDefinition,
    PipelineRun,
    PipelineStage,
    PipelineVariable,
    RunOutcome,
    RunReason,
    RunResult,
    TestSummary,
)

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
KNOWN = ("v1.3.0", "v1.4.0")
STAGES = [PipelineStage(name="Build", jobs=("compile", "test")), PipelineStage(name="Pack", jobs=("push",))]
ARTIFACT = ArtifactItem(
    name="orders.1.2.0.nupkg", uri="blob://sha256/" + "b" * 64, sha256="b" * 64, size=2048
)


def at(minutes: int) -> datetime:
    return AT + timedelta(minutes=minutes)


def generate(**overrides: Any) -> PipelineDefinition:
    fields: dict[str, Any] = {
        "pipeline_id": "pipe-1",
        "repository_id": "repo-1",
        "tenant_id": "tenant-1",
        "project_id": "project-1",
        "module_id": "module-1",
        "module_type": ModuleType.LIBRARY,
        "definition_path": "azure-pipelines.yml",
        "template_version": "v1.4.0",
        "known_versions": KNOWN,
        "target_feed": "acme/packages",
        "stages": STAGES,
        "variables": [PipelineVariable(name="NUGET_KEY", value="kv:nuget", is_secret=True)],
        "yaml_sha256": "a" * 64,
        "commit_id": "commit-pipe-1",
        "at": AT,
        "by": "svc-pipelines",
    }
    return PipelineDefinition.generate(**{**fields, **overrides})


def start(definition: PipelineDefinition | None = None, **overrides: Any) -> PipelineRun:
    fields: dict[str, Any] = {
        "pipeline_run_id": "run-1",
        "definition": definition if definition is not None else generate(),
        "pipeline_id": "pipe-1",
        "branch": "main",
        "commit_sha": "1" * 40,
        "build_number": "20250301.1",
        "reason": RunReason.CI,
        "at": AT,
        "by": "svc-pipelines",
    }
    return PipelineRun.start(**{**fields, **overrides})


def job(stage: str, name: str, status: ItemStatus, result: JobResult | None = None) -> JobReport:
    return JobReport(stage=stage, job=name, status=status, result=result)


ALL_SUCCEEDED = [
    job("Build", "compile", ItemStatus.COMPLETED, JobResult.SUCCEEDED),
    job("Build", "test", ItemStatus.COMPLETED, JobResult.SUCCEEDED),
    job("Pack", "push", ItemStatus.COMPLETED, JobResult.SUCCEEDED),
]


def outcome(**overrides: Any) -> RunOutcome:
    """The provider's final report: version 1.2.0, 40 tests passed, 87.5 % coverage, one package."""
    fields: dict[str, Any] = {
        "version": "1.2.0",
        "tests": TestSummary(passed=40, failed=0),
        "coverage": 87.5,
        "artifacts": (ARTIFACT,),
        "logs_uri": "blob://logs/cd",
        "reported_at": at(10),
        "reported_by": "ci",
    }
    return RunOutcome(**{**fields, **overrides})


def finished_run(
    result: RunResult = RunResult.SUCCEEDED,
    jobs: list[JobReport] = ALL_SUCCEEDED,
    reported: RunOutcome | None = None,
) -> PipelineRun:
    """A run completed at at(10) with ``jobs`` and the ``reported`` outcome (default: ``outcome()``)."""
    run = start()
    run.complete(result, jobs=jobs, outcome=reported or outcome(), at=at(10), by="ci")
    run.pull_events()
    return run


def record(run: PipelineRun | None = None, **overrides: Any) -> BuildResult:
    fields: dict[str, Any] = {
        "build_result_id": "build-1",
        "run": run or finished_run(),
        "target_feed": "acme/packages",
        "at": at(11),
        "by": "svc-pipelines",
    }
    return BuildResult.record_outcome(**{**fields, **overrides})

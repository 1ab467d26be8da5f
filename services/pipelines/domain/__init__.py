"""The pure domain of Pipelines: definitions, runs, build results, named errors."""

from services.pipelines.domain.build_result import BuildResult, BuildStatus, derive_build_status
from services.pipelines.domain.definition import (
    DefinitionStatus,
    PipelineDefinition,
    PipelineStage,
    PipelineVariable,
)
from services.pipelines.domain.outcome import ArtifactItem, RunOutcome, TestSummary
from services.pipelines.domain.run import (
    ItemStatus,
    JobReport,
    JobResult,
    JobRun,
    PipelineRun,
    RunResult,
    RunStatus,
    StageRun,
)
from services.pipelines.domain.values import (
    CoveragePercentage,
    DefinitionPath,
    FeedReference,
    ModuleType,
    RunReason,
    TemplateVersion,
)
from shared_kernel.domain.value_objects import Sha256

__all__ = [
    "ArtifactItem",
    "BuildResult",
    "BuildStatus",
    "CoveragePercentage",
    "DefinitionPath",
    "DefinitionStatus",
    "FeedReference",
    "ItemStatus",
    "JobReport",
    "JobResult",
    "JobRun",
    "ModuleType",
    "PipelineDefinition",
    "PipelineRun",
    "PipelineStage",
    "PipelineVariable",
    "RunOutcome",
    "RunReason",
    "RunResult",
    "RunStatus",
    "Sha256",
    "StageRun",
    "TemplateVersion",
    "TestSummary",
    "derive_build_status",
]

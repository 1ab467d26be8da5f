"""Pipelines contracts: the commands it takes and the events it emits.

Commands carry the ids their sender chooses; tenantId and projectId travel in
the envelope. Events also carry tenantId and projectId in the payload.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from contracts.base import Event, Payload
from contracts.registry import registry
from shared_kernel.domain.value_objects import (
    BlobReference,
    BranchName,
    CommitSha,
    Identifier,
    Identity,
    SemanticVersion,
)

CONTEXT = "pipelines"

ModuleType = Literal["library", "service"]
RunReason = Literal["ci", "manual", "release"]
DefinitionStatus = Literal["Active", "Superseded"]
RunStatus = Literal["Started", "InProgress", "Succeeded", "Failed", "Canceled"]
RunResult = Literal["Succeeded", "Failed", "Canceled"]
ItemStatus = Literal["Pending", "InProgress", "Completed"]
JobResult = Literal["Succeeded", "SucceededWithIssues", "Failed", "Canceled", "Skipped"]
BuildStatus = Literal["Succeeded", "Failed", "Canceled"]
Sha256 = str  # 64 lower-case hex digits, checked by Field(pattern=…)
SHA256_PATTERN = r"^[0-9a-f]{64}$"


# Parts shared by several messages


class StageRecord(Event):
    """A stage of a pipeline definition and its job names."""

    name: Identifier
    jobs: list[Identifier] = Field(min_length=1)


class VariableRequest(Payload):
    """A pipeline variable; a secret one carries a reference to the secret, never its value."""

    name: Identifier
    value: str
    is_secret: bool = False


class JobStateReport(Payload):
    """The CI provider's report of one job's state."""

    stage: Identifier
    job: Identifier
    status: ItemStatus
    result: JobResult | None = None
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None


class JobRunRecord(Event):
    """One job of a run, as last reported."""

    name: Identifier
    status: ItemStatus
    result: JobResult | None
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    reported_at: AwareDatetime | None


class StageRunRecord(Event):
    """One stage of a run; status and times derived from its jobs."""

    name: Identifier
    status: ItemStatus
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    jobs: list[JobRunRecord]


class ArtifactRecord(Payload):
    """An artifact a build produced, stored in the blob store: ``uri`` is ``blob://sha256/<sha256>``."""

    name: Identifier
    uri: BlobReference
    sha256: Sha256 = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=0)

    @model_validator(mode="after")
    def _uri_names_the_content(self) -> ArtifactRecord:
        # Content-addressed: the reference is the digest, so a reader can check what it gets.
        if self.uri != f"blob://sha256/{self.sha256}":
            raise ValueError(f"uri must be blob://sha256/{self.sha256} (the artifact's sha256): {self.uri}")
        return self


# Commands


class GeneratePipeline(Payload):
    """Generate (or regenerate, superseding the current one) a module's pipeline definition."""

    pipeline_id: Identifier
    repository_id: Identifier
    module_id: Identifier
    module_type: ModuleType
    definition_path: str = Field(min_length=1, max_length=1024)
    template_version: str = Field(min_length=1, max_length=128)
    target_feed: str = Field(min_length=1, max_length=255)
    variables: list[VariableRequest] = []
    requested_by: Identity


class RunPipeline(Payload):
    """Start a manual or release run of a pipeline definition on a branch."""

    pipeline_run_id: Identifier
    pipeline_id: Identifier
    branch: BranchName
    commit_sha: CommitSha | None = None
    reason: Literal["manual", "release"] = "manual"
    requested_by: Identity


class RecordPipelineRunProgress(Payload):
    """The CI provider reports the states of some jobs of a run."""

    pipeline_run_id: Identifier
    jobs: list[JobStateReport] = Field(min_length=1)
    reported_at: AwareDatetime
    reported_by: Identity


class CompletePipelineRun(Payload):
    """The CI provider reports a run's outcome: result, final job states, tests, coverage, artifacts, logs.

    Tests and coverage are absent when the provider did not report them (an
    Azure DevOps ``build.complete`` hook carries neither). ``logs`` is the log
    text, which Pipelines stores in the blob store and references as
    ``logsUri``; ``logsUri`` is given instead when the logs are already stored
    (in the blob store, or at the provider).
    """

    pipeline_run_id: Identifier
    result: RunResult
    jobs: list[JobStateReport] = []
    version: SemanticVersion
    tests_passed: int | None = Field(default=None, ge=0)
    tests_failed: int | None = Field(default=None, ge=0)
    coverage: float | None = Field(default=None, ge=0, le=100)
    artifacts: list[ArtifactRecord] = []
    logs: str | None = Field(default=None, max_length=16 * 1024 * 1024)
    logs_uri: BlobReference | None = None
    finished_at: AwareDatetime
    reported_by: Identity

    @model_validator(mode="after")
    def _one_source_of_logs(self) -> CompletePipelineRun:
        if self.logs is not None and self.logs_uri is not None:
            raise ValueError("give the log text (logs) or where it is stored (logsUri), not both")
        return self


class SettleBuildResult(Payload):
    """Pipelines' own timer: a finished run whose jobs have not all reported gets its build result now.

    Sent by Pipelines to itself, due ``build_result_settle_timeout`` after a
    completion that left jobs unreported; the run's result speaks for them.
    """

    pipeline_run_id: Identifier


# Events


class _DefinitionEvent(Event):
    pipeline_id: Identifier
    repository_id: Identifier
    tenant_id: Identifier
    project_id: Identifier
    module_id: Identifier
    module_type: ModuleType
    definition_path: str
    template_version: str
    target_feed: str
    status: DefinitionStatus
    stages: list[StageRecord] = Field(min_length=1)


class PipelineGenerated(_DefinitionEvent):
    """A pipeline definition was generated for a module and committed to its repository."""

    yaml_sha256: Sha256 = Field(pattern=SHA256_PATTERN)
    commit_id: Identifier
    supersedes: Identifier | None
    generated_at: AwareDatetime
    generated_by: Identity


class PipelineSuperseded(_DefinitionEvent):
    """A pipeline definition was superseded by its regeneration."""

    superseded_by_pipeline_id: Identifier
    superseded_at: AwareDatetime
    superseded_by: Identity


class _RunEvent(Event):
    pipeline_run_id: Identifier
    pipeline_id: Identifier
    tenant_id: Identifier
    project_id: Identifier
    module_id: Identifier
    module_type: ModuleType
    repository_id: Identifier
    branch: BranchName
    commit_sha: CommitSha
    build_number: str
    reason: RunReason
    status: RunStatus
    stage_runs: list[StageRunRecord]


class PipelineRunStarted(_RunEvent):
    """A run of a pipeline definition started."""

    started_at: AwareDatetime
    started_by: Identity


class PipelineRunProgressed(_RunEvent):
    """The CI provider reported progress of a run's jobs."""

    reported_at: AwareDatetime
    reported_by: Identity


class PipelineRunCompleted(_RunEvent):
    """A run reached its terminal status (Succeeded, Failed or Canceled)."""

    started_at: AwareDatetime
    finished_at: AwareDatetime
    completed_by: Identity


class BuildCompleted(Event):
    """A run's build result was recorded: status, version, artifacts, tests, coverage and logs.

    ``targetFeed`` is where the definition pushes the module's output: the
    package feed of a library, ``registry/repository`` of a service's image.
    """

    build_result_id: Identifier
    pipeline_run_id: Identifier
    pipeline_id: Identifier
    tenant_id: Identifier
    project_id: Identifier
    module_id: Identifier
    module_type: ModuleType
    repository_id: Identifier
    commit_sha: CommitSha
    branch: BranchName
    status: BuildStatus
    version: SemanticVersion
    target_feed: str
    artifacts: list[ArtifactRecord]
    tests_passed: int | None = Field(ge=0)
    tests_failed: int | None = Field(ge=0)
    coverage: float | None = Field(ge=0, le=100)
    logs_uri: BlobReference | None
    completed_at: AwareDatetime


for _command in (
    GeneratePipeline,
    RunPipeline,
    RecordPipelineRunProgress,
    CompletePipelineRun,
    SettleBuildResult,
):
    registry.command(CONTEXT, _command)

for _event in (
    PipelineGenerated,
    PipelineSuperseded,
    PipelineRunStarted,
    PipelineRunProgressed,
    PipelineRunCompleted,
    BuildCompleted,
):
    registry.event(CONTEXT, _event)
